"""The ``neuroai`` command: help, stage parameters from the schema, nearest names, init, run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from neuroai import workflow_root
from neuroai._cli_init import LAYOUTS, schema_layouts
from neuroai._cli_stages import NO_CONFIG, STAGES, config_schema, section_schema, stage_names
from neuroai.cli import main, resolve_profiles, snakemake_command

ROOT = workflow_root()
SCHEMAS = ROOT / "workflows" / "schemas" / "config"


def neuroai(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m neuroai ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "neuroai", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- help and command names ----


def test_top_level_help_names_every_command(tmp_path):
    result = neuroai("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("run", "stage", "models", "init", "check-report"):
        assert f"\n    {command}" in result.stdout


def test_help_imports_neither_snakemake_nor_torch(tmp_path):
    code = (
        "import sys\n"
        "from neuroai.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['init', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'snakemake', 'nibabel') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_argparse_error_with_choices(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["rnu"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'rnu'" in err
    assert "'run'" in err and "'init'" in err


# ---- stage ----


@pytest.mark.parametrize(
    ("stage", "section"), [("static_fc", "static_fc"), ("dynamic_fc", "dynamic_fc")]
)
def test_stage_help_lists_schema_parameters_with_defaults(capsys, stage, section):
    schema = yaml.safe_load((SCHEMAS / f"{section}.schema.yaml").read_text())
    assert main(["stage", stage, "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, sub in schema["properties"].items():
        matching = [line for line in lines if line.startswith(f"  {name}: ")]
        assert len(matching) == 1, (name, out)
        if "default" in sub:
            assert f"default {json.dumps(sub['default'])}" in matching[0]
        if "enum" in sub:
            assert all(json.dumps(v) in matching[0] for v in sub["enum"])
        if "description" in sub:
            first_words = " ".join(str(sub["description"]).split()[:4])
            assert first_words in out
    # datasets (and static_fc's batch_size) are the rule's, listed apart from the parameters
    parameters, rule_keys = out.split("Keys of the section the rule uses itself")
    assert "  datasets: " in rule_keys and "  datasets: " not in parameters
    assert "--timeseries" in out and "--output" in out  # the stage's own argparse options


def test_every_stage_module_is_mapped_onto_the_schema():
    schema = config_schema(ROOT)
    assert set(stage_names()) == set(STAGES) | NO_CONFIG
    for name, entry in STAGES.items():
        properties = section_schema(schema, entry.section).get("properties", {})
        assert properties, name
        for key in entry.keys or ():
            assert key in properties, (name, key)


def test_every_stage_has_help(capsys):
    for name in stage_names():
        assert main(["stage", name, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"neuroai stage {name}\n")
        assert f"usage: python -m neuroai.pipelines.{name}" in out
        if name in NO_CONFIG:
            assert "no section in the workflow config" in out
        else:
            assert "\nParameters:\n" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stage", "statc_fc", "--help"], "Unknown stage 'statc_fc'. Did you mean 'static_fc'?"),
        (["stage", "static_fc", "--timeserie", "x"], "Did you mean '--timeseries'?"),
        (
            ["stage", "static_fc", "--set", "kiind=covariance"],
            "Unknown parameter 'kiind' for stage 'static_fc'. Did you mean 'kind'?",
        ),
        (["stage", "static_fc", "--set", "kind=covarianc"], "Did you mean 'covariance'?"),
        (["stage", "static_fc", "--set", "fisher_z=maybe"], "is not of type 'boolean'"),
        (["stage", "tablet_pretrain", "--set", "model.preset=demo"], "gets its --params built"),
    ],
)
def test_stage_errors_name_the_nearest(capsys, argv, expected):
    assert main(argv) == 1
    assert expected in capsys.readouterr().err


def test_stage_runs_with_set_parameters_as_the_python_api_does(tmp_path):
    from neuroai.io import load_array
    from neuroai.io.provenance import read_provenance
    from neuroai.io.regions import write_region_timeseries
    from neuroai.pipelines import static_fc

    rng = np.random.default_rng(0)
    series = tmp_path / "sub-01_task-rest_timeseries.tsv"
    write_region_timeseries(series, rng.standard_normal((37, 5)), tr=2.0, regions=list("abcde"))
    out = tmp_path / "cli.npy"
    argv = ["stage", "static_fc", "--timeseries", str(series), "--output", str(out)]
    assert main([*argv, "--set", "kind=covariance", "--no-progress"]) == 0
    direct = static_fc.run(series, tmp_path / "api.npy", kind="covariance")
    np.testing.assert_array_equal(load_array(out), load_array(direct))
    assert not np.allclose(np.diag(load_array(out)), 1.0)  # covariance, not correlation
    assert read_provenance(out)["params"] == {"kind": "covariance", "fisher_z": False}


# ---- models ----


def test_models_lists_every_family_and_preset(capsys):
    from neuroai.models import describe_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for entry in describe_models():
        line = next(line for line in out.splitlines() if line.startswith(entry["name"] + " "))
        assert ", ".join(entry["presets"]) in line


def test_model_parameter_counts_match_a_built_model():
    import torch

    from neuroai.cli import _count
    from neuroai.models import create_model

    torch.manual_seed(0)
    n = sum(p.numel() for p in create_model("eegformer", "demo").parameters())
    assert _count("eegformer", "demo") == f"{n / 1e3:.1f} k"
    assert _count("tablet", "paper") == "129.5 M"  # the released encoder's size (DESIGN.md)


# ---- init ----


def _touch(root: Path, *names: str) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def _decathlon(root: Path) -> Path:
    _touch(root, "imagesTr/hip_001.nii.gz", "labelsTr/hip_001.nii.gz", "imagesTs/hip_009.nii.gz")
    description = {
        "name": "Hippocampus",
        "labels": {"0": "background", "1": "anterior"},
        "training": [{"image": "./imagesTr/hip_001.nii.gz", "label": "./labelsTr/hip_001.nii.gz"}],
        "test": ["./imagesTs/hip_009.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(description))
    return root


FAKE = {
    "region_timeseries": lambda r: _touch(
        r,
        "sub-01/func/sub-01_task-rest_timeseries.tsv",
        "sub-02/ses-1/func/sub-02_ses-1_task-rest_timeseries.tsv",
    ),
    "bids": lambda r: _touch(r, "sub-01/func/sub-01_task-rest_bold.nii.gz"),
    "fmriprep": lambda r: _touch(
        r, "sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    ),
    "bold_volumes": lambda r: _touch(r, "sub-01/func/sub-01_task-rest_bold.nii"),
    "tuh": lambda r: _touch(r, "train/normal/01_tcp_ar/aaaaaaaa_s001_t000.edf"),
    "bids_eeg": lambda r: _touch(
        r, "sub-01/eeg/sub-01_task-rest_eeg.vhdr", "sub-02/eeg/sub-02_task-rest_eeg.edf"
    ),
    "eeg_files": lambda r: _touch(r, "a/rec1.bdf", "rec2.set"),
    "decathlon": _decathlon,
}


def test_init_knows_every_layout_the_schema_accepts():
    assert set(LAYOUTS) == set(schema_layouts(ROOT)) == set(FAKE)


@pytest.mark.parametrize("layout", sorted(FAKE))
def test_init_writes_a_config_that_validates(tmp_path, monkeypatch, capsys, layout):
    from neuroai.config import validate_config
    from neuroai.datasets.cards import load_card

    data = FAKE[layout](tmp_path / "My-Data_2024")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    atlas = []
    if layout in ("bids", "fmriprep"):
        (tmp_path / "spheres.tsv").write_text("x\ty\tz\n0\t0\t0\n")
        atlas = ["--atlas", str(tmp_path / "spheres.tsv")]
    assert main(["init", str(data), "--layout", layout, *atlas]) == 0, capsys.readouterr().err
    config = yaml.safe_load((work / "neuroai.yaml").read_text())
    validate_config(config, ROOT / "workflows" / "schemas" / "config.schema.yaml")
    entry = config["datasets"]["my_data_2024"]
    assert entry["layout"] == layout and Path(entry["root"]) == data.resolve()
    assert any(
        "my_data_2024" in s.get("datasets", []) for s in config.values() if isinstance(s, dict)
    )
    card = load_card(entry["card"])
    assert card.name == "my_data_2024" and Path(entry["card"]) == work / "my_data_2024.yaml"
    assert card["modality"] == LAYOUTS[layout].modality
    if layout in ("bids", "fmriprep"):
        assert entry["atlas"] == {"coordinates": str(tmp_path / "spheres.tsv")}
    if layout in ("region_timeseries", "bids_eeg"):
        assert card["counts"] == {"subjects": 2}
    if layout == "decathlon":
        assert card["counts"] == {"cases": 2}


def test_init_on_a_folder_of_another_layout_says_what_it_expected_and_found(tmp_path, capsys):
    data = FAKE["bids"](tmp_path / "raw")
    assert (
        main(["init", str(data), "--layout", "fmriprep", "--output", str(tmp_path / "c.yaml")]) == 1
    )
    err = capsys.readouterr().err
    assert "does not look like layout 'fmriprep'" in err
    assert "_desc-preproc_bold.nii[.gz]" in err  # expected
    assert "sub-01/func/ holds sub-01_task-rest_bold.nii.gz" in err  # found
    assert not (tmp_path / "c.yaml").exists() and not (tmp_path / "raw.yaml").exists()


def test_init_on_a_broken_decathlon_task_names_the_missing_file(tmp_path, capsys):
    data = _decathlon(tmp_path / "task")
    (data / "labelsTr" / "hip_001.nii.gz").unlink()
    assert main(["init", str(data), "--layout", "decathlon"]) == 1
    err = capsys.readouterr().err
    assert "expected dataset.json with imagesTr/ and labelsTr/" in err
    assert "label of case hip_001" in err


def test_init_refuses_to_overwrite_and_suggests_layouts(tmp_path, capsys):
    data = FAKE["eeg_files"](tmp_path / "eeg")
    output = tmp_path / "neuroai.yaml"
    output.write_text("mine\n")
    assert main(["init", str(data), "--layout", "eeg_files", "--output", str(output)]) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert output.read_text() == "mine\n" and not (tmp_path / "eeg.yaml").exists()
    assert main(["init", str(data), "--layout", "eeg_file"]) == 1
    assert "Did you mean 'eeg_files'?" in capsys.readouterr().err


def test_init_of_4d_bold_needs_an_atlas(tmp_path, capsys):
    data = FAKE["fmriprep"](tmp_path / "prep")
    assert (
        main(["init", str(data), "--layout", "fmriprep", "--output", str(tmp_path / "c.yaml")]) == 1
    )
    assert "needs an atlas" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists() and not (tmp_path / "prep.yaml").exists()


def test_starter_config_runs_in_the_workflow(tmp_path):
    """The written config is a workflow config: a dry run plans static FC of each run."""
    from neuroai.io.regions import write_region_timeseries

    rng = np.random.default_rng(1)
    data = tmp_path / "cohort"
    for subject in ("01", "02"):
        path = data / f"sub-{subject}" / "func" / f"sub-{subject}_task-rest_timeseries.tsv"
        path.parent.mkdir(parents=True)
        write_region_timeseries(path, rng.standard_normal((30, 4)), tr=2.0, regions=list("abcd"))
    work = tmp_path / "work"
    work.mkdir()
    result = neuroai("init", str(data), "--layout", "region_timeseries", cwd=work)
    assert result.returncode == 0, result.stderr
    result = neuroai("run", "-n", "--configfile", "neuroai.yaml", cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running the embedded demo" not in result.stderr
    counts = dict(
        line.split()[:2] for line in result.stdout.splitlines() if line.startswith("static_fc ")
    )
    assert counts == {"static_fc": "2"}


# ---- run ----


def test_run_dry_run_of_the_demo_in_an_empty_folder(tmp_path):
    result = neuroai("run", "-n", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"running the embedded demo ({ROOT / 'workflows' / 'config' / 'config.yaml'}) into {tmp_path / 'results'}"
        in result.stderr
    )
    assert "This was a dry-run" in result.stdout
    assert "eegformer_pretrain" in result.stdout and "tablet_pretrain" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".snakemake"]  # nothing built


def test_run_passes_options_on_and_finds_the_workflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = snakemake_command(["--cores", "2", "-n"], ROOT)
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    assert command[3:] == [
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        os.getcwd(),
        "--cores",
        "2",
        "-n",
    ]
    assert "--directory" not in snakemake_command(["-d", "elsewhere"], ROOT)[3:-2]


def test_profiles_resolve_as_snakemake_then_to_the_shipped_ones(tmp_path, monkeypatch, capsys):
    from neuroai.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    shipped = str(ROOT / "workflows" / "profiles" / "slurm")
    assert resolve_profiles(["--profile", "slurm", "-n"], ROOT) == ["--profile", shipped, "-n"]
    assert resolve_profiles(["--profile=local"], ROOT) == [
        f"--profile={ROOT / 'workflows' / 'profiles' / 'local'}"
    ]
    assert "the shipped profile" in capsys.readouterr().err
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "config.yaml").write_text("jobs: 1\n")
    assert resolve_profiles(["--profile", "slurm"], ROOT) == ["--profile", "slurm"]  # yours wins
    with pytest.raises(ConfigError, match="Did you mean 'workstation'"):
        resolve_profiles(["--profile", "workstatoin"], ROOT)


# ---- check-report ----


def test_check_report_is_the_report_checker(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check-report", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: neuroai check-report")
    assert "--complete" in out and "--screenshots" in out
