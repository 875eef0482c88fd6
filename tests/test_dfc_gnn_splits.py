"""dFC-GNN evaluation that cannot leak (issue 19): held-out subjects that pretraining never
reads, splits.tsv beside every trained model, transductive pretraining only on request,
fingerprinting across sessions or runs where a dataset has them.

The synthetic graph datasets have subjects with unequal numbers of runs and sessions, runs
of unequal lengths, and two sites of unequal size, so a subject split on the run level, a
draw that depends on the order of the runs, or a stratum that loses its class fails."""

import numpy as np
import pandas as pd
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.testing import graph_dataset
from neuroai.training.graph_splits import (
    HoldoutConfig,
    heldout_subjects,
    holdout_predictions,
    read_splits,
    run_entities,
    seen_test_subjects,
    splits_frame,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = {"preset": "demo", "options": {"hidden": 8, "gin_layers": 1, "heads": 1}}
DATA = {"crop_windows": 4, "samples_per_run": 1, "eval_crops": 2}
PRETRAIN = {"max_steps": 2, "batch_size": 4, "log_every_steps": 1, "val_every_steps": 0}
FINETUNE = {"max_steps": 1, "batch_size": 4}
#: The family's downstream tasks: name -> (label, kind).
TASKS = {"site": ("site", "classification"), "age": ("age", "regression")}


def sessions_dataset(path, *, runs_per_subject, n_regions=6, window=8, step=3, run_files=None):
    """A graph dataset whose subject ``i`` has ``runs_per_subject[i]`` runs: sessions 1, 2, ...
    for the first runs and a second run of session 1 for odd subjects. Every run of a subject
    mixes the same subject-specific loadings (so its FC is a fingerprint) with new noise."""
    from neuroai.fmri.dynamic import dynamic_connectivity
    from neuroai.fmri.graph_dataset import write_graph_dataset
    from neuroai.fmri.graphs import window_graphs
    from neuroai.io import save_array, write_region_timeseries

    rng = np.random.default_rng(7)
    runs, subjects, rows = {}, {}, []
    regions = [f"r{k}" for k in range(n_regions)]
    for i, count in enumerate(runs_per_subject):
        loadings = rng.standard_normal((3, n_regions))
        names = [f"ses-{s + 1}_task-rest" for s in range(count)]
        if i % 2 and count >= 2:
            names[-1] = "ses-1_task-rest_run-2"
        for k, name in enumerate(sorted(names)):
            length = 40 + 3 * ((i + k) % 4)
            ts = rng.standard_normal((length, 3)) @ loadings + 0.4 * rng.standard_normal(
                (length, n_regions)
            )
            key = f"sub-{i:02d}_{name}"
            runs[key] = window_graphs(
                dynamic_connectivity(ts, window=window, step=step),
                density=0.4,
                features=("timeseries", "identity"),
                ts=ts,
                window=window,
                step=step,
            )
            subjects[key] = f"{i:02d}"
            if run_files is not None:
                write_region_timeseries(
                    run_files / f"{key}_timeseries.tsv", ts, tr=2.0, regions=regions
                )
                fc = np.corrcoef(ts.T).astype(np.float32)
                save_array(run_files / f"{key}_connectivity.npy", fc, stage="synthetic")
        rows.append(
            {"participant_id": f"sub-{i:02d}", "site": "ab"[int(i % 3 == 0)], "age": 20 + i}
        )
    return write_graph_dataset(
        path,
        runs,
        subjects=subjects,
        regions=regions,
        windowing={"window": window, "step": step, "kind": "correlation", "fisher_z": False},
        sparsity={"method": "global", "density": 0.4, "threshold": None, "absolute": True},
        participants=pd.DataFrame(rows),
        stage="synthetic",
    )


def _meta(subjects_of_runs, sites=None):
    runs = [
        {"key": f"sub-{s}_run-{k}", "subject": s, "n_windows": 5}
        for k, s in enumerate(subjects_of_runs)
    ]
    labels = {"site": {"type": "categorical", "categories": ["a", "b"]}}
    return {"runs": runs, "labels": labels}, {
        "site": np.asarray(sites if sites is not None else [0] * len(runs))
    }


# -- the held-out draw ----------------------------------------------------------------------


def test_heldout_subjects_are_stratified_whole_subjects_and_do_not_depend_on_run_order():
    # 10 subjects of site a (code 0) and 5 of site b; subjects 00-04 have two runs each.
    subjects = [f"{i:02d}" for i in range(15)] + [f"{i:02d}" for i in range(5)]
    sites = [0 if i < 10 else 1 for i in range(15)] + [0] * 5
    meta, labels = _meta(subjects, sites)
    config = HoldoutConfig(test_fraction=0.3, seed=3, stratify=["site"])
    chosen = heldout_subjects(meta, labels, config)
    site_of = dict(zip(subjects, sites, strict=True))
    assert sorted(site_of[s] for s in chosen) == [0, 0, 0, 1, 1]  # round(3.0), round(1.5)
    order = np.random.default_rng(0).permutation(len(subjects))
    shuffled, shuffled_labels = _meta([subjects[i] for i in order], [sites[i] for i in order])
    assert heldout_subjects(shuffled, shuffled_labels, config) == chosen
    assert heldout_subjects(meta, labels, config.replace(seed=4)) != chosen
    # Unstratified: 30% of 15 subjects; the runs of a subject follow it.
    plain = heldout_subjects(meta, labels, HoldoutConfig(test_fraction=0.3, seed=3))
    assert len(plain) == round(0.3 * 15) and set(plain) <= set(subjects)


def test_heldout_draw_refuses_what_it_cannot_do():
    meta, labels = _meta(["01", "02", "03"])
    with pytest.raises(ConfigError, match="holds out no subject"):
        heldout_subjects(meta, labels, HoldoutConfig(test_fraction=0.1))
    meta["labels"]["age"] = {"type": "numeric"}
    with pytest.raises(ConfigError, match="numeric"):
        heldout_subjects(meta, {**labels, "age": np.arange(3.0)}, HoldoutConfig(stratify=["age"]))
    with pytest.raises(DataError, match="does not have"):
        heldout_subjects(meta, labels, HoldoutConfig(stratify=["diagnosis"]))
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        HoldoutConfig(test_fraction=1.0)


def test_splits_frame_names_subject_session_run_and_recording():
    meta = {
        "runs": [
            {"key": "sub-01_ses-2_task-rest_run-3", "subject": "01"},
            {"key": "sub-02_task-rest", "subject": "02"},
        ]
    }
    assert run_entities("sub-01_ses-2_task-rest_run-3") == {
        "sub": "01",
        "ses": "2",
        "task": "rest",
        "run": "3",
    }
    table = splits_frame(meta, [0, 1], ["pretrain", "test"], fold=1)
    assert list(table.columns) == ["fold", "subject", "session", "run", "recording", "split"]
    assert table.to_dict("records")[1] == {
        "fold": 1,
        "subject": "02",
        "session": "",
        "run": "",
        "recording": "sub-02_task-rest",
        "split": "test",
    }
    with pytest.raises(DataError, match="unknown split"):
        splits_frame(meta, [0], ["validation"])


def test_holdout_predictions_train_on_nested_subsets_and_score_only_the_test_items():
    labels = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1])
    train, test = np.array([0, 1, 2, 3, 4, 5]), np.array([6, 7, 8])
    seen = {}

    def method(subset, scored, seed):
        assert not set(subset) & set(test) and list(scored) == list(test)
        seen.setdefault(seed // 31, []).append(set(subset))
        return np.eye(2)[labels[scored]]

    table = holdout_predictions(
        [f"r{i}" for i in range(9)], labels, {"oracle": method}, train, test,
        fractions=(1.0, 0.5), repeats=2, seed=1,
    )  # fmt: skip
    assert len(table) == 2 * 2 * 3 and set(table["id"]) == {"r6", "r7", "r8"}
    assert (table.groupby(["repeat", "fraction", "id"]).size() == 1).all()
    for subsets in seen.values():  # per repeat: 50% inside 100%
        assert subsets[0] <= subsets[1] and subsets[1] == set(train)
    with pytest.raises(DataError, match="both a training and a test"):
        holdout_predictions(["a", "b"], labels[:2], {"m": method}, np.array([0]), np.array([0, 1]))


# -- the stages: no downstream test subject is ever pretrained on ----------------------------


def _reads(monkeypatch):
    """Record the runs every GraphCropDataset a stage builds may read."""
    from neuroai.training import graph_data

    reads = []
    real = graph_data.GraphCropDataset.__init__

    def recording_init(self, path, crops, **kwargs):
        reads.append({c.run for c in crops})
        real(self, path, crops, **kwargs)

    monkeypatch.setattr(graph_data.GraphCropDataset, "__init__", recording_init)
    return reads


def _family(tmp_path, graphs, runs, monkeypatch, **split):
    """Pretrain, then fine-tune every task of the family; the runs pretraining read."""
    from neuroai.pipelines import dfc_gnn_finetune, dfc_gnn_pretrain

    reads = _reads(monkeypatch)
    out = tmp_path / "out"
    dfc_gnn_pretrain.run(
        graphs,
        out / "pretrained" / "model",
        out / "pretrained" / "history.tsv",
        model=MODEL,
        training=PRETRAIN,
        data=DATA,
        **split,
    )
    pretrained_runs = set().union(*reads)
    static_fc = sorted(str(p) for p in runs.glob("*_connectivity.npy"))
    for name, (label, kind) in TASKS.items():
        dfc_gnn_finetune.run(
            graphs,
            out / "pretrained" / "model",
            out / name / "predictions.tsv",
            out / name / "model",
            static_fc=static_fc,
            name=name,
            label=label,
            task=kind,
            methods=["finetune", "static_fc"],
            fractions=[1.0],
            split={"n_folds": 2, "repeats": 1},
            training=FINETUNE,
            data=DATA,
            **split,
        )
    return out, pretrained_runs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("dfc_splits")
    runs = root / "runs"
    return graph_dataset(
        root / "graphs", n_timepoints=(49, 58, 52, 61, 46, 55, 50, 47), run_files=runs
    ), runs


def test_pretraining_never_reads_a_test_subject_of_any_task(tmp_path, tiny, monkeypatch):
    """Fails on the transductive protocol (pretraining on every run, k-fold CV downstream)."""
    from neuroai.fmri import GraphArrays
    from neuroai.io import load_table, read_provenance

    graphs, runs = tiny
    out, pretrained_runs = _family(tmp_path, graphs, runs, monkeypatch)
    meta = GraphArrays(graphs).meta
    subject_of = {r["key"]: r["subject"] for r in meta["runs"]}
    read_subjects = {meta["runs"][r]["subject"] for r in pretrained_runs}
    for name in TASKS:  # what the stages did
        predictions = load_table(out / name / "predictions.tsv", stage="dfc_gnn_finetune")
        tested = {subject_of[k] for k in predictions["id"]}
        assert tested and not tested & read_subjects, name
    pre = read_splits(out / "pretrained" / "splits.tsv")
    assert set(pre.loc[pre["split"] == "pretrain", "subject"]) == read_subjects
    for name in TASKS:  # what splits.tsv says
        predictions = load_table(out / name / "predictions.tsv", stage="dfc_gnn_finetune")
        tested = {subject_of[k] for k in predictions["id"]}
        task = read_splits(out / name / "splits.tsv")
        assert seen_test_subjects(pre, task) == []
        assert set(task.loc[task["split"] == "test", "subject"]) == tested
        protocol = read_provenance(out / name / "predictions.tsv")["extra"]["protocol"]
        assert protocol == {
            "design": "holdout",
            "transductive": False,
            "n_test_subjects": len(tested),
            "test_subjects_pretrained_on": 0,
            "pretraining_split_recorded": True,
        }
    # Both tasks test the same held-out subjects (age is known for everyone).
    assert set(read_splits(out / "site" / "splits.tsv").query("split == 'test'")["subject"]) == set(
        read_splits(out / "age" / "splits.tsv").query("split == 'test'")["subject"]
    )


def test_transductive_is_the_named_opt_in_and_is_recorded(tmp_path, tiny, monkeypatch):
    from neuroai.fmri import GraphArrays
    from neuroai.io import read_provenance
    from neuroai.models import load_pretrained

    graphs, runs = tiny
    out, pretrained_runs = _family(tmp_path, graphs, runs, monkeypatch, transductive=True)
    n_runs = GraphArrays(graphs).n_runs
    assert pretrained_runs == set(range(n_runs))
    assert load_pretrained(out / "pretrained" / "model").pretrained_info["transductive"] is True
    pre = read_splits(out / "pretrained" / "splits.tsv")
    for name in TASKS:
        task = read_splits(out / name / "splits.tsv")
        # Cross-validation: every subject is tested in one fold, and was pretrained on.
        assert list(task.columns[:2]) == ["repeat", "fold"]
        assert len(seen_test_subjects(pre, task)) == n_runs
        extra = read_provenance(out / name / "predictions.tsv")["extra"]["protocol"]
        assert (
            extra["design"] == "cross_validation" and extra["test_subjects_pretrained_on"] == n_runs
        )


def test_finetuning_refuses_an_encoder_that_read_its_test_subjects(tmp_path, tiny, monkeypatch):
    from neuroai.pipelines import dfc_gnn_finetune, dfc_gnn_pretrain

    graphs, _ = tiny
    model = tmp_path / "pretrained"
    dfc_gnn_pretrain.run(
        graphs, model, tmp_path / "history.tsv", model=MODEL, training=PRETRAIN, data=DATA,
        holdout={"seed": 5},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="were pretrained on"):
        dfc_gnn_finetune.run(
            graphs, model, tmp_path / "p.tsv", tmp_path / "m", methods=["finetune"],
            fractions=[1.0], training=FINETUNE, data=DATA, holdout={"seed": 6},
        )  # fmt: skip


# -- fingerprinting across sessions and runs -------------------------------------------------


def _fingerprint_meta(names_by_subject, n_windows=9):
    runs = [
        {"key": f"sub-{s}_{name}", "subject": s, "n_windows": n_windows + k}
        for s, names in names_by_subject.items()
        for k, name in enumerate(names)
    ]
    return {"runs": runs, "windowing": {"window": 10, "step": 3}}


def test_fingerprint_pairs_take_the_design_the_dataset_allows():
    from neuroai.training.graph_fingerprint import fingerprint_pairs

    meta = _fingerprint_meta(
        {
            "01": ["ses-2_task-rest", "ses-1_task-rest_run-2", "ses-1_task-rest_run-1"],
            "02": ["ses-1_task-rest", "ses-3_task-rest"],
            "03": ["ses-1_task-rest_run-1", "ses-1_task-rest_run-2"],
            "04": ["ses-1_task-rest"],
        }
    )
    keys = [r["key"] for r in meta["runs"]]
    design, pairs = fingerprint_pairs(meta)
    assert design == "sessions" and list(pairs) == ["01", "02"]
    first, second = pairs["01"]  # the first run of session 1, the first of session 2
    assert (keys[first.run], keys[second.run]) == (
        "sub-01_ses-1_task-rest_run-1",
        "sub-01_ses-2_task-rest",
    )
    assert first.windows == (0, meta["runs"][first.run]["n_windows"])
    assert first.timepoints == (0, (meta["runs"][first.run]["n_windows"] - 1) * 3 + 10)
    design, pairs = fingerprint_pairs(meta, subjects={"01", "03", "04"})
    assert design == "runs" and list(pairs) == ["01", "03"]
    assert {keys[g.run] for g in pairs["03"]} == {
        "sub-03_ses-1_task-rest_run-1",
        "sub-03_ses-1_task-rest_run-2",
    }
    design, pairs = fingerprint_pairs(meta, design="halves")
    assert design == "halves" and len(pairs) == 4
    a, b = pairs["04"]
    assert a.run == b.run and a.timepoints[1] <= b.timepoints[0]
    with pytest.raises(DataError, match="two subjects"):
        fingerprint_pairs(meta, subjects={"02", "04"}, design="runs")
    with pytest.raises(ConfigError, match="Did you mean 'sessions'"):
        fingerprint_pairs(meta, design="session")


def test_evaluation_fingerprints_held_out_subjects_across_sessions(tmp_path, monkeypatch):
    from neuroai.io import load_json
    from neuroai.pipelines import dfc_gnn_evaluate, dfc_gnn_pretrain

    runs = tmp_path / "runs"
    runs.mkdir()
    graphs = sessions_dataset(
        tmp_path / "graphs", runs_per_subject=[2, 3, 2, 1, 2, 2, 3, 2, 2, 3], run_files=runs
    )
    holdout = {"test_fraction": 0.5, "seed": 1}
    dfc_gnn_pretrain.run(
        graphs, tmp_path / "pre", tmp_path / "history.tsv", model=MODEL, training=PRETRAIN,
        data=DATA, holdout=holdout,
    )  # fmt: skip
    timeseries = sorted(runs.glob("*_timeseries.tsv"))
    outputs = [tmp_path / n for n in ("m.json", "c.tsv", "s.npy", "f.npy")]
    dfc_gnn_evaluate.run(
        graphs, tmp_path / "pre", [], *outputs, timeseries=timeseries, data=DATA, n_bootstrap=100
    )
    finger = load_json(tmp_path / "m.json", stage="dfc_gnn_evaluate")["fingerprint"]
    held_out = set(load_json(tmp_path / "m.json")["holdout"]["test_subjects"])
    assert finger["design"] == "sessions" and set(finger["pairs"]) <= held_out
    for pair in finger["pairs"].values():
        sessions = [run_entities(pair[p]["recording"])["ses"] for p in ("first", "second")]
        assert sessions[0] != sessions[1]
    # Each subject's FC is a fingerprint in this dataset: Finn's static-FC profile finds it.
    assert finger["methods"]["static_fc"]["raw"]["accuracy"] == 1.0
    dfc_gnn_evaluate.run(
        graphs, tmp_path / "pre", [], *outputs, timeseries=timeseries, data=DATA,
        n_bootstrap=100, fingerprint_design="halves",
    )  # fmt: skip
    finger = load_json(tmp_path / "m.json", stage="dfc_gnn_evaluate")["fingerprint"]
    assert finger["design"] == "halves" and set(finger["pairs"]) == held_out
