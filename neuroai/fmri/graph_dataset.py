"""The on-disk graph dataset: window graphs of many runs as arrays, read lazily.

Format ``neuroai.graphs/1`` (stable; a reader refuses other versions). One
folder, written atomically with a provenance record beside it
(``<folder>.prov.json``)::

    dataset.json      format, n_runs, n_regions, regions, node_features (names
                      of the loaded columns), stored_features, identity,
                      edge_attributes (names), windowing (window, step, kind,
                      fisher_z), sparsity (method, density, threshold, absolute),
                      runs (key, subject, n_windows), labels (per column:
                      "categorical" with its categories, or "numeric"),
                      excluded_runs (key and reason)
    x.npy             (total_windows, n_regions, n_stored_features) float32 node
                      features; when "identity" is true in dataset.json, one-hot
                      region identity (constant, so not stored) is appended on load
    edge_index.npy    (2, total_edges) int16/int32, region indices within a window
    edge_weight.npy   (total_edges,) float32 connectivity value of each edge; the
                      edge attributes (weight, |weight|) are derived from it on load
    window_ptr.npy    (total_windows + 1,) int64 edge offsets of each window
    run_ptr.npy       (n_runs + 1,) int64 window offsets of each run
    label_<col>.npy   (n_runs,) int64 category code (-1 missing) or float64 (NaN missing)

Run ``r`` owns windows ``run_ptr[r]:run_ptr[r+1]``; window ``w`` owns edges
``window_ptr[w]:window_ptr[w+1]``. Every edge is stored in both directions.
Arrays are memory-mapped on read, so opening a dataset of thousands of runs
costs nothing until an item is asked for.

:class:`GraphWindowDataset` is a PyTorch Geometric ``Dataset`` over it: item ``i``
is run ``i`` as a :class:`~neuroai.fmri.graphs.WindowSequence` (``unit="run"``),
or window ``i`` as a ``Data`` (``unit="window"``); ``target`` puts one label
column in ``y``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import ArtifactError, DataError, check_option
from neuroai.fmri.graphs import EDGE_ATTRIBUTES, WindowGraphs

logger = get_logger(__name__)

FORMAT = "neuroai.graphs/1"
ARRAYS = ("x", "edge_index", "edge_weight", "window_ptr", "run_ptr")


def _encode_labels(
    subjects: Sequence[str], participants, columns: Sequence[str] | None
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Per-run label arrays from participants.tsv (one row per subject)."""
    if participants is None:
        return {}, {}
    table = participants.astype(str).set_index("participant_id")
    table = table.where(participants.set_index("participant_id").notna(), "")
    if columns is None:
        columns = list(table.columns)
    arrays, meta = {}, {}
    for column in columns:
        if column not in table.columns:
            raise DataError(
                f"participants.tsv has no column {column!r} (columns: {', '.join(table.columns)})."
            )
        values = [
            table.at[f"sub-{s}", column] if f"sub-{s}" in table.index else None for s in subjects
        ]
        given = [v for v in values if isinstance(v, str) and v != ""]
        try:
            numbers = [float(v) for v in given]
        except ValueError:
            numbers = None
        if given and numbers is not None:
            arrays[column] = np.array(
                [float(v) if isinstance(v, str) and v != "" else np.nan for v in values]
            )
            meta[column] = {"type": "numeric"}
        else:
            categories = sorted(set(given))
            code = {c: i for i, c in enumerate(categories)}
            arrays[column] = np.array([code.get(v, -1) for v in values], dtype=np.int64)
            meta[column] = {"type": "categorical", "categories": categories}
    return arrays, meta


def write_graph_dataset(
    path: str | os.PathLike,
    runs: Mapping[str, WindowGraphs] | Iterable[tuple[str, WindowGraphs]],
    *,
    subjects: Mapping[str, str],
    regions: Sequence[str],
    windowing: Mapping,
    sparsity: Mapping,
    participants=None,
    label_columns: Sequence[str] | None = None,
    excluded: Mapping[str, str] | None = None,
    stage: str = "graph_dataset",
    params: Mapping | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    extra: Mapping | None = None,
) -> Path:
    """Write window graphs of many runs as one dataset folder, atomically, run by run.

    The runs are consumed one at a time and appended to the arrays on disk
    (:class:`~neuroai.io.appendable.NpyAppender`), so memory holds one run's graphs
    and a few numbers per run, however many runs there are: pass a generator that
    builds each run's graphs when asked.

    Parameters
    ----------
    path : path-like
        Destination folder.
    runs : mapping or iterable of (key, WindowGraphs)
        Run key to its :class:`WindowGraphs`, in the order to store.
    subjects : mapping
        Run key to subject label (without ``sub-``); read after ``runs`` is consumed,
        so a generator may fill it as it goes.
    regions : sequence of str
        Region names (the nodes).
    windowing : mapping
        ``window``, ``step``, ``kind``, ``fisher_z`` of the dynamic FC.
    sparsity : mapping
        ``method``, ``density``, ``threshold``, ``absolute``.
    participants : pandas.DataFrame | None
        ``participants.tsv`` (``participant_id`` and label columns).
    label_columns : sequence of str | None
        Columns to store (all but ``participant_id`` by default).
    excluded : mapping | None
        Run key to the reason it was left out (recorded in dataset.json); read after
        ``runs`` is consumed.
    stage, params, inputs
        Provenance.
    extra : mapping | None
        More facts for the record's ``extra`` (``external_inputs``), beside the counts.
    """
    from neuroai.io import write_artifact
    from neuroai.io.appendable import NpyAppender

    items = runs.items() if isinstance(runs, Mapping) else runs
    index_dtype = np.int16 if len(regions) < 2**15 else np.int32
    counts: dict = dict(extra or {})  # the provenance record's facts, known once written

    def write(folder: Path) -> None:
        keys, n_windows, first = [], [], None
        writers = {}
        window_ptr = NpyAppender(folder / "window_ptr.npy", np.int64)
        window_ptr.append([0])
        edges_so_far = 0
        try:
            for key, graphs in items:
                if first is None:
                    first = graphs
                    writers["x"] = NpyAppender(folder / "x.npy", np.float32, graphs.x.shape[1:])
                    writers["source"] = NpyAppender(folder / "source.tmp.npy", index_dtype)
                    writers["target"] = NpyAppender(folder / "target.tmp.npy", index_dtype)
                    writers["edge_weight"] = NpyAppender(folder / "edge_weight.npy", np.float32)
                if (
                    graphs.n_regions != len(regions)
                    or graphs.feature_names != first.feature_names
                    or graphs.identity != first.identity
                ):
                    raise DataError(
                        f"Run {key} has {graphs.n_regions} regions and features "
                        f"{graphs.feature_names[:3]}..., unlike the dataset ({len(regions)} "
                        f"regions, {first.feature_names[:3]}...): every run of a graph dataset "
                        "must use the same atlas and features."
                    )
                writers["x"].append(graphs.x)
                writers["source"].append(graphs.edge_index[0])
                writers["target"].append(graphs.edge_index[1])
                writers["edge_weight"].append(graphs.edge_weight)
                window_ptr.append(edges_so_far + np.cumsum(np.diff(graphs.window_ptr)))
                edges_so_far += int(graphs.window_ptr[-1] - graphs.window_ptr[0])
                keys.append(key)
                n_windows.append(int(graphs.n_windows))
        finally:
            for writer in (window_ptr, *writers.values()):
                writer.close()
        if first is None:
            raise DataError(f"No run to write into the graph dataset {path}.")
        _pair_edges(folder, edges_so_far, index_dtype)
        run_ptr = np.concatenate([[0], np.cumsum(n_windows)]).astype(np.int64)
        np.save(folder / "run_ptr.npy", run_ptr, allow_pickle=False)
        labels, label_meta = _encode_labels(
            [subjects[k] for k in keys], participants, label_columns
        )
        for column, values in labels.items():
            np.save(folder / f"label_{column}.npy", values, allow_pickle=False)
        meta = {
            "format": FORMAT,
            "n_runs": len(keys),
            "n_regions": len(regions),
            "n_windows": int(run_ptr[-1]),
            "n_edges": edges_so_far,
            "regions": list(regions),
            "node_features": list(first.node_feature_names),
            "stored_features": list(first.feature_names),
            "identity": bool(first.identity),
            "edge_attributes": list(EDGE_ATTRIBUTES),
            "windowing": dict(windowing),
            "sparsity": dict(sparsity),
            "runs": [
                {"key": k, "subject": subjects[k], "n_windows": n}
                for k, n in zip(keys, n_windows, strict=True)
            ],
            "labels": label_meta,
            "excluded_runs": [{"key": k, "reason": r} for k, r in (excluded or {}).items()],
        }
        (folder / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        counts.update({k: meta[k] for k in ("n_runs", "n_regions", "n_windows", "n_edges")})

    return write_artifact(
        path,
        write,
        stage=stage,
        params=params or {},
        inputs=inputs,
        extra=counts,  # filled by write(), read after it
        directory=True,
    )


def _pair_edges(folder: Path, n_edges: int, dtype, chunk: int = 1 << 22) -> None:
    """``edge_index.npy`` (2, n_edges) from the two streamed rows, copied in chunks."""
    source = np.load(folder / "source.tmp.npy", mmap_mode="r")
    target = np.load(folder / "target.tmp.npy", mmap_mode="r")
    pairs = np.lib.format.open_memmap(
        folder / "edge_index.npy", mode="w+", dtype=dtype, shape=(2, n_edges)
    )
    for begin in range(0, n_edges, chunk):
        end = min(begin + chunk, n_edges)
        pairs[0, begin:end] = source[begin:end]
        pairs[1, begin:end] = target[begin:end]
    pairs.flush()
    del pairs, source, target
    (folder / "source.tmp.npy").unlink()
    (folder / "target.tmp.npy").unlink()


class GraphArrays:
    """Lazy, checked access to a graph dataset folder (no torch needed).

    Parameters
    ----------
    path : path-like
        The dataset folder.
    verify : {"size", "checksum", "none"}
        How to check the folder against its provenance record.
    """

    def __init__(self, path: str | os.PathLike, *, verify: str = "size") -> None:
        from neuroai.io import check_artifact

        self.path = Path(path)
        if not (self.path / "dataset.json").is_file():
            raise ArtifactError(f"{self.path} is not a graph dataset (no dataset.json).")
        check_artifact(self.path, verify=verify)
        self.meta = json.loads((self.path / "dataset.json").read_text(encoding="utf-8"))
        if self.meta.get("format") != FORMAT:
            raise ArtifactError(
                f"{self.path} is a graph dataset of format {self.meta.get('format')!r}; this "
                f"version of neuroai reads {FORMAT!r}. Rebuild it."
            )
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            file = self.path / f"{name}.npy"
            if not file.is_file():
                raise ArtifactError(f"{file} is missing from the graph dataset.")
            self._arrays[name] = np.load(file, mmap_mode="r", allow_pickle=False)
        return self._arrays[name]

    @property
    def n_runs(self) -> int:
        return int(self.meta["n_runs"])

    def label(self, column: str) -> np.ndarray:
        """Per-run values of a label column (codes or numbers)."""
        if column not in self.meta["labels"]:
            raise DataError(
                f"The graph dataset {self.path} has no label {column!r}; it has "
                f"{', '.join(self.meta['labels']) or 'none'}."
            )
        return self[f"label_{column}"]

    def run(self, index: int) -> WindowGraphs:
        """Run ``index`` as :class:`WindowGraphs` (arrays read from the memory map)."""
        if not 0 <= index < self.n_runs:
            raise IndexError(f"Run {index} is out of range (the dataset has {self.n_runs}).")
        w0, w1 = int(self["run_ptr"][index]), int(self["run_ptr"][index + 1])
        e0, e1 = int(self["window_ptr"][w0]), int(self["window_ptr"][w1])
        return WindowGraphs(
            x=np.asarray(self["x"][w0:w1]),
            edge_index=np.asarray(self["edge_index"][:, e0:e1]),
            edge_weight=np.asarray(self["edge_weight"][e0:e1]),
            window_ptr=np.asarray(self["window_ptr"][w0 : w1 + 1]) - e0,
            feature_names=list(self.meta["stored_features"]),
            identity=bool(self.meta["identity"]),
        )


class _GraphWindowDataset:
    """PyTorch Geometric dataset over a graph dataset folder, read lazily.

    Parameters
    ----------
    path : path-like
        The folder written by :func:`write_graph_dataset`.
    unit : {"run", "window"}
        Items are runs (a :class:`~neuroai.fmri.graphs.WindowSequence` of all
        their windows) or single windows (a ``Data``).
    target : str | None
        Label column stored as ``y`` (categorical codes as int64, numeric as float32).
    transform : callable | None
        PyG transform applied to each item.
    verify : {"size", "checksum", "none"}
        Provenance check of the folder when opened.

    Examples
    --------
    >>> ds = GraphWindowDataset("results/fmri/demo_regions/graphs", target="site")  # doctest: +SKIP
    >>> item = ds[0]  # item.x: (n_windows * n_regions, n_features); item.window: window of each node
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        unit: str = "run",
        target: str | None = None,
        transform=None,
        verify: str = "size",
    ) -> None:
        check_option("unit", unit, ("run", "window"))
        self.arrays = GraphArrays(path, verify=verify)
        self.unit = unit
        self.target = target
        if target is not None:
            self.arrays.label(target)
        super().__init__(root=None, transform=transform)  # torch_geometric's Dataset

    @property
    def meta(self) -> dict:
        """The dataset's ``dataset.json``."""
        return self.arrays.meta

    def len(self) -> int:
        if self.unit == "run":
            return self.arrays.n_runs
        return int(self.arrays.meta["n_windows"])

    def _attributes(self, run: int) -> dict:
        import torch

        attributes = {"run_index": torch.tensor([run])}
        if self.target is not None:
            value = self.arrays.label(self.target)[run]
            kind = self.arrays.meta["labels"][self.target]["type"]
            attributes["y"] = (
                torch.tensor([int(value)])
                if kind == "categorical"
                else torch.tensor([float(value)])
            )
        return attributes

    def get(self, idx: int):
        if self.unit == "run":
            return self.arrays.run(idx).to_data(**self._attributes(idx))
        run = int(np.searchsorted(self.arrays["run_ptr"], idx, side="right") - 1)
        graphs = self.arrays.run(run)
        local = idx - int(self.arrays["run_ptr"][run])
        return graphs.window_data(local, **self._attributes(run))


@functools.cache
def _graph_window_dataset_class():
    from torch_geometric.data import Dataset

    cls = type("GraphWindowDataset", (_GraphWindowDataset, Dataset), {})
    cls.__doc__ = _GraphWindowDataset.__doc__
    cls.__module__ = (
        __name__  # importable, so picklable, as neuroai.fmri.graph_dataset.GraphWindowDataset
    )
    return cls


def __getattr__(name: str):
    # GraphWindowDataset subclasses torch_geometric's Dataset: it is built on first use, so
    # that writing a graph dataset (and importing this module) does not import torch.
    if name == "GraphWindowDataset":
        return _graph_window_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
