"""EEG windows of patch stores for the training engine: window tables, splits, data module.

:func:`window_table` lists the windows of one or more patch stores (compound corpora)
in the order :class:`~neuroai.eeg.dataset.EEGPatchDataset` serves them, with their
recording, patient, session, split, recording label and annotation labels. A patient is
a subject of a patient namespace (:mod:`neuroai.eeg.patients`): the TUH corpora share
one (``tuh``), so a person in TUAB and TUSZ is one patient; any other store is its own.
:func:`recording_split` splits the recordings by patient (never the windows of one
recording, and never one patient's recordings, whichever stores hold them) into train /
validation / test. Each store's test patients are chosen from that store alone (its own
held-out split, TUH's ``eval`` folders, when it has one; else a seeded share of its
subjects), and a patient tested through any store is tested in every store. The
compound pretraining table therefore holds out every test patient of each downstream
task's table (given the stores of the tasks it does not read, ``downstream``): no
downstream test patient is pretrained on. :func:`split_frame` is the ``splits.tsv``
record of a trained model (which patient was used how) and :func:`seen_test_subjects`
checks a model's pretraining record against a task's test patients. :class:`EEGWindowDataModule`
serves the chosen windows' spectral patches, with task targets when fine-tuning,
through the engine's resumable, seeded loaders.

Each item is ``{"inputs": (n_chans, n_patches, patch_len) float32, "target": ...,
"index": row in the window table}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.evaluation.splits import Split, fixed_split
from neuroai.models.base import INPUTS, TARGET
from neuroai.training.datamodules import EngineDataModule

logger = get_logger(__name__)

TABLE_COLUMNS = (
    "store",
    "window",
    "recording",
    "subject",
    "session",
    "split",
    "label",
    "events",
    "start_s",
)
#: Store splits that are held out for testing when present.
TEST_SPLITS = ("eval", "test")
#: Columns of ``splits.tsv``; ``patient`` is ``<namespace>/<subject>`` (the dataset's
#: patient namespace: ``tuh`` for the TUH corpora, else the dataset's name).
SPLITS_COLUMNS = ("dataset", "subject", "session", "recording", "split", "patient")
#: What a ``splits.tsv`` row may say: pretraining (self-supervised) training, supervised
#: training, validation (model selection), test (held out).
SPLIT_NAMES = ("pretrain", "train", "val", "test")
#: Store identifiers that mean "unknown" (then each recording is its own subject).
_UNKNOWN = ("", "n/a", "None")


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
        stores: ``<store>/<recording>``), ``subject`` (the patient,
        ``<namespace>/<subject>``: the store's patient namespace, ``store.json["patients"]``,
        or the store's name when its header has none; ``<store>/<recording>`` when the
        store does not know the subject), ``session``, ``split``, ``label``, ``events``
        (``;``-separated), ``start_s`` (seconds).
    """
    import pandas as pd

    from neuroai.eeg.patients import store_patient_namespace
    from neuroai.eeg.store import open_patch_store

    names = [store_name(p) for p in stores]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"Patch stores {list(map(str, stores))} share a name; give distinct stores."
        )
    frames = []
    for name, path in zip(names, stores, strict=True):
        store = open_patch_store(path, verify=verify)
        namespace = store_patient_namespace(store.header, name)
        index = store.index
        subject = namespace + "/" + index["subject"].astype(str)
        unknown = index["subject"].astype(str).isin(_UNKNOWN).to_numpy()
        if unknown.any():
            logger.warning(
                "%s: %d windows have no subject; each of their recordings counts as its own "
                "subject in the splits (a patient with several recordings may then be on both "
                "sides). Give the store subject identities (BIDS sub-, TUH patient).",
                path,
                int(unknown.sum()),
            )
            subject = subject.where(~unknown, name + "/" + index["recording"].astype(str))
        frames.append(
            pd.DataFrame(
                {
                    "store": name,
                    "window": index["window"].to_numpy(np.int64),
                    "recording": name + "/" + index["recording"].astype(str),
                    "subject": subject,
                    "session": index["session"].astype(str),
                    "split": index["split"].astype(str),
                    "label": index["label"].astype(str),
                    "events": index["events"].astype(str),
                    "start_s": index["start_s"].to_numpy(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def held_out_patients(
    table,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_splits: Sequence[str] = TEST_SPLITS,
) -> set[str]:
    """The test patients of each store of a window table, chosen store by store.

    A store's test patients are every patient with a recording in its own held-out split
    (``test_splits``) when it has one, else ``test_fraction`` of its patients (seeded
    with ``seed``): they depend on that store and the settings only, never on the other
    stores of the table.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`window_table`.
    test_fraction, seed, test_splits
        As in :func:`recording_split`.

    Returns
    -------
    set of str
        Patients (the table's ``subject`` values) tested through any of its stores.
    """
    recordings = table.drop_duplicates("recording")
    tested: set[str] = set()
    for store, part in recordings.groupby("store", sort=False):
        ids = part["recording"].tolist()
        groups = part["subject"].tolist()
        held_out = [r for r, s in zip(ids, part["split"], strict=True) if s in test_splits]
        if held_out:
            chosen = fixed_split(ids, test_ids=held_out, groups=groups)
            moved = len(chosen.test) - len(held_out)
            if moved:
                logger.warning(
                    "%s: %d recordings outside the held-out split belong to its test subjects; "
                    "they are tested too, never trained on",
                    store,
                    moved,
                )
        else:
            chosen = fixed_split(ids, test_fraction=test_fraction, seed=seed, groups=groups)
        patient = dict(zip(ids, groups, strict=True))
        tested.update(patient[r] for r in chosen.test)
    return tested


def recording_split(
    table,
    *,
    n_val: int = 2,
    test_fraction: float = 0.2,
    seed: int = 0,
    test_splits: Sequence[str] = TEST_SPLITS,
    downstream=None,
) -> Split:
    """Train / validation / test recordings of a window table, by patient.

    Test patients are chosen store by store, from that store's recordings alone
    (:func:`held_out_patients`): every patient with a recording in the store's own held-out
    split (``test_splits``) when it has one, else ``test_fraction`` of its patients
    (seeded with ``seed``). All the recordings of a test patient are tested, in every
    store of the table: a TUH patient tested through TUAB is not trained on through TUSZ
    (the stores share the patient namespace ``tuh``, see :mod:`neuroai.eeg.patients`).
    A store's test patients do not depend on the other stores of the table, so with the
    same settings a table holds out every test patient of any task whose stores it holds;
    the test patients of the ``downstream`` stores (tasks' stores that are not in
    ``table``) are held out too. ``n_val`` training recordings (whole patients) are then
    kept for validation.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`window_table`.
    n_val : int
        Validation recordings (rounded up to whole patients).
    test_fraction : float
        Share of a store's patients tested on when the store has no held-out split.
    seed : int
        Seed of the test draw (per store) and of the validation draw.
    test_splits : sequence of str
        Store splits that are held out.
    downstream : pandas.DataFrame | None
        The window table of other stores (the downstream tasks' stores that ``table``
        does not hold): their test patients, chosen the same way, are tested here too.

    Returns
    -------
    Split
        Recording keys (the table's ``recording`` column) per part.
    """
    rule = {"test_fraction": test_fraction, "seed": seed, "test_splits": test_splits}
    tested = held_out_patients(table, **rule)
    if downstream is not None and len(downstream):
        through = (held_out_patients(downstream, **rule) & set(table["subject"])) - tested
        if through:
            logger.info(
                "%d patients of these stores are test patients of the downstream stores %s "
                "(a shared patient namespace); their recordings are held out",
                len(through),
                sorted(set(downstream["store"])),
            )
        tested |= through
    recordings = table.drop_duplicates("recording")
    ids = recordings["recording"].tolist()
    groups = recordings["subject"].tolist()
    test = [r for r, p in zip(ids, groups, strict=True) if p in tested]
    return fixed_split(ids, n_val=n_val, seed=seed, test_ids=test, groups=groups)


def split_frame(table, parts: Mapping[str, Sequence[str]]):
    """The ``splits.tsv`` record of a trained model: the split of each recording used.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`window_table`.
    parts : mapping
        Split name (:data:`SPLIT_NAMES`) -> recording keys.

    Returns
    -------
    pandas.DataFrame
        :data:`SPLITS_COLUMNS`: ``dataset`` (store name), ``subject``, ``session`` and
        ``recording`` as the store names them, ``split``, and ``patient``
        (``<namespace>/<subject>``, the identity the splits match patients by across
        datasets); one row per recording, in table order.
    """
    import pandas as pd

    unknown = sorted(set(parts) - set(SPLIT_NAMES))
    if unknown:
        raise DataError(f"split_frame: splits {unknown} are not among {list(SPLIT_NAMES)}.")
    split_of: dict[str, str] = {}
    for name, keys in parts.items():
        for key in keys:
            if split_of.setdefault(key, name) != name:
                raise DataError(
                    f"split_frame: recording {key} is in both {split_of[key]} and {name}."
                )
    rows = table.drop_duplicates("recording")
    rows = rows[rows["recording"].isin(split_of.keys())]

    def own(column):  # without the store or namespace (neither holds a "/")
        return [v.split("/", 1)[1] for v in rows[column]]

    return pd.DataFrame(
        {
            "dataset": rows["store"].to_numpy(),
            "subject": own("subject"),
            "session": rows["session"].to_numpy(),
            "recording": own("recording"),
            "split": rows["recording"].map(split_of).to_numpy(),
            "patient": rows["subject"].to_numpy(),
        },
        columns=list(SPLITS_COLUMNS),
    )


def patients_of(table, recordings: Sequence[str]) -> list[str]:
    """Patients (``<namespace>/<subject>``, sorted) of ``recordings`` of a window table."""
    return sorted(set(table.loc[table["recording"].isin(set(recordings)), "subject"]))


def seen_test_subjects(table, pretraining: Mapping[str, Sequence[str]], test: Sequence[str]):
    """Patients of the ``test`` recordings whom a pretraining read.

    Parameters
    ----------
    table : pandas.DataFrame
        The task's window table (:func:`window_table`).
    pretraining : mapping
        The pretraining's split (the ``split`` record of a pretrained model: ``train``
        and ``val`` recording keys, and ``patients``, the patients of those recordings).
        ``patients`` catches a patient read through a store the task does not use (TUSZ
        pretraining, TUAB task); a record without it (a model pretrained before it was
        recorded) is matched through the task's own recordings only.
    test : sequence of str
        The task's test recordings.

    Returns
    -------
    list of str
        Patients (``<namespace>/<subject>``), sorted; empty when none was seen.
    """
    used = set(pretraining.get("train", [])) | set(pretraining.get("val", []))
    seen = set(patients_of(table, used)) | set(pretraining.get("patients", []))
    return sorted(seen & set(patients_of(table, test)))


def rows_of(table, recordings: Sequence[str], candidates: np.ndarray | None = None) -> np.ndarray:
    """Table rows (sorted) of the windows of ``recordings``, among ``candidates`` rows."""
    chosen = np.flatnonzero(table["recording"].isin(set(recordings)).to_numpy())
    if candidates is not None:
        chosen = np.intersect1d(chosen, candidates)
    return chosen.astype(np.int64)


#: What a window is served as: EEGFormer's spectral patches, or the time patches
#: (EEGNet and other models of the signal itself).
PARTS = ("spectrum", "time")


class EEGWindowDataset(Dataset):
    """Spectral (or time) patches of chosen windows, with targets (see the module docstring).

    Parameters
    ----------
    base : EEGPatchDataset
        The stores, as one dataset (the window table's row ``r`` is ``base[r]``).
    rows : array-like of int
        Rows served, in this order.
    targets : array-like | None
        One target per row: int class indices or float multi-hot vectors.
    part : {"spectrum", "time"}
        Which patches of a window are its input.
    """

    def __init__(self, base, rows: Sequence[int], targets=None, *, part: str = "spectrum") -> None:
        check_option("part", part, PARTS)
        self.part = part
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64)
        if targets is not None and len(targets) != len(self.rows):
            raise DataError(f"{len(targets)} targets for {len(self.rows)} windows.")
        self.targets = None if targets is None else np.asarray(targets)

    def __len__(self) -> int:
        return int(self.rows.size)

    def get_item(self, index: int, seed: int) -> dict:
        row = int(self.rows[index])
        item = {INPUTS: self.base[row][self.part].float(), "index": row}
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
    part : {"spectrum", "time"}
        Which patches of a window are its input (EEGFormer: spectrum; EEGNet: time).
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
        part: str = "spectrum",
        **loader,
    ) -> None:
        from neuroai.eeg.dataset import EEGPatchDataset

        super().__init__(**loader)
        if len(train_rows) == 0:
            raise DataError(f"No training windows in {[str(s) for s in stores]}.")
        base = EEGPatchDataset(list(stores))
        self._train = EEGWindowDataset(base, train_rows, train_targets, part=part)
        self._val = (
            EEGWindowDataset(base, val_rows, val_targets, part=part) if len(val_rows) else None
        )

    def train_dataset(self) -> Dataset:
        return self._train

    def val_dataset(self) -> Dataset | None:
        return self._val


def iterate_windows(base, rows: Sequence[int], batch_size: int, *, part: str = "spectrum"):
    """Batches ``(rows, patches)`` of spectral (or time) patches ``(b, C, S, P)`` float32."""
    check_option("part", part, PARTS)
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, rows.size, batch_size):
        chunk = rows[start : start + batch_size]
        yield chunk, torch.stack([base[int(r)][part].float() for r in chunk])
