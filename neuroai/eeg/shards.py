"""The sharded patch store: a manifest over per-recording stores, read without a copy.

A corpus of 30,000 recordings as one copied store means one process copying every
patch; a *sharded* store copies none. It is a patch store folder (format
``neuroai.eeg.patch_store`` version 1, see :mod:`neuroai.eeg.store`) whose
``store.json`` has ``"form": "shards"`` and lists the per-recording stores (the
*shards*) it reads; the window index is its own, so every reader of a patch store
reads it unchanged::

    <store>/
      store.json    the header of a copied store (n_rows counts the shards' rows in
                    order), plus form, max_open_shards and shards: per shard, its
                    folder relative to <store> (a moved results folder still works),
                    n_windows, n_rows and its provenance record's size and sha256
      windows.npy   as in a copied store: row is the row over the shards in order
      events.npy    as in a copied store
      index.tsv     as in a copied store, line for line

Writing (:func:`write_sharded_store`) opens one shard at a time, twice: its header
and provenance record (checked against the first shard: sampling rate, window, patch
layout, dtype), then its index, appended to the store's as a stream. Open files do not
grow with the shards; memory only by the shard table and the recordings' names that
the header holds (tens of bytes a shard). The store is written atomically: an
interrupted write leaves no store (see :func:`neuroai.io.write_artifact`).

Reading (:class:`ShardedPatchStore`): ``patches[rows]`` and ``stats[rows]`` find the
shard of a row by bisection and read from its memory maps, which stay open in a
least-recently-used cache of ``max_open_shards`` shards (two files each), so open files
are bounded however many shards. Rows are returned as copies: no view outlives an
evicted map.

Checks, at cohort scale: a shard is checked the first time a process opens it: its
folder's size against its own provenance record (as every reader does), and that
record's size and sha256 against those the manifest copied from it when it was written,
so a truncated shard, or one rebuilt after the manifest, is refused by name. Nothing is
re-hashed unless ``verify="checksum"`` asks for it (then each shard is hashed once per
process, when first opened).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroai.eeg.patients import HEADER_KEY, check_patient_namespace
from neuroai.eeg.store import (
    FORMAT,
    INDEX_COLUMNS,
    VERSION,
    WINDOW_DTYPE,
    PatchStore,
)
from neuroai.errors import ArtifactError, ConfigError, NeuroaiError
from neuroai.io.store import check_artifact, write_artifact

#: Values of the ``form`` of a store (the workflow's ``eeg.store``).
STORE_FORMS = ("copy", "shards")
#: Shards whose memory maps a reader keeps open, unless the store or the caller says.
MAX_OPEN_SHARDS = 64
#: Header keys every shard must share with the first.
SHARED_KEYS = ("sfreq", "window_samples", "patch_len", "patch_stride", "dtype")
#: Provenance ``output`` keys the manifest keeps per shard (the cheap checksum policy).
RECORD_KEYS = ("size", "sha256", "mtime")


def read_header(path: str | os.PathLike) -> dict:
    """``store.json`` of a patch store folder, or ``{}`` when it has none."""
    header_path = Path(path) / "store.json"
    if not header_path.is_file():
        return {}
    try:
        return json.loads(header_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ArtifactError(
            f"{header_path} is not valid JSON ({exc}). Delete the store and rerun its stage."
        ) from exc


def check_max_open_shards(value: Any) -> int:
    """``value`` as a shard count of at least 1, or :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(
            f"Invalid value for the 'max_open_shards' parameter: {value!r}. It must be an "
            f"integer of at least 1 (default {MAX_OPEN_SHARDS})."
        )
    return int(value)


def _npy_writer(path: Path, dtype: np.dtype, shape: tuple[int, ...]):
    """An open ``.npy`` file with its header written; append the C-ordered data."""
    handle = open(path, "wb")
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)
    return handle


def write_sharded_store(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    max_open_shards: int = MAX_OPEN_SHARDS,
    patient_namespace: str | None = None,
) -> Path:
    """Write a sharded store over patch stores (atomically, with provenance): no patch is copied.

    Parameters
    ----------
    paths : sequence of path-like
        The shards: copied patch stores, in the order their windows should appear. They
        must be kept as long as the sharded store is read.
    output : path-like
        The sharded store folder.
    stage, params, extra
        Provenance; ``params`` defaults to the first shard's ``params``.
    max_open_shards : int
        Shards a reader keeps open by default (each holds two files).
    patient_namespace : str | None
        The store's patient namespace (``store.json["patients"]``, see
        :mod:`neuroai.eeg.patients`); None writes no key.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ArtifactError
        A shard is missing, incomplete, sharded itself, or differs from the first in
        sampling rate, window, patch layout or dtype.
    """
    output = Path(output)
    max_open_shards = check_max_open_shards(max_open_shards)
    if patient_namespace is not None:
        check_patient_namespace(patient_namespace)
    paths = [p if isinstance(p, Path) else Path(p) for p in paths]
    if not paths:
        raise ArtifactError(f"Cannot make {output}: no stores to list as shards.")
    if params is None:
        params = read_header(paths[0]).get("params", {})
    # Filled while the store is written, read by its provenance record afterwards: the
    # shard table lives only inside _write, so it is freed before the record (which lists
    # the shards as inputs) is made, and the two are never held at once.
    facts: dict[str, Any] = {"form": "shards"}

    def _write(folder: Path) -> None:
        header, shards = _shard_table(paths, output)
        header.update(params=dict(params), max_open_shards=max_open_shards)
        if patient_namespace is not None:
            header[HEADER_KEY] = patient_namespace
        _write_index(paths, shards, header, folder)
        with open(folder / "store.json", "w", encoding="utf-8") as handle:
            header["shards"] = [
                {k: v for k, v in zip(_SHARD_FIELDS, shard, strict=True) if v is not None}
                for shard in shards
            ]
            del shards[:]
            json.dump(header, handle, indent=1)
            handle.write("\n")
        facts.update(n_windows=header["n_windows"], n_rows=header["n_rows"])
        facts.update(n_shards=len(header["shards"]), **dict(extra or {}))

    return write_artifact(
        output, _write, stage=stage, params=params, inputs=paths, extra=facts, directory=True
    )


#: The fields of a shard in ``store.json["shards"]`` (held as tuples while written).
_SHARD_FIELDS = ("path", "n_windows", "n_rows", *RECORD_KEYS)


def _shard_table(paths: list[Path], output: Path) -> tuple[dict, list[tuple]]:
    """Pass 1, one shard's header and record at a time: the store's header (without its
    params) and one tuple per shard (:data:`_SHARD_FIELDS`, ``None`` where a record has
    no such key)."""
    first: dict = {}
    shards: list[tuple] = []
    channel_sets: list[list[str]] = []
    labels: set[str] = set()
    events: set[str] = set()
    splits: set[str] = set()
    recordings: dict[str, None] = {}
    root = os.path.abspath(output)
    for path in paths:
        record = check_artifact(path, verify="size")
        header = read_header(path)
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ArtifactError(
                f"Cannot list {path} as a shard of {output}: it is not a version {VERSION} "
                f"patch store (store.json is missing or says otherwise). Rebuild it."
            )
        if header.get("form", "copy") != "copy":
            raise ArtifactError(
                f"Cannot list {path} as a shard of {output}: it is a sharded store itself. "
                "List its shards instead (its store.json names them)."
            )
        if not first:
            first = header
        differ = [k for k in SHARED_KEYS if header[k] != first[k]]
        if differ:
            details = ", ".join(f"{k}: {first[k]} vs {header[k]}" for k in differ)
            raise ArtifactError(
                f"Cannot concatenate {paths[0]} and {path}: they differ in {details}. "
                "Rebuild them with the same parameters."
            )
        for names in header["channel_sets"]:
            if list(names) not in channel_sets:
                channel_sets.append(list(names))
        labels.update(header["labels"])
        events.update(header["events"])
        splits.update(header["splits"])
        recordings.update(dict.fromkeys(header["recordings"]))
        output_record = record.get("output", {})
        shards.append(
            (
                os.path.relpath(os.path.abspath(path), root),
                int(header["n_windows"]),
                int(header["n_rows"]),
                *(output_record.get(k) for k in RECORD_KEYS),
            )
        )
    header = {
        "format": FORMAT,
        "version": VERSION,
        "form": "shards",
        "n_windows": sum(s[1] for s in shards),
        "n_rows": sum(s[2] for s in shards),
        **{k: first[k] for k in ("n_patches", "patch_len", "patch_stride", "segments")},
        **{k: first[k] for k in ("window_samples", "window_s", "sfreq", "dtype")},
        "channel_sets": channel_sets,
        "labels": sorted(labels),
        "events": sorted(events),
        "splits": sorted(splits),
        "recordings": list(recordings),
    }
    return header, shards


def _write_index(paths: list[Path], shards: list[tuple], header: dict, folder: Path) -> None:
    """Pass 2, one shard at a time: its index, renumbered, appended to the store's
    ``index.tsv``, ``windows.npy`` and ``events.npy`` (written as streams)."""
    vocab = {key: header[key] for key in ("labels", "events", "splits", "recordings")}
    codes = {key: {name: i for i, name in enumerate(names)} for key, names in vocab.items()}
    set_codes = {tuple(names): i for i, names in enumerate(header["channel_sets"])}
    n_windows, n_events = header["n_windows"], len(vocab["events"])
    windows_file = _npy_writer(folder / "windows.npy", WINDOW_DTYPE, (n_windows,))
    events_file = _npy_writer(folder / "events.npy", np.dtype(np.uint8), (n_windows, n_events))
    with windows_file, events_file, open(folder / "index.tsv", "w", encoding="utf-8") as index:
        index.write("\t".join(INDEX_COLUMNS) + "\n")
        window, row = 0, 0
        for path, (_, shard_windows, shard_rows, *_) in zip(paths, shards, strict=True):
            local = read_header(path)

            def _map(key, local=local):  # local code -> store code; -1 (none) stays -1
                return np.array([codes[key][n] for n in local[key]] + [-1], dtype=np.int32)

            sets = np.array([set_codes[tuple(n)] for n in local["channel_sets"]], np.int32)
            table = np.load(path / "windows.npy", allow_pickle=False)
            flags = np.load(path / "events.npy", allow_pickle=False)
            if table.shape != (shard_windows,) or flags.shape[0] != shard_windows:
                raise ArtifactError(
                    f"{path}: windows.npy {table.shape} and events.npy {flags.shape} do not "
                    f"hold the {shard_windows} windows store.json says. Rebuild it."
                )
            table = table.astype(WINDOW_DTYPE)
            table["row"] += row
            table["channel_set"] = sets[table["channel_set"]]
            for field, key in (("label", "labels"), ("split", "splits")):
                table[field] = _map(key)[table[field]]
            table["recording"] = _map("recordings")[table["recording"]]
            windows_file.write(table.tobytes())
            merged = np.zeros((len(table), n_events), dtype=np.uint8)
            merged[:, _map("events")[:-1]] = flags
            events_file.write(merged.tobytes())
            _append_index(path, index, window, row, sets)
            window += shard_windows
            row += shard_rows


def _append_index(store: Path, handle, window: int, row: int, sets: np.ndarray) -> None:
    """Append ``store``'s ``index.tsv`` to ``handle``: windows from ``window``, rows from
    ``row``, channel sets through ``sets``; text as :func:`write_patch_store` writes it."""
    at = {name: i for i, name in enumerate(INDEX_COLUMNS)}
    with open(store / "index.tsv", encoding="utf-8") as source:
        if source.readline().rstrip("\n").split("\t") != list(INDEX_COLUMNS):
            raise ArtifactError(
                f"{store}/index.tsv does not have the columns {', '.join(INDEX_COLUMNS)}. "
                "Rebuild the store."
            )
        for number, line in enumerate(source):
            cells = line.rstrip("\n").split("\t")
            cells[at["window"]] = str(window + number)
            cells[at["channel_set"]] = str(int(sets[int(cells[at["channel_set"]])]))
            cells[at["row"]] = str(row + int(cells[at["row"]]))
            handle.write("\t".join(cells) + "\n")


class ShardedRows:
    """The rows of a sharded store's ``patches`` or ``stats``, as one read-only array.

    Indexing with an integer, a slice or an integer array reads the rows from their
    shards (opened through the store's cache) and returns a NumPy array, a copy; further
    indices in a tuple apply to the rows read.

    Parameters
    ----------
    store : ShardedPatchStore
    name : {"patches", "stats"}
    shape : tuple of int
        (n_rows, n_patches, patch_len) or (n_rows, 4).
    dtype : numpy.dtype
    """

    def __init__(self, store: ShardedPatchStore, name: str, shape: tuple, dtype) -> None:
        self._store = store
        self._name = name
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ShardedRows({self._name!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        rest: tuple = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        n = self.shape[0]
        if isinstance(key, (int, np.integer)):
            row = int(key)
            if not -n <= row < n:
                raise IndexError(f"Row {row} is out of range for {n} rows.")
            return self._read(row % n, row % n + 1)[(0, *rest)]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                block = self._read(start, max(start, stop))
            else:
                block = self._gather(np.arange(start, stop, step, dtype=np.int64))
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            if not np.issubdtype(rows.dtype, np.integer):
                raise IndexError(f"Rows must be integers, a slice or a mask, not {rows.dtype}.")
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise IndexError(f"Rows out of range for {n} rows.")
            block = self._gather(rows.astype(np.int64) % n)
        return block[(slice(None), *rest)] if rest else block

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (contiguous), shard by shard."""
        pieces = []
        while start < stop:
            shard, first, last = self._store._locate(start)
            end = min(stop, last)
            array = self._store._shard(shard)[self._name]
            pieces.append(np.array(array[start - first : end - first]))
            start = end
        if len(pieces) == 1:
            return pieces[0]
        if not pieces:
            return np.zeros((0, *self.shape[1:]), dtype=self.dtype)
        return np.concatenate(pieces)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size, *self.shape[1:]), dtype=self.dtype)
        for i, row in enumerate(rows):
            out[i] = self._read(int(row), int(row) + 1)[0]
        return out


class ShardedPatchStore(PatchStore):
    """A sharded patch store opened for reading (see the module docstring).

    The same public API as :class:`PatchStore` (``header``, ``index``, ``windows``,
    ``events``, ``patches``, ``stats``, ``layout``, ``rows``, ``window``, ``channels``):
    ``patches`` and ``stats`` are :class:`ShardedRows`, read from the shards.

    Parameters
    ----------
    path : path-like
        The store folder.
    verify : {"size", "checksum", "none"}
        How hard to check the manifest and each shard (when first opened) against their
        provenance records.
    max_open_shards : int | None
        Shards whose memory maps stay open (two files each); ``None``: the store's own
        (the workflow's ``eeg.max_open_shards``), else 64.

    Attributes
    ----------
    shards : list of dict
        The shard table of ``store.json``.
    max_open_shards : int
    """

    _form = "shards"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        verify: str = "size",
        max_open_shards: int | None = None,
    ) -> None:
        super().__init__(path, verify=verify)
        self.verify = verify
        self.shards: list[dict] = self.header["shards"]
        if max_open_shards is None:
            max_open_shards = self.header.get("max_open_shards", MAX_OPEN_SHARDS)
        self.max_open_shards = check_max_open_shards(max_open_shards)
        self._row_starts = np.concatenate(
            [[0], np.cumsum([s["n_rows"] for s in self.shards], dtype=np.int64)]
        )
        self._open: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._checked: set[int] = set()
        n_patches, patch_len = self.header["n_patches"], self.header["patch_len"]
        n_rows = int(self.header["n_rows"])
        self._patches = ShardedRows(
            self, "patches", (n_rows, n_patches, patch_len), self.header["dtype"]
        )
        self._stats = ShardedRows(self, "stats", (n_rows, 4), np.float32)

    @property
    def patches(self) -> ShardedRows:
        """All rows, read from the shards: shape (n_rows, n_patches, patch_len)."""
        return self._patches

    @property
    def stats(self) -> ShardedRows:
        """Instance-normalisation statistics, read from the shards: shape (n_rows, 4)."""
        return self._stats

    def __repr__(self) -> str:
        return (
            f"ShardedPatchStore({str(self.path)!r}, n_windows={len(self)}, "
            f"n_rows={self.header['n_rows']}, n_shards={len(self.shards)})"
        )

    def shard_path(self, number: int) -> Path:
        """The folder of shard ``number`` (its manifest path, relative to the store)."""
        return self.path / self.shards[number]["path"]

    def part(self):
        raise ArtifactError(
            f"{self.path} is a sharded store; copy its shards instead (concatenate_stores "
            "takes a sharded store among its inputs and reads its shards)."
        )

    def _locate(self, row: int) -> tuple[int, int, int]:
        """The shard holding ``row``, with its first row and the row after its last."""
        shard = int(np.searchsorted(self._row_starts, row, side="right")) - 1
        return shard, int(self._row_starts[shard]), int(self._row_starts[shard + 1])

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        """The memory maps of shard ``number``, through the cache of open shards."""
        if number in self._open:
            self._open.move_to_end(number)
            return self._open[number]
        arrays = self._open_shard(number)
        self._open[number] = arrays
        while len(self._open) > self.max_open_shards:
            # Dropping the last reference closes the maps and their files (rows are
            # handed out as copies, so no view keeps them).
            self._open.popitem(last=False)
        return arrays

    def _open_shard(self, number: int) -> dict[str, np.ndarray]:
        entry = self.shards[number]
        folder = self.shard_path(number)
        where = f"Shard {number} ({entry['path']}) of the sharded store {self.path}"
        rebuild = (
            "Rebuild that recording's store (the eeg_recording stage), then this store "
            "(the eeg_store stage), which records the shards' sizes and checksums."
        )
        if not folder.is_dir():
            raise ArtifactError(
                f"{where} does not exist ({folder}). A sharded store reads its shards in "
                f"place: keep them, or move them together with the store. {rebuild}"
            )
        if self.verify != "none" and number not in self._checked:
            try:
                record = check_artifact(folder, verify=self.verify)
            except NeuroaiError as exc:
                raise ArtifactError(f"{where} is damaged: {exc} {rebuild}") from exc
            output = record.get("output", {})
            changed = [
                f"{k} {entry.get(k)!r} in the manifest, {output.get(k)!r} now"
                for k in RECORD_KEYS
                if entry.get(k) != output.get(k)
            ]
            if changed:
                raise ArtifactError(
                    f"{where} changed after the store was written ({'; '.join(changed)}). "
                    "Rerun the eeg_store stage to list the shards as they are now."
                )
            self._checked.add(number)
        arrays = {}
        expected = {
            "patches": (entry["n_rows"], self.header["n_patches"], self.header["patch_len"]),
            "stats": (entry["n_rows"], 4),
        }
        for name, shape in expected.items():
            try:
                array = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ArtifactError(f"{where}: cannot read {name}.npy ({exc}). {rebuild}") from exc
            if array.shape != tuple(shape):
                raise ArtifactError(
                    f"{where}: {name}.npy has shape {array.shape}, the manifest says "
                    f"{tuple(shape)}. {rebuild}"
                )
            arrays[name] = array
        return arrays

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_open"] = OrderedDict()  # each worker process opens its own shards
        state["_checked"] = set()
        return state
