"""Label efficiency: cross-validated downstream scores with a fraction of the training labels.

The protocol for small cohorts, where every subject counts:

1. **Splits by subject.** ``repeats`` times (seeds ``seed, seed + 1, ...``), the
   subjects are split into ``n_folds`` folds, stratified by class for classification
   (:func:`~neuroai.evaluation.splits.make_splits`; ``groups`` keeps several runs of a
   subject together). A subject is tested once per repeat, by models that never saw
   any of its windows.
2. **Label fractions.** Inside each fold's training subjects, a fraction ``f`` is kept
   (:func:`label_subset`): per class ``max(1, round(f * n_class))`` subjects, so every
   class stays represented, drawn once per fold and nested (the 10% subset is inside
   the 25% subset, and so on), so the curves compare like with like.
3. **Methods.** Each method is a callable ``(train_index, test_index, seed) -> scores``
   that trains on the subset and scores the test subjects (class probabilities, or
   predicted values); all methods see the same subsets.
4. **Scores.** Per repeat, the out-of-fold predictions of all subjects are pooled and a
   metric is computed on them (AUROC needs both classes among the scored subjects,
   which one fold of a small cohort may lack); the curve reports the mean and standard
   deviation over repeats (:func:`label_efficiency_curves`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.evaluation.auroc import auroc
from neuroai.evaluation.bootstrap import bootstrap_metric
from neuroai.evaluation.metrics import CLASSIFICATION, REGRESSION, prediction_metrics
from neuroai.evaluation.splits import make_splits

logger = get_logger(__name__)

Method = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def label_subset(
    train: Sequence[int],
    labels: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
    task: str = "classification",
) -> np.ndarray:
    """Indices of a fraction of the training subjects (stratified, nested across fractions).

    Parameters
    ----------
    train : sequence of int
        Indices of the training subjects (into ``labels``).
    labels : ndarray, shape (n_subjects,)
        Class index or value of every subject.
    fraction : float
        In (0, 1].
    seed : int
        The order in which subjects are kept; the same seed gives nested subsets for
        increasing fractions.
    task : {"classification", "regression"}
        Classification keeps ``max(1, round(fraction * n_c))`` of each class ``c``;
        regression ``max(2, round(fraction * n))``.

    Returns
    -------
    ndarray of int
        Sorted subject indices.
    """
    check_option("task", task, ("classification", "regression"))
    if not 0 < fraction <= 1:
        raise ConfigError(f"Label fractions must be in (0, 1], got {fraction}.")
    train = np.asarray(train, dtype=int)
    rng = np.random.default_rng(seed)
    order = train[rng.permutation(train.size)]
    if task == "regression":
        keep = min(train.size, max(2, int(round(fraction * train.size))))
        return np.sort(order[:keep])
    chosen = []
    for value in np.unique(labels[train]):
        members = order[labels[order] == value]
        chosen.extend(members[: max(1, int(round(fraction * members.size)))])
    return np.sort(np.asarray(chosen, dtype=int))


def cross_validated_predictions(
    ids: Sequence[str],
    labels: np.ndarray,
    methods: Mapping[str, Method],
    *,
    task: str = "classification",
    fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    n_folds: int = 3,
    repeats: int = 2,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Out-of-fold predictions of every method at every label fraction (see module docstring).

    Parameters
    ----------
    ids : sequence of str
        Subject (or run) identifiers.
    labels : ndarray, shape (n_subjects,)
        Class indices (0..K-1) or values.
    methods : mapping
        Name to ``method(train_index, test_index, seed) -> scores``; scores are
        ``(n_test, K)`` probabilities for classification, ``(n_test,)`` values for
        regression.
    task : {"classification", "regression"}
    fractions : sequence of float
        Label fractions in (0, 1].
    n_folds, repeats, seed : int
        Folds per repeat, repeats, base seed.
    groups : sequence of str | None
        Subject of each item when items are runs (a subject's runs stay together).

    Returns
    -------
    DataFrame
        One row per (repeat, fold, fraction, method, test subject): ``repeat``, ``fold``,
        ``fraction``, ``method``, ``id``, ``n_train`` (labelled subjects used),
        ``y_true``, then ``p_0 ... p_{K-1}`` (classification) or ``y_pred``.
    """
    check_option("task", task, ("classification", "regression"))
    labels = np.asarray(labels)
    ids = [str(i) for i in ids]
    if len(ids) != labels.shape[0]:
        raise DataError(f"{len(ids)} identifiers for {labels.shape[0]} labels.")
    if not methods:
        raise ConfigError("Give at least one method to evaluate.")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}.")
    fractions = sorted(float(f) for f in fractions)
    strata = [str(v) for v in labels] if task == "classification" else None
    rows = []
    for repeat in range(repeats):
        splits = make_splits(
            ids,
            kind="stratified" if task == "classification" else "kfold",
            n_folds=n_folds,
            seed=seed + repeat,
            strata=strata,
            groups=groups,
        )
        position = {name: i for i, name in enumerate(ids)}
        for split in splits:
            train = np.array([position[i] for i in split.train])
            test = np.array([position[i] for i in split.test])
            subset_seed = seed * 1009 + repeat * 101 + split.fold
            for k, fraction in enumerate(fractions):
                subset = label_subset(train, labels, fraction, seed=subset_seed, task=task)
                for name, method in methods.items():
                    fit_seed = subset_seed * 31 + k
                    scores = np.asarray(method(subset, test, fit_seed), dtype=float)
                    logger.info(
                        "repeat %d fold %d fraction %.2f (%d subjects) %s done",
                        repeat,
                        split.fold,
                        fraction,
                        subset.size,
                        name,
                    )
                    if scores.shape[0] != test.size:
                        raise DataError(
                            f"Method {name!r} returned {scores.shape[0]} scores for {test.size} "
                            "test subjects."
                        )
                    rows += prediction_rows(
                        scores,
                        test,
                        ids=ids,
                        labels=labels,
                        task=task,
                        repeat=repeat,
                        fold=split.fold,
                        fraction=fraction,
                        method=name,
                        n_train=int(subset.size),
                    )
    return pd.DataFrame(rows)


def prediction_rows(
    scores: np.ndarray,
    test: np.ndarray,
    *,
    ids: Sequence[str],
    labels: np.ndarray,
    task: str,
    repeat: int,
    fold: int,
    fraction: float,
    method: str,
    n_train: int,
) -> list[dict]:
    """One prediction-table row per test item (the columns of
    :func:`cross_validated_predictions`): its identity, label and ``p_k`` or ``y_pred``."""
    rows = []
    for row, index in enumerate(test):
        entry = {
            "repeat": repeat,
            "fold": fold,
            "fraction": fraction,
            "method": method,
            "id": ids[index],
            "n_train": n_train,
            "y_true": labels[index].item(),
        }
        if task == "classification":
            entry.update({f"p_{c}": float(p) for c, p in enumerate(scores[row])})
        else:
            entry["y_pred"] = float(np.ravel(scores[row])[0])
        rows.append(entry)
    return rows


def scores_of(table: pd.DataFrame, task: str) -> np.ndarray:
    """The score columns of a prediction table: ``(n, K)`` probabilities or ``(n,)`` values."""
    if task == "classification":
        columns = sorted((c for c in table.columns if c.startswith("p_")), key=lambda c: int(c[2:]))
        return table[columns].to_numpy(dtype=float)
    return table["y_pred"].to_numpy(dtype=float)


def label_efficiency_curves(
    predictions: pd.DataFrame, *, task: str = "classification", metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per method, fraction and metric: the score on pooled out-of-fold predictions.

    Returns
    -------
    DataFrame
        ``method``, ``fraction``, ``metric``, ``mean`` and ``sd`` over repeats,
        ``n_repeats``, ``n_train`` (mean labelled subjects per fit), ``values`` (one
        per repeat, as text).
    """
    check_option("task", task, ("classification", "regression"))
    table = CLASSIFICATION if task == "classification" else REGRESSION
    names = list(metrics or table)
    rows = []
    for (method, fraction), part in predictions.groupby(["method", "fraction"], sort=True):
        values = {name: [] for name in names}
        for _, run in part.groupby("repeat"):
            y = run["y_true"].to_numpy()
            if task == "classification":
                y = y.astype(int)
            scores = scores_of(run, task)
            for name in names:
                try:
                    values[name].append(float(table[name](y, scores)))
                except ValueError:  # e.g. AUROC with one class among the scored subjects
                    values[name].append(float("nan"))
        for name in names:
            v = np.asarray(values[name], dtype=float)
            rows.append(
                {
                    "method": method,
                    "fraction": float(fraction),
                    "metric": name,
                    "mean": float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
                    "sd": float(np.nanstd(v)) if np.isfinite(v).sum() > 1 else float("nan"),
                    "n_repeats": int(v.size),
                    "n_train": float(part["n_train"].mean()),
                    "values": " ".join(f"{x:.4f}" for x in v),
                }
            )
    return pd.DataFrame(rows)


def balanced_accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean recall over the classes present, from probabilities ``(n, K)`` (argmax)."""
    y = np.asarray(y_true).astype(int)
    predicted = np.asarray(y_score, dtype=float).argmax(axis=1)
    return float(np.mean([np.mean(predicted[y == c] == c) for c in np.unique(y)]))


def full_label_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    *,
    task: str = "classification",
    metrics: Sequence[str] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of run-level predictions with bootstrap intervals over subjects.

    Binary AUROC and balanced accuracy use the fast implementations above (the same
    values as scikit-learn); anything else goes through
    :func:`~neuroai.evaluation.metrics.prediction_metrics`.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    names = list(metrics or (CLASSIFICATION if task == "classification" else REGRESSION))
    fast = {}
    if task == "classification" and y_score.ndim == 2 and y_score.shape[1] == 2:
        fast = {"auroc": auroc, "balanced_accuracy": balanced_accuracy}
    result = {}
    for name in names:
        if name in fast:
            result[name] = bootstrap_metric(
                y_true.astype(int),
                y_score,
                fast[name],
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
        else:
            result.update(
                prediction_metrics(
                    y_true,
                    y_score,
                    task=task,
                    metrics=[name],
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
            )
    return result
