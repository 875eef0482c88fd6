"""Metrics of window-level predictions: patients as the resampling unit, aggregation.

Windows of one recording, and recordings of one patient, are not independent, so
intervals come from a *cluster* bootstrap: subjects (patients) are resampled with
replacement and all their recordings and windows come along. Recording-level
predictions aggregate each recording's window probabilities (mean, or max for "any
window positive" tasks) and are resampled the same way, a subject's recordings
together. Without subjects, each recording is its own cluster.

A resample is a weight per window (how many times its recording was drawn), so the
metrics are written for weights and every resample of a block is scored at once:
AUROC (the Mann-Whitney statistic, ties counting one half), AUPRC (average precision
over distinct score thresholds) and balanced accuracy at probability 0.5, the same
values as scikit-learn's ``roc_auc_score``, ``average_precision_score`` and
``balanced_accuracy_score`` with ``sample_weight`` (the tests check this), as in
:mod:`neuroai.evaluation.metrics`. A thousand resamples then take milliseconds.
Multi-label tasks use the macro average over the classes that have positive and
negative windows in the resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from neuroai.errors import DataError, check_option

METRICS = ("auroc", "auprc", "balanced_accuracy")
#: Resamples scored together (bounds memory: block x windows weights).
BLOCK = 100

WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _groups_by_score(y: np.ndarray, s: np.ndarray, w: np.ndarray):
    """Positive and negative weights summed per distinct score, scores descending."""
    order = np.argsort(-s, kind="mergesort")
    ordered = s[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    wy = w[:, order] * y[order]
    positive = np.add.reduceat(wy, starts, axis=1)
    negative = np.add.reduceat(w[:, order] - wy, starts, axis=1)
    return positive, negative


def weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUROC for each row of weights ``w`` ``(R, n)``: ``(R,)``, NaN when one class is absent."""
    positive, negative = _groups_by_score(y, s, w)
    n_pos, n_neg = positive.sum(1), negative.sum(1)
    below = n_neg[:, None] - np.cumsum(negative, axis=1)  # negatives scored lower
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (positive * (below + 0.5 * negative)).sum(1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def weighted_auprc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision ``sum_t (R_t - R_{t-1}) P_t`` per row of ``w``; NaN without positives."""
    positive, negative = _groups_by_score(y, s, w)
    hits = np.cumsum(positive, axis=1)
    called = hits + np.cumsum(negative, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(called > 0, hits / called, 0.0)
        ap = (positive * precision).sum(1) / positive.sum(1)
    return np.where(positive.sum(1) > 0, ap, np.nan)


def weighted_balanced_accuracy(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean of sensitivity and specificity at probability 0.5, per row of ``w``."""
    predicted = (s >= 0.5).astype(float)
    pos_w, neg_w = w * y, w * (1 - y)
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = (pos_w * predicted).sum(1) / pos_w.sum(1)
        specificity = (neg_w * (1 - predicted)).sum(1) / neg_w.sum(1)
    return (sensitivity + specificity) / 2


WEIGHTED: dict[str, WeightedMetric] = {
    "auroc": weighted_auroc,
    "auprc": weighted_auprc,
    "balanced_accuracy": weighted_balanced_accuracy,
}


def weighted_metric(name: str, *, multilabel: bool = False) -> WeightedMetric:
    """``metric(y, s, w) -> (R,)`` for binary ``(n,)`` or multi-label ``(n, K)`` targets.

    A multi-label metric is the mean over the classes where it is defined (NaN if none).
    """
    check_option("metric", name, WEIGHTED)
    binary = WEIGHTED[name]
    if not multilabel:
        return lambda y, s, w: binary(np.asarray(y, float), np.asarray(s, float), w)

    def macro(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
        y, s = np.asarray(y, float), np.asarray(s, float)
        per_class = np.stack([binary(y[:, k], s[:, k], w) for k in range(y.shape[1])], axis=1)
        defined = np.isfinite(per_class)
        with np.errstate(invalid="ignore"):
            mean = np.where(defined, per_class, 0).sum(1) / defined.sum(1)
        return np.where(defined.any(1), mean, np.nan)

    return macro


def metric_value(name: str, y_true, y_score, *, multilabel: bool = False) -> float:
    """One metric on all rows (NaN where undefined)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, float)
    return float(
        weighted_metric(name, multilabel=multilabel)(y_true, y_score, np.ones((1, len(y_true))))[0]
    )


def resample_weights(groups: Sequence[str], n_resamples: int, seed: int):
    """Blocks of bootstrap weights: each row counts how often each row's group was drawn.

    Yields
    ------
    ndarray, shape (block, n_rows)
        Groups (recordings) drawn with replacement, as many as there are groups.
    """
    _, codes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, BLOCK):
        size = min(BLOCK, n_resamples - start)
        picks = rng.integers(0, n_groups, size=(size, n_groups))
        flat = (picks + np.arange(size)[:, None] * n_groups).ravel()
        counts = np.bincount(flat, minlength=size * n_groups).reshape(size, n_groups)
        yield counts[:, codes].astype(float)


def _summary(estimate, stats, n, n_groups, n_resamples, confidence) -> dict[str, float]:
    finite = stats[np.isfinite(stats)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha]) if finite.size > 1 else (np.nan,) * 2
    return {
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "se": float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan"),
        "n": int(n),
        "n_groups": int(n_groups),
        "n_skipped": int(n_resamples - finite.size),
    }


def cluster_bootstrap(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: Sequence[str],
    metric: WeightedMetric,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """A metric on all rows with a percentile interval from resampling groups.

    Parameters
    ----------
    y_true : ndarray, shape (n,) or (n, K)
    y_score : ndarray, shape (n,) or (n, K)
        Positive-class probabilities (or any score for AUROC/AUPRC).
    groups : sequence of str, length n
        Group (recording) of each row; groups are resampled with replacement.
    metric : callable
        A weighted metric (:func:`weighted_metric`); resamples where it is undefined
        (one class only) are skipped and counted.

    Returns
    -------
    dict
        ``estimate``, ``ci_low``, ``ci_high``, ``se``, ``n`` (rows), ``n_groups``,
        ``n_skipped``.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if not len(y_true) == len(y_score) == len(groups):
        raise DataError(
            f"cluster_bootstrap: {len(y_true)} targets, {len(y_score)} scores, {len(groups)} groups."
        )
    estimate = metric(y_true, y_score, np.ones((1, len(y_true))))[0]
    stats = np.concatenate(
        [metric(y_true, y_score, w) for w in resample_weights(groups, n_resamples, seed)]
    )
    return _summary(
        estimate, stats, len(y_true), len(set(map(str, groups))), n_resamples, confidence
    )


def aggregate_recordings(
    recordings: Sequence[str], y_true: np.ndarray, y_score: np.ndarray, *, how: str = "mean"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Recording-level targets and scores from window-level ones.

    A recording's target is the maximum of its windows' (positive if any window is);
    its score is the mean or the maximum of its windows' probabilities.

    Returns
    -------
    ids : list of str
        Recordings, in order of first appearance.
    y_true, y_score : ndarray, shape (n_recordings,) or (n_recordings, K)
    """
    check_option("aggregate", how, ("mean", "max"))
    recordings = np.asarray([str(r) for r in recordings])
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    ids = list(dict.fromkeys(recordings.tolist()))
    targets, scores = [], []
    for rec in ids:
        rows = recordings == rec
        targets.append(y_true[rows].max(axis=0))
        scores.append(y_score[rows].mean(axis=0) if how == "mean" else y_score[rows].max(axis=0))
    return ids, np.asarray(targets), np.asarray(scores)


def recording_subjects(
    recordings: Sequence[str], subjects: Sequence[str] | None, ids: Sequence[str]
) -> list[str]:
    """Subject of each recording in ``ids`` (the recording itself without ``subjects``).

    Raises
    ------
    DataError
        When one recording is given two subjects.
    """
    if subjects is None:
        return [str(i) for i in ids]
    subject_of: dict[str, str] = {}
    for rec, sub in zip(map(str, recordings), map(str, subjects), strict=True):
        if subject_of.setdefault(rec, sub) != sub:
            raise DataError(f"Recording {rec} has two subjects: {subject_of[rec]} and {sub}.")
    return [subject_of[str(i)] for i in ids]


def window_task_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    recordings: Sequence[str],
    *,
    subjects: Sequence[str] | None = None,
    multilabel: bool = False,
    aggregate: str = "mean",
    metrics: Sequence[str] = METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Window- and recording-level metrics of one model on one task.

    Parameters
    ----------
    y_true, y_score : ndarray, shape (n_windows,) or (n_windows, K)
    recordings : sequence of str, length n_windows
        Recording of each window.
    subjects : sequence of str | None, length n_windows
        Subject (patient) of each window: the resampling unit. None resamples
        recordings.

    Returns
    -------
    dict
        ``{"window": {metric: summary}, "recording": {metric: summary}}`` with the
        summaries of :func:`cluster_bootstrap` (windows and recordings resampled by
        subject; ``n_groups`` is the number of subjects).
    """
    ids, y_rec, s_rec = aggregate_recordings(recordings, y_true, y_score, how=aggregate)
    window_groups = list(recordings) if subjects is None else list(subjects)
    recording_groups = recording_subjects(recordings, subjects, ids)
    common = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    out: dict[str, dict] = {"window": {}, "recording": {}}
    for name in metrics:
        metric = weighted_metric(name, multilabel=multilabel)
        out["window"][name] = cluster_bootstrap(y_true, y_score, window_groups, metric, **common)
        out["recording"][name] = cluster_bootstrap(y_rec, s_rec, recording_groups, metric, **common)
    return out


def paired_difference(
    y_true: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    groups: Sequence[str],
    metric: WeightedMetric,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """``metric(a) - metric(b)`` on the same rows, with a grouped paired bootstrap.

    Both models are scored on each resample of groups, so the interval is that of
    the difference.

    Returns
    -------
    dict
        As :func:`cluster_bootstrap`, plus ``p_greater``: the share of resamples in
        which ``a`` scores higher than ``b``.
    """
    y_true = np.asarray(y_true)
    score_a, score_b = np.asarray(score_a, float), np.asarray(score_b, float)
    if score_a.shape != score_b.shape or len(score_a) != len(y_true):
        raise DataError(
            f"paired_difference: {len(y_true)} targets, scores of shapes {score_a.shape} "
            f"and {score_b.shape}."
        )
    ones = np.ones((1, len(y_true)))
    estimate = metric(y_true, score_a, ones)[0] - metric(y_true, score_b, ones)[0]
    stats = np.concatenate(
        [
            metric(y_true, score_a, w) - metric(y_true, score_b, w)
            for w in resample_weights(groups, n_resamples, seed)
        ]
    )
    result = _summary(
        estimate, stats, len(y_true), len(set(map(str, groups))), n_resamples, confidence
    )
    finite = stats[np.isfinite(stats)]
    result["p_greater"] = float((finite > 0).mean()) if finite.size else float("nan")
    return result
