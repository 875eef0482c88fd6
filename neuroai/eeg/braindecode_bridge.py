"""A patch store as braindecode windows: ``(X, y, inds)`` items and a ``description``.

braindecode trains on windows datasets: one dataset per recording, whose items
are ``(X, y, crop_inds)`` with ``X`` of shape ``(n_chans, n_times)`` and
``crop_inds = [i_window_in_trial, i_start_in_trial, i_stop_in_trial]``, each
dataset with a ``description`` (a :class:`pandas.Series`: subject, session ...)
that ``BaseConcatDataset.description`` stacks into a DataFrame and
``BaseConcatDataset.split(by="subject")`` splits on. :class:`RecordingWindows`
serves a patch store's windows in that form, lazily (one memory-mapped read per
item, as :class:`~neuroai.eeg.EEGPatchDataset`), without importing braindecode;
:func:`store_windows` gives one per recording in a ``torch`` ``ConcatDataset``
with the same ``description``; :func:`to_braindecode` puts them in braindecode's
own ``BaseConcatDataset`` where braindecode is installed.

``X`` is the window's signal rebuilt from its time patches
(:func:`neuroai.eeg.reconstruct_time`): the preprocessed, clipped and
per-channel normalised signal the patches were cut from, float32 (to the
store's precision, 1e-3 relative for float16 stores). Sample positions are at
the store's ``sfreq``, counted from the recording's first sample.

Targets (``target=``):

- ``"label"``: the recording label's index in ``store.header["labels"]``
  (TUAB ``abnormal``/``normal`` ...), -1 when the recording has none;
- ``"events"``: the multi-hot vector over ``store.header["events"]`` (float32);
- an event name (``"seiz"``): 1 when that annotation overlaps the window, else 0;
- ``None``: -1 for every window (self-supervised use).

What this is not: ``BaseConcatDataset.get_metadata`` accepts only braindecode's
own ``WindowsDataset``/``EEGWindowsDataset`` (which hold MNE objects in memory);
:attr:`RecordingWindows.metadata` gives the same columns for one recording.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from torch.utils.data import ConcatDataset

from neuroai.eeg.patches import reconstruct_time
from neuroai.eeg.store import PatchStore, open_patch_store
from neuroai.errors import ConfigError

#: Columns of index.tsv that describe a recording (braindecode's ``description``).
DESCRIPTION_COLUMNS = ("recording", "subject", "session", "split", "label")


def _target_function(store: PatchStore, target: str | None) -> Callable[[int], object]:
    header = store.header
    windows, events = store.windows, store.events
    if target is None:
        return lambda i: -1
    if target == "label":
        return lambda i: int(windows[i]["label"])
    if target == "events":
        return lambda i: np.asarray(events[i], dtype=np.float32)
    if target in header["events"]:
        k = header["events"].index(target)
        return lambda i: int(events[i, k])
    choices = ["label", "events", *header["events"]]
    raise ConfigError(
        f"Invalid value for the 'target' parameter: {target!r}. Use None, 'label', 'events' "
        f"or an annotation label of {store.path}: {choices[2:] or 'none in this store'}."
    )


class RecordingWindows:
    """One recording's windows of a patch store, as a braindecode windows dataset.

    Parameters
    ----------
    store : PatchStore
        An open store (:func:`neuroai.eeg.open_patch_store`).
    windows : ndarray of int
        The store's window numbers of this recording, in time order.
    target : {"label", "events"} | str | None
        See the module docstring.
    transform : callable | None
        Applied to ``X`` (as braindecode's ``transform``).

    Attributes
    ----------
    description : pandas.Series
        ``recording``, ``subject``, ``session``, ``split``, ``label`` (``"n/a"``
        where unknown), ``n_windows``, ``sfreq`` (Hz) and ``store`` (its path).
    metadata : pandas.DataFrame
        One row per window: ``i_window_in_trial``, ``i_start_in_trial``,
        ``i_stop_in_trial`` (samples at ``sfreq``), ``start_s`` and ``target``
        (for scalar targets).
    """

    def __init__(
        self,
        store: PatchStore,
        windows: np.ndarray,
        *,
        target: str | None = "label",
        transform: Callable | None = None,
    ) -> None:
        import pandas as pd

        self.store = store
        self.windows = np.asarray(windows, dtype=np.int64)
        self.target = target
        self.transform = transform
        self._target = _target_function(store, target)
        self.sfreq = float(store.header["sfreq"])
        self.window_samples = int(store.header["window_samples"])
        starts = np.rint(store.windows["start_s"][self.windows] * self.sfreq).astype(np.int64)
        self._inds = np.column_stack(
            [np.arange(len(self.windows)), starts, starts + self.window_samples]
        )
        row = store.index.iloc[int(self.windows[0])] if len(self.windows) else None
        description = {c: str(row[c]) if row is not None else None for c in DESCRIPTION_COLUMNS}
        description.update(n_windows=len(self.windows), sfreq=self.sfreq, store=str(store.path))
        self._description = pd.Series(description)
        self.metadata = pd.DataFrame(
            {
                "i_window_in_trial": self._inds[:, 0],
                "i_start_in_trial": self._inds[:, 1],
                "i_stop_in_trial": self._inds[:, 2],
                "start_s": store.windows["start_s"][self.windows],
            }
        )
        if target != "events":
            self.metadata["target"] = [self._target(int(w)) for w in self.windows]

    @property
    def description(self):
        """The recording's description (a :class:`pandas.Series`)."""
        return self._description

    def set_description(self, description, overwrite: bool = False) -> None:
        """Add entries to :attr:`description` (braindecode's ``set_description``).

        Raises
        ------
        ConfigError
            When a key exists already and ``overwrite`` is False.
        """
        import pandas as pd

        for key, value in dict(description).items():
            if key in self._description and not overwrite:
                raise ConfigError(
                    f"{key!r} is already in the description; pass overwrite=True to replace it."
                )
            self._description = pd.concat(
                [self._description.drop(key, errors="ignore"), pd.Series({key: value})]
            )

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        """``(X, y, [i_window_in_trial, i_start_in_trial, i_stop_in_trial])``.

        ``X`` : ndarray, shape (n_chans, n_times), float32.
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"Window {index} is out of range for {len(self)} windows.")
        index %= len(self)
        window = int(self.windows[index])
        rows = self.store.rows(window)
        signal = reconstruct_time(
            self.store.patches[rows], self.store.stats[rows], self.store.layout
        ).astype(np.float32)
        if self.transform is not None:
            signal = self.transform(signal)
        return signal, self._target(window), self._inds[index].tolist()

    def __repr__(self) -> str:
        return (
            f"RecordingWindows({self._description['recording']!r}, n_windows={len(self)}, "
            f"target={self.target!r})"
        )


class StoreWindows(ConcatDataset):
    """Recordings' windows in one dataset, with braindecode's ``description`` DataFrame."""

    @property
    def description(self):
        """One row per recording (the datasets' descriptions stacked)."""
        import pandas as pd

        return pd.DataFrame([ds.description for ds in self.datasets]).reset_index(drop=True)


def recording_windows(
    store: str | os.PathLike | PatchStore,
    *,
    target: str | None = "label",
    transform: Callable | None = None,
) -> list[RecordingWindows]:
    """One :class:`RecordingWindows` per recording of a store, in the store's order.

    Parameters
    ----------
    store : path-like | PatchStore
    target : {"label", "events"} | str | None
        See the module docstring.
    transform : callable | None
        Applied to each ``X``.
    """
    if not isinstance(store, PatchStore):
        store = open_patch_store(store)
    codes = np.asarray(store.windows["recording"])
    return [
        RecordingWindows(store, np.flatnonzero(codes == k), target=target, transform=transform)
        for k in range(len(store.header["recordings"]))
        if np.any(codes == k)
    ]


def store_windows(
    store: str | os.PathLike | PatchStore,
    *,
    target: str | None = "label",
    transform: Callable | None = None,
):
    """A store's windows as a ``torch`` ``ConcatDataset`` of recordings with a ``description``.

    The braindecode-shaped dataset without braindecode: items ``(X, y, inds)``,
    ``.datasets`` (one :class:`RecordingWindows` per recording) and
    ``.description`` (a DataFrame, one row per recording, as
    ``BaseConcatDataset.description``).
    """
    return StoreWindows(recording_windows(store, target=target, transform=transform))


def to_braindecode(
    store: str | os.PathLike | PatchStore,
    *,
    target: str | None = "label",
    transform: Callable | None = None,
):
    """A store's windows as braindecode's ``BaseConcatDataset`` (braindecode installed).

    Each recording is one dataset (:class:`RecordingWindows`), so
    ``.split(by="subject")``, ``.description`` and ``target_transform`` work as
    for braindecode's own windows datasets.

    Raises
    ------
    ImportError
        When braindecode cannot be imported, with the way to install it.
    """
    try:
        from braindecode.datasets import BaseConcatDataset
    except (ImportError, OSError) as exc:
        raise ImportError(
            "to_braindecode needs braindecode (pip install 'neuroai[braindecode]', or "
            "pip install braindecode, whose torchaudio must match the installed torch). "
            f"Importing it failed: {exc}. Without it, store_windows gives the same items "
            "and description in a torch ConcatDataset."
        ) from exc
    return BaseConcatDataset(recording_windows(store, target=target, transform=transform))
