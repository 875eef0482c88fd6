import json

import numpy as np
import pandas as pd
import pytest

from neuroai import __version__
from neuroai.errors import ArtifactError, ProvenanceError
from neuroai.io import (
    ArrayArtifacts,
    check_artifact,
    file_digest,
    load_array,
    load_json,
    load_table,
    provenance_path,
    read_provenance,
    save_array,
    save_json,
    save_table,
    write_artifact,
)
from neuroai.io.provenance import lineage


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("some input")
    return path


def test_array_roundtrip_with_provenance(tmp_path, source):
    data = np.arange(12.0).reshape(3, 4)
    out = save_array(
        tmp_path / "x.npy",
        data,
        stage="demo",
        params={"k": 2, "p": (1, 2)},
        inputs=[source],
        extra={"shape": data.shape},
    )
    record = read_provenance(out)
    assert record["stage"] == "demo"
    assert record["neuroai_version"] == __version__
    assert record["params"] == {"k": 2, "p": [1, 2]}
    assert record["inputs"][0]["size"] == source.stat().st_size
    assert record["inputs"][0]["sha256"] == file_digest(source)["sha256"]
    assert record["output"]["size"] == out.stat().st_size
    assert "numpy" in record["libraries"] and "python" in record["libraries"]
    assert record["extra"]["shape"] == [3, 4]
    np.testing.assert_array_equal(load_array(out, stage="demo", params={"k": 2}), data)
    mm = load_array(out, mmap=True)
    assert isinstance(mm, np.memmap)


def test_other_parameters_are_refused(tmp_path):
    out = save_array(
        tmp_path / "fc.npy", np.eye(3), stage="static_fc", params={"kind": "covariance"}
    )
    with pytest.raises(ProvenanceError, match="kind: made with 'covariance', asked 'correlation'"):
        load_array(out, params={"kind": "correlation"})
    with pytest.raises(ProvenanceError, match="stage 'static_fc'"):
        load_array(out, stage="dynamic_fc")
    with pytest.raises(ProvenanceError, match="not recorded"):
        load_array(out, params={"window": 50})


def test_missing_or_corrupt_provenance_is_refused(tmp_path):
    plain = tmp_path / "plain.npy"
    np.save(plain, np.ones(2))
    with pytest.raises(ProvenanceError, match="no provenance record"):
        load_array(plain)
    provenance_path(plain).write_text("{not json")
    with pytest.raises(ProvenanceError, match="not valid JSON"):
        load_array(plain)
    provenance_path(plain).write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ProvenanceError, match="not a neuroai provenance record"):
        load_array(plain)


def test_truncated_or_changed_artifact_is_refused(tmp_path):
    out = save_array(tmp_path / "x.npy", np.arange(100.0), stage="s")
    raw = out.read_bytes()
    out.write_bytes(raw[:-8])
    with pytest.raises(ArtifactError, match="not completely written"):
        load_array(out)
    changed = bytearray(raw)
    changed[-1] ^= 0xFF
    out.write_bytes(bytes(changed))
    load_array(out)  # same size: the cheap check passes
    with pytest.raises(ArtifactError, match="checksum"):
        load_array(out, verify="checksum")


def test_pickles_are_never_loaded(tmp_path):
    with pytest.raises(TypeError, match="pickling"):
        save_array(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), stage="s")

    def write_pickled(tmp):
        np.save(tmp, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    out = write_artifact(tmp_path / "evil.npy", write_pickled, stage="s")
    with pytest.raises(ArtifactError, match="not a plain numeric array"):
        load_array(out)


def test_json_and_table(tmp_path):
    out = save_json(tmp_path / "m.json", {"auc": np.float64(0.75), "n": np.int64(3)}, stage="eval")
    assert load_json(out, stage="eval") == {"auc": 0.75, "n": 3}
    table = pd.DataFrame({"subject": ["01", "02"], "fd": [0.1, np.nan]})
    out = save_table(tmp_path / "qc.tsv", table, stage="qc")
    back = load_table(out, stage="qc")
    assert list(back["subject"].astype(str).str.zfill(2)) == ["01", "02"]
    assert np.isnan(back["fd"][1])


def test_missing_input_is_an_error(tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        save_array(tmp_path / "x.npy", np.ones(2), stage="s", inputs=[tmp_path / "nope.tsv"])
    assert not (tmp_path / "x.npy").exists()


def test_directory_artifact_and_lineage(tmp_path, source):
    def write_folder(tmp):
        (tmp / "a.bin").write_bytes(b"123")
        (tmp / "b.bin").write_bytes(b"4567")

    folder = write_artifact(
        tmp_path / "store", write_folder, stage="store", inputs=[source], directory=True
    )
    record = check_artifact(folder, verify="checksum")
    assert record["output"]["n_files"] == 2 and record["output"]["size"] == 7
    final = save_array(tmp_path / "y.npy", np.ones(2), stage="final", inputs=[folder])
    stages = [rec["stage"] for _, rec in lineage([final])]
    assert stages == ["final", "store"]


def test_rewrite_replaces_record(tmp_path):
    out = save_array(tmp_path / "x.npy", np.ones(2), stage="s", params={"v": 1})
    save_array(out, np.zeros(5), stage="s", params={"v": 2})
    np.testing.assert_array_equal(load_array(out, params={"v": 2}), np.zeros(5))


def test_an_artifact_input_is_described_by_its_own_record(tmp_path, source):
    stored = save_array(tmp_path / "fc.npy", np.arange(12.0), stage="static_fc")
    made = save_array(tmp_path / "mean.npy", np.zeros(3), stage="group_fc", inputs=[stored])
    assert read_provenance(made)["inputs"][0] == file_digest(stored)
    # The checksum is read from the input's record, not recomputed: a record that says
    # otherwise (same size) is believed, as every size-checking reader believes it ...
    record = json.loads(provenance_path(stored).read_text())
    record["output"]["sha256"] = "f" * 64
    provenance_path(stored).write_text(json.dumps(record))
    again = save_array(tmp_path / "m2.npy", np.zeros(3), stage="group_fc", inputs=[stored])
    assert read_provenance(again)["inputs"][0]["sha256"] == "f" * 64
    # ... but a file whose size no longer matches its record is hashed in full, and so is
    # an input without a record (raw data, a user's file).
    np.save(tmp_path / "fc.npy", np.arange(13.0))
    changed = save_array(tmp_path / "m3.npy", np.zeros(3), stage="group_fc", inputs=[stored])
    assert read_provenance(changed)["inputs"][0] == file_digest(stored)
    raw = save_array(tmp_path / "m4.npy", np.zeros(3), stage="group_fc", inputs=[source])
    assert read_provenance(raw)["inputs"][0] == file_digest(source)


def test_array_artifacts_load_each_item_when_indexed(tmp_path):
    paths = [save_array(tmp_path / f"a{i}.npy", np.full(4, i), stage="x") for i in range(3)]
    arrays = ArrayArtifacts(paths, stage="x")
    assert len(arrays) == 3 and isinstance(arrays[1], np.memmap)
    assert [int(a[0]) for a in arrays] == [0, 1, 2] and len(arrays[1:]) == 2
    np.save(paths[2], np.zeros(9))  # changed after it was written
    with pytest.raises(ArtifactError, match="a2.npy"):
        arrays[2]
    with pytest.raises(ProvenanceError, match="stage 'y'"):
        ArrayArtifacts(paths, stage="y")[0]
