"""dFC-GNN downstream: fingerprinting, linear read-outs, the label-efficiency protocol, stages."""

import json

import numpy as np
import pandas as pd
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.evaluation.fingerprint import (
    identification,
    profile_similarity,
    scan_halves,
    upper_triangle,
)
from neuroai.evaluation.label_efficiency import (
    cross_validated_predictions,
    label_efficiency_curves,
    label_subset,
)
from neuroai.evaluation.linear import linear_readout
from neuroai.testing import graph_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- fingerprinting -------------------------------------------------------------------------


@pytest.mark.parametrize(("n_windows", "window", "step"), [(17, 10, 3), (385, 50, 3), (4, 5, 2)])
def test_scan_halves_hold_whole_windows_and_share_no_time_point(n_windows, window, step):
    halves = scan_halves(n_windows, window, step)
    n_timepoints = (n_windows - 1) * step + window
    (a0, a1), (b0, b1) = halves["first"]["timepoints"], halves["second"]["timepoints"]
    assert a0 == 0 and b1 == n_timepoints and a1 <= b0 and b0 - a1 <= 1
    for part, (t0, t1) in (("first", (a0, a1)), ("second", (b0, b1))):
        w0, w1 = halves[part]["windows"]
        starts = np.arange(n_windows) * step
        inside = np.nonzero((starts >= t0) & (starts + window <= t1))[0]
        assert (w0, w1) == (inside[0], inside[-1] + 1)
    with pytest.raises(DataError, match="too short"):
        scan_halves(2, 10, 3)


def test_identification_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(6, 15))
    second = first + rng.normal(scale=1.5, size=(6, 15))
    similarity = profile_similarity(first, second)
    oracle = np.corrcoef(second, first)[:6, 6:]
    np.testing.assert_allclose(similarity, oracle, atol=1e-12)
    result = identification(first, second, subjects=list("abcdef"))
    hits = (oracle.argmax(1) == np.arange(6)).mean() + (oracle.argmax(0) == np.arange(6)).mean()
    assert result["accuracy"] == pytest.approx(hits / 2)
    off = ~np.eye(6, dtype=bool)
    assert result["differential_identifiability"] == pytest.approx(
        100 * (np.diag(oracle).mean() - oracle[off].mean())
    )
    assert result["chance"] == pytest.approx(1 / 6) and result["subjects"] == list("abcdef")
    exact = identification(first, first + 1e-3 * rng.normal(size=(6, 15)), center=True)
    assert exact["accuracy"] == 1.0 and exact["mean_rank"] == 1.0
    np.testing.assert_array_equal(upper_triangle(np.arange(16).reshape(4, 4)), [1, 2, 3, 6, 7, 11])
    with pytest.raises(DataError, match="same shape"):
        profile_similarity(first, second[:, :4])


# -- linear read-outs -----------------------------------------------------------------------


def test_linear_readout_equals_scikit_learn_and_handles_missing_classes():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x, x_test = rng.normal(size=(13, 9)), rng.normal(size=(5, 9))
    y = np.array([0, 2] * 6 + [0])
    scaler = StandardScaler().fit(x)
    oracle = LogisticRegression(C=0.5, max_iter=5000).fit(scaler.transform(x), y)
    got = linear_readout(x, y, x_test, n_classes=3, C=0.5)
    assert got.shape == (5, 3) and np.all(got[:, 1] == 0)
    np.testing.assert_allclose(
        got[:, [0, 2]], oracle.predict_proba(scaler.transform(x_test)), atol=1e-6
    )
    values = rng.normal(size=13)
    ridge = Ridge(alpha=2.0).fit(scaler.transform(x), values)
    np.testing.assert_allclose(
        linear_readout(x, values, x_test, task="regression", alpha=2.0),
        ridge.predict(scaler.transform(x_test)),
    )
    np.testing.assert_array_equal(linear_readout(x, np.ones(13), x_test, n_classes=2)[:, 1], 1.0)
    with pytest.raises(DataError, match="do not match"):
        linear_readout(x, y, x_test[:, :3])


# -- the label-efficiency protocol -----------------------------------------------------------


def test_label_subsets_are_stratified_and_nested():
    labels = np.array([0] * 9 + [1] * 4)
    train = np.arange(1, 13)
    subsets = [label_subset(train, labels, f, seed=3) for f in (0.1, 0.25, 0.5, 1.0)]
    for small, large in zip(subsets[:-1], subsets[1:], strict=True):
        assert set(small) <= set(large)
    assert sorted(np.bincount(labels[subsets[0]])) == [1, 1]
    np.testing.assert_array_equal(subsets[-1], train)
    assert label_subset(train, labels, 0.25, task="regression").size == 3
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        label_subset(train, labels, 0.0)


def test_every_subject_is_tested_once_per_repeat_by_models_that_never_saw_it():
    labels = np.array([0, 1] * 5 + [1])
    ids = [f"s{i}" for i in range(11)]
    calls = []

    def method(train, test, seed):
        assert not set(train) & set(test)
        calls.append(len(train))
        scores = np.zeros((len(test), 2))
        scores[np.arange(len(test)), labels[test]] = 1.0  # an oracle: perfect predictions
        return scores

    table = cross_validated_predictions(
        ids, labels, {"oracle": method}, fractions=(1.0, 0.5), n_folds=3, repeats=2
    )
    counts = table.groupby(["repeat", "fraction", "id"]).size()
    assert len(counts) == 2 * 2 * 11 and set(counts) == {1}
    curves = label_efficiency_curves(table, metrics=["auroc", "accuracy"])
    assert set(curves["mean"]) == {1.0} and sorted(curves["fraction"].unique()) == [0.5, 1.0]
    assert len(calls) == 2 * 3 * 2
    with pytest.raises(DataError, match="returned 1 scores"):
        cross_validated_predictions(ids, labels, {"bad": lambda tr, te, s: np.zeros((1, 2))})


def test_curves_score_the_pooled_predictions_of_each_repeat():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    rows = []
    for repeat in range(2):
        for i in range(10):
            p = rng.uniform()
            rows.append(
                {"repeat": repeat, "fold": i % 2, "fraction": 1.0, "method": "m", "id": f"s{i}"}
                | {"n_train": 5, "y_true": i % 2, "p_0": 1 - p, "p_1": p}
            )
    table = pd.DataFrame(rows)
    curves = label_efficiency_curves(table, metrics=["auroc"])
    expected = [roc_auc_score(part["y_true"], part["p_1"]) for _, part in table.groupby("repeat")]
    assert curves["mean"].item() == pytest.approx(np.mean(expected))


# -- the stages, end to end on a tiny graph dataset -----------------------------------------


def test_pretrain_finetune_evaluate_stages(tmp_path, monkeypatch):
    from neuroai.io import load_json, load_table, read_provenance
    from neuroai.models import load_pretrained
    from neuroai.pipelines import dfc_gnn_evaluate, dfc_gnn_finetune, dfc_gnn_pretrain

    runs = tmp_path / "runs"
    graphs = graph_dataset(tmp_path / "graphs", run_files=runs)
    model_options = {"preset": "demo", "options": {"hidden": 8, "gin_layers": 1, "heads": 1}}
    data = {"crop_windows": 5, "samples_per_run": 1, "eval_crops": 2}
    training = {"max_steps": 3, "batch_size": 4, "log_every_steps": 1, "val_every_steps": 0}
    holdout = {"stratify": ["site"]}  # 1 of the 3 subjects of each site
    out = tmp_path / "out"
    dfc_gnn_pretrain.run(
        graphs,
        out / "pretrained" / "model",
        out / "pretrained" / "history.tsv",
        model=model_options,
        objective={"window_span": 2},
        training=training,
        data=data,
        holdout=holdout,
    )
    encoder = load_pretrained(out / "pretrained" / "model")
    assert encoder.config.hidden == 8 and encoder.config.n_regions == 7
    history = load_table(out / "pretrained" / "history.tsv", stage="dfc_gnn_pretrain")
    assert history["train/loss"].notna().sum() == 3

    static_fc = sorted(str(p) for p in runs.glob("*_connectivity.npy"))
    dfc_gnn_finetune.run(
        graphs,
        out / "pretrained" / "model",
        out / "site" / "predictions.tsv",
        out / "site" / "model",
        static_fc=static_fc,
        methods=["finetune", "probe", "static_fc"],
        fractions=[0.5, 1.0],
        split={"n_folds": 2, "repeats": 1},
        training={"max_steps": 2, "batch_size": 4},
        data=data,
        holdout=holdout,
    )
    predictions = load_table(out / "site" / "predictions.tsv", stage="dfc_gnn_finetune")
    # The 2 held-out subjects (one per site) at 2 fractions by 3 methods.
    assert len(predictions) == 2 * 2 * 3 and set(predictions["method"]) == {
        "finetune",
        "probe",
        "static_fc",
    }
    np.testing.assert_allclose(predictions[["p_0", "p_1"]].sum(axis=1), 1.0, atol=1e-5)
    assert not (out / "site" / "runs").exists()
    assert load_pretrained(out / "site" / "model").pretrained_info["task"] == "site"
    # Every network fit standardises the ages of the runs it is fitted on, never the test
    # fold's: record what each fit was given. (Cross-validated: the transductive protocol.)
    from neuroai.training import graph_finetune

    fits = []
    real_finetune_probe = graph_finetune.finetune_probe

    def recording_finetune_probe(encoder, graphs, train_runs, targets, **options):
        fits.append((np.asarray(train_runs), np.asarray(targets), options["target_scale"]))
        return real_finetune_probe(encoder, graphs, train_runs, targets, **options)

    monkeypatch.setattr(graph_finetune, "finetune_probe", recording_finetune_probe)
    dfc_gnn_finetune.run(
        graphs,
        out / "pretrained" / "model",
        out / "age" / "predictions.tsv",
        out / "age" / "model",
        static_fc=static_fc,
        name="age",
        label="age",
        task="regression",
        methods=["finetune", "static_fc"],
        fractions=[1.0],
        split={"n_folds": 2, "repeats": 1},
        training={"max_steps": 2, "batch_size": 4},
        data=data,
        holdout=holdout,
        transductive=True,
    )
    assert len(fits) == 2 + 1  # 2 folds, then the final model on every labelled run
    all_ages = fits[-1][1][fits[-1][0]]
    for train_runs, targets, (shift, scale) in fits:
        assert shift == pytest.approx(targets[train_runs].mean())
        assert scale == pytest.approx(targets[train_runs].std())
    assert fits[0][2][0] != pytest.approx(all_ages.mean())  # a fold's mean is not the cohort's
    ages = load_table(out / "age" / "predictions.tsv", stage="dfc_gnn_finetune")
    assert len(ages) == 6 * 2 and np.isfinite(ages["y_pred"]).all()
    # Networks train on standardised ages and answer in years.
    assert abs(ages["y_pred"].mean() - ages["y_true"].mean()) < 3 * ages["y_true"].std()
    with pytest.raises(ConfigError, match="categorical"):
        dfc_gnn_finetune.run(
            graphs, out / "pretrained" / "model", out / "x.tsv", out / "x", label="site",
            task="regression",
        )  # fmt: skip

    dfc_gnn_evaluate.run(
        graphs,
        out / "pretrained" / "model",
        [out / "site" / "predictions.tsv", out / "age" / "predictions.tsv"],
        out / "metrics.json",
        out / "curves.tsv",
        out / "similarity.npy",
        out / "fc.npy",
        timeseries=sorted(runs.glob("*_timeseries.tsv")),
        history=out / "pretrained" / "history.tsv",
        n_bootstrap=50,
        data=data,
        task_models=[out / "site" / "model", out / "age" / "model"],
        splits=[out / "site" / "splits.tsv", out / "age" / "splits.tsv"],
        evaluated_output=out / "evaluated",
        datasets=["toy=toy_card.yaml"],
    )
    metrics = load_json(out / "metrics.json", stage="dfc_gnn_evaluate")
    # Evaluated copies: the final task models with the held-out metrics of their recipe.
    site_card = (out / "evaluated" / "site" / "README.md").read_text()
    site_doc = json.loads((out / "evaluated" / "site" / "config.json").read_text())
    finetune = metrics["tasks"]["site"]["full_labels"]["finetune"]
    assert set(site_doc["heldout"]["metrics"]) == set(finetune)
    for name, value in finetune.items():
        assert site_doc["heldout"]["metrics"][name]["estimate"] == value["estimate"]
    assert site_doc["heldout"]["n_test"] == 2 and "on 2 held-out test subjects" in site_card
    assert "label-efficiency protocol at 100% of the training labels" in site_card
    assert "Transductive protocol" in (out / "evaluated" / "age" / "README.md").read_text()
    assert load_pretrained(out / "evaluated" / "site").pretrained_info["task"] == "site"
    finger = metrics["fingerprint"]
    assert finger["profiles"] == ["static_fc", "dfc_gnn", "dfc_gnn_random"]
    # Only the held-out subjects, whose windows the encoder never read; one run each: halves.
    assert finger["methods"]["static_fc"]["raw"]["n_subjects"] == 2
    assert finger["design"] == "halves" and metrics["transductive"] is False
    assert set(finger["pairs"]) == set(metrics["holdout"]["test_subjects"])
    assert metrics["tasks"]["site"]["protocol"]["design"] == "holdout"
    assert metrics["tasks"]["age"]["protocol"]["design"] == "cross_validation"
    assert set(metrics["tasks"]["site"]["full_labels"]) == {"finetune", "probe", "static_fc"}
    assert np.load(out / "similarity.npy", allow_pickle=False).shape == (3, 2, 2, 2)
    assert np.load(out / "fc.npy", allow_pickle=False).shape == (2, 2, 7, 7)
    curves = load_table(out / "curves.tsv", stage="dfc_gnn_evaluate")
    assert set(curves["fraction"]) == {0.5, 1.0} and set(curves["task"]) == {"site", "age"}
    assert set(metrics["tasks"]["age"]["full_labels"]["static_fc"]) == {"mae", "r2"}
    assert read_provenance(out / "metrics.json")["params"]["n_bootstrap"] == 50
    json.dumps(metrics)  # plain JSON all the way down

    from neuroai.reports.sections.dfc_gnn import render_dfc_gnn

    sections = render_dfc_gnn([out / "metrics.json"])
    html = "".join(part for section in sections for part in section.parts)
    assert "Label efficiency" in html or "label efficiency" in html
    assert "Fidelity: dFC-GNN against STAGIN" in html and "<td>edges kept</td>" in html
    assert "data:image/" in html or "<svg" in html
