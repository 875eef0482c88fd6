"""A PyTorch Dataset over one or more patch stores, reading windows lazily.

:class:`EEGPatchDataset` serves window ``i`` as one contiguous read of a
memory-mapped store (no window is loaded before it is asked for, and nothing is
cached), so memory does not grow with the cohort and many DataLoader workers
can share the stores. Several stores combine into one dataset for compound
pretraining (TUAB + TUAR + a BIDS cohort ...): they must share the patch
layout and sampling rate; label and event vocabularies are merged.

Each item is a dict::

    time        (n_channels, T, patch_len)  tensor, stored dtype  instance-normalised time patches
    spectrum    (n_channels, S, patch_len)  tensor, stored dtype  instance-normalised FFT-amplitude patches
    stats       (n_channels, 4)             tensor, float32       time mean/SD, spectrum mean/SD
    events      (n_events,)                 tensor, float32       multi-hot over .events
    label       int                         index in .labels, -1 when unlabelled
    channel_set int                         index in .channel_sets
    index       int                         the item's position in the dataset

Patches come out in the store's precision (float16 by default): converting half
precision on the CPU costs more than reading the window (~0.5 ms against
~0.05 ms), while ``batch["time"].float()`` on the accelerator is free. Pass
``dtype=torch.float32`` to convert in the workers instead.

Windows with different channel counts (``montage=None`` stores) are batched by
:func:`collate_windows`, which pads channels and returns a ``channel_mask``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai.eeg.store import open_patch_store
from neuroai.errors import ArtifactError


class EEGPatchDataset(Dataset):
    """Windows of one or more patch stores as tensors (see the module docstring).

    Parameters
    ----------
    stores : path-like or sequence of path-like
        Patch-store folders (:mod:`neuroai.eeg.store`).
    split : str | None
        Keep only windows of this split (``train``, ``dev``, ``eval``).
    verify : {"size", "checksum", "none"}
        How hard to check each store against its provenance when opening it.
    dtype : torch.dtype | None
        Convert patches to this type; ``None`` keeps the stored precision.

    Attributes
    ----------
    labels : list of str
        Recording labels of all stores, sorted.
    events : list of str
        Annotation labels of all stores, sorted.
    channel_sets : list of list of str
        Distinct channel sets of all stores.
    segments : dict
        ``{"time": [0, T], "spectrum": [T, T + S]}``.
    """

    def __init__(
        self,
        stores: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        split: str | None = None,
        verify: str = "size",
        dtype: torch.dtype | None = None,
    ) -> None:
        self.dtype = dtype
        if isinstance(stores, (str, os.PathLike)):
            stores = [stores]
        if not stores:
            raise ArtifactError("EEGPatchDataset needs at least one patch store.")
        self.stores = [open_patch_store(path, verify=verify) for path in stores]
        first = self.stores[0].header
        for store in self.stores[1:]:
            for key in ("sfreq", "window_samples", "patch_len", "patch_stride", "segments"):
                if store.header[key] != first[key]:
                    raise ArtifactError(
                        f"Cannot combine {self.stores[0].path} and {store.path}: {key} differs "
                        f"({first[key]} vs {store.header[key]}). Stores combined for training "
                        "must share the sampling rate and patch layout."
                    )
        self.segments = first["segments"]
        self.labels = sorted({lab for s in self.stores for lab in s.header["labels"]})
        self.events = sorted({ev for s in self.stores for ev in s.header["events"]})
        self.channel_sets: list[list[str]] = []
        # Per store: small lookup tables from its codes to the dataset's codes.
        self._label_map, self._event_map, self._set_map = [], [], []
        store_ids, windows = [], []
        for number, store in enumerate(self.stores):
            header = store.header
            for names in header["channel_sets"]:
                if list(names) not in self.channel_sets:
                    self.channel_sets.append(list(names))
            self._set_map.append(
                np.array(
                    [self.channel_sets.index(list(n)) for n in header["channel_sets"]],
                    dtype=np.int64,
                )
            )
            self._label_map.append(
                np.array([self.labels.index(n) for n in header["labels"]] + [-1], dtype=np.int64)
            )
            self._event_map.append(
                np.array([self.events.index(n) for n in header["events"]], dtype=np.int64)
            )
            chosen = np.arange(len(store), dtype=np.int64)
            if split is not None:
                code = header["splits"].index(split) if split in header["splits"] else -2
                chosen = np.flatnonzero(store.windows["split"] == code).astype(np.int64)
            store_ids.append(np.full(chosen.size, number, dtype=np.int32))
            windows.append(chosen)
        self._store = np.concatenate(store_ids)
        self._window = np.concatenate(windows)

    def __len__(self) -> int:
        return int(self._window.size)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Index {index} is out of range for {len(self)} windows.")
        index = int(index) % len(self)
        number = int(self._store[index])
        store = self.stores[number]
        window = int(self._window[index])
        entry = store.windows[window]
        rows = slice(int(entry["row"]), int(entry["row"]) + int(entry["n_channels"]))
        block = torch.from_numpy(np.array(store.patches[rows]))  # one contiguous read
        if self.dtype is not None:
            block = block.to(self.dtype)
        time_end = self.segments["time"][1]
        events = np.zeros(len(self.events), dtype=np.float32)
        events[self._event_map[number][np.flatnonzero(store.events[window])]] = 1.0
        return {
            "time": block[:, :time_end],
            "spectrum": block[:, time_end:],
            "stats": torch.from_numpy(np.array(store.stats[rows])),
            "events": torch.from_numpy(events),
            "label": int(self._label_map[number][int(entry["label"])]),
            "channel_set": int(self._set_map[number][int(entry["channel_set"])]),
            "index": index,
        }

    def label_counts(self) -> dict[str, int]:
        """Windows per recording label (``unlabelled`` for none)."""
        counts: dict[str, int] = {}
        for number, store in enumerate(self.stores):
            chosen = self._window[self._store == number]
            codes = self._label_map[number][store.windows["label"][chosen]]
            for code in codes:
                name = self.labels[code] if code >= 0 else "unlabelled"
                counts[name] = counts.get(name, 0) + 1
        return counts


def collate_windows(batch: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Stack dataset items into a batch, padding channels when their counts differ.

    Returns
    -------
    dict
        The item keys with a leading batch axis (channels padded with zeros to
        the largest count) and ``channel_mask`` of shape (batch, max_channels),
        True where a channel is real.
    """
    n_channels = [item["time"].shape[0] for item in batch]
    width = max(n_channels)
    out: dict[str, torch.Tensor] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if not isinstance(values[0], torch.Tensor):
            out[key] = torch.tensor(values)
        elif key in ("time", "spectrum", "stats") and len(set(n_channels)) > 1:
            padded = values[0].new_zeros((len(batch), width, *values[0].shape[1:]))
            for i, value in enumerate(values):
                padded[i, : value.shape[0]] = value
            out[key] = padded
        else:
            out[key] = torch.stack(values)
    mask = torch.zeros((len(batch), width), dtype=torch.bool)
    for i, count in enumerate(n_channels):
        mask[i, :count] = True
    out["channel_mask"] = mask
    return out
