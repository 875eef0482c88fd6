"""Windows of fMRI volume tokens for TABLeT: random windows to train, all windows to evaluate.

A subject's token store ``(n_frames, K, F)`` (see :func:`neuroai.tokenizers.read_token_store`)
is read memory-mapped. Training draws **one random window of ``window`` frames per subject
per epoch** (its start from the item's seed, so a resumed or distributed run draws the
same windows); evaluation cuts every subject into **non-overlapping windows** from frame 0
(the last one shorter). A window shorter than ``window`` frames (a short run, the tail)
is padded with zeros and its ``frame_mask`` marks the padding, which the model never
attends to. For pretraining each item also carries a random token mask.

Items are dicts: ``inputs`` ``(window, K, F)`` float32, ``frame_mask`` ``(window,)`` bool,
``tr`` (s, float32), ``id`` (subject), ``start`` (first frame), and ``target`` and
``token_mask`` ``(window, K)`` when asked.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import INPUTS, TARGET
from neuroai.training.datamodules import EngineDataModule

MODES = ("random", "all")


def tile_starts(n_frames: int, window: int) -> list[int]:
    """First frames of the non-overlapping windows that tile ``n_frames``, tail included.

    Unlike :func:`neuroai.fmri.window_starts` (sliding windows that fit, the tail
    left out), the last tile may be shorter than ``window``; :func:`pad_window`
    pads it.

    Raises
    ------
    ConfigError
        When ``window < 1``.
    DataError
        When the store has no frame.
    """
    if window < 1:
        raise ConfigError(f"The window must be at least 1 frame, got {window!r}.")
    if n_frames < 1:
        raise DataError(f"Cannot cut {n_frames} frames into windows of {window}: no frame.")
    return list(range(0, n_frames, window))


def __getattr__(name: str):
    if name == "window_starts":
        warnings.warn(
            "neuroai.training.token_data.window_starts was renamed tile_starts (it tiles, "
            "tail included; neuroai.fmri.window_starts places sliding windows). The old "
            "name will be removed.",
            FutureWarning,
            stacklevel=2,
        )
        return tile_starts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pad_window(tokens: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[start, start + window)`` of ``tokens``, zero-padded at the end.

    Parameters
    ----------
    tokens : ndarray, shape (n_frames, K, F)
        A token store (memory-mapped is fine).
    start, window : int
        First frame and window length in frames.

    Returns
    -------
    inputs : ndarray, shape (window, K, F), float32
    frame_mask : ndarray, shape (window,), bool
        True for real frames.
    """
    part = np.asarray(tokens[start : start + window], dtype=np.float32)
    n = part.shape[0]
    out = np.zeros((window, *tokens.shape[1:]), np.float32)
    out[:n] = part
    mask = np.zeros(window, bool)
    mask[:n] = True
    return out, mask


class TokenWindows(Dataset):
    """Token windows of a list of subjects (see the module docstring).

    Parameters
    ----------
    paths : sequence of path-like
        Token stores, one per subject.
    window : int
        Frames per window (256 in TABLeT).
    mode : {"random", "all"}
        One random window per subject (training), or every non-overlapping window.
    targets : sequence | None
        One target per subject (a class index or a value).
    trs : sequence of float | None
        TR in seconds per subject (from the stores' records when None).
    mask_ratio : float | None
        Add a random ``token_mask`` hiding this fraction of the real tokens.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        window: int,
        mode: str = "random",
        targets: Sequence | None = None,
        trs: Sequence[float] | None = None,
        mask_ratio: float | None = None,
    ) -> None:
        from neuroai.tokenizers import read_token_store

        check_option("mode", mode, MODES)
        if window < 1:
            raise ConfigError(f"window must be >= 1 frame, got {window}.")
        self.paths = [Path(p) for p in paths]
        self.window, self.mode, self.mask_ratio = int(window), mode, mask_ratio
        if targets is not None and len(targets) != len(self.paths):
            raise DataError(f"{len(targets)} targets for {len(self.paths)} token stores.")
        self.targets = None if targets is None else list(targets)
        self.n_frames, stored_trs = [], []
        for path in self.paths:
            store = read_token_store(path)
            self.n_frames.append(int(store.tokens.shape[0]))
            stored_trs.append(store.tr)
            self.shape = tuple(store.tokens.shape[1:])
        trs = list(trs) if trs is not None else stored_trs
        missing = [str(p) for p, tr in zip(self.paths, trs, strict=True) if not tr or tr <= 0]
        if missing:
            raise DataError(f"No TR for {missing[0]} (its record has none); give trs= explicitly.")
        self.trs = [float(t) for t in trs]
        if mode == "random":
            self.index = [(i, None) for i in range(len(self.paths))]
        else:
            self.index = [
                (i, s) for i, n in enumerate(self.n_frames) for s in tile_starts(n, self.window)
            ]
        self._arrays: dict[int, np.ndarray] = {}

    def _tokens(self, i: int) -> np.ndarray:
        if i not in self._arrays:
            self._arrays[i] = np.load(self.paths[i], mmap_mode="r", allow_pickle=False)
        return self._arrays[i]

    def __len__(self) -> int:
        return len(self.index)

    def subject(self, index: int) -> str:
        """Subject id (the store's name before ``_tokens``) of item ``index``."""
        return self.paths[self.index[index][0]].name.split("_tokens")[0]

    def get_item(self, index: int, seed: int) -> dict:
        file, start = self.index[index]
        rng = np.random.default_rng(seed)
        if start is None:
            start = int(rng.integers(0, max(self.n_frames[file] - self.window, 0) + 1))
        inputs, frame_mask = pad_window(self._tokens(file), start, self.window)
        item = {
            INPUTS: torch.from_numpy(inputs),
            "frame_mask": torch.from_numpy(frame_mask),
            "tr": torch.tensor(self.trs[file], dtype=torch.float32),
            "id": self.subject(index),
            "start": start,
        }
        if self.targets is not None:
            item[TARGET] = torch.tensor(self.targets[file], dtype=torch.float32)
        if self.mask_ratio is not None:
            from neuroai.models.objectives.masked_tokens import random_token_mask

            mask = random_token_mask(frame_mask, self.shape[0], self.mask_ratio, rng)
            item["token_mask"] = torch.from_numpy(mask)
        return item

    def __getitem__(self, index: int) -> dict:
        return self.get_item(index, index)


class TokenWindowDataModule(EngineDataModule):
    """Random training windows and all validation windows of token stores.

    Parameters
    ----------
    train_paths, val_paths : sequence of path-like
        Token stores (``val_paths`` may be empty).
    window : int
        Frames per window.
    train_targets, val_targets : sequence | None
        One target per subject (None for pretraining).
    train_trs, val_trs : sequence of float | None
        TR per subject (from the stores when None).
    mask_ratio : float | None
        Token masks for masked token modelling.
    **loader
        ``batch_size``, ``seed``, ``num_workers``, ``val_batch_size``.
    """

    def __init__(
        self,
        train_paths: Sequence[str | os.PathLike],
        val_paths: Sequence[str | os.PathLike] = (),
        *,
        window: int,
        train_targets: Sequence | None = None,
        val_targets: Sequence | None = None,
        train_trs: Sequence[float] | None = None,
        val_trs: Sequence[float] | None = None,
        mask_ratio: float | None = None,
        **loader,
    ) -> None:
        super().__init__(**loader)
        self._train = TokenWindows(
            train_paths,
            window=window,
            mode="random",
            targets=train_targets,
            trs=train_trs,
            mask_ratio=mask_ratio,
        )
        self._val = (
            TokenWindows(
                val_paths,
                window=window,
                mode="all",
                targets=val_targets,
                trs=val_trs,
                mask_ratio=mask_ratio,
            )
            if len(val_paths)
            else None
        )

    def train_dataset(self) -> Dataset:
        return self._train

    def val_dataset(self) -> Dataset | None:
        return self._val


# -- the cohort: a token-store index and its split ------------------------------------------


def read_token_index(path: str | os.PathLike):
    """Read a token-store ``index.tsv`` (the ``tokens_summary`` stage), paths made absolute.

    Returns
    -------
    pandas.DataFrame
        One row per subject: ``participant_id``, ``tokens`` (absolute path), ``n_frames``,
        ``tr`` (s) and the participants.tsv labels (``site``, ``mean_fc`` on the demo).
    """
    from neuroai.io.store import load_table

    path = Path(path)
    table = load_table(path)
    for column in ("participant_id", "tokens", "tr"):
        if column not in table.columns:
            raise DataError(
                f"{path} has no {column!r} column; a token-store index (tokens_summary stage) "
                "has participant_id, tokens, n_frames, tr and the participants' labels."
            )
    table["participant_id"] = table["participant_id"].astype(str)
    table["tokens"] = [str((path.parent / p).resolve()) for p in table["tokens"]]
    return table


def split_token_cohort(
    table,
    *,
    kind: str = "stratified",
    stratify: str | None = "site",
    n_folds: int = 3,
    fold: int = 0,
    test_fraction: float = 0.25,
    n_val: int = 2,
    seed: int = 0,
):
    """Train / validation / test subjects of a token-store index (one shared split).

    When the index has a ``split`` column (a labels table's, docs/labels.md) marking
    some subjects ``test``, those are the test set and ``kind``/``fold`` are not used.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`read_token_index`.
    kind : {"fixed", "kfold", "stratified"}
        As :func:`neuroai.evaluation.make_splits`; ``stratified`` keeps the proportions
        of the ``stratify`` column in every fold.
    stratify : str | None
        Column of the strata (``site``).
    n_folds, fold : int
        Number of folds and the one whose held-out part is the test set.
    test_fraction : float
        Test share of a ``fixed`` split.
    n_val : int
        Training subjects kept for validation (best checkpoint).
    seed : int
        Seed of the split.

    Returns
    -------
    Split
        Participant ids in ``train``, ``val``, ``test``.
    """
    from neuroai.datasets.labels import fixed_test_subjects
    from neuroai.evaluation.splits import fixed_split, make_splits

    ids = list(table["participant_id"])
    if "split" in table.columns:  # a labels table's split column fixes the test set
        splits = [v if isinstance(v, str) else None for v in table["split"]]
        fixed = fixed_test_subjects(ids, splits)
        if fixed:
            return fixed_split(ids, n_val=n_val, seed=seed, test_ids=fixed)
    strata = None
    if kind == "stratified":
        if stratify not in table.columns:
            raise ConfigError(
                f"split.stratify {stratify!r} is not a column of the token index "
                f"(columns: {', '.join(map(str, table.columns))})."
            )
        strata = [str(v) for v in table[stratify]]
    splits = make_splits(
        ids,
        kind=kind,
        n_folds=n_folds,
        test_fraction=test_fraction,
        n_val=n_val,
        seed=seed,
        strata=strata,
    )
    if not 0 <= fold < len(splits):
        raise ConfigError(f"split.fold {fold} is not one of the {len(splits)} folds.")
    return splits[fold]
