"""Splits, bootstrap intervals, metrics and metrics.json summaries against their oracles."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from neuroai.errors import ConfigError, DataError
from neuroai.evaluation import (
    bootstrap_ci,
    fixed_split,
    kfold_splits,
    paired_bootstrap,
    pairwise_comparisons,
    prediction_metrics,
    segmentation_metrics,
    stratified_splits,
    summarize_per_case,
)

IDS = [f"sub-{i:02d}" for i in range(17)]


def test_kfold_partitions_the_items_like_sklearn():
    from sklearn.model_selection import KFold

    splits = kfold_splits(IDS, n_folds=4, n_val=2, seed=1)
    oracle = [
        sorted(IDS[i] for i in test)
        for _, test in KFold(4, shuffle=True, random_state=1).split(IDS)
    ]
    assert [s.test for s in splits] == oracle
    for s in splits:
        assert (
            len(s.val) == 2
            and not set(s.val) & set(s.train)
            and not set(s.test) & set(s.train + s.val)
        )
        assert sorted(s.train + s.val + s.test) == sorted(IDS)


def test_stratified_folds_keep_strata_proportions_and_groups_together():
    sites = ["a"] * 9 + ["b"] * 8
    for s in stratified_splits(IDS, sites, n_folds=4, seed=0):
        test_sites = [sites[IDS.index(i)] for i in s.test]
        assert abs(test_sites.count("a") - test_sites.count("b")) <= 1
    groups = [f"g{i // 2}" for i in range(17)]  # two recordings per subject
    for s in kfold_splits(IDS, n_folds=3, groups=groups, seed=0):
        test_groups = {groups[IDS.index(i)] for i in s.test}
        assert not test_groups & {groups[IDS.index(i)] for i in s.train}
    with pytest.raises(ConfigError, match="at least n_folds"):
        stratified_splits(IDS, ["a"] * 16 + ["b"], n_folds=3)


def test_fixed_split_uses_given_test_ids_or_a_seeded_fraction():
    split = fixed_split(IDS, test_ids=IDS[-3:], n_val=2)
    assert split.test == IDS[-3:] and len(split.val) == 2 and len(split.train) == 12
    a, b = (
        fixed_split(IDS, test_fraction=0.25, seed=4),
        fixed_split(IDS, test_fraction=0.25, seed=4),
    )
    assert a == b and len(a.test) == 5


def test_bootstrap_interval_matches_scipy_percentile_bootstrap():
    from scipy.stats import bootstrap

    values = np.random.default_rng(0).normal(0.8, 0.05, size=23)
    ours = bootstrap_ci(values, n_resamples=4000, confidence=0.9, seed=0)
    oracle = bootstrap(
        (values,),
        np.mean,
        n_resamples=4000,
        confidence_level=0.9,
        method="percentile",
        random_state=0,
    )
    assert ours["estimate"] == pytest.approx(values.mean())
    assert ours["ci_low"] == pytest.approx(oracle.confidence_interval.low, abs=0.004)
    assert ours["ci_high"] == pytest.approx(oracle.confidence_interval.high, abs=0.004)
    with_nan = bootstrap_ci(np.append(values, np.nan))
    assert with_nan["n"] == 23 and with_nan["n_missing"] == 1


def test_paired_bootstrap_sees_a_consistent_improvement():
    rng = np.random.default_rng(1)
    b = rng.uniform(0.6, 0.8, 15)
    result = paired_bootstrap(b + 0.02 + rng.normal(0, 0.005, 15), b)
    assert (
        result["estimate"] == pytest.approx(0.02, abs=0.005)
        and result["ci_low"] > 0
        and result["p_greater"] == 1.0
    )


def test_prediction_metrics_equal_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 40)
    score = np.clip(y * 0.3 + rng.uniform(0, 0.7, 40), 0, 1)
    metrics = prediction_metrics(y, score, n_resamples=200)
    assert metrics["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, score))
    assert metrics["auprc"]["estimate"] == pytest.approx(average_precision_score(y, score))
    assert metrics["auroc"]["ci_low"] <= metrics["auroc"]["estimate"] <= metrics["auroc"]["ci_high"]
    regression = prediction_metrics(score, score + 0.1, task="regression", n_resamples=50)
    assert regression["mae"]["estimate"] == pytest.approx(0.1)


def test_segmentation_metrics_equal_monai():
    from monai.metrics import (
        compute_average_surface_distance,
        compute_dice,
        compute_hausdorff_distance,
    )

    reference = np.zeros((17, 19, 23), np.uint8)
    reference[3:12, 4:15, 5:18] = 1
    reference[6:9, 7:11, 8:14] = 2
    prediction = reference.copy()
    prediction[3:5] = 0
    prediction[10:13, 4:9, 5:9] = 2
    spacing = (1.5, 1.0, 2.0)
    rows = segmentation_metrics(prediction, reference, n_classes=3, spacing=spacing)

    def onehot(a):
        return F.one_hot(torch.as_tensor(a).long(), 3).movedim(-1, 0)[None].float()

    p, r = onehot(prediction), onehot(reference)
    dice = compute_dice(p, r, include_background=False)[0]
    hd = compute_hausdorff_distance(p, r, percentile=95, spacing=list(spacing))[0]
    msd = compute_average_surface_distance(p, r, symmetric=True, spacing=list(spacing))[0]
    for k, row in enumerate(rows):
        assert row["dice"] == pytest.approx(float(dice[k]))
        assert row["hd95"] == pytest.approx(float(hd[k]), rel=1e-5)
        assert row["msd"] == pytest.approx(float(msd[k]), rel=1e-5)
    # A structure missed entirely, or predicted where none exists, scores the worst case:
    # the volume's diagonal in mm (17 x 1.5, 19 x 1.0, 23 x 2.0), counted in every mean.
    diagonal = np.sqrt((17 * 1.5) ** 2 + 19.0**2 + (23 * 2.0) ** 2)
    empty = segmentation_metrics(np.zeros_like(reference), reference, n_classes=3, spacing=spacing)
    for row in empty:
        assert row["dice"] == 0 and row["missed"] and not row["spurious"]
        assert row["hd95"] == pytest.approx(diagonal) and row["msd"] == pytest.approx(diagonal)
    only_one = reference.copy()
    only_one[only_one == 2] = 1  # class 2 absent from the reference, present in prediction
    spurious = segmentation_metrics(reference, only_one, n_classes=3, spacing=spacing)[1]
    assert spurious["spurious"] and not spurious["missed"] and spurious["dice"] == 0
    assert spurious["hd95"] == pytest.approx(diagonal)
    neither = segmentation_metrics(only_one, only_one, n_classes=3, spacing=spacing)[1]
    assert np.isnan(neither["hd95"]) and np.isnan(neither["dice"])
    assert not neither["missed"] and not neither["spurious"]


def test_summaries_and_paired_comparisons_of_a_per_case_table():
    rng = np.random.default_rng(3)
    rows = []
    for model, shift in (("plain", 0.0), ("dsd", 0.05)):
        for case in range(6):
            for cls in ("CSF", "GM"):
                rows.append(
                    {
                        "model": model,
                        "case": f"c{case}",
                        "class": cls,
                        "dice": 0.7 + shift + rng.normal(0, 0.01),
                    }
                )
    table = pd.DataFrame(rows)
    summary = summarize_per_case(table, metrics=["dice"], n_resamples=200)
    assert set(summary) == {"plain", "dsd"} and set(summary["dsd"]["dice"]) == {"CSF", "GM", "mean"}
    assert summary["dsd"]["dice"]["mean"]["n"] == 6
    comparisons = pairwise_comparisons(
        table, metrics=["dice"], pairs=[("dsd", "plain")], n_resamples=200
    )
    mean = next(c for c in comparisons if c["group"] == "mean")
    assert mean["estimate"] == pytest.approx(0.05, abs=0.02) and mean["ci_low"] > 0


def test_one_auroc_equals_scikit_learn_with_ties_and_routes_every_caller():
    """The rank form against roc_auc_score (binary with heavy ties, (n, 2), labels {1, 2},
    one-vs-rest), and every metric table calls it (the weighted form agrees at unit weights)."""
    from sklearn.metrics import roc_auc_score

    from neuroai.evaluation import auroc
    from neuroai.evaluation.windows import weighted_auroc

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 53)
    s = np.round(rng.normal(size=53) + y, 1)  # rounded: many tied scores
    assert len(np.unique(s)) < 40
    assert abs(auroc(y, s) - roc_auc_score(y, s)) <= 1e-12
    two = np.column_stack([1 - s, s])
    assert abs(auroc(y, two) - roc_auc_score(y, s)) <= 1e-12
    assert abs(auroc(y + 1, s) - roc_auc_score(y + 1, s)) <= 1e-12
    assert abs(weighted_auroc(y.astype(float), s, np.ones((1, 53)))[0] - auroc(y, s)) <= 1e-12
    k = rng.integers(0, 3, 61)
    probs = rng.dirichlet(np.ones(3), 61)
    probs[:, 0] = np.round(probs[:, 0], 1)
    probs /= probs.sum(1, keepdims=True)
    assert abs(auroc(k, probs) - roc_auc_score(k, probs, multi_class="ovr")) <= 1e-12
    with pytest.raises(DataError, match="one class only"):
        auroc(np.zeros(5), np.arange(5.0))
    from neuroai.evaluation import label_efficiency, metrics, subject_level

    assert metrics.CLASSIFICATION["auroc"] is auroc
    for module in (metrics, subject_level, label_efficiency):
        assert module.auroc is auroc
    assert np.isnan(subject_level._auroc(np.ones(4), np.arange(4.0)))
    assert subject_level._auroc(y, s) == auroc(y, s)
