"""The workflow's pinned environment and container recipes agree with pyproject.toml."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from neuroai.testing.lock import dependency_closure

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "workflows" / "envs" / "requirements.lock"


def _pins() -> dict[str, Version]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{LOCK.name}: {line!r} is not an exact pin"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in ("fmri", "eeg", "segmentation", "tokens", "fast", "workflow", "slurm", "demo"):
        texts += project["optional-dependencies"][extra]
    return [Requirement(t) for t in texts if not t.startswith("neuroai[")]


def test_lock_pins_every_requirement_within_its_range():
    pins = _pins()
    requirements = _project_requirements()
    assert len(requirements) > 30
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} has no pin in {LOCK.name}: regenerate it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_closure_walker_finds_transitive_dependencies():
    closure = dependency_closure()
    # direct (core, extras) and transitive (snakemake -> snakemake-interface-common) ones
    for name in ("numpy", "nilearn", "snakemake", "snakemake-interface-common", "monai"):
        assert canonicalize_name(name) in closure
    assert "neuroai" not in closure
    assert all("+" not in version for _, version in closure.values())


def test_rule_environment_and_containers_install_the_lock_and_this_checkout():
    env = yaml.safe_load((REPO / "workflows" / "envs" / "neuroai.yaml").read_text())
    pip = next(x["pip"] for x in env["dependencies"] if isinstance(x, dict))
    assert "-r requirements.lock" in pip
    assert not any(line.startswith("-e") for line in pip), "the rules' env must not be editable"
    extras = next(line for line in pip if line.startswith("../.."))
    for recipe in ("Dockerfile", "neuroai.def"):
        text = (REPO / "containers" / recipe).read_text(encoding="utf-8")
        assert "requirements.lock" in text, recipe
        assert extras.removeprefix("../..") in text, f"{recipe} installs other extras"


@pytest.fixture
def fake_apptainer(tmp_path):
    """``singularity``/``apptainer`` that only report a version: enough for a dry run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("singularity", "apptainer"):
        tool = bin_dir / name
        tool.write_text('#!/bin/sh\necho "apptainer version 1.3.4"\n')
        tool.chmod(0o755)
    return bin_dir


def test_config_container_is_every_rules_image(tmp_path, fake_apptainer):
    env = dict(os.environ, PATH=f"{fake_apptainer}{os.pathsep}{os.environ['PATH']}")
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n",
        "--sdm", "apptainer",
    ]  # fmt: skip
    image = "docker://example.org/neuroai:0.1.0"
    done = subprocess.run(
        [*command, "--config", f"container={image}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"image {image} will be pulled" in done.stdout + done.stderr
    plain = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "will be pulled" not in plain.stdout + plain.stderr
