"""Bootstrap confidence intervals over cases (subjects, recordings, volumes).

Percentile bootstrap: the cases are resampled with replacement ``n_resamples`` times,
the statistic is recomputed on each resample, and the interval is given by the
``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles. Paired comparisons
(model A vs model B on the same cases) resample the per-case differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from neuroai.errors import DataError


def _indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Estimate and percentile-bootstrap interval of a statistic of per-case values.

    Parameters
    ----------
    values : array-like, shape (n_cases,)
        One value per case; NaNs (undefined for that case) are left out.
    statistic : callable
        Applied to a 1D array (the mean by default).
    n_resamples : int
        Bootstrap resamples.
    confidence : float
        Coverage of the interval.
    seed : int
        Random seed.

    Returns
    -------
    dict
        ``estimate``, ``ci_low``, ``ci_high``, ``se`` (bootstrap standard error),
        ``n`` (cases used), ``n_missing`` (NaNs left out). With fewer than two cases
        the interval is NaN.
    """
    values = np.asarray(values, dtype=float).ravel()
    missing = int(np.isnan(values).sum())
    values = values[~np.isnan(values)]
    n = values.size
    if n == 0:
        return {
            "estimate": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "se": float("nan"),
            "n": 0,
            "n_missing": missing,
        }
    estimate = float(statistic(values))
    if n < 2:
        return {
            "estimate": estimate,
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "se": float("nan"),
            "n": n,
            "n_missing": missing,
        }
    samples = values[_indices(n, n_resamples, seed)]
    if statistic is np.mean:
        stats = samples.mean(axis=1)
    else:
        stats = np.array([statistic(row) for row in samples])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return {
        "estimate": estimate,
        "ci_low": float(low),
        "ci_high": float(high),
        "se": float(stats.std(ddof=1)),
        "n": n,
        "n_missing": missing,
    }


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Mean difference ``a - b`` over paired cases, with its bootstrap interval.

    Returns
    -------
    dict
        As :func:`bootstrap_ci` for the differences, plus ``p_greater``: the fraction
        of resamples in which the mean difference is above zero.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise DataError(f"paired_bootstrap: {a.size} and {b.size} values; pairs must match.")
    diff = a - b
    result = bootstrap_ci(diff, n_resamples=n_resamples, confidence=confidence, seed=seed)
    kept = diff[~np.isnan(diff)]
    if kept.size >= 2:
        means = kept[_indices(kept.size, n_resamples, seed)].mean(axis=1)
        result["p_greater"] = float((means > 0).mean())
    else:
        result["p_greater"] = float("nan")
    return result


def bootstrap_metric(
    y_true: np.ndarray,
    y_score: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Bootstrap interval of a metric computed on whole sets (AUROC, balanced accuracy).

    Cases are resampled jointly; resamples on which the metric is undefined (one class
    only) are skipped and counted in ``n_skipped``.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    n = len(y_true)
    if len(y_score) != n:
        raise DataError(f"bootstrap_metric: {n} labels and {len(y_score)} scores.")
    estimate = float(metric(y_true, y_score))
    stats, skipped = [], 0
    for rows in _indices(n, n_resamples, seed):
        try:
            value = float(metric(y_true[rows], y_score[rows]))
        except ValueError:
            skipped += 1
            continue
        if np.isfinite(value):
            stats.append(value)
        else:
            skipped += 1
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha]) if len(stats) > 1 else (float("nan"),) * 2
    return {
        "estimate": estimate,
        "ci_low": float(low),
        "ci_high": float(high),
        "se": float(np.std(stats, ddof=1)) if len(stats) > 1 else float("nan"),
        "n": n,
        "n_skipped": skipped,
    }
