import json

import numpy as np
import pytest

from neuroai.errors import DataError
from neuroai.io import index_region_runs, read_region_timeseries, write_region_timeseries
from neuroai.io.provenance import find_record
from neuroai.testing import correlated_timeseries, region_timeseries_dataset


def test_roundtrip_keeps_values_and_records_provenance(tmp_path):
    data = correlated_timeseries(53, 7, seed=3)
    names = [f"r{i}" for i in range(7)]
    path = write_region_timeseries(
        tmp_path / "sub-01_task-rest_timeseries.tsv",
        data,
        tr=1.5,
        regions=names,
        sidecar={"Atlas": "test"},
        stage="t",
    )
    run = read_region_timeseries(path)
    assert run.data.shape == (53, 7) and run.regions == names and run.tr == 1.5
    np.testing.assert_allclose(run.data, data, rtol=1e-7)
    assert run.sidecar["Atlas"] == "test"
    assert find_record(path)["stage"] == "t"


@pytest.fixture
def run_file(tmp_path):
    return write_region_timeseries(
        tmp_path / "sub-01_task-rest_timeseries.tsv",
        correlated_timeseries(11, 3),
        tr=2.0,
        regions=["a", "b", "c"],
    )


def test_missing_sidecar(run_file):
    run_file.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="no JSON sidecar"):
        read_region_timeseries(run_file)


@pytest.mark.parametrize("tr", [None, 0, -1, "2"])
def test_missing_or_invalid_tr(run_file, tr):
    sidecar = run_file.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    if tr is None:
        del meta["RepetitionTime"]
    else:
        meta["RepetitionTime"] = tr
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="RepetitionTime"):
        read_region_timeseries(run_file)


def test_nan_values_are_located(run_file):
    lines = run_file.read_text().splitlines()
    cells = lines[4].split("\t")
    cells[1] = "nan"
    lines[4] = "\t".join(cells)
    run_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="time point 3, region 'b'"):
        read_region_timeseries(run_file)


def test_header_mismatch_and_text(run_file):
    text = run_file.read_text().splitlines()
    run_file.write_text("\n".join(["a\tb"] + text[1:]) + "\n")
    with pytest.raises(DataError, match="2 region names"):
        read_region_timeseries(run_file)
    run_file.write_text("\n".join(text[:2] + ["x\ty\tz"]) + "\n")
    with pytest.raises(DataError, match="not numbers"):
        read_region_timeseries(run_file)


def test_write_refuses_bad_data(tmp_path):
    with pytest.raises(DataError, match="NaN"):
        write_region_timeseries(
            tmp_path / "x_timeseries.tsv", np.full((4, 2), np.nan), tr=1, regions=["a", "b"]
        )
    with pytest.raises(DataError, match="one name per region"):
        write_region_timeseries(tmp_path / "x_timeseries.tsv", np.ones((4, 2)), tr=1, regions=["a"])
    assert list(tmp_path.iterdir()) == []


def test_index_finds_sessions_and_filters(tmp_path):
    runs = region_timeseries_dataset(tmp_path, subjects=["01", "02"], sessions=["a", "b"])
    assert list(index_region_runs(tmp_path)) == list(runs)
    assert len(runs) == 4
    only = index_region_runs(tmp_path, subjects=["02"])
    assert all(key.startswith("sub-02_") for key in only) and len(only) == 2
    with pytest.raises(DataError, match="Invalid BIDS subject label"):
        index_region_runs(tmp_path, subjects=["../etc"])
    with pytest.raises(DataError, match=r"\['03'\] have no region time series"):
        index_region_runs(tmp_path, subjects=["03"])
    (tmp_path / "sub-..").mkdir()
    assert len(index_region_runs(tmp_path)) == 4
