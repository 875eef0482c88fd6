"""Build steps that pyproject.toml cannot express.

Two things make the installed package able to run the workflow without the repository:

- the repository's top-level ``pipelines/`` folder (the stage modules) is installed as
  ``neuroai.pipelines`` (``package_dir``), so no module with the generic name
  ``pipelines`` lands in site-packages;
- the wheel carries the workflow itself (``Snakefile``, ``workflows/``, ``data_cards/``)
  as ``neuroai/_workflow/``, laid out as in the repository, so the Snakefile's paths
  (relative to its own folder) hold in both places. ``neuroai run`` finds it there, or,
  in an editable install, in the repository (``neuroai.workflow_root``).
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
WORKFLOW_FILES = ("Snakefile", "workflows", "data_cards")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")


class BuildWithWorkflow(build_py):
    """``build_py`` that also copies the workflow into ``neuroai/_workflow``."""

    def run(self):
        super().run()
        if self.editable_mode:
            return  # an editable install runs the repository's own workflow
        target = Path(self.build_lib) / "neuroai" / "_workflow"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in WORKFLOW_FILES:
            source = HERE / name
            if not source.exists():
                raise FileNotFoundError(
                    f"{source} is missing: the wheel must carry the workflow. Build from a "
                    "full checkout (or an sdist made from one)."
                )
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=IGNORE)
            else:
                shutil.copy2(source, target / name)


setup(
    packages=find_packages(include=["neuroai", "neuroai.*"]) + ["neuroai.pipelines"],
    package_dir={"neuroai.pipelines": "pipelines"},
    cmdclass={"build_py": BuildWithWorkflow},
)
