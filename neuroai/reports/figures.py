"""Figures for the reports, drawn on :class:`matplotlib.figure.Figure` objects.

No pyplot state is used, so figures can be drawn in worker processes and tests
without a display.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def connectivity_matrix(
    matrix: np.ndarray,
    *,
    title: str = "",
    labels: Sequence[str] | None = None,
    vmax: float | None = None,
) -> Figure:
    """A connectivity matrix as a diverging heat map.

    Parameters
    ----------
    matrix : ndarray, shape (n_regions, n_regions)
        Symmetric connectivity (for example a group-mean correlation).
    title : str
        Axes title.
    labels : sequence of str | None
        Region names; shown when there are at most 40 regions.
    vmax : float | None
        Colour limit (symmetric); the largest off-diagonal magnitude by default.
    """
    matrix = np.asarray(matrix, dtype=float)
    off = matrix[~np.eye(matrix.shape[0], dtype=bool)]
    if vmax is None:
        vmax = float(np.abs(off).max()) if off.size else 1.0
    fig = Figure(figsize=(5.2, 4.4))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=10)
    if labels is not None and len(labels) <= 40:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    else:
        ax.set_xlabel("region")
        ax.set_ylabel("region")
    return fig


def edge_histograms(
    bin_edges: np.ndarray, counts: dict[str, np.ndarray], *, title: str = "", xlabel: str = "value"
) -> Figure:
    """Overlaid, normalised histograms from precomputed counts (one per group)."""
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    widths = np.diff(bin_edges)
    for name, values in counts.items():
        values = np.asarray(values, dtype=float)
        density = values / max(values.sum(), 1.0) / widths
        ax.stairs(density, bin_edges, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    if counts:
        ax.legend(fontsize=8)
    return fig
