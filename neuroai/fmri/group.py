"""Group summaries of per-run connectivity matrices (for QC and reports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from neuroai.errors import DataError


def summarize_connectivity(
    matrices: Sequence[np.ndarray],
    *,
    runs: Sequence[str],
    groups: Mapping[str, str] | None = None,
    bins: int = 60,
    value_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, dict]:
    """Group mean and per-group edge statistics of connectivity matrices.

    Parameters
    ----------
    matrices : sequence of ndarray, each (n_regions, n_regions)
        One matrix per run, all of the same size.
    runs : sequence of str
        Run keys, one per matrix.
    groups : mapping | None
        Run key to group name (for example the site); runs not listed go to
        group ``"all"``.
    bins : int
        Number of histogram bins of upper-triangle edge values.
    value_range : (float, float) | None
        Histogram range; the observed range by default.

    Returns
    -------
    mean : ndarray, shape (n_regions, n_regions)
        Mean over all runs.
    summary : dict
        ``n_runs``, ``n_regions``, ``runs`` (key to group), per-group ``n_runs``,
        ``mean_edge``, ``sd_edge``, histogram ``counts`` and shared ``bin_edges``,
        and each run's mean edge value (``run_mean_edge``) for outlier checks.
    """
    if len(matrices) != len(runs):
        raise DataError(f"Got {len(matrices)} matrices but {len(runs)} run keys.")
    if not matrices:
        raise DataError("No connectivity matrices to summarise.")
    shapes = {np.shape(m) for m in matrices}
    if len(shapes) != 1:
        raise DataError(f"Connectivity matrices differ in shape: {sorted(shapes)}.")
    stack = np.stack([np.asarray(m, dtype=np.float64) for m in matrices])
    n_regions = stack.shape[1]
    upper = np.triu_indices(n_regions, k=1)
    edges = stack[:, upper[0], upper[1]]
    if value_range is None:
        value_range = (float(edges.min()), float(edges.max()))
        if value_range[0] == value_range[1]:
            value_range = (value_range[0] - 0.5, value_range[1] + 0.5)
    bin_edges = np.linspace(value_range[0], value_range[1], bins + 1)
    run_groups = {run: (groups or {}).get(run, "all") for run in runs}
    per_group = {}
    for group in sorted(set(run_groups.values())):
        index = [i for i, run in enumerate(runs) if run_groups[run] == group]
        values = edges[index].ravel()
        counts, _ = np.histogram(values, bins=bin_edges)
        per_group[group] = {
            "n_runs": len(index),
            "mean_edge": float(values.mean()),
            "sd_edge": float(values.std()),
            "counts": counts.tolist(),
        }
    summary = {
        "n_runs": len(runs),
        "n_regions": n_regions,
        "runs": run_groups,
        "groups": per_group,
        "bin_edges": bin_edges.tolist(),
        "run_mean_edge": {run: float(edges[i].mean()) for i, run in enumerate(runs)},
    }
    return stack.mean(axis=0), summary
