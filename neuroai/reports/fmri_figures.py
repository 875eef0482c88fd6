"""fMRI figures for the report: FC matrices, carpet plots with a motion trace, dFC, density.

Drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state), from arrays
that the stages saved; nothing is recomputed here. Matrices are drawn by
``nilearn.plotting.plot_matrix`` (region names on the axes, regions grouped by
network where an assignment exists) and carpets by ``nilearn.plotting.plot_carpet``,
so the report's figures read like nilearn's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Schaefer/Yeo-style region names carry their network: ``7Networks_LH_Vis_1``.
_NETWORK_NAME = re.compile(r"^\d+Networks_(?:LH|RH)_([A-Za-z]+)")
#: Up to this many regions the names are written on the axes.
MAX_NAMED_REGIONS = 120


def networks_from_names(names: Sequence[str]) -> list[str] | None:
    """The network of each region where the names carry one (Schaefer 2018, Yeo 2011).

    Returns ``None`` unless every name has the ``<k>Networks_<LH|RH>_<network>_...``
    form (``7Networks_LH_Vis_1`` -> ``Vis``, ``17Networks_RH_DefaultA_PFCm_1`` ->
    ``DefaultA``); AAL2 names such as ``Precentral_L`` carry no network.
    """
    found = [_NETWORK_NAME.match(str(name)) for name in names]
    if not names or not all(found):
        return None
    return [m.group(1) for m in found]


def network_order(networks: Sequence[str]) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Regions grouped by network, networks in order of first appearance.

    Returns
    -------
    order : ndarray of int, shape (n_regions,)
        Region indices, grouped by network (a stable sort).
    blocks : list of (network, start, stop)
        Each network's rows in the reordered matrix.
    """
    first: dict[str, int] = {}
    for network in networks:
        first.setdefault(network, len(first))
    keys = np.array([first[n] for n in networks])
    order = np.argsort(keys, kind="stable")
    blocks, start = [], 0
    for network, rank in first.items():
        stop = start + int((keys == rank).sum())
        blocks.append((network, start, stop))
        start = stop
    return order, blocks


def fc_matrix(
    matrix: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    networks: Sequence[str] | None = None,
    title: str = "",
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    colorbar_label: str = "",
) -> Figure:
    """A region x region matrix through ``nilearn.plotting.plot_matrix``.

    Parameters
    ----------
    matrix : ndarray, shape (n_regions, n_regions)
        Connectivity (or its variability over windows).
    labels : sequence of str | None
        Region names in matrix order, written on both axes (up to
        :data:`MAX_NAMED_REGIONS` regions); indices when ``None``.
    networks : sequence of str | None
        Network of each region. Regions are then grouped by network (in order
        of first appearance), with the blocks outlined and named. By default
        taken from the labels where they carry one (:func:`networks_from_names`).
    title : str
    vmin, vmax : float | None
        Colour limits; symmetric around 0 from the largest off-diagonal magnitude
        by default (``vmin=0`` for a sequential map).
    cmap : str
    colorbar_label : str

    Raises
    ------
    DataError
        When ``matrix`` is not square or ``labels``/``networks`` do not have one
        entry per region.
    """
    from nilearn.plotting import plot_matrix

    from neuroai.errors import DataError

    matrix = np.asarray(matrix, dtype=float)
    n = matrix.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != n:
        raise DataError(f"fc_matrix needs a square matrix, got shape {matrix.shape}.")
    for name, values in (("labels", labels), ("networks", networks)):
        if values is not None and len(values) != n:
            raise DataError(
                f"fc_matrix: {len(values)} {name} for a {n} x {n} matrix; give one per region."
            )
    if networks is None and labels is not None:
        networks = networks_from_names(labels)
    blocks: list[tuple[str, int, int]] = []
    if networks is not None:
        order, blocks = network_order(networks)
        matrix = matrix[np.ix_(order, order)]
        labels = [labels[i] for i in order] if labels is not None else None
    off = matrix[~np.eye(n, dtype=bool)]
    largest = float(np.abs(off).max()) if off.size else 1.0
    if vmax is None:
        vmax = largest
    if vmin is None:
        vmin = -vmax
    size = 8.5 if labels is not None and n > 40 else 5.6
    fig = Figure(figsize=(size, size * 0.86))
    FigureCanvasAgg(fig)  # plot_matrix measures its tick labels with the canvas renderer
    ax = fig.add_subplot()
    named = labels is not None and n <= MAX_NAMED_REGIONS
    plot_matrix(
        matrix,
        labels=list(labels) if named else None,
        axes=ax,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        title=title or None,
        colorbar=True,
    )
    if named:
        fontsize = max(3.0, min(7.0, 400.0 / n))
        ax.tick_params(labelsize=fontsize)
    else:
        ax.set_xlabel("region")
        ax.set_ylabel("region")
    for network, start, stop in blocks:
        ax.add_patch(
            _block(start - 0.5, stop - start, edgecolor="k", facecolor="none", linewidth=0.8)
        )
        if not named:
            ax.text(n + 0.5, (start + stop) / 2 - 0.5, network, fontsize=6, va="center")
    if colorbar_label and len(fig.axes) > 1:
        fig.axes[-1].set_ylabel(colorbar_label, fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def _block(origin: float, size: float, **style):
    from matplotlib.patches import Rectangle

    return Rectangle((origin, origin), size, size, **style)


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
    """A carpet plot (voxels x time, ``nilearn.plotting.plot_carpet``) under a motion trace.

    The stage saved a sample of the run's brain voxels, detrended and z-scored,
    rows grouped by region; here they become a 4D image of shape
    ``(n_voxels, 1, 1, n_volumes)`` with an all-brain mask and go to
    ``plot_carpet`` with ``detrend=False, standardize=False`` (nothing is
    recomputed; nilearn decimates runs longer than 800 volumes). The region bar
    is drawn here: nilearn's own (an atlas ``mask_img``) draws with pyplot's
    current figure, which a report must not touch.

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
    import nibabel as nib
    from nilearn.plotting import plot_carpet

    carpet = np.asarray(carpet, dtype=np.float32)
    n_voxels, n_volumes = carpet.shape
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    image = nib.Nifti1Image(carpet[:, None, None, :], affine)
    image.header.set_zooms((1.0, 1.0, 1.0, float(tr)))
    mask = nib.Nifti1Image(np.ones((n_voxels, 1, 1), dtype=np.uint8), affine)
    fig = Figure(figsize=(7.5, 4.2))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        2, 2, height_ratios=(1, 3), width_ratios=(1, 40), hspace=0.08, wspace=0.02
    )
    top = fig.add_subplot(grid[0, 1])
    bottom = fig.add_subplot(grid[1, 1])
    plot_carpet(
        image,
        mask_img=mask,
        t_r=float(tr),
        detrend=False,
        standardize=False,
        axes=bottom,
        vmin=-2,
        vmax=2,
    )
    bottom.set_ylabel("voxels (by region)", fontsize=8)
    bottom.tick_params(labelsize=7)
    # The image is drawn per (decimated) volume; the trace on the same volume axis.
    step = max(1, int(round(n_volumes / max(bottom.images[0].get_array().shape[1], 1))))
    volumes = np.arange(n_volumes) / step
    # Both traces are differences to the previous volume: undefined at the first one.
    top.plot(volumes[1:], np.asarray(trace, dtype=float)[1:], color="#b2182b", lw=1)
    if threshold is not None:
        top.axhline(threshold, color="k", ls="--", lw=0.8)
    for volume in censored:
        top.axvline(volume / step, color="#999999", lw=0.6, alpha=0.6)
    top.set_ylabel(trace_label, fontsize=7)
    top.set_xlim(bottom.get_xlim())
    top.tick_params(labelbottom=False, labelsize=7)
    top.set_title(title, fontsize=9)
    side = fig.add_subplot(grid[1, 0], sharey=bottom)
    if regions is not None and len(regions):
        codes = np.asarray(regions)
        side.imshow((codes % 12)[:, None], aspect="auto", cmap="tab20", interpolation="nearest")
    side.set_axis_off()
    return fig


def variability_matrix(
    matrix: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    networks: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Edge-wise standard deviation of dynamic FC over windows (a sequential heat map).

    Drawn by :func:`fc_matrix` (``plot_matrix``), with region names and network
    grouping as there.
    """
    matrix = np.asarray(matrix, dtype=float)
    off = matrix[~np.eye(matrix.shape[0], dtype=bool)]
    return fc_matrix(
        matrix,
        labels=labels,
        networks=networks,
        title=title,
        vmin=0.0,
        vmax=float(off.max()) if off.size and off.max() > 0 else 1.0,
        cmap="magma",
        colorbar_label="SD over windows",
    )


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
