"""EEG windows of patch stores for the training engine: window tables, splits, data module.

:func:`window_table` lists the windows of one or more patch stores (compound corpora)
in the order :class:`~neuroai.eeg.dataset.EEGPatchDataset` serves them, with their
recording, subject, split, recording label and annotation labels. :func:`recording_split`
splits the recordings (never the windows of one recording, and never one subject's
recordings) into train / validation / test: a store's own held-out split (TUH's
``eval`` folders) is the test set when there is one. :class:`EEGWindowDataModule`
serves the chosen windows' spectral patches, with task targets when fine-tuning,
through the engine's resumable, seeded loaders.

Each item is ``{"inputs": (n_chans, n_patches, patch_len) float32, "target": ...,
"index": row in the window table}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai.errors import ConfigError, DataError
from neuroai.evaluation.splits import Split, fixed_split
from neuroai.models.base import INPUTS, TARGET
from neuroai.training.datamodules import EngineDataModule

TABLE_COLUMNS = ("store", "window", "recording", "subject", "split", "label", "events", "start_s")
#: Store splits that are held out for testing when present.
TEST_SPLITS = ("eval", "test")


def store_name(path: str | os.PathLike) -> str:
    """Name of a store in tables: its dataset folder (``results/eeg/<name>/store``)."""
    path = Path(path)
    return path.parent.name if path.name == "store" else path.name


def store_layout(stores: Sequence[str | os.PathLike]) -> dict:
    """What a model must match to read ``stores``: the stores' shared patch layout.

    Returns
    -------
    dict
        ``n_chans``, ``n_times`` (samples per window), ``sfreq`` (Hz),
        ``patch_len``, ``patch_stride`` (the EEGFormer config fields) and
        ``channels`` (names, in row order).

    Raises
    ------
    ConfigError
        When the stores differ in layout or channels (build them with the same
        EEG parameters and a montage).
    """
    from neuroai.eeg.store import open_patch_store

    if not stores:
        raise ConfigError("No patch stores given.")
    layouts = []
    for path in stores:
        header = open_patch_store(path).header
        sets = header["channel_sets"]
        if len(sets) != 1:
            raise ConfigError(
                f"{path} holds windows with {len(sets)} different channel sets; EEGFormer needs "
                "one channel layout. Build the store with a montage (eeg.montage, e.g. tcp_22)."
            )
        layouts.append(
            {
                "n_chans": len(sets[0]),
                "n_times": int(header["window_samples"]),
                "sfreq": float(header["sfreq"]),
                "patch_len": int(header["patch_len"]),
                "patch_stride": int(header["patch_stride"]),
                "channels": list(sets[0]),
            }
        )
    for path, layout in zip(stores[1:], layouts[1:], strict=True):
        differ = [k for k in layouts[0] if layout[k] != layouts[0][k]]
        if differ:
            raise ConfigError(
                f"{stores[0]} and {path} differ in {', '.join(differ)}; stores trained on "
                "together must share the sampling rate, window, patch layout and channels."
            )
    return layouts[0]


def window_table(stores: Sequence[str | os.PathLike], *, verify: str = "size"):
    """One row per window of ``stores``, in :class:`EEGPatchDataset` order.

    Parameters
    ----------
    stores : sequence of path-like
        Patch-store folders.
    verify : {"size", "checksum", "none"}
        How hard to check each store against its provenance.

    Returns
    -------
    pandas.DataFrame
        Columns ``store``, ``window`` (within its store), ``recording`` (unique over
        stores: ``<store>/<recording>``), ``subject`` (``<store>/<subject>``),
        ``split``, ``label``, ``events`` (``;``-separated), ``start_s`` (seconds).
    """
    import pandas as pd

    from neuroai.eeg.store import open_patch_store

    names = [store_name(p) for p in stores]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"Patch stores {list(map(str, stores))} share a name; give distinct stores."
        )
    frames = []
    for name, path in zip(names, stores, strict=True):
        index = open_patch_store(path, verify=verify).index
        frames.append(
            pd.DataFrame(
                {
                    "store": name,
                    "window": index["window"].to_numpy(np.int64),
                    "recording": name + "/" + index["recording"].astype(str),
                    "subject": name + "/" + index["subject"].astype(str),
                    "split": index["split"].astype(str),
                    "label": index["label"].astype(str),
                    "events": index["events"].astype(str),
                    "start_s": index["start_s"].to_numpy(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def recording_split(
    table,
    *,
    n_val: int = 2,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_splits: Sequence[str] = TEST_SPLITS,
) -> Split:
    """Train / validation / test recordings of a window table.

    Recordings whose store split is in ``test_splits`` form the test set; when no
    store has one, ``test_fraction`` of the subjects do (seeded). ``n_val`` training
    recordings (whole subjects) are kept for validation.

    Returns
    -------
    Split
        Recording keys (the table's ``recording`` column) per part.
    """
    recordings = table.drop_duplicates("recording")
    ids = recordings["recording"].tolist()
    groups = recordings["subject"].tolist()
    held_out = [r for r, s in zip(ids, recordings["split"], strict=True) if s in test_splits]
    if held_out:
        return fixed_split(ids, n_val=n_val, seed=seed, test_ids=held_out, groups=groups)
    return fixed_split(ids, test_fraction=test_fraction, n_val=n_val, seed=seed, groups=groups)


def rows_of(table, recordings: Sequence[str], candidates: np.ndarray | None = None) -> np.ndarray:
    """Table rows (sorted) of the windows of ``recordings``, among ``candidates`` rows."""
    chosen = np.flatnonzero(table["recording"].isin(set(recordings)).to_numpy())
    if candidates is not None:
        chosen = np.intersect1d(chosen, candidates)
    return chosen.astype(np.int64)


class EEGWindowDataset(Dataset):
    """Spectral patches of chosen windows, with targets (see the module docstring).

    Parameters
    ----------
    base : EEGPatchDataset
        The stores, as one dataset (the window table's row ``r`` is ``base[r]``).
    rows : array-like of int
        Rows served, in this order.
    targets : array-like | None
        One target per row: int class indices or float multi-hot vectors.
    """

    def __init__(self, base, rows: Sequence[int], targets=None) -> None:
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64)
        if targets is not None and len(targets) != len(self.rows):
            raise DataError(f"{len(targets)} targets for {len(self.rows)} windows.")
        self.targets = None if targets is None else np.asarray(targets)

    def __len__(self) -> int:
        return int(self.rows.size)

    def get_item(self, index: int, seed: int) -> dict:
        row = int(self.rows[index])
        item = {INPUTS: self.base[row]["spectrum"].float(), "index": row}
        if self.targets is not None:
            item[TARGET] = torch.as_tensor(self.targets[index])
        return item

    def __getitem__(self, index: int) -> dict:
        return self.get_item(index, index)


class EEGWindowDataModule(EngineDataModule):
    """Train and validation windows of patch stores for pretraining or fine-tuning.

    Parameters
    ----------
    stores : sequence of path-like
        The patch stores (combined in this order).
    train_rows, val_rows : array-like of int
        Window-table rows of each part (``val_rows`` may be empty).
    train_targets, val_targets : array-like | None
        Targets of those rows (None for self-supervised pretraining).
    **loader
        ``batch_size``, ``seed``, ``num_workers``, ``val_batch_size``.
    """

    def __init__(
        self,
        stores: Sequence[str | os.PathLike],
        train_rows: Sequence[int],
        val_rows: Sequence[int] = (),
        *,
        train_targets=None,
        val_targets=None,
        **loader,
    ) -> None:
        from neuroai.eeg.dataset import EEGPatchDataset

        super().__init__(**loader)
        if len(train_rows) == 0:
            raise DataError(f"No training windows in {[str(s) for s in stores]}.")
        base = EEGPatchDataset(list(stores))
        self._train = EEGWindowDataset(base, train_rows, train_targets)
        self._val = EEGWindowDataset(base, val_rows, val_targets) if len(val_rows) else None

    def train_dataset(self) -> Dataset:
        return self._train

    def val_dataset(self) -> Dataset | None:
        return self._val


def iterate_windows(base, rows: Sequence[int], batch_size: int):
    """Batches ``(rows, patches)`` of spectral patches ``(b, C, S, P)`` float32, in order."""
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, rows.size, batch_size):
        chunk = rows[start : start + batch_size]
        yield chunk, torch.stack([base[int(r)]["spectrum"].float() for r in chunk])
