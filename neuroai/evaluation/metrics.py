"""Per-task metrics with bootstrap confidence intervals.

Classification (AUROC, AUPRC, balanced accuracy, accuracy) and regression (MAE, RMSE,
R^2, Pearson r) are computed on whole prediction sets with scikit-learn and their
intervals come from resampling cases (:func:`~neuroai.evaluation.bootstrap.bootstrap_metric`).
Per-case metrics (segmentation Dice, HD95, ...) are summarised by
:func:`summarize_cases`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from neuroai.errors import DataError, check_option
from neuroai.evaluation.auroc import auroc
from neuroai.evaluation.bootstrap import bootstrap_ci, bootstrap_metric


def _auprc(y, s):
    from sklearn.metrics import average_precision_score

    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim == 2:
        onehot = np.eye(s.shape[1])[y.astype(int)]
        return average_precision_score(onehot, s, average="macro")
    return average_precision_score(y, s)


def _labels(s):
    return s.argmax(axis=1) if s.ndim == 2 else (s >= 0.5).astype(int)


def _balanced_accuracy(y, s):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y, _labels(s))


def _accuracy(y, s):
    return float(np.mean(y == _labels(s)))


def _mae(y, p):
    return float(np.mean(np.abs(y - p)))


def _rmse(y, p):
    return float(np.sqrt(np.mean((y - p) ** 2)))


def _r2(y, p):
    from sklearn.metrics import r2_score

    return r2_score(y, p)


def _pearson(y, p):
    if np.std(y) == 0 or np.std(p) == 0:
        return float("nan")
    return float(np.corrcoef(y, p)[0, 1])


CLASSIFICATION: dict[str, Callable] = {
    "auroc": auroc,
    "auprc": _auprc,
    "balanced_accuracy": _balanced_accuracy,
    "accuracy": _accuracy,
}
REGRESSION: dict[str, Callable] = {"mae": _mae, "rmse": _rmse, "r2": _r2, "pearson_r": _pearson}


def prediction_metrics(
    y_true: Sequence | np.ndarray,
    y_score: Sequence | np.ndarray,
    *,
    task: str = "classification",
    metrics: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of a prediction set with bootstrap intervals.

    Parameters
    ----------
    y_true : array-like, shape (n_cases,)
        Class indices (classification) or values (regression).
    y_score : array-like, shape (n_cases,) or (n_cases, n_classes)
        Positive-class probability or class probabilities; predicted values for
        regression.
    task : {"classification", "regression"}
    metrics : sequence of str | None
        Which metrics (all of the task's by default).

    Returns
    -------
    dict
        Metric name to :func:`~neuroai.evaluation.bootstrap.bootstrap_metric`'s dict.
    """
    check_option("task", task, ("classification", "regression"))
    table = CLASSIFICATION if task == "classification" else REGRESSION
    names = list(metrics or table)
    for name in names:
        check_option("metric", name, table)
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    if len(y_true) != len(y_score):
        raise DataError(f"{len(y_true)} targets but {len(y_score)} predictions.")
    if task == "regression":
        y_true = y_true.astype(float)
    return {
        name: bootstrap_metric(
            y_true, y_score, table[name], n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        for name in names
    }


def summarize_cases(
    values: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean of per-case values with a bootstrap interval (see :func:`bootstrap_ci`)."""
    return bootstrap_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
