"""The patch store: EEG windows as patch sequences, read one window with one seek.

Format ``neuroai.eeg.patch_store`` version 1 (kept stable: EEGFormer trains on
it). A store is a folder, written atomically with a provenance record beside it
(``<store>.prov.json``)::

    <store>/
      store.json     header: format, version, layout, sampling, vocabularies, params
      patches.npy    (n_rows, n_patches, patch_len)  float16 or float32
      stats.npy      (n_rows, 4)                     float32
      windows.npy    (n_windows,) structured         numeric index, memory-mapped
      events.npy     (n_windows, n_events)           uint8 multi-hot annotation labels
      index.tsv      the same index as a readable table (one line per window)

- A *row* is one channel of one window. The rows of a window are contiguous
  (``patches[row : row + n_channels]``), so reading window ``i`` is one slice
  of a memory-mapped array: one seek, and memory that does not grow with the
  number of windows (the numeric index is memory-mapped too).
- ``patches[r, :T]`` are the time patches and ``patches[r, T:]`` the spectral
  (FFT amplitude) patches of that channel, both instance-normalised; ``T`` and
  ``S`` are ``store.json["segments"]`` (see :mod:`neuroai.eeg.patches`).
- ``stats[r]`` = time mean, time SD, spectrum mean, spectrum SD of the
  instance normalisation (units: those of the preprocessed signal).
- ``windows.npy`` fields: ``row`` (first row), ``n_channels``, ``channel_set``
  (index into ``store.json["channel_sets"]``, the channel names in row order),
  ``label`` (index into ``store.json["labels"]``, -1 for none), ``split``
  (index into ``store.json["splits"]``, -1 for none), ``recording`` (index into
  ``store.json["recordings"]``), ``start_s`` (window start, seconds from the
  recording's first sample).
- ``events.npy[i, k]`` is 1 when annotation label ``store.json["events"][k]``
  overlaps window ``i``.
- ``index.tsv`` columns: ``window`` (0..n-1), ``recording``, ``subject``,
  ``session``, ``split``, ``label`` (recording label from the layout, such as
  TUAB's ``normal``/``abnormal``; ``n/a`` when none), ``events`` (annotation
  labels overlapping the window, ``;``-separated, empty when none),
  ``channel_set``, ``row``, ``n_channels``, ``start_s``.
- ``store.json`` also holds ``sfreq``, ``window_s``, ``window_samples``,
  ``patch_len``, ``patch_stride``, ``dtype`` and the preprocessing ``params``; the
  store of a dataset that shares patient ids with others also its ``patients``
  namespace (``tuh``; :mod:`neuroai.eeg.patients`), absent from a store that is its own.

A store may instead be *sharded* (``store.json["form"] == "shards"``): the same
header, index and numeric index, but no ``patches.npy``/``stats.npy``; its rows are
read in place from the per-recording stores it lists (:mod:`neuroai.eeg.shards`).
:func:`open_patch_store` opens either form with one API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroai.eeg.patches import PatchLayout
from neuroai.eeg.patients import HEADER_KEY, check_patient_namespace
from neuroai.errors import ArtifactError, ConfigError
from neuroai.io.store import check_artifact, write_artifact

FORMAT = "neuroai.eeg.patch_store"
VERSION = 1
INDEX_COLUMNS = (
    "window",
    "recording",
    "subject",
    "session",
    "split",
    "label",
    "events",
    "channel_set",
    "row",
    "n_channels",
    "start_s",
)
MISSING = "n/a"
WINDOW_DTYPE = np.dtype(
    [
        ("row", "<i8"),
        ("n_channels", "<i4"),
        ("channel_set", "<i4"),
        ("label", "<i4"),
        ("split", "<i4"),
        ("recording", "<i4"),
        ("start_s", "<f8"),
    ]
)
#: Rows copied per chunk when concatenating stores (bounds memory).
CHUNK_ROWS = 4096


@dataclass
class PatchPart:
    """Windows to write into a store, in memory, memory-mapped, or in a store on disk.

    Attributes
    ----------
    index : mapping of str to array-like, or None
        The columns of ``index.tsv`` (a dict of arrays or a
        :class:`pandas.DataFrame`), one entry per window; ``row`` and
        ``channel_set`` are local to this part. ``None`` with ``store``: read from the
        store when the part is written (:meth:`columns`), so that thousands of parts do
        not hold thousands of tables.
    channel_sets : list of list of str
        Channel names of each local channel set.
    patches : array-like, shape (n_rows, n_patches, patch_len), optional
    stats : array-like, shape (n_rows, 4), optional
    store : Path, optional
        Instead of ``patches`` and ``stats``: a store folder whose arrays are
        memory-mapped only while this part is copied (:meth:`arrays`), so that
        concatenating thousands of stores keeps two files open, not two per store.
    shape : (int, int, int), optional
        With ``store``: (n_rows, n_patches, patch_len), from its ``store.json``.
    """

    index: Any
    channel_sets: list[list[str]]
    patches: Any = None
    stats: Any = None
    store: Path | None = None
    shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if (self.patches is None) == (self.store is None):
            raise ConfigError(
                "A PatchPart holds either patches and stats or a store folder, not both or neither."
            )

    @property
    def n_rows(self) -> int:
        return int(self.patch_shape[0])

    def columns(self):
        """The index columns: this part's own, or its store's ``index.tsv`` read now."""
        return self.index if self.index is not None else read_index(self.store)

    @property
    def patch_shape(self) -> tuple[int, ...]:
        """(n_rows, n_patches, patch_len)."""
        return tuple(self.patches.shape) if self.store is None else tuple(self.shape)

    @contextmanager
    def arrays(self):
        """``(patches, stats)`` for copying; a store's memory maps are closed afterwards."""
        if self.store is None:
            yield self.patches, self.stats
            return
        patches = np.load(self.store / "patches.npy", mmap_mode="r", allow_pickle=False)
        stats = np.load(self.store / "stats.npy", mmap_mode="r", allow_pickle=False)
        try:
            if patches.shape != tuple(self.shape) or stats.shape != (self.shape[0], 4):
                raise ArtifactError(
                    f"{self.store}: patches.npy is {patches.shape} and stats.npy {stats.shape}, "
                    f"but store.json says {self.shape}. Rebuild the store."
                )
            yield patches, stats
        finally:
            # Close the mappings (and their file descriptors) now, not when the garbage
            # collector gets to them; the caller must not keep views past the block.
            for array in (patches, stats):
                if getattr(array, "_mmap", None) is not None:
                    array._mmap.close()


def _vocabulary(values: Iterable[str], *, split: bool = False) -> list[str]:
    found = set()
    for value in values:
        parts = str(value).split(";") if split else [str(value)]
        found.update(p for p in parts if p and p != MISSING)
    return sorted(found)


def _codes(values, vocabulary: list[str]) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(vocabulary)}
    return np.array([lookup.get(str(v), -1) for v in values], dtype=np.int32)


def _numeric_index(index: dict[str, np.ndarray], header: dict) -> tuple[np.ndarray, np.ndarray]:
    """``windows.npy`` and ``events.npy`` of an index table."""
    windows = np.zeros(header["n_windows"], dtype=WINDOW_DTYPE)
    for name in ("row", "n_channels", "channel_set", "start_s"):
        windows[name] = index[name]
    windows["label"] = _codes(index["label"], header["labels"])
    windows["split"] = _codes(index["split"], header["splits"])
    windows["recording"] = _codes(index["recording"], header["recordings"])
    events = np.zeros((header["n_windows"], len(header["events"])), dtype=np.uint8)
    lookup = {name: k for k, name in enumerate(header["events"])}
    for i, text in enumerate(index["events"]):
        for name in str(text).split(";"):
            if name:
                events[i, lookup[name]] = 1
    return windows, events


def write_patch_store(
    path: str | os.PathLike,
    parts: Sequence[PatchPart],
    *,
    layout: PatchLayout,
    sfreq: float,
    dtype: str,
    params: Mapping[str, Any],
    stage: str,
    inputs: Sequence[str | os.PathLike] = (),
    extra: Mapping[str, Any] | None = None,
    patient_namespace: str | None = None,
) -> Path:
    """Write a patch store (atomically, with provenance) from one or more parts.

    Parts are copied in chunks of rows into a memory-mapped ``patches.npy``, so
    concatenating memory-mapped stores needs memory for one chunk only.

    Parameters
    ----------
    path : path-like
        The store folder.
    parts : sequence of PatchPart
    layout : PatchLayout
        Must match every part's patch shape.
    sfreq : float
        Sampling frequency of the windows, Hz.
    dtype : str
        ``float16`` or ``float32``.
    params : mapping
        Preprocessing parameters (stored in ``store.json`` and the provenance).
    stage, inputs, extra
        Provenance (see :func:`neuroai.io.write_artifact`).
    patient_namespace : str | None
        The patient namespace of the store's subjects (``store.json["patients"]``, see
        :mod:`neuroai.eeg.patients`); None writes no key (the store is its own namespace).
    """
    shape = (layout.n_patches, layout.patch_len)
    for number, part in enumerate(parts):
        if tuple(part.patch_shape[1:]) != shape:
            raise ArtifactError(
                f"Cannot write {path}: part {number} has patches of shape "
                f"{tuple(part.patch_shape[1:])}, the store's layout needs {shape}."
            )
    channel_sets: list[list[str]] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in INDEX_COLUMNS}
    row_offset = 0
    for part in parts:
        remap = []
        for names in part.channel_sets:
            names = list(names)
            if names not in channel_sets:
                channel_sets.append(names)
            remap.append(channel_sets.index(names))
        part_index = part.columns()  # one store's table at a time
        for name in INDEX_COLUMNS:
            values = np.asarray(part_index[name])
            if name == "channel_set":
                values = np.asarray(remap, dtype=np.int64)[values.astype(np.int64)]
            elif name == "row":
                values = values.astype(np.int64) + row_offset
            columns[name].append(values)
        row_offset += part.n_rows
    index = {
        name: np.concatenate(values) if values else np.zeros(0) for name, values in columns.items()
    }
    n_windows = len(index["recording"])
    index["window"] = np.arange(n_windows, dtype=np.int64)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "n_windows": n_windows,
        "n_rows": row_offset,
        "n_patches": layout.n_patches,
        "patch_len": layout.patch_len,
        "patch_stride": layout.patch_stride,
        "segments": layout.segments(),
        "window_samples": layout.window_samples,
        "window_s": layout.window_samples / sfreq,
        "sfreq": float(sfreq),
        "dtype": dtype,
        "channel_sets": channel_sets,
        "labels": _vocabulary(index["label"]),
        "events": _vocabulary(index["events"], split=True),
        "splits": _vocabulary(index["split"]),
        "recordings": list(dict.fromkeys(str(r) for r in index["recording"])),
        "params": dict(params),
    }
    if patient_namespace is not None:
        header[HEADER_KEY] = check_patient_namespace(patient_namespace)
    windows, events = _numeric_index(index, header)

    def _write(folder: Path) -> None:
        patches = np.lib.format.open_memmap(
            folder / "patches.npy", mode="w+", dtype=dtype, shape=(row_offset, *shape)
        )
        stats = np.lib.format.open_memmap(
            folder / "stats.npy", mode="w+", dtype=np.float32, shape=(row_offset, 4)
        )
        at = 0
        for part in parts:  # one part's arrays open at a time
            with part.arrays() as (source, source_stats):
                for begin in range(0, part.n_rows, CHUNK_ROWS):
                    end = min(begin + CHUNK_ROWS, part.n_rows)
                    patches[at + begin : at + end] = source[begin:end]
                    stats[at + begin : at + end] = source_stats[begin:end]
            at += part.n_rows
        patches.flush()
        stats.flush()
        del patches, stats
        np.save(folder / "windows.npy", windows, allow_pickle=False)
        np.save(folder / "events.npy", events, allow_pickle=False)
        _write_index(folder / "index.tsv", index)
        (folder / "store.json").write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")

    return write_artifact(
        path,
        _write,
        stage=stage,
        params=params,
        inputs=inputs,
        extra={"n_windows": n_windows, "n_rows": row_offset, **dict(extra or {})},
        directory=True,
    )


def _write_index(path: Path, index: dict[str, np.ndarray]) -> None:
    """``index.tsv``: a header line, then one tab-separated line per window."""
    n = len(index["window"])
    cells = []
    for name in INDEX_COLUMNS:
        values = index[name]
        if name == "start_s":
            cells.append([f"{float(v):.6f}" for v in values])
        else:
            cells.append([str(v) for v in values])
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\t".join(INDEX_COLUMNS) + "\n")
        for i in range(n):
            handle.write("\t".join(column[i] for column in cells) + "\n")


class PatchStore:
    """A patch store opened for reading (memory-mapped, checked against its provenance).

    Parameters
    ----------
    path : path-like
        The store folder.
    verify : {"size", "checksum", "none"}
        How hard to check the store against its provenance record.

    Attributes
    ----------
    path : Path
    header : dict
        ``store.json``.
    index : pandas.DataFrame
        ``index.tsv``.
    layout : PatchLayout
    """

    #: The ``form`` of store this class reads (``store.json["form"]``, ``copy`` when absent).
    _form = "copy"

    def __init__(self, path: str | os.PathLike, *, verify: str = "size") -> None:
        self.path = Path(path)
        check_artifact(self.path, verify=verify)
        header_path = self.path / "store.json"
        if not header_path.is_file():
            raise ArtifactError(f"{self.path} is not a patch store: store.json is missing.")
        self.header = json.loads(header_path.read_text(encoding="utf-8"))
        if self.header.get("format") != FORMAT or self.header.get("version") != VERSION:
            raise ArtifactError(
                f"{self.path} is a {self.header.get('format')!r} version "
                f"{self.header.get('version')!r} store; this neuroai reads {FORMAT!r} version "
                f"{VERSION}. Rebuild it with this version."
            )
        form = self.header.get("form", "copy")
        if form != self._form:
            raise ArtifactError(
                f"{self.path} is a {form!r} store, not a {self._form!r} one. Open it with "
                "neuroai.eeg.open_patch_store, which reads both."
            )
        self.layout = PatchLayout(
            self.header["window_samples"], self.header["patch_len"], self.header["patch_stride"]
        )
        self._arrays: dict[str, np.ndarray] = {}
        self._index = None

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = np.load(
                self.path / f"{name}.npy", mmap_mode="r", allow_pickle=False
            )
        return self._arrays[name]

    @property
    def patches(self) -> np.ndarray:
        """All rows, memory-mapped read-only: shape (n_rows, n_patches, patch_len)."""
        return self._array("patches")

    @property
    def stats(self) -> np.ndarray:
        """Instance-normalisation statistics, memory-mapped: shape (n_rows, 4)."""
        return self._array("stats")

    @property
    def windows(self) -> np.ndarray:
        """The numeric window index, memory-mapped: shape (n_windows,), structured."""
        return self._array("windows")

    @property
    def events(self) -> np.ndarray:
        """Multi-hot annotation labels, memory-mapped: shape (n_windows, n_events), uint8."""
        return self._array("events")

    @property
    def index(self):
        """``index.tsv`` as a :class:`pandas.DataFrame` (read on first use)."""
        if self._index is None:
            self._index = read_index(self.path)
        return self._index

    def __len__(self) -> int:
        return int(self.header["n_windows"])

    def __repr__(self) -> str:
        return (
            f"PatchStore({str(self.path)!r}, n_windows={len(self)}, n_rows={self.header['n_rows']})"
        )

    def rows(self, window: int) -> slice:
        """The rows of window ``window``."""
        entry = self.windows[window]
        start = int(entry["row"])
        return slice(start, start + int(entry["n_channels"]))

    def window(self, window: int) -> np.ndarray:
        """Patches of one window: shape (n_channels, n_patches, patch_len), a copy."""
        if not -len(self) <= window < len(self):
            raise IndexError(f"Window {window} is out of range for {len(self)} windows.")
        return np.array(self.patches[self.rows(window % len(self))])

    def channels(self, window: int) -> list[str]:
        """Channel names of window ``window``, in row order."""
        return list(self.header["channel_sets"][int(self.windows[window]["channel_set"])])

    def part(self) -> PatchPart:
        """The whole store as a part for :func:`write_patch_store`: its index now, its arrays
        memory-mapped only while they are copied."""
        shape = (self.header["n_rows"], self.header["n_patches"], self.header["patch_len"])
        return PatchPart(None, self.header["channel_sets"], store=self.path, shape=shape)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = {}  # memory maps are reopened in each worker process
        state["_index"] = None
        return state


def read_index(store: str | os.PathLike):
    """A store's ``index.tsv`` as a :class:`pandas.DataFrame` (identifiers kept as text)."""
    import pandas as pd

    return pd.read_csv(
        Path(store) / "index.tsv",
        sep="\t",
        keep_default_na=False,
        dtype={
            "recording": str,
            "subject": str,
            "session": str,
            "split": str,
            "label": str,
            "events": str,
        },
    )


def open_patch_store(
    path: str | os.PathLike, *, verify: str = "size", max_open_shards: int | None = None
) -> PatchStore:
    """Open a patch store for reading, copied or sharded.

    Parameters
    ----------
    path : path-like
        The store folder.
    verify : {"size", "checksum", "none"}
        How hard to check the store (and a sharded store's shards, when first read)
        against their provenance records.
    max_open_shards : int | None
        For a sharded store: shards kept open (see
        :class:`neuroai.eeg.shards.ShardedPatchStore`); ``None``: the store's own.

    Returns
    -------
    PatchStore
        A :class:`PatchStore`, or for a sharded store a
        :class:`~neuroai.eeg.shards.ShardedPatchStore` (a subclass, same API).
    """
    from neuroai.eeg.shards import ShardedPatchStore, read_header

    if Path(path).is_dir() and read_header(path).get("form") == "shards":
        return ShardedPatchStore(path, verify=verify, max_open_shards=max_open_shards)
    return PatchStore(path, verify=verify)


def _shard_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """``paths`` with each sharded store replaced by its shards (one header read at a time)."""
    from neuroai.eeg.shards import read_header

    expanded = []
    for path in paths:
        path = path if isinstance(path, Path) else Path(path)  # thousands: no copies
        header = read_header(path) if path.is_dir() else {}
        if header.get("form") == "shards":
            expanded.extend(path / shard["path"] for shard in header["shards"])
        else:
            expanded.append(path)
    return expanded


def concatenate_stores(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    sharded: bool = False,
    max_open_shards: int | None = None,
    patient_namespace: str | None = None,
) -> Path:
    """Concatenate patch stores into one (windows renumbered, channel sets merged).

    The stores must share sampling rate, window length, patch layout and dtype.
    Copied (``sharded=False``): the patch arrays are copied one store at a time, in
    chunks of rows: memory for the patches is one chunk and two files are open, however
    many stores there are; the window index (one row per window, a few dozen bytes) is
    held whole. Sharded: nothing is copied; the new store lists the stores and reads
    them in place (:func:`neuroai.eeg.shards.write_sharded_store`). A sharded store among
    ``paths`` stands for its shards.

    Parameters
    ----------
    paths : sequence of path-like
        The stores, in the order their windows should appear.
    output : path-like
        The new store.
    stage, params, extra
        Provenance; ``params`` defaults to the first store's ``params``.
    sharded : bool
        Write a sharded store (the workflow's ``eeg.store: shards``) instead of a copy.
    max_open_shards : int | None
        Sharded: shards a reader keeps open by default (``None``: 64).
    patient_namespace : str | None
        The new store's patient namespace (see :func:`write_patch_store`).
    """
    paths = _shard_paths(paths)
    if sharded:
        from neuroai.eeg.shards import MAX_OPEN_SHARDS, write_sharded_store

        return write_sharded_store(
            paths,
            output,
            stage=stage,
            params=params,
            extra=extra,
            max_open_shards=MAX_OPEN_SHARDS if max_open_shards is None else max_open_shards,
            patient_namespace=patient_namespace,
        )
    if not paths:
        raise ArtifactError(f"Cannot make {output}: no stores to concatenate.")
    first = open_patch_store(paths[0])
    keys = ("sfreq", "window_samples", "patch_len", "patch_stride", "dtype")
    parts = []
    for path in paths:  # checked one by one; a part keeps its path, not the open store
        store = open_patch_store(path)
        differ = [k for k in keys if store.header[k] != first.header[k]]
        if differ:
            details = ", ".join(f"{k}: {first.header[k]} vs {store.header[k]}" for k in differ)
            raise ArtifactError(
                f"Cannot concatenate {first.path} and {store.path}: they differ in {details}. "
                "Rebuild them with the same parameters."
            )
        parts.append(store.part())
    return write_patch_store(
        output,
        parts,
        layout=first.layout,
        sfreq=first.header["sfreq"],
        dtype=first.header["dtype"],
        params=params if params is not None else first.header["params"],
        stage=stage,
        inputs=[part.store for part in parts],
        extra=extra,
        patient_namespace=patient_namespace,
    )
