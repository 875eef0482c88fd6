"""The batched per-run stages on a Dask scheduler (region time series of 4D runs, dynamic
FC, EEG recordings), and graph building (graph_dataset): a ``dask scheduler`` and a
``dask worker`` started as separate processes compute the runs, the stage writes the same
files as when it computes them itself (the sequential path is the oracle), a run that
fails on a worker is left out, or fails the stage, as in the sequential path, and the
workflow's rules pass the configured scheduler.
Static FC on Dask: tests/test_static_fc_batches.py."""

import functools
import json
from pathlib import Path

import pytest

from neuroai.errors import ArtifactError, DataError
from neuroai.io import read_provenance, read_region_timeseries, write_region_timeseries
from neuroai.pipelines import (
    dynamic_fc,
    dynamic_fc_batch,
    eeg_recording_batch,
    fmri_timeseries_batch,
    graph_dataset,
)
from neuroai.pipelines._batch import read_failures
from neuroai.testing import (
    bids_dataset,
    dask_processes,
    label_atlas,
    region_timeseries_dataset,
    tuh_edf,
)
from neuroai.testing.workflow import run_snakemake

SHAPE = (6, 7, 8)
KEYS = ["sub-01_task-rest_run-1", "sub-02_task-rest_run-1", "sub-03_task-rest_run-1"]
TS_PARAMS = {
    "layout": "bids",
    "atlas": {"labels_img": "atlas.nii.gz"},
    "strategy": ["global_signal"],
    "n_carpet_voxels": 20,
}
EEG_PARAMS = {
    "montage": "10-20_19",
    "l_freq": 1.0,  # a filter short enough for recordings of 14 s
    "window_s": 4.0,
    "stride_s": 4.0,
    "patch_len": 50,
    "patch_stride": 50,
}
BATCH = Path("out") / "batch-0"


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A ``dask scheduler`` and one ``dask worker`` started as separate processes on
    localhost, in a folder of their own (so relative paths would not resolve there)."""
    pytest.importorskip("dask.distributed")
    with dask_processes(tmp_path_factory.mktemp("dask"), require_task="one_thread") as address:
        yield address


def _untimed(value):
    """A JSON value without its records' ``created`` times."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "created"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _same_files(sequential, dask):
    """Every file of two folders the same bytes (JSON: the same but for the times of the
    records)."""
    names = sorted(p.relative_to(sequential) for p in sequential.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(dask) for p in dask.rglob("*") if p.is_file())
    assert any(name.suffix == ".npy" for name in names), names
    for name in names:
        a, b = (sequential / name).read_bytes(), (dask / name).read_bytes()
        if a != b and name.suffix == ".json":  # a record, or a sidecar embedding one
            a, b = (_untimed(json.loads(text)) for text in (a, b))
        assert a == b, name


def _same_batches(sequential, dask, address):
    """Every file of two batch folders the same bytes (JSON: the same but for the times
    of the records), and the folders' records the same but for where the runs ran."""
    _same_files(sequential, dask)
    a, b = (read_provenance(folder) for folder in (sequential, dask))
    assert (a["extra"].pop("scheduler"), b["extra"].pop("scheduler")) == ("sequential", address)
    for field in ("stage", "params", "extra"):
        assert a[field] == b[field], field


def _twice(tmp_path, monkeypatch, run, *, address):
    """``run(scheduler)`` sequentially, then on Dask, writing ``out/batch-0`` from
    ``tmp_path`` (paths relative, as Snakemake gives them; the records name the batch's
    own files, so both write the same path); the sequential folder, moved aside."""
    monkeypatch.chdir(tmp_path)
    run("sequential")
    Path("out").rename("sequential")
    run(address)
    return tmp_path / "sequential" / BATCH.name, tmp_path / BATCH


@pytest.mark.integration
@pytest.mark.slow
def test_dynamic_fc_batch_on_dask_writes_the_sequential_files(
    dask_scheduler, tmp_path, monkeypatch
):
    runs = region_timeseries_dataset(tmp_path / "regions", subjects=["01", "02", "03"])
    paths = [p.relative_to(tmp_path) for p in runs.values()]
    run = functools.partial(dynamic_fc_batch.run, paths, BATCH, window=10, step=4)
    sequential, dask = _twice(
        tmp_path, monkeypatch, lambda where: run(scheduler=where), address=dask_scheduler
    )
    _same_batches(sequential, dask, dask_scheduler)
    record = read_provenance(dask / f"{paths[0].name[: -len('_timeseries.tsv')]}_dfc.npy")
    assert record["inputs"][0]["path"] == str(paths[0])  # as given, not made absolute


def _bids(folder):
    import nibabel as nib

    bids_dataset(folder, subjects=["01", "02", "03"], n_volumes=45, shape=SHAPE)
    nib.save(label_atlas(SHAPE, 4, seed=2), folder / "atlas.nii.gz")
    return folder


@pytest.mark.integration
@pytest.mark.slow
def test_fmri_timeseries_batch_on_dask_writes_the_sequential_files(
    dask_scheduler, tmp_path, monkeypatch
):
    _bids(tmp_path / "bids")
    run = functools.partial(fmri_timeseries_batch.run, "bids", KEYS, BATCH, **TS_PARAMS)
    sequential, dask = _twice(
        tmp_path, monkeypatch, lambda where: run(scheduler=where), address=dask_scheduler
    )
    _same_batches(sequential, dask, dask_scheduler)
    sidecar = json.loads((dask / "sub-02" / "func" / f"{KEYS[1]}_timeseries.json").read_text())
    assert sidecar["Sources"] == ["bids/sub-02/func/sub-02_task-rest_run-1_bold.nii.gz"]
    assert sidecar["Atlas"]["source"] == "bids/atlas.nii.gz"


@pytest.mark.integration
@pytest.mark.slow
def test_eeg_recording_batch_on_dask_writes_the_sequential_files(
    dask_scheduler, tmp_path, monkeypatch
):
    edfs = [
        tuh_edf(tmp_path / "edf" / f"aaaaaaa{c}_s001_t000.edf", duration_s=d, seed=i)
        for i, (c, d) in enumerate(zip("ab", (14.0, 21.0), strict=True))
    ]
    items = [{"key": p.stem, "path": str(p.relative_to(tmp_path)), "meta": None} for p in edfs]

    def run(where):  # the address from the environment, as a job without --scheduler
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "" if where == "sequential" else where)
        eeg_recording_batch.run(items, BATCH, **EEG_PARAMS)

    sequential, dask = _twice(tmp_path, monkeypatch, run, address=dask_scheduler)
    _same_batches(sequential, dask, dask_scheduler)
    qc = json.loads((dask / f"{edfs[1].stem}_qc.json").read_text())
    assert qc["source"] == items[1]["path"]  # as given, not the worker's absolute path


@pytest.mark.integration
@pytest.mark.slow
def test_a_truncated_image_on_dask_is_left_out_as_in_the_sequential_path(
    dask_scheduler, tmp_path, monkeypatch
):
    data = _bids(tmp_path / "bids")
    image = data / "sub-02" / "func" / f"{KEYS[1]}_bold.nii.gz"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    missing = "sub-04_task-rest_run-1"  # no such run: its error names the dataset folder
    keys = [*KEYS, missing]
    monkeypatch.chdir(tmp_path)
    with pytest.raises((DataError, OSError, EOFError), match="sub-02"):
        fmri_timeseries_batch.run("bids", keys, BATCH, scheduler=dask_scheduler, **TS_PARAMS)
    assert not Path("out").exists() or list(Path("out").iterdir()) == []
    run = functools.partial(
        fmri_timeseries_batch.run, "bids", keys, BATCH, on_error="skip", **TS_PARAMS
    )
    sequential, dask = _twice(
        tmp_path, monkeypatch, lambda where: run(scheduler=where), address=dask_scheduler
    )
    _same_batches(sequential, dask, dask_scheduler)  # failures.tsv too, byte for byte
    rows = read_failures(dask)
    assert [(r["run"], r["stage"]) for r in rows] == [
        (KEYS[1], "fmri_timeseries"),
        (missing, "fmri_timeseries"),
    ]
    # Named as given ("under bids"), not by the absolute path the worker read.
    assert "under bids " in rows[1]["error"] and str(tmp_path) not in rows[1]["error"]
    assert read_provenance(dask)["extra"]["failed"] == [KEYS[1], missing]
    assert not list(dask.glob(f"sub-02/func/{KEYS[1]}*"))
    assert (dask / "sub-03" / "func" / f"{KEYS[2]}_timeseries.tsv").is_file()


def _graph_cohort(folder):
    """Dynamic FC of four runs of unequal lengths (53, 53, 8 and 33 time points: the third
    is shorter than the window, so it has no window and is left out) and their region
    time series, with the paths relative to ``folder``, as Snakemake gives them."""
    runs = region_timeseries_dataset(
        folder / "regions", subjects=["01", "02", "03", "04"], sites=["A", "B"]
    )
    for key, n in zip(list(runs)[2:], (8, 33), strict=True):
        ts = read_region_timeseries(runs[key])
        write_region_timeseries(
            runs[key], ts.data[:n], tr=ts.tr, regions=ts.regions, stage="synthetic"
        )
    dfcs = [
        dynamic_fc.run(path, folder / "dfc" / f"{key}_dfc.npy", window=10, step=3,
                       short_runs="skip")
        for key, path in runs.items()
    ]  # fmt: skip
    return [p.relative_to(folder) for p in dfcs], [p.relative_to(folder) for p in runs.values()]


def _graph_dataset(dfcs, tsvs, scheduler):
    return graph_dataset.run(
        dfcs,
        tsvs,
        Path("out") / "graphs",
        Path("out") / "summary.json",
        Path("out") / "variability.npy",
        dataset="tiny",
        participants=Path("regions") / "participants.tsv",
        scheduler=scheduler,
    )


@pytest.mark.integration
@pytest.mark.slow
def test_graph_dataset_on_dask_writes_the_sequential_files(dask_scheduler, tmp_path, monkeypatch):
    from dask.distributed import Client, get_task_stream

    dfcs, tsvs = _graph_cohort(tmp_path)
    monkeypatch.chdir(tmp_path)
    _graph_dataset(dfcs, tsvs, "sequential")
    Path("out").rename("sequential")
    with Client(dask_scheduler) as client, get_task_stream(client) as stream:
        _graph_dataset(dfcs, tsvs, dask_scheduler)
    assert len(stream.data) == len(dfcs), stream.data  # every run built on the worker
    # The graphs folder (arrays, dataset.json, record), the summary, the variability.
    _same_files(tmp_path / "sequential", tmp_path / "out")
    summary = json.loads(Path("out", "summary.json").read_text())
    keys = [path.name[: -len("_dfc.npy")] for path in dfcs]
    assert list(summary["excluded_runs"]) == [keys[2]]
    assert summary["n_runs"] == 3 and summary["runs"][keys[3]]["n_windows"] == 8


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("bad", ["record", "truncated"])
def test_a_bad_run_fails_the_graph_dataset_on_dask_as_in_the_sequential_path(
    bad, dask_scheduler, tmp_path, monkeypatch
):
    dfcs, tsvs = _graph_cohort(tmp_path)
    monkeypatch.chdir(tmp_path)
    if bad == "record":  # another step: checked here, against the first run's record
        dynamic_fc.run(tsvs[1], dfcs[1], window=10, step=4)
    else:  # cut short after it was written: found by the task, on the worker
        dfcs[1].write_bytes(dfcs[1].read_bytes()[:-40])
    errors = []
    for where in ("sequential", dask_scheduler):
        with pytest.raises((DataError, ArtifactError)) as caught:
            _graph_dataset(dfcs, tsvs, where)
        errors.append(f"{type(caught.value).__name__}: {caught.value}")
        assert not Path("out", "graphs").exists() and not Path("out", "summary.json").exists()
    assert errors[0] == errors[1]
    kind = "DataError" if bad == "record" else "ArtifactError"
    # The file as given, not the absolute path the worker read.
    assert errors[1].startswith(f"{kind}: {dfcs[1]} "), errors[1]
    assert str(tmp_path) not in errors[1]


@pytest.mark.integration
def test_the_batch_rules_pass_the_configured_scheduler(tmp_path):
    import yaml

    _bids(tmp_path / "bids")
    for i, c in enumerate("ab"):
        tuh_edf(tmp_path / "edf" / f"aaaaaaa{c}_s001_t000.edf", duration_s=14.0, seed=i)
    address = "tcp://127.0.0.1:9"  # no scheduler there: a dry run does not connect
    batched = {"batch_size": 2}
    config = {
        "datasets": {
            "mine": {
                "card": "data_cards/demo_nitime_bold.yaml",
                "layout": "bids",
                "root": "bids",
                "atlas": TS_PARAMS["atlas"],
            },
            "tiny_eeg": {
                "card": "data_cards/demo_eeg_simulated.yaml",
                "layout": "tuh",
                "root": "edf",
            },
        },
        "fmri_timeseries": {"datasets": ["mine"], **batched},
        "static_fc": {"datasets": ["mine"], **batched},
        "dynamic_fc": {"datasets": ["mine"], "window": 10, "step": 4, **batched},
        "eeg": {"datasets": ["tiny_eeg"], **EEG_PARAMS, **batched},
        "dask": {"scheduler": address},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [
        "results/fmri/mine/group_fc_mean.npy",
        "results/fmri/mine/graphs_summary.json",
        "results/eeg/tiny_eeg/summary.json",
    ]
    done = run_snakemake(
        tmp_path, "--configfile", str(tmp_path / "config.yaml"), "-n", "-p", *targets, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    stages = ("fmri_timeseries_batch", "dynamic_fc_batch", "eeg_recording_batch", "graph_dataset")
    for stage in stages:
        commands = [line for line in output.splitlines() if f"neuroai.pipelines.{stage} " in line]
        assert commands, f"no {stage} job in the dry run: {output[-3000:]}"
        assert all(f"--scheduler={address}" in line for line in commands), commands
