"""Exact pins of the workflow environment, read from the installed packages.

``python -m neuroai.testing.lock`` prints ``name==version`` for every distribution that
``neuroai[demo,slurm]`` needs, directly or through its dependencies, as installed in the
running environment (local version labels such as ``+cpu`` dropped, so that the same pin
selects the platform's build). ``workflows/envs/requirements.lock`` is this output under a
header; the rules' conda environment and the container recipes install from it.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: The extras whose closure the workflow environment holds.
WORKFLOW_EXTRAS = ("demo", "slurm")


def dependency_closure(
    root: str = "neuroai", extras: tuple[str, ...] = WORKFLOW_EXTRAS
) -> dict[str, tuple[str, str]]:
    """``{canonical name: (distribution name, version)}`` of ``root[extras]``'s dependencies.

    Walks the installed distributions' metadata; requirements whose environment markers
    are false here (another platform, an extra nobody asked for) are left out, and so are
    requirements that are not installed (optional ones the environment does not have).
    """
    found: dict[str, tuple[str, str]] = {}
    asked: dict[str, set[str]] = {}

    def visit(name: str, wanted: set[str]) -> None:
        key = canonicalize_name(name)
        new = wanted - asked.get(key, set())
        if key in asked and not new:
            return
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            return
        asked.setdefault(key, set()).update(wanted)
        found[key] = (dist.metadata["Name"], dist.version.split("+")[0])
        environments = [{"extra": extra} for extra in asked[key]] or [{"extra": ""}]
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate(env) for env in environments):
                visit(requirement.name, set(requirement.extras))

    visit(root, set(extras))
    found.pop(canonicalize_name(root), None)
    return dict(sorted(found.items()))


def main() -> None:
    for name, version in dependency_closure().values():
        sys.stdout.write(f"{name}=={version}\n")


if __name__ == "__main__":
    main()
