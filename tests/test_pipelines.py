import importlib
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import neuroai.pipelines
from neuroai.io import load_array, read_provenance
from neuroai.testing import region_timeseries_dataset

STAGES = sorted(
    name
    for _, name, _ in pkgutil.iter_modules(neuroai.pipelines.__path__)
    if not name.startswith("_")
)


def test_list_options_expand_list_files(tmp_path, capsys):
    from neuroai.pipelines._stage import PathList, stage_parser

    parser = stage_parser(None, "stage")
    parser.add_argument("--inputs", nargs="+", action=PathList, required=True)
    listed = tmp_path / "inputs.txt"
    listed.write_text("a.npy\n\n  b.npy \n", encoding="utf-8")
    args = parser.parse_args(["--inputs", f"@{listed}", "c.npy", "--params", "{}"])
    assert args.inputs == ["a.npy", "b.npy", "c.npy"] and args.params == "{}"
    with pytest.raises(SystemExit):
        parser.parse_args(["--inputs", f"@{tmp_path / 'missing.txt'}"])
    assert "cannot read the list file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        parser.parse_args(["--inputs", f"@{tmp_path / 'empty.txt'}"])
    assert "lists no paths" in capsys.readouterr().err


def test_group_fc_takes_more_runs_than_one_command_line_holds(tmp_path):
    from neuroai.io import save_array

    folder = tmp_path / "results" / "fmri" / "a_cohort_with_a_long_path" / "static_fc"
    paths = [folder / f"sub-{i:05d}_task-rest_run-1_connectivity.npy" for i in range(1500)]
    for i, path in enumerate(paths):
        save_array(path, np.eye(3) * i, stage="static_fc", params={"kind": "correlation"})
    assert sum(len(str(p)) + 1 for p in paths) > 128 * 1024  # one path per argument: too long
    listed = tmp_path / "fc.txt"
    listed.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    command = (
        f"{sys.executable} -m neuroai.pipelines.group_fc --connectivity @{listed} "
        f"--mean-output {tmp_path / 'mean.npy'} --summary-output {tmp_path / 'summary.json'} "
        '--params \'{"dataset": "big"}\' --no-progress'
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mean = load_array(tmp_path / "mean.npy", stage="group_fc")
    assert np.allclose(mean, np.eye(3) * 749.5)  # the mean of 0..1499
    assert len(read_provenance(tmp_path / "mean.npy")["inputs"]) == 1500


def test_there_are_stages():
    assert {"demo_regions", "static_fc", "group_fc", "report"} <= set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_run_main_and_help(stage):
    module = importlib.import_module(f"neuroai.pipelines.{stage}")
    assert callable(module.run) and callable(module.main)
    assert module.run.__doc__
    done = subprocess.run(
        [sys.executable, "-m", f"neuroai.pipelines.{stage}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--params" in done.stdout


def test_static_fc_stage_cli_and_api_agree(tmp_path):
    from neuroai.pipelines import static_fc

    runs = region_timeseries_dataset(tmp_path / "ds", subjects=["01"])
    tsv = next(iter(runs.values()))
    api = static_fc.run(tsv, tmp_path / "api.npy", kind="partial correlation")
    log = tmp_path / "cli.log"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuroai.pipelines.static_fc",
            "--timeseries",
            str(tsv),
            "--output",
            str(tmp_path / "cli.npy"),
            "--params",
            '{"kind": "partial correlation"}',
            "--log",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Equal up to the order of BLAS's sums, which depends on the threads a process has
    # (the suite's earlier tests change them in this process): 1e-12, not bit for bit.
    np.testing.assert_allclose(
        load_array(api), load_array(tmp_path / "cli.npy"), rtol=1e-12, atol=1e-14
    )
    assert read_provenance(api)["params"] == {"kind": "partial correlation", "fisher_z": False}
    assert "neuroai.stage.static_fc" in log.read_text()


def test_unknown_parameter_is_a_clear_error(tmp_path):
    runs = region_timeseries_dataset(tmp_path / "ds", subjects=["01"])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuroai.pipelines.static_fc",
            "--timeseries",
            str(next(iter(runs.values()))),
            "--output",
            str(tmp_path / "x.npy"),
            "--params",
            '{"knd": "correlation"}',
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Unknown parameter 'knd'" in done.stderr and "Did you mean 'kind'?" in done.stderr
    assert not (tmp_path / "x.npy").exists()


def test_bad_input_fails_without_artifact(tmp_path):
    from neuroai.errors import DataError
    from neuroai.pipelines import static_fc

    runs = region_timeseries_dataset(tmp_path / "ds", subjects=["01"])
    tsv = next(iter(runs.values()))
    tsv.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="no JSON sidecar"):
        static_fc.run(tsv, tmp_path / "fc.npy")
    assert not any((tmp_path).glob("fc.npy*"))


def test_zero_variance_region_is_logged_and_zeroed(tmp_path, caplog):
    from neuroai.io import write_region_timeseries
    from neuroai.pipelines import static_fc
    from neuroai.testing import correlated_timeseries

    data = correlated_timeseries(40, 5)
    data[:, 2] = 7.0
    tsv = write_region_timeseries(
        tmp_path / "sub-01_timeseries.tsv", data, tr=1.0, regions=list("abcde")
    )
    with caplog.at_level("WARNING", logger="neuroai"):
        out = static_fc.run(tsv, tmp_path / "fc.npy")
    fc = load_array(out)
    assert np.all(fc[2] == 0) and np.all(fc[:, 2] == 0)
    assert "zero variance" in caplog.text
    assert read_provenance(out)["extra"]["zero_variance_regions"] == ["c"]
