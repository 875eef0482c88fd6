"""Group summaries of per-run connectivity matrices (for QC and reports), streamed.

A cohort's matrices never sit in memory together: :func:`summarize_connectivity` reads
them one at a time, twice (running sums in the first pass, histograms in the second, once
the value range is known), so its memory is a few ``n_regions x n_regions`` arrays for
any number of runs, and the matrices may be memory maps of the stored artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from neuroai.errors import DataError
from neuroai.running import RunningMoments


def summarize_connectivity(
    matrices: Sequence[np.ndarray],
    *,
    runs: Sequence[str],
    groups: Mapping[str, str] | None = None,
    bins: int = 60,
    value_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, dict]:
    """Group mean and per-group edge statistics of connectivity matrices.

    The matrices are read one at a time, twice; a sequence that loads (or memory-maps)
    each matrix when it is indexed keeps the memory independent of the number of runs.

    Parameters
    ----------
    matrices : sequence of ndarray, each (n_regions, n_regions)
        One matrix per run, all of the same size; indexed twice per run.
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
    mean : ndarray, shape (n_regions, n_regions), float64
        Mean over all runs.
    summary : dict
        ``n_runs``, ``n_regions``, ``runs`` (key to group), per-group ``n_runs``,
        ``mean_edge``, ``sd_edge`` (population SD of the group's edge values),
        histogram ``counts`` and shared ``bin_edges``, and each run's mean edge value
        (``run_mean_edge``) for outlier checks.
    """
    if len(matrices) != len(runs):
        raise DataError(f"Got {len(matrices)} matrices but {len(runs)} run keys.")
    if not len(runs):
        raise DataError("No connectivity matrices to summarise.")
    run_groups = {run: (groups or {}).get(run, "all") for run in runs}
    names = sorted(set(run_groups.values()))
    moments = {group: RunningMoments() for group in names}
    run_mean_edge = {}
    total = upper = shape = None
    low, high = np.inf, -np.inf
    for i, run in enumerate(runs):
        matrix = np.asarray(matrices[i], dtype=np.float64)
        if shape is None:
            shape = matrix.shape
            if len(shape) != 2 or shape[0] != shape[1]:
                raise DataError(f"Connectivity of {run} has shape {shape}; expected square.")
            total = np.zeros(shape)
            upper = np.triu_indices(shape[0], k=1)
        elif matrix.shape != shape:
            raise DataError(
                f"Connectivity matrices differ in shape: {run} is {matrix.shape}, "
                f"{runs[0]} is {shape}."
            )
        total += matrix
        edges = matrix[upper]
        moments[run_groups[run]].add(edges)
        run_mean_edge[run] = float(edges.mean())
        if edges.size:
            low, high = min(low, float(edges.min())), max(high, float(edges.max()))
    if value_range is None:
        value_range = (low, high) if np.isfinite(low) else (0.0, 1.0)
        if value_range[0] == value_range[1]:
            value_range = (value_range[0] - 0.5, value_range[1] + 0.5)
    bin_edges = np.linspace(value_range[0], value_range[1], bins + 1)
    counts = {group: np.zeros(bins, dtype=np.int64) for group in names}
    for i, run in enumerate(runs):
        edges = np.asarray(matrices[i], dtype=np.float64)[upper]
        counts[run_groups[run]] += np.histogram(edges, bins=bin_edges)[0]
    n_runs = {group: 0 for group in names}
    for group in run_groups.values():
        n_runs[group] += 1
    per_group = {
        group: {
            "n_runs": n_runs[group],
            "mean_edge": float(moments[group].mean_),
            "sd_edge": float(moments[group].sd_),
            "counts": counts[group].tolist(),
        }
        for group in names
    }
    summary = {
        "n_runs": len(runs),
        "n_regions": shape[0],
        "runs": run_groups,
        "groups": per_group,
        "bin_edges": bin_edges.tolist(),
        "run_mean_edge": run_mean_edge,
    }
    return total / len(runs), summary
