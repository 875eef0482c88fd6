"""Batched per-run stages (fmri_timeseries, dynamic_fc, static_fc, eeg_recording): the
per-run stage is the oracle (same bytes, same records), and on_error fail | skip with
corrupt inputs (a truncated NIfTI or EDF, values that are not numbers)."""

import csv
import json
import shutil

import numpy as np
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.io import read_provenance
from neuroai.pipelines import (
    dynamic_fc,
    dynamic_fc_batch,
    eeg_recording,
    eeg_recording_batch,
    fmri_timeseries,
    fmri_timeseries_batch,
    static_fc,
    static_fc_batch,
)
from neuroai.pipelines._batch import read_failures
from neuroai.testing import bids_dataset, label_atlas, region_timeseries_dataset, tuh_edf

SHAPE = (6, 7, 8)
ATLAS = {"labels_img": "atlas.nii.gz"}
DFC = {"window": 10, "step": 4}
RECORD_FIELDS = ("stage", "params", "inputs", "extra")


def _same_artifact(a, b):
    """The same bytes and the same record (but its time and library versions)."""
    if a.is_dir():
        names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()), a
        for name in names:
            assert (a / name).read_bytes() == (b / name).read_bytes(), (a, name)
    else:
        assert a.read_bytes() == b.read_bytes(), a
    ra, rb = read_provenance(a), read_provenance(b)
    for field in RECORD_FIELDS:
        assert ra.get(field) == rb.get(field), (a, field)
    assert ra["output"] == rb["output"], a


def _corrupt_timeseries(path):
    """A run whose second value is not a number (the reader refuses it)."""
    lines = path.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[1] = "abc"
    lines[1] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    """Five region runs of unequal lengths (5 regions)."""
    root = tmp_path_factory.mktemp("regions")
    region_timeseries_dataset(root, subjects=["01", "02", "03", "04", "05"], n_timepoints=31)
    return sorted(root.rglob("*_timeseries.tsv"))


def _key(path):
    return path.name[: -len("_timeseries.tsv")]


# ---- region stages: dynamic and static FC ----


def test_dynamic_fc_batch_writes_what_the_per_run_stage_writes(regions, tmp_path):
    folder = dynamic_fc_batch.run(regions, tmp_path / "batch-0", **DFC)
    for path in regions:
        alone = dynamic_fc.run(path, tmp_path / "alone" / f"{_key(path)}_dfc.npy", **DFC)
        _same_artifact(alone, folder / alone.name)
    record = read_provenance(folder)
    assert record["stage"] == "dynamic_fc_batch"
    assert record["extra"]["runs"] == [_key(p) for p in regions]
    assert record["extra"]["failed"] == [] and read_failures(folder) == []
    assert (folder / "failures.tsv").read_text() == "run\tstage\terror\n"


def test_a_corrupt_run_fails_the_batch_naming_it_and_leaves_nothing(regions, tmp_path):
    runs = [shutil.copy(p, tmp_path / p.name) for p in regions]
    for p in regions:
        shutil.copy(p.with_suffix(".json"), tmp_path / p.with_suffix(".json").name)
    _corrupt_timeseries(tmp_path / regions[2].name)
    for stage, options in ((dynamic_fc_batch, DFC), (static_fc_batch, {})):
        out = tmp_path / stage.__name__.rsplit(".", 1)[-1] / "batch-3"
        with pytest.raises(DataError, match=rf"Run {_key(regions[2])} failed: .*not numbers"):
            stage.run(runs, out, **options)
        assert not out.parent.exists() or list(out.parent.iterdir()) == [], stage


def test_skip_lists_the_corrupt_run_and_writes_the_others(regions, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    runs = []
    for p in regions:
        runs.append(shutil.copy(p, data / p.name))
        shutil.copy(p.with_suffix(".json"), data / p.with_suffix(".json").name)
    bad = _key(regions[1])
    _corrupt_timeseries(data / regions[1].name)
    dfc = dynamic_fc_batch.run(runs, tmp_path / "dfc" / "batch-0", on_error="skip", **DFC)
    sfc = static_fc_batch.run(runs, tmp_path / "sfc" / "batch-0", on_error="skip")
    for folder, suffix, stage in (
        (dfc, "_dfc.npy", "dynamic_fc"),
        (sfc, "_connectivity.npy", "static_fc"),
    ):
        failures = read_failures(folder)
        assert [(r["run"], r["stage"]) for r in failures] == [(bad, stage)]
        assert "not numbers" in failures[0]["error"] and regions[1].name in failures[0]["error"]
        written = sorted(p.name for p in folder.glob(f"*{suffix}"))
        assert written == sorted(f"{_key(p)}{suffix}" for p in regions if _key(p) != bad)
        assert not list(folder.glob(f"{bad}*"))
        record = read_provenance(folder)["extra"]
        assert (
            record["failed"] == [bad] and bad not in record["runs"] and record["on_error"] == "skip"
        )
    # The runs that were written are those of the per-run stage.
    good = next(p for p in runs if _key(p) != bad)
    _same_artifact(static_fc.run(good, tmp_path / "one" / f"{_key(good)}_connectivity.npy"),
                   sfc / f"{_key(good)}_connectivity.npy")  # fmt: skip


def test_skip_with_every_run_bad_writes_an_empty_batch_and_bad_params_still_fail(regions, tmp_path):
    bad = tmp_path / regions[0].name
    shutil.copy(regions[0], bad)
    shutil.copy(regions[0].with_suffix(".json"), tmp_path / regions[0].with_suffix(".json").name)
    _corrupt_timeseries(bad)
    folder = dynamic_fc_batch.run([bad], tmp_path / "batch-0", on_error="skip", **DFC)
    assert sorted(p.name for p in folder.iterdir()) == ["failures.tsv"]
    assert [r["run"] for r in read_failures(folder)] == [_key(bad)]
    with pytest.raises(ConfigError, match="on_error must be one of fail, skip; got 'ignore'"):
        dynamic_fc_batch.run(regions, tmp_path / "batch-1", on_error="ignore", **DFC)
    # A bad parameter is no bad input: it fails the batch under skip too.
    with pytest.raises(ConfigError, match="dtype"):
        dynamic_fc_batch.run(regions, tmp_path / "batch-2", on_error="skip", dtype="int3")
    assert not (tmp_path / "batch-2").exists()


def test_a_run_left_out_upstream_is_left_out_downstream_even_under_fail(regions, tmp_path):
    # An fmri_timeseries batch folder that left sub-02 out: its time series is absent.
    upstream = tmp_path / "timeseries" / "batch-0"
    upstream.mkdir(parents=True)
    kept = []
    for p in regions:
        if _key(p) == _key(regions[1]):
            continue
        kept.append(shutil.copy(p, upstream / p.name))
        shutil.copy(p.with_suffix(".json"), upstream / p.with_suffix(".json").name)
    missing = upstream / regions[1].name
    (upstream / "failures.tsv").write_text(
        f"run\tstage\terror\n{_key(regions[1])}\tfmri_timeseries\tDataError: truncated\n"
    )
    folder = dynamic_fc_batch.run([*kept, missing], tmp_path / "dfc" / "batch-0", **DFC)
    [row] = read_failures(folder)
    assert row["run"] == _key(regions[1]) and "failed in fmri_timeseries" in row["error"]
    # A missing input that no batch left out is an error as before.
    with pytest.raises((DataError, OSError)):
        dynamic_fc_batch.run([*kept, tmp_path / "nowhere_timeseries.tsv"], tmp_path / "x", **DFC)


def test_batch_stages_refuse_unknown_params_naming_the_valid_ones():
    from neuroai.pipelines._stage import check_params

    with pytest.raises(ConfigError, match="Unknown parameter 'windw'.*Did you mean 'window'"):
        check_params(dynamic_fc_batch.run, {"windw": 3})
    with pytest.raises(ConfigError, match="Unknown parameter 'n_compcors'"):
        check_params(fmri_timeseries_batch.run, {"n_compcors": 3})
    check_params(fmri_timeseries_batch.run, {"layout": "bids", "atlas": ATLAS, "on_error": "skip"})
    check_params(eeg_recording_batch.run, {"montage": "10-20_19", "on_error": "fail"})


# ---- 4D runs: region time series ----


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    import nibabel as nib

    root = tmp_path_factory.mktemp("bids")
    bids_dataset(root, subjects=["01", "02", "03"], n_volumes=40, shape=SHAPE, sites=["A"])
    nib.save(label_atlas(SHAPE, 4, seed=2), root / "atlas.nii.gz")
    return root


KEYS = ["sub-01_task-rest_run-1", "sub-02_task-rest_run-1", "sub-03_task-rest_run-1"]
TS_PARAMS = {"layout": "bids", "atlas": ATLAS, "strategy": ["global_signal"], "n_carpet_voxels": 20}


def test_fmri_timeseries_batch_writes_what_the_per_run_stage_writes(bids, tmp_path):
    folder = fmri_timeseries_batch.run(bids, KEYS, tmp_path / "batch-0", **TS_PARAMS)
    for key in KEYS:
        subject = key.split("_")[0]
        alone = tmp_path / "alone" / subject / "func"
        fmri_timeseries.run(
            bids,
            key,
            alone / f"{key}_timeseries.tsv",
            alone / f"{key}_qc.json",
            alone / f"{key}_carpet.npy",
            **TS_PARAMS,
        )
        for suffix in ("_timeseries.tsv", "_qc.json", "_carpet.npy"):
            a, b = alone / f"{key}{suffix}", folder / subject / "func" / f"{key}{suffix}"
            assert a.read_bytes() == b.read_bytes(), (key, suffix)
        # The sidecar embeds its record: equal but for the time it was written.
        a, b = (
            json.loads((f / f"{key}_timeseries.json").read_text())
            for f in (alone, folder / subject / "func")
        )
        for sidecar in (a, b):
            del sidecar["Provenance"]["created"]
        assert a == b, key
        for suffix in ("_qc.json", "_carpet.npy"):
            ra = read_provenance(alone / f"{key}{suffix}")
            rb = read_provenance(folder / subject / "func" / f"{key}{suffix}")
            assert ra["stage"] == rb["stage"] == "fmri_timeseries" and ra["params"] == rb["params"]
            assert ra["extra"] == rb["extra"]
    # The QC records name the batch's own time-series file, not a temporary one.
    qc = read_provenance(folder / "sub-02" / "func" / f"{KEYS[1]}_qc.json")
    assert qc["inputs"][0]["path"] == str(folder / "sub-02" / "func" / f"{KEYS[1]}_timeseries.tsv")
    assert read_provenance(folder)["extra"]["runs"] == KEYS


def test_fmri_timeseries_batch_truncated_image_fail_and_skip(bids, tmp_path):
    data = tmp_path / "bids"
    shutil.copytree(bids, data)
    image = data / "sub-02" / "func" / "sub-02_task-rest_run-1_bold.nii.gz"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    with pytest.raises((DataError, OSError, EOFError), match="sub-02"):
        fmri_timeseries_batch.run(data, KEYS, tmp_path / "out" / "batch-0", **TS_PARAMS)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    folder = fmri_timeseries_batch.run(
        data, KEYS, tmp_path / "out" / "batch-0", on_error="skip", **TS_PARAMS
    )
    [row] = read_failures(folder)
    assert row["run"] == KEYS[1] and row["stage"] == "fmri_timeseries"
    assert not (folder / "sub-02" / "func").exists() or not list(
        (folder / "sub-02" / "func").iterdir()
    )
    assert (folder / "sub-03" / "func" / f"{KEYS[2]}_timeseries.tsv").is_file()
    # The table reads back with a csv reader: one line a run, no tab or newline in an error.
    with open(folder / "failures.tsv", newline="") as handle:
        assert len(list(csv.reader(handle, delimiter="\t"))) == 2


# ---- EEG recordings ----


@pytest.fixture(scope="module")
def edfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("edf")
    return [
        tuh_edf(root / f"aaaaaaa{c}_s001_t000.edf", duration_s=float(d), seed=i)
        for i, (c, d) in enumerate(zip("abc", (14, 26, 20), strict=True))
    ]


EEG_PARAMS = {
    "montage": "10-20_19",
    "l_freq": 1.0,  # a filter short enough for recordings of 14 s
    "window_s": 4.0,
    "stride_s": 4.0,
    "patch_len": 50,
    "patch_stride": 50,
}


def _items(paths):
    return [{"key": p.stem, "path": str(p), "meta": None} for p in paths]


def test_eeg_recording_batch_writes_what_the_per_recording_stage_writes(edfs, tmp_path):
    folder = eeg_recording_batch.run(_items(edfs), tmp_path / "batch-0", **EEG_PARAMS)
    for path in edfs:
        store = tmp_path / "alone" / f"{path.stem}_patches"
        qc = tmp_path / "alone" / f"{path.stem}_qc.json"
        eeg_recording.run(path, store, qc, **EEG_PARAMS)
        _same_artifact(store, folder / store.name)
        _same_artifact(qc, folder / qc.name)
    assert read_provenance(folder)["extra"]["runs"] == [p.stem for p in edfs]


def test_eeg_recording_batch_truncated_edf_fail_and_skip(edfs, tmp_path):
    paths = [shutil.copy(p, tmp_path / p.name) for p in edfs]
    bad = tmp_path / edfs[0].name
    bad.write_bytes(bad.read_bytes()[:-3000])
    items = _items([type(edfs[0])(p) for p in paths])
    with pytest.raises(DataError, match=rf"Run {bad.stem} failed: .*{bad.name} is truncated"):
        eeg_recording_batch.run(items, tmp_path / "out" / "batch-0", **EEG_PARAMS)
    assert list((tmp_path / "out").iterdir()) == []
    folder = eeg_recording_batch.run(
        items, tmp_path / "out" / "batch-0", on_error="skip", **EEG_PARAMS
    )
    [row] = read_failures(folder)
    assert row["run"] == bad.stem and "is truncated" in row["error"]
    assert sorted(p.name for p in folder.glob("*_qc.json")) == [
        f"{p.stem}_qc.json" for p in edfs[1:]
    ]
    assert not list(folder.glob(f"{bad.stem}*"))


def test_eeg_batch_list_file_lines_are_checked(tmp_path):
    listed = tmp_path / "batch.txt"
    listed.write_text('{"key": "a", "path": "a.edf"}\nnot json\n')
    with pytest.raises(DataError, match=r"batch.txt, line 2: not a recording"):
        eeg_recording_batch.read_recordings(listed)


def test_region_runs_are_unequal(regions):
    # Guard for the fixtures above: runs that differ, so a swapped run would be seen.
    first, second = (np.loadtxt(p, skiprows=1) for p in regions[:2])
    assert not np.array_equal(first, second)
