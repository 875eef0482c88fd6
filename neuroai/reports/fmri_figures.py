"""fMRI figures for the report: carpet plots with a motion trace, dFC variability, density.

Drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state), from arrays
that the stages saved; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def carpet_plot(
    carpet: np.ndarray,
    *,
    tr: float,
    trace: np.ndarray,
    trace_label: str,
    regions: np.ndarray | None = None,
    threshold: float | None = None,
    censored: Sequence[int] = (),
    title: str = "",
) -> Figure:
    """A carpet plot (voxels x time) under a motion trace (framewise displacement or DVARS).

    Parameters
    ----------
    carpet : ndarray, shape (n_voxels, n_volumes)
        Detrended, z-scored voxel time courses, rows ordered by region.
    tr : float
        Repetition time in seconds (the time axis).
    trace : ndarray, shape (n_volumes,)
        The motion or DVARS trace.
    trace_label : str
        Its name and unit.
    regions : ndarray, shape (n_voxels,) | None
        Region index of each row; region boundaries are drawn as a side bar.
    threshold : float | None
        Drawn as a dashed line on the trace (the scrubbing threshold).
    censored : sequence of int
        Volumes removed from the time series, marked on the trace.
    title : str
        Figure title.
    """
    carpet = np.asarray(carpet, dtype=np.float32)
    n_volumes = carpet.shape[1]
    times = np.arange(n_volumes) * tr
    fig = Figure(figsize=(7.5, 4.2))
    grid = fig.add_gridspec(
        2, 2, height_ratios=(1, 3), width_ratios=(40, 1), hspace=0.08, wspace=0.02
    )
    top = fig.add_subplot(grid[0, 0])
    # Both traces are differences to the previous volume: undefined at the first one.
    top.plot(times[1:], np.asarray(trace, dtype=float)[1:], color="#b2182b", lw=1)
    if threshold is not None:
        top.axhline(threshold, color="k", ls="--", lw=0.8)
    for volume in censored:
        top.axvline(volume * tr, color="#999999", lw=0.6, alpha=0.6)
    top.set_ylabel(trace_label, fontsize=7)
    top.set_xlim(times[0], times[-1] if n_volumes > 1 else 1)
    top.tick_params(labelbottom=False, labelsize=7)
    top.set_title(title, fontsize=9)
    bottom = fig.add_subplot(grid[1, 0], sharex=top)
    bottom.imshow(
        carpet,
        aspect="auto",
        cmap="gray",
        vmin=-2,
        vmax=2,
        interpolation="nearest",
        extent=(times[0], times[-1] if n_volumes > 1 else 1, carpet.shape[0], 0),
    )
    bottom.set_xlabel("time (s)", fontsize=8)
    bottom.set_ylabel("voxels (by region)", fontsize=8)
    bottom.tick_params(labelsize=7)
    side = fig.add_subplot(grid[1, 1], sharey=bottom)
    if regions is not None and len(regions):
        codes = np.asarray(regions)
        side.imshow((codes % 12)[:, None], aspect="auto", cmap="tab20", interpolation="nearest")
    side.set_axis_off()
    return fig


def variability_matrix(matrix: np.ndarray, *, title: str = "") -> Figure:
    """Edge-wise standard deviation of dynamic FC over windows (a sequential heat map)."""
    matrix = np.asarray(matrix, dtype=float)
    off = matrix[~np.eye(matrix.shape[0], dtype=bool)]
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.add_subplot()
    image = ax.imshow(
        matrix,
        cmap="magma",
        vmin=0,
        vmax=float(off.max()) if off.size else 1,
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="SD over windows")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("region")
    ax.set_ylabel("region")
    return fig


def density_traces(
    densities: Mapping[str, Sequence[float]], *, step_s: float | None = None, title: str = ""
) -> Figure:
    """Graph density of each window, one line per run (at most 12 runs drawn)."""
    fig = Figure(figsize=(6.0, 3.0))
    ax = fig.add_subplot()
    for name, values in list(densities.items())[:12]:
        values = np.asarray(values, dtype=float)
        x = np.arange(values.size) * (step_s or 1.0)
        ax.plot(x, values, lw=1, label=name)
    ax.set_xlabel("window start (s)" if step_s else "window")
    ax.set_ylabel("graph density")
    ax.set_title(title, fontsize=10)
    if 1 < len(densities) <= 12:
        ax.legend(fontsize=6, ncol=2)
    return fig


def degree_profile(
    mean: Sequence[float], sd: Sequence[float], *, density: float, title: str = ""
) -> Figure:
    """Mean node degree of the window graphs per region, with its SD over windows."""
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    x = np.arange(mean.size)
    fig = Figure(figsize=(6.0, 3.0))
    ax = fig.add_subplot()
    ax.fill_between(x, mean - sd, mean + sd, color="#9ecae1", lw=0, label="SD over windows")
    ax.plot(x, mean, color="#08519c", lw=1.2, label="mean degree")
    ax.axhline(
        density * (mean.size - 1), color="k", ls="--", lw=0.8, label="graph density x (n - 1)"
    )
    ax.set_xlabel("region")
    ax.set_ylabel("node degree")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig
