"""``metrics.json``: the evaluation of one or several models on one task.

Every family writes the same document, so the report and the index page read them
alike::

    {
      "task": "segmentation", "dataset": "...", "split": {...},
      "bootstrap": {"n_resamples": 1000, "confidence": 0.95, "seed": 0, "method": "percentile"},
      "models": {"<name>": {"checkpoint": "...", "model": "dsd", "config": {...},
                             "metrics": {"<metric>": {"<group>": {"estimate", "ci_low", "ci_high", "n", ...}}}}},
      "comparisons": [{"a": "...", "b": "...", "metric": "...", "group": "...",
                       "estimate", "ci_low", "ci_high", "p_greater"}],
      "artifacts": {"per_case": "...", "predictions": {...}, "histories": {...}}
    }

:func:`summarize_per_case` builds the ``metrics`` entries from a per-case table
(one row per model, case and group, e.g. class), :func:`pairwise_comparisons` the
paired differences between models on the same cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from neuroai.evaluation.bootstrap import bootstrap_ci, paired_bootstrap


def summarize_per_case(
    table,
    *,
    metrics: Sequence[str],
    model_column: str = "model",
    group_column: str | None = "class",
    case_column: str = "case",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Model -> metric -> group -> bootstrap summary; group ``"mean"`` averages groups per case.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model, case (and group), with a column per metric.
    metrics : sequence of str
        Metric columns.
    model_column, group_column, case_column : str
        Column names (``group_column`` None: no groups).
    """
    out: dict[str, dict] = {}
    for model, rows in table.groupby(model_column, sort=False):
        out[str(model)] = {}
        for metric in metrics:
            entry: dict[str, dict] = {}
            if group_column:
                for group, sub in rows.groupby(group_column, sort=False):
                    entry[str(group)] = bootstrap_ci(
                        sub[metric].to_numpy(float),
                        n_resamples=n_resamples,
                        confidence=confidence,
                        seed=seed,
                    )
                per_case = rows.groupby(case_column, sort=False)[metric].mean()
                entry["mean"] = bootstrap_ci(
                    per_case.to_numpy(float),
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
            else:
                entry["all"] = bootstrap_ci(
                    rows[metric].to_numpy(float),
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
            out[str(model)][metric] = entry
    return out


def pairwise_comparisons(
    table,
    *,
    metrics: Sequence[str],
    pairs: Sequence[tuple[str, str]] | None = None,
    model_column: str = "model",
    group_column: str | None = "class",
    case_column: str = "case",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Paired bootstrap of ``a - b`` per metric and group (and the per-case mean).

    Cases are matched by ``case_column``; a case missing for either model is left out.
    """
    models = list(dict.fromkeys(table[model_column].astype(str)))
    pairs = list(pairs) if pairs is not None else list(combinations(models, 2))
    results = []
    for a, b in pairs:
        for metric in metrics:
            groups = [None]
            if group_column:
                groups = [*dict.fromkeys(table[group_column].astype(str)), "mean"]
            for group in groups:
                va, vb = _paired_values(
                    table, a, b, metric, group, model_column, group_column, case_column
                )
                summary = paired_bootstrap(
                    va, vb, n_resamples=n_resamples, confidence=confidence, seed=seed
                )
                results.append(
                    {"a": a, "b": b, "metric": metric, "group": group or "all", **summary}
                )
    return results


def _paired_values(table, a, b, metric, group, model_column, group_column, case_column):
    def series(model):
        rows = table[table[model_column].astype(str) == model]
        if group_column and group not in (None, "mean"):
            rows = rows[rows[group_column].astype(str) == group]
        return rows.groupby(case_column, sort=True)[metric].mean()

    sa, sb = series(a), series(b)
    common = sa.index.intersection(sb.index)
    return sa.loc[common].to_numpy(float), sb.loc[common].to_numpy(float)


def finite_or_none(value: float) -> float | None:
    """JSON-friendly number: NaN and infinities become None."""
    return float(value) if value is not None and np.isfinite(value) else None
