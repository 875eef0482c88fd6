"""Graphs from (dynamic) functional connectivity: sparsification, features, PyG data.

A run's dynamic FC (n_windows x n_regions x n_regions) becomes a sequence of
window graphs on the same nodes (regions):

- **edges**: :func:`sparsify` keeps the strongest connections of each window:
  the top ``density`` fraction of all edges (``"global"``, STAGIN's top 30%),
  each node's top ``density`` fraction of its edges, joined over both ends
  (``"node"``), or every edge above a ``threshold``; by absolute value or by
  signed value. Self-loops are never kept.
- **edge attributes**: the connectivity value and its absolute value.
- **node features** (:func:`node_features`), concatenated in the order asked
  (in :class:`WindowGraphs` the identity block, constant over windows, is not
  stored but appended on conversion, last):
  ``"connectivity"`` (the node's row of the window's FC, n_regions values),
  ``"identity"`` (one-hot region identity, n_regions values, as STAGIN), and
  ``"timeseries"`` (mean, standard deviation, skewness and excess kurtosis of
  the node's signal inside the window, 4 values).

:class:`WindowGraphs` holds one run's sequence as flat arrays (the format of the
on-disk dataset, :mod:`neuroai.fmri.graph_dataset`) and converts it to PyTorch
Geometric: one :class:`torch_geometric.data.Data` per window
(:meth:`WindowGraphs.to_data_list`) or one disconnected graph of all windows
whose ``window`` vector says which window each node belongs to
(:meth:`WindowGraphs.to_data`, a :class:`WindowSequence` that batches correctly).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroai.errors import ConfigError, DataError, check_option

SPARSIFY = ("global", "node", "threshold")
NODE_FEATURES = ("connectivity", "identity", "timeseries")
EDGE_ATTRIBUTES = ("weight", "abs_weight")
TIMESERIES_STATS = ("mean", "std", "skewness", "kurtosis")


def sparsify(
    matrices: np.ndarray,
    *,
    method: str = "global",
    density: float = 0.3,
    threshold: float | None = None,
    absolute: bool = True,
) -> np.ndarray:
    """Keep the strongest edges of connectivity matrices.

    Parameters
    ----------
    matrices : ndarray, shape (..., n_regions, n_regions)
        Symmetric connectivity (one matrix, or a stack of windows).
    method : {"global", "node", "threshold"}
        Top ``density`` of all edges of each matrix, each node's top
        ``density`` of its edges (union over both ends), or edges whose value
        exceeds ``threshold``.
    density : float
        Fraction of edges kept, in (0, 1] (``"global"`` and ``"node"``).
    threshold : float | None
        Value above which an edge is kept (``"threshold"``).
    absolute : bool
        Rank and threshold by absolute value (keeps strong anticorrelations).

    Returns
    -------
    ndarray of bool, shape (..., n_regions, n_regions)
        Symmetric adjacency, no self-loops. Ties at the cut-off are broken by
        edge order, so exactly ``round(density * n_edges)`` edges are kept by
        ``"global"``.
    """
    check_option("method", method, SPARSIFY)
    matrices = np.asarray(matrices)
    if matrices.ndim < 2 or matrices.shape[-1] != matrices.shape[-2]:
        raise DataError(f"Expected square matrices (..., n, n), got shape {matrices.shape}.")
    n = matrices.shape[-1]
    score = np.abs(matrices) if absolute else np.array(matrices, copy=True)
    off = ~np.eye(n, dtype=bool)
    if method == "threshold":
        if threshold is None:
            raise ConfigError("method='threshold' needs a threshold value.")
        keep = (score > threshold) & off
        return keep | np.swapaxes(keep, -1, -2)
    if not 0 < density <= 1:
        raise ConfigError(f"density must be in (0, 1], got {density!r}.")
    batch = score.shape[:-2]
    if method == "global":
        rows, cols = np.triu_indices(n, k=1)
        upper = score[..., rows, cols].reshape(-1, rows.size)
        k = int(round(density * rows.size))
        keep_upper = np.zeros_like(upper, dtype=bool)
        if k > 0:
            top = np.argpartition(-upper, k - 1, axis=1)[:, :k]
            np.put_along_axis(keep_upper, top, True, axis=1)
        keep = np.zeros((*batch, n, n), dtype=bool)
        keep[..., rows, cols] = keep_upper.reshape(*batch, rows.size)
        return keep | np.swapaxes(keep, -1, -2)
    k = max(1, int(round(density * (n - 1))))
    masked = np.where(off, score, -np.inf)
    top = np.argpartition(-masked, k - 1, axis=-1)[..., :k]
    keep = np.zeros(masked.shape, dtype=bool)
    np.put_along_axis(keep, top, True, axis=-1)
    keep &= off
    return keep | np.swapaxes(keep, -1, -2)


def window_statistics(ts: np.ndarray, window: int, step: int) -> np.ndarray:
    """Mean, std (ddof=1), skewness and excess kurtosis of each region per window.

    Parameters
    ----------
    ts : ndarray, shape (n_timepoints, n_regions)
    window, step : int
        As in :func:`neuroai.fmri.dynamic_connectivity`.

    Returns
    -------
    ndarray, shape (n_windows, n_regions, 4)
        Regions constant within a window get 0 skewness and kurtosis.
    """
    from neuroai.fmri.dynamic import window_starts

    ts = np.asarray(ts, dtype=np.float64)
    starts = window_starts(ts.shape[0], window, step)
    windows = np.lib.stride_tricks.sliding_window_view(ts, window, axis=0)[starts]  # W, R, L
    mean = windows.mean(axis=2)
    centred = windows - mean[..., None]
    var = (centred**2).mean(axis=2)
    safe = np.where(var > 0, var, 1.0)
    skew = np.where(var > 0, (centred**3).mean(axis=2) / safe**1.5, 0.0)
    kurt = np.where(var > 0, (centred**4).mean(axis=2) / safe**2 - 3.0, 0.0)
    std = centred.std(axis=2, ddof=1)
    return np.stack([mean, std, skew, kurt], axis=-1)


def node_features(
    dfc: np.ndarray,
    *,
    features: Sequence[str] = ("connectivity", "identity"),
    ts: np.ndarray | None = None,
    window: int | None = None,
    step: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Node features of each window graph.

    Parameters
    ----------
    dfc : ndarray, shape (n_windows, n_regions, n_regions)
        Dynamic connectivity.
    features : sequence of {"connectivity", "identity", "timeseries"}
        Blocks to concatenate, in this order.
    ts, window, step
        The run's time series and the windowing (needed for ``"timeseries"``).

    Returns
    -------
    x : ndarray, shape (n_windows, n_regions, n_features)
        float32.
    names : list of str
        One name per feature column (``fc_<region index>``, ``id_<index>``,
        ``ts_mean`` ...).
    """
    if not features:
        raise ConfigError("Ask for at least one node feature.")
    dfc = np.asarray(dfc)
    n_windows, n_regions = dfc.shape[0], dfc.shape[1]
    blocks, names = [], []
    for name in features:
        check_option("node feature", name, NODE_FEATURES)
        if name == "connectivity":
            blocks.append(dfc.astype(np.float32))
            names += [f"fc_{i}" for i in range(n_regions)]
        elif name == "identity":
            blocks.append(np.broadcast_to(np.eye(n_regions, dtype=np.float32), dfc.shape))
            names += [f"id_{i}" for i in range(n_regions)]
        else:
            if ts is None or window is None or step is None:
                raise ConfigError("The 'timeseries' node features need ts, window and step.")
            stats = window_statistics(ts, window, step)
            if stats.shape[:2] != (n_windows, n_regions):
                raise DataError(
                    f"The time series give {stats.shape[0]} windows of {stats.shape[1]} regions, "
                    f"the dynamic FC {n_windows} of {n_regions}: they are not from the same run "
                    "or windowing."
                )
            blocks.append(stats.astype(np.float32))
            names += [f"ts_{s}" for s in TIMESERIES_STATS]
    return np.concatenate(blocks, axis=-1), names


@dataclass
class WindowGraphs:
    """One run's sequence of window graphs, as flat arrays.

    Attributes
    ----------
    x : ndarray, shape (n_windows, n_regions, n_stored_features)
        Stored node features (float32): every requested block except
        ``"identity"``, which is the same for every window and is appended when
        the graphs are converted (:meth:`node_matrix`, :meth:`to_data`).
    edge_index : ndarray, shape (2, n_edges)
        Source and target region of every edge of every window (both
        directions of each undirected edge), windows one after the other.
    edge_weight : ndarray, shape (n_edges,)
        Connectivity value of each edge (float32).
    window_ptr : ndarray, shape (n_windows + 1,)
        Edges of window ``w`` are ``window_ptr[w]:window_ptr[w + 1]``.
    feature_names : list of str
        Names of the stored feature columns.
    identity : bool
        Append one-hot region identity to the node features.
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_weight: np.ndarray
    window_ptr: np.ndarray
    feature_names: list[str]
    identity: bool = False

    @property
    def n_windows(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.x.shape[1])

    @property
    def edge_attr(self) -> np.ndarray:
        """Edge attributes ``(weight, |weight|)``, shape (n_edges, 2), float32."""
        weight = np.asarray(self.edge_weight, dtype=np.float32)
        return np.stack([weight, np.abs(weight)], axis=1)

    @property
    def node_feature_names(self) -> list[str]:
        """Names of the columns of :meth:`node_matrix`."""
        extra = [f"id_{i}" for i in range(self.n_regions)] if self.identity else []
        return list(self.feature_names) + extra

    def node_matrix(self, w: int | slice = slice(None)) -> np.ndarray:
        """Node features of window(s) ``w``, identity appended: (..., n_regions, n_features)."""
        x = np.asarray(self.x[w], dtype=np.float32)
        if not self.identity:
            return x
        eye = np.broadcast_to(
            np.eye(self.n_regions, dtype=np.float32), (*x.shape[:-1], self.n_regions)
        )
        return np.concatenate([x, eye], axis=-1)

    def density(self) -> np.ndarray:
        """Fraction of possible undirected edges present, per window, shape (n_windows,)."""
        counts = np.diff(self.window_ptr) / 2
        return counts / (self.n_regions * (self.n_regions - 1) / 2)

    def window_data(self, w: int, **attributes):
        """Window ``w`` as a :class:`torch_geometric.data.Data` (``attributes`` added)."""
        import torch
        from torch_geometric.data import Data

        a, b = self.window_ptr[w], self.window_ptr[w + 1]
        weight = np.array(self.edge_weight[a:b], dtype=np.float32)
        return Data(
            x=torch.from_numpy(np.ascontiguousarray(self.node_matrix(w))),
            edge_index=torch.from_numpy(np.asarray(self.edge_index[:, a:b], dtype=np.int64)),
            edge_weight=torch.from_numpy(weight),
            edge_attr=torch.from_numpy(np.stack([weight, np.abs(weight)], axis=1)),
            window=torch.tensor([w]),
            **attributes,
        )

    def to_data_list(self, **attributes) -> list:
        """One :class:`torch_geometric.data.Data` per window (``attributes`` added to each)."""
        return [self.window_data(w, **attributes) for w in range(self.n_windows)]

    def to_data(self, **attributes):
        """All windows as one :class:`WindowSequence` (window ``w``'s nodes are
        ``w * n_regions ... (w + 1) * n_regions - 1``; ``window`` gives each node's window)."""
        import torch

        offsets = np.repeat(np.arange(self.n_windows) * self.n_regions, np.diff(self.window_ptr))
        edge_index = np.asarray(self.edge_index, dtype=np.int64) + offsets[None, :]
        x = self.node_matrix()
        return _window_sequence_class()(
            x=torch.from_numpy(np.ascontiguousarray(x.reshape(-1, x.shape[-1]))),
            edge_index=torch.from_numpy(edge_index),
            edge_weight=torch.from_numpy(np.array(self.edge_weight, dtype=np.float32)),
            edge_attr=torch.from_numpy(self.edge_attr),
            window=torch.arange(self.n_windows).repeat_interleave(self.n_regions),
            n_windows=self.n_windows,
            n_regions=self.n_regions,
            **attributes,
        )


@functools.cache
def _window_sequence_class():
    from torch_geometric.data import Data

    class WindowSequence(Data):
        """A run's window graphs as one disconnected graph.

        Attributes: ``x`` (n_windows * n_regions, n_features), ``edge_index``,
        ``edge_weight``, ``edge_attr``, ``window`` (window of each node),
        ``n_windows``, ``n_regions``. When batched by a PyG ``DataLoader``,
        ``window`` is offset by the windows of the previous runs, so it stays a
        global window index (pool nodes per window with ``scatter(..., window)``).
        """

        def __inc__(self, key, value, *args, **kwargs):
            if key == "window":
                return int(self.n_windows)
            return super().__inc__(key, value, *args, **kwargs)

    # Importable (and so picklable) as neuroai.fmri.graphs.WindowSequence.
    WindowSequence.__module__ = __name__
    WindowSequence.__qualname__ = "WindowSequence"
    return WindowSequence


def __getattr__(name: str):
    # WindowSequence subclasses a torch_geometric class: built on first use so that
    # importing neuroai.fmri does not import torch.
    if name == "WindowSequence":
        return _window_sequence_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def window_graphs(
    dfc: np.ndarray,
    *,
    method: str = "global",
    density: float = 0.3,
    threshold: float | None = None,
    absolute: bool = True,
    features: Sequence[str] = ("connectivity", "identity"),
    ts: np.ndarray | None = None,
    window: int | None = None,
    step: int | None = None,
) -> WindowGraphs:
    """Sparsify a run's dynamic FC into window graphs with node and edge features.

    Parameters
    ----------
    dfc : ndarray, shape (n_windows, n_regions, n_regions)
        Dynamic connectivity of one run.
    method, density, threshold, absolute
        See :func:`sparsify`.
    features, ts, window, step
        See :func:`node_features`.

    Returns
    -------
    WindowGraphs
    """
    dfc = np.asarray(dfc)
    if dfc.ndim != 3 or dfc.shape[1] != dfc.shape[2]:
        raise DataError(f"Expected dynamic FC of shape (n_windows, n, n), got {dfc.shape}.")
    if dfc.shape[0] == 0:
        raise DataError("The run has no window: no graph can be built.")
    keep = sparsify(dfc, method=method, density=density, threshold=threshold, absolute=absolute)
    w_idx, src, dst = np.nonzero(keep)
    index_dtype = np.int16 if dfc.shape[1] < 2**15 else np.int32
    counts = np.bincount(w_idx, minlength=dfc.shape[0])
    stored = [f for f in features if f != "identity"]
    for name in features:
        check_option("node feature", name, NODE_FEATURES)
    if stored:
        x, names = node_features(dfc, features=stored, ts=ts, window=window, step=step)
    else:
        x, names = np.zeros((*dfc.shape[:2], 0), dtype=np.float32), []
    return WindowGraphs(
        x=x,
        edge_index=np.stack([src, dst]).astype(index_dtype),
        edge_weight=dfc[w_idx, src, dst].astype(np.float32),
        window_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        feature_names=names,
        identity="identity" in features,
    )
