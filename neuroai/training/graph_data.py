"""Crops of window-graph sequences streamed from the on-disk graph dataset.

A graph network over dynamic FC trains on crops of consecutive windows of each run
(STAGIN trains on random crops of the time series for the same reason: runs differ in
length, and a crop of a few dozen windows is a batch element of fixed cost). A
:class:`Crop` names a run and a range of its windows; :class:`GraphCropDataset` reads
exactly those windows from the memory-mapped arrays of a ``neuroai.graphs/1`` folder
(:class:`~neuroai.fmri.GraphArrays`), so the memory a loader needs depends on the crop
and batch size, never on the number of runs in the cohort. Random crops draw their
start from the item seed the engine's sampler hands out
(:class:`~neuroai.training.data.ResumableSampler`), so a resumed or distributed run
reads the same crops.

Items are dicts ``{"inputs": WindowSequence, "target": tensor, "id": run key,
"run": run index}``; :func:`collate_graphs` batches them into a PyG ``Batch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai.errors import ConfigError, DataError
from neuroai.fmri.graph_dataset import GraphArrays
from neuroai.fmri.graphs import WindowGraphs
from neuroai.models.base import INPUTS, TARGET
from neuroai.models.config import JsonConfig
from neuroai.training.datamodules import EngineDataModule


@dataclass
class GraphDataConfig(JsonConfig):
    """How a window-graph model reads a graph dataset.

    Attributes
    ----------
    crop_windows : int
        Consecutive windows per crop (a batch element). With windows of 50 TRs and a
        step of 3, 12 windows span 83 TRs; STAGIN trains on crops of 600 TRs, which
        hold 184 windows (``crop_windows: 184``).
    samples_per_run : int
        Random crops per run and epoch in training.
    density : float | None
        Re-sparsify each window to this fraction of all possible edges (at most the
        density the graph dataset stores); None keeps the stored graphs.
    eval_crops : int
        Crops per run (non-overlapping, spread evenly) whose outputs are averaged for a
        run-level embedding or prediction.
    """

    crop_windows: int = 12
    samples_per_run: int = 4
    density: float | None = None
    eval_crops: int = 8

    def validate(self) -> None:
        for name in ("crop_windows", "samples_per_run", "eval_crops"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.density is not None and not 0 < self.density <= 1:
            raise ConfigError(f"density must be in (0, 1] or null, got {self.density!r}.")


@dataclass(frozen=True)
class Crop:
    """Windows ``start:start + length`` of run ``run`` (``start=None``: a random start).

    Attributes
    ----------
    run : int
        Run index in the graph dataset.
    start : int | None
        First window (within the run), or None to draw it from the item seed.
    length : int
        Number of consecutive windows (the run's length when it is shorter).
    """

    run: int
    start: int | None
    length: int


def keep_top_edges(graphs: WindowGraphs, density: float, *, absolute: bool = True) -> WindowGraphs:
    """Keep the strongest ``density`` of all possible edges of each window.

    Parameters
    ----------
    graphs : WindowGraphs
        Window graphs whose edges are stored in both directions.
    density : float
        Fraction of the ``n_regions * (n_regions - 1) / 2`` possible edges to keep; at
        most the stored density (edges that were not stored cannot come back).
    absolute : bool
        Rank by absolute FC value (as the graph dataset does by default).

    Returns
    -------
    WindowGraphs
        The same windows with fewer edges (both directions of each kept edge).
    """
    n = graphs.n_regions
    k = int(round(density * n * (n - 1) / 2))
    ptr = np.asarray(graphs.window_ptr)
    counts = np.diff(ptr) // 2
    if np.any(counts < k):
        raise ConfigError(
            f"density={density} asks for {k} edges per window, but the graph dataset stores only "
            f"{int(counts.min())} in some windows: rebuild the graph dataset with a higher "
            "graph_dataset.density to use a denser graph."
        )
    src, dst = np.asarray(graphs.edge_index[0]), np.asarray(graphs.edge_index[1])
    weight = np.asarray(graphs.edge_weight, dtype=np.float32)
    score = np.abs(weight) if absolute else weight
    window = np.repeat(np.arange(graphs.n_windows), np.diff(ptr))
    upper = src < dst
    # Rank the upper-triangle copies within each window: window ascending, score descending.
    order = np.lexsort((-score[upper], window[upper]))
    upper_window = window[upper][order]
    first = np.searchsorted(upper_window, np.arange(graphs.n_windows))
    rank = np.arange(order.size) - first[upper_window]
    chosen = order[rank < k]
    lo, hi = src[upper][chosen], dst[upper][chosen]
    kept_window = upper_window[rank < k]
    both_window = np.concatenate([kept_window, kept_window])
    new_src = np.concatenate([lo, hi])
    new_dst = np.concatenate([hi, lo])
    new_weight = np.concatenate([weight[upper][chosen]] * 2)
    by_window = np.argsort(both_window, kind="stable")
    new_counts = np.bincount(both_window, minlength=graphs.n_windows)
    return WindowGraphs(
        x=graphs.x,
        edge_index=np.stack([new_src[by_window], new_dst[by_window]]).astype(
            graphs.edge_index.dtype
        ),
        edge_weight=new_weight[by_window],
        window_ptr=np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64),
        feature_names=graphs.feature_names,
        identity=graphs.identity,
    )


def read_windows(arrays: GraphArrays, run: int, start: int, stop: int) -> WindowGraphs:
    """Windows ``start:stop`` of run ``run``, read from the memory maps (nothing else).

    Parameters
    ----------
    arrays : GraphArrays
        An opened graph dataset.
    run : int
        Run index.
    start, stop : int
        Window range within the run (``0 <= start < stop <= n_windows``).

    Returns
    -------
    WindowGraphs
        ``x`` (stop - start, n_regions, n_stored_features) and the windows' edges.
    """
    run_ptr = arrays["run_ptr"]
    first, last = int(run_ptr[run]), int(run_ptr[run + 1])
    if not 0 <= start < stop <= last - first:
        raise DataError(
            f"{arrays.path}: windows {start}:{stop} are outside run {run}, which has "
            f"{last - first} windows."
        )
    w0, w1 = first + start, first + stop
    window_ptr = np.asarray(arrays["window_ptr"][w0 : w1 + 1], dtype=np.int64)
    e0, e1 = int(window_ptr[0]), int(window_ptr[-1])
    return WindowGraphs(
        x=np.asarray(arrays["x"][w0:w1]),
        edge_index=np.asarray(arrays["edge_index"][:, e0:e1]),
        edge_weight=np.asarray(arrays["edge_weight"][e0:e1]),
        window_ptr=window_ptr - e0,
        feature_names=list(arrays.meta["stored_features"]),
        identity=bool(arrays.meta["identity"]),
    )


def tiling_crops(run: int, start: int, stop: int, length: int) -> list[Crop]:
    """Non-overlapping crops of ``length`` windows covering windows ``start:stop`` of a run.

    The last crop is shifted back to end at ``stop`` (it overlaps the one before) so
    that every crop has the same length; a range shorter than ``length`` is one crop.
    """
    if stop - start <= length:
        return [Crop(run, start, stop - start)]
    starts = list(range(start, stop - length + 1, length))
    if starts[-1] + length < stop:
        starts.append(stop - length)
    return [Crop(run, s, length) for s in starts]


class GraphCropDataset(Dataset):
    """Crops of runs of an on-disk graph dataset, as PyG window sequences.

    Parameters
    ----------
    path : path-like
        A graph dataset folder (format ``neuroai.graphs/1``).
    crops : sequence of Crop
        The items.
    targets : mapping | sequence | None
        Target of each run, indexed by run index (a label array of the dataset, or a
        dict ``run -> value``); None for self-supervised pretraining.
    target_kind : {"categorical", "numeric"}
        Class indices (int64) or values (float32).
    density : float | None
        Re-sparsify each window to this density (at most the stored one; see
        :func:`keep_top_edges`); None keeps the stored graphs.
    verify : {"size", "checksum", "none"}
        Provenance check of the folder when opened.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        crops: Sequence[Crop],
        *,
        targets=None,
        target_kind: str = "categorical",
        density: float | None = None,
        verify: str = "size",
    ) -> None:
        self.path = Path(path)
        self.arrays = GraphArrays(self.path, verify=verify)
        self.crops = list(crops)
        self.targets = targets
        self.target_kind = target_kind
        self.density = density
        if density is not None and not 0 < density <= 1:
            raise ConfigError(f"density must be in (0, 1], got {density!r}.")
        if not self.crops:
            raise DataError(f"GraphCropDataset over {self.path}: no crop to read.")
        n_runs = self.arrays.n_runs
        bad = [c.run for c in self.crops if not 0 <= c.run < n_runs]
        if bad:
            raise DataError(
                f"{self.path} has {n_runs} runs; crops name runs {sorted(set(bad))[:5]}."
            )

    @classmethod
    def random_crops(
        cls,
        path: str | os.PathLike,
        runs: Sequence[int],
        *,
        length: int,
        samples_per_run: int = 1,
        **kwargs,
    ) -> GraphCropDataset:
        """``samples_per_run`` random crops of ``length`` windows of each run (training)."""
        if length < 1 or samples_per_run < 1:
            raise ConfigError(
                f"crop length and samples_per_run must be >= 1, got {length}, {samples_per_run}."
            )
        crops = [Crop(int(r), None, length) for _ in range(samples_per_run) for r in runs]
        return cls(path, crops, **kwargs)

    @property
    def meta(self) -> dict:
        """The dataset's ``dataset.json``."""
        return self.arrays.meta

    def n_windows(self, run: int) -> int:
        ptr = self.arrays["run_ptr"]
        return int(ptr[run + 1] - ptr[run])

    def model_overrides(self) -> dict:
        """Encoder config values the data fix (feature count, regions, identity columns)."""
        meta = self.meta
        n_regions = int(meta["n_regions"])
        identity = bool(meta["identity"])
        return {
            "in_features": len(meta["stored_features"]) + (n_regions if identity else 0),
            "n_identity": n_regions if identity else 0,
            "n_regions": n_regions,
        }

    def __len__(self) -> int:
        return len(self.crops)

    def window_range(self, index: int, seed: int) -> tuple[int, int]:
        """Window range (within its run) of item ``index`` drawn with ``seed``."""
        crop = self.crops[index]
        n = self.n_windows(crop.run)
        length = min(crop.length, n)
        if crop.start is not None:
            start = min(crop.start, n - length)
        else:
            start = int(np.random.default_rng(seed).integers(0, n - length + 1))
        return start, start + length

    def get_item(self, index: int, seed: int) -> dict:
        crop = self.crops[index]
        start, stop = self.window_range(index, seed)
        graphs = read_windows(self.arrays, crop.run, start, stop)
        if self.density is not None:
            absolute = bool(self.meta.get("sparsity", {}).get("absolute", True))
            graphs = keep_top_edges(graphs, self.density, absolute=absolute)
        item = {
            INPUTS: graphs.to_data(),
            "id": self.meta["runs"][crop.run]["key"],
            "run": crop.run,
            "start": start,
        }
        if self.targets is not None:
            value = self.targets[crop.run]
            item[TARGET] = (
                torch.tensor(int(value))
                if self.target_kind == "categorical"
                else torch.tensor(float(value), dtype=torch.float32)
            )
        return item

    def __getitem__(self, index: int) -> dict:
        return self.get_item(index, index)


def collate_graphs(items: Sequence[dict]) -> dict:
    """Batch crop items: a PyG ``Batch`` of their graphs, stacked targets, lists of the rest."""
    from torch_geometric.data import Batch

    batch = {
        INPUTS: Batch.from_data_list([item[INPUTS] for item in items]),
        "id": [item["id"] for item in items],
        "run": torch.tensor([item["run"] for item in items]),
        "start": torch.tensor([item["start"] for item in items]),
    }
    if TARGET in items[0]:
        batch[TARGET] = torch.stack([item[TARGET] for item in items])
    return batch


class GraphDataModule(EngineDataModule):
    """Resumable, seeded loaders over :class:`GraphCropDataset` s.

    Parameters
    ----------
    train : GraphCropDataset
        Training crops (random starts drawn from the item seeds).
    val : GraphCropDataset | None
        Validation crops (fixed starts, so every validation sees the same windows).
    **loader
        ``batch_size``, ``seed``, ``num_workers``, ``val_batch_size``.
    """

    def __init__(
        self, train: GraphCropDataset, val: GraphCropDataset | None = None, **loader
    ) -> None:
        loader.setdefault("collate_fn", collate_graphs)
        super().__init__(**loader)
        self._train = train
        self._val = val

    def train_dataset(self) -> Dataset:
        return self._train

    def val_dataset(self) -> Dataset | None:
        return self._val
