import json
import shutil
from pathlib import Path

import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.io import index_bold_runs, participants_table, repetition_time
from neuroai.io.bids import check_label, format_entities, parse_name
from neuroai.testing import bids_dataset, fmriprep_dataset


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    bids_dataset(root, subjects=["01", "02"], sessions=["a", "b"], runs=[1, 2], n_volumes=5)
    return root


@pytest.fixture
def raw_copy(raw, tmp_path):
    """A copy of the module's dataset for a test that changes files (the shared one stays)."""
    return Path(shutil.copytree(raw, tmp_path / "raw"))


def test_parse_and_format_names():
    assert parse_name("sub-01_ses-a_task-rest_run-1_bold.nii.gz") == (
        {"sub": "01", "ses": "a", "task": "rest", "run": "1"},
        "bold",
        ".nii.gz",
    )
    assert parse_name("sub-01_task-../x_bold.nii") is None
    assert parse_name("README") is None
    assert format_entities({"run": "1", "task": "rest", "sub": "01", "space": "T1w"}) == (
        "sub-01_task-rest_run-1_space-T1w"
    )


def test_raw_index_finds_every_run_and_inherits_the_tr(raw):
    runs = index_bold_runs(raw)
    assert len(runs) == 2 * 2 * 2
    key = "sub-01_ses-a_task-rest_run-2"
    assert runs[key].path.name == f"{key}_bold.nii.gz"
    assert runs[key].confounds is None and runs[key].mask is None
    assert repetition_time(runs[key]) == 2.0
    assert [p.name for p in runs[key].sidecars] == ["task-rest_bold.json"]


def test_closest_sidecar_wins(raw_copy):
    raw = raw_copy
    func = raw / "sub-02" / "ses-b" / "func"
    (func / "sub-02_ses-b_task-rest_run-1_bold.json").write_text(
        json.dumps({"RepetitionTime": 0.8})
    )
    runs = index_bold_runs(raw, subjects=["02"], sessions=["b"])
    assert repetition_time(runs["sub-02_ses-b_task-rest_run-1"]) == 0.8
    assert repetition_time(runs["sub-02_ses-b_task-rest_run-2"]) == 2.0


def test_filters(raw):
    assert set(index_bold_runs(raw, subjects=["02"], runs=[1])) == {
        "sub-02_ses-a_task-rest_run-1",
        "sub-02_ses-b_task-rest_run-1",
    }
    assert len(index_bold_runs(raw, sessions=["a"], runs=["01"])) == 2
    assert index_bold_runs(raw, tasks=["other"]) == {}
    with pytest.raises(DataError, match=r"Subjects \['03'\] have no BOLD runs"):
        index_bold_runs(raw, subjects=["03"])
    with pytest.raises(ConfigError, match="'spaces' filter applies to fMRIPrep"):
        index_bold_runs(raw, spaces=["T1w"])


@pytest.mark.parametrize("bad", ["../etc", "sub-01", "01/..", "", "a b"])
def test_labels_cannot_escape_the_dataset(raw, bad):
    with pytest.raises(ConfigError, match="Invalid BIDS subject label"):
        index_bold_runs(raw, subjects=[bad])
    with pytest.raises(ConfigError, match="letters and digits"):
        check_label(bad, "task")


def test_invalid_folders_and_names_are_skipped(raw_copy):
    raw = raw_copy
    (raw / "sub-..").mkdir()
    (raw / "sub-01" / "ses-a" / "func" / "sub-01_task-x_y_bold.nii.gz").write_bytes(b"")
    assert len(index_bold_runs(raw)) == 8


def test_missing_tr_names_the_file(tmp_path):
    bids_dataset(tmp_path, subjects=["01"], tr_at_root=False, n_volumes=4)
    run = next(iter(index_bold_runs(tmp_path).values()))
    sidecar = run.sidecars[-1]
    sidecar.write_text(json.dumps({"TaskName": "rest"}))
    with pytest.raises(
        DataError, match="no valid RepetitionTime.*sub-01_task-rest_run-1_bold.json"
    ):
        repetition_time(run)
    sidecar.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        repetition_time(run)


def test_fmriprep_index_pairs_confounds_and_masks(tmp_path):
    fmriprep_dataset(
        tmp_path, subjects=["01", "02"], spaces=["MNI152NLin2009cAsym", "T1w"], n_volumes=12
    )
    runs = index_bold_runs(tmp_path, "fmriprep")
    assert len(runs) == 4
    run = runs["sub-01_task-rest_space-T1w"]
    assert run.confounds.name == "sub-01_task-rest_desc-confounds_timeseries.tsv"
    assert run.mask.name == "sub-01_task-rest_space-T1w_desc-brain_mask.nii.gz"
    assert repetition_time(run) == 2.0
    only = index_bold_runs(tmp_path, "fmriprep", spaces=["MNI152NLin2009cAsym"])
    assert all(k.endswith("space-MNI152NLin2009cAsym") for k in only) and len(only) == 2
    assert index_bold_runs(tmp_path, "fmriprep", desc="smoothAROMAnonaggr") == {}
    assert index_bold_runs(tmp_path, "bids") == {}  # preproc images are not raw runs


def test_participants_table(raw, tmp_path):
    table = participants_table(raw)
    assert list(table["site"]) == ["A", "B"]
    assert participants_table(tmp_path) is None
    (tmp_path / "participants.tsv").write_text("id\tsite\n1\tA\n")
    with pytest.raises(DataError, match="participant_id"):
        participants_table(tmp_path / "participants.tsv")
