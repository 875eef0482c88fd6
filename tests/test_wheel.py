"""The wheel carries its workflow: built, installed in a fresh venv, run from an empty folder.

The wheel is built from a copy of the checkout (the files git tracks or would track), so
the build leaves nothing in the repository. The fresh venv sees the test environment's
installed packages through one ``.pth`` line naming that site-packages folder; ``.pth``
files inside it (the editable install's finder among them) are not processed, so the
repository's ``neuroai`` and its ``pipelines/`` folder stay invisible: the installed
wheel alone must run the workflow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(args, cwd, timeout=600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to copy the sources from")
    work = tmp_path_factory.mktemp("wheel")
    listed = _run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO).stdout
    source = work / "src"
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if path.is_file():  # a file deleted in the work tree is still listed
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    dist = work / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(dist),
        ],
        source,
    )
    (built,) = dist.glob("neuroai-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and the test environment's packages visible."""
    folder = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(folder)], folder.parent)
    python = folder / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], folder
        ).stdout.strip()
    )
    (site / "_neuroai_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        folder.parent,
    )
    return folder


def test_wheel_carries_the_workflow_and_no_generic_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    workflow = "neuroai/_workflow/"
    expected = {f"{workflow}Snakefile", "neuroai/pipelines/static_fc.py", "neuroai/cli.py"}
    for folder in (
        "workflows/rules",
        "workflows/schemas",
        "workflows/config",
        "workflows/profiles",
        "data_cards",
    ):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                expected.add(workflow + path.relative_to(REPO).as_posix())
    assert f"{workflow}workflows/profiles/slurm/config.v8+.yaml" in expected
    assert f"{workflow}workflows/schemas/config/static_fc.schema.yaml" in expected
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith("pipelines/") or "__pycache__" in n]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "neuroai = neuroai.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_neuroai_is_the_wheel_not_the_repository(venv, tmp_path):
    code = (
        "import importlib.util, neuroai\n"
        "print(neuroai.__file__)\n"
        "print(neuroai.workflow_root())\n"
        "print(importlib.util.find_spec('pipelines'))\n"
    )
    out = _run([str(venv / "bin" / "python"), "-c", code], tmp_path).stdout.splitlines()
    assert Path(out[0]).is_relative_to(venv)
    assert Path(out[1]) == Path(out[0]).parent / "_workflow"
    assert out[2] == "None"


def test_installed_command_dry_runs_the_demo_in_an_empty_folder(venv, tmp_path):
    result = _run([str(venv / "bin" / "neuroai"), "run", "-n"], tmp_path)
    root = next(venv.rglob("neuroai/_workflow"))
    assert (
        f"running the embedded demo ({root / 'workflows' / 'config' / 'config.yaml'})"
        in result.stderr
    )
    assert "This was a dry-run" in result.stdout
    for rule in (
        "demo_regions_run",
        "static_fc",
        "eegformer_pretrain",
        "tablet_pretrain",
        "report",
    ):
        assert f"\n{rule} " in result.stdout, rule
    assert sorted(p.name for p in tmp_path.iterdir()) == [".snakemake"]


def test_installed_command_lists_stage_parameters(venv, tmp_path):
    result = _run([str(venv / "bin" / "neuroai"), "stage", "static_fc", "--help"], tmp_path)
    assert (
        '  kind: one of "correlation", "partial correlation", "covariance", "precision"; default "correlation"'
        in result.stdout
    )
    assert "  fisher_z: boolean; default false" in result.stdout
    assert "usage: python -m neuroai.pipelines.static_fc" in result.stdout


def test_installed_workflow_runs_a_stage_job(venv, tmp_path):
    """One real job from the installed workflow: the rule calls the installed stage module."""
    target = "results/datasets/demo_regions/participants.tsv"
    result = _run([str(venv / "bin" / "neuroai"), "run", "--cores", "1", target], tmp_path)
    assert (tmp_path / target).is_file(), result.stderr[-2000:]
    assert "sub-" in (tmp_path / target).read_text()
