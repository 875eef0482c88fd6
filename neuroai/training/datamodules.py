"""Data modules that read cached artifacts lazily, for every model family.

:class:`EngineDataModule` gives any dataset resumable, seeded loaders
(:class:`~neuroai.training.data.ResumableLoader`, with the worker count and memory
options of :func:`~neuroai.training.loading.loader_options`); subclasses only say which
datasets to use. :class:`ArrayDataModule` serves items from ``.npy`` artifacts (EEG windows,
token sequences, connectivity graphs, embeddings), memory-mapped and opened on first
use in each worker, so memory does not grow with the cohort.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from neuroai._logging import get_logger
from neuroai.errors import DataError
from neuroai.io.store import load_array
from neuroai.models.base import INPUTS, TARGET
from neuroai.training.data import ResumableLoader
from neuroai.training.loading import (
    available_cpus,
    check_num_workers,
    loader_options,
    tasks_sharing_cpus,
)

logger = get_logger(__name__)


class EngineDataModule(L.LightningDataModule):
    """Base data module: resumable, seeded train and validation loaders.

    Parameters
    ----------
    batch_size : int
        Training items per batch and process.
    seed : int
        Seed of the data order and augmentations.
    num_workers : int or "auto"
        Loader worker processes (``"auto"``: sized from the CPUs on CUDA, none
        otherwise; see :meth:`loader_options`).
    val_batch_size : int
        Validation items per batch.
    collate_fn : callable | None
        Batch assembly.
    """

    def __init__(
        self,
        *,
        batch_size: int,
        seed: int = 0,
        num_workers: int | str = 0,
        val_batch_size: int = 1,
        collate_fn: Callable | None = None,
    ) -> None:
        super().__init__()
        check_num_workers(num_workers)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.val_batch_size = val_batch_size
        self.collate_fn = collate_fn

    def train_dataset(self) -> Dataset:  # pragma: no cover - abstract
        raise NotImplementedError

    def val_dataset(self) -> Dataset | None:
        return None

    @property
    def has_validation(self) -> bool:
        return self.val_dataset() is not None

    def loader_options(self) -> dict:
        """Worker and memory options of both loaders (see :func:`.loading.loader_options`).

        Under a Trainer (``trainer.fit``), CUDA means the Trainer's device is a CUDA
        device, and the CPUs are shared by its processes on this node
        (``trainer.num_devices``); used alone, CUDA means a CUDA device is visible.
        """
        trainer = self.trainer
        if trainer is not None:
            cuda = trainer.strategy.root_device.type == "cuda"
            tasks = tasks_sharing_cpus(trainer.num_devices)
        else:
            cuda = torch.cuda.is_available()
            tasks = tasks_sharing_cpus()
        return loader_options(self.num_workers, cuda=cuda, local_tasks=tasks)

    def train_dataloader(self) -> ResumableLoader:
        dataset = self.train_dataset()
        options = self.loader_options()
        if self.num_workers == "auto":
            logger.info(
                "num_workers='auto': %d loader worker(s) per training process (%d CPU(s) here)",
                options["num_workers"],
                available_cpus(),
            )
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            seed=self.seed,
            drop_last=len(dataset) > self.batch_size,
            collate_fn=self.collate_fn,
            **options,
        )

    def val_dataloader(self):
        dataset = self.val_dataset()
        if dataset is None:
            return []
        return ResumableLoader(
            dataset,
            batch_size=self.val_batch_size,
            shuffle=False,
            seed=self.seed,
            collate_fn=self.collate_fn,
            **self.loader_options(),
        )


class ArrayDataset(Dataset):
    """Items read lazily from ``.npy`` artifacts (checked against their provenance).

    Parameters
    ----------
    paths : sequence of path-like
        ``.npy`` artifacts written through :mod:`neuroai.io`.
    targets : sequence | None
        One target per file (or per window when ``windows=True`` and the target
        sequence is as long as the windows).
    windows : bool
        Each file is a stack ``(n_windows, ...)`` and each window is one item;
        otherwise each file is one item.
    transform : callable | None
        ``transform(x, rng) -> x`` augmentation of a float32 tensor, with ``rng`` a
        :class:`numpy.random.Generator` seeded per item.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        targets: Sequence | None = None,
        *,
        windows: bool = False,
        transform: Callable | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self._arrays: dict[int, np.ndarray] = {}
        self.index: list[tuple[int, int | None]] = []
        for i in range(len(self.paths)):
            if windows:
                n = int(self._array(i).shape[0])
                self.index.extend((i, w) for w in range(n))
            else:
                self.index.append((i, None))
        self._arrays.clear()  # reopened lazily in each worker
        if targets is not None and len(targets) not in (len(self.paths), len(self.index)):
            raise DataError(
                f"ArrayDataset: {len(targets)} targets for {len(self.paths)} files and "
                f"{len(self.index)} items; give one target per file or per item."
            )
        self.targets = None if targets is None else list(targets)

    def _array(self, i: int) -> np.ndarray:
        if i not in self._arrays:
            self._arrays[i] = load_array(self.paths[i], mmap=True)
        return self._arrays[i]

    def __len__(self) -> int:
        return len(self.index)

    def get_item(self, index: int, seed: int) -> dict:
        file, window = self.index[index]
        array = self._array(file)
        x = torch.from_numpy(np.array(array if window is None else array[window], dtype=np.float32))
        if self.transform is not None:
            x = self.transform(x, np.random.default_rng(seed))
        item = {
            INPUTS: x,
            "id": f"{self.paths[file].stem}" + ("" if window is None else f"_w{window}"),
        }
        if self.targets is not None:
            target = (
                self.targets[index] if len(self.targets) == len(self.index) else self.targets[file]
            )
            item[TARGET] = torch.as_tensor(target)
        return item

    def __getitem__(self, index: int) -> dict:
        return self.get_item(index, index)


class ArrayDataModule(EngineDataModule):
    """Train and validation :class:`ArrayDataset` s over ``.npy`` artifacts.

    Parameters
    ----------
    train_paths, val_paths : sequence of path-like
        Training and validation artifacts (``val_paths`` may be empty).
    train_targets, val_targets : sequence | None
        Their targets (None for self-supervised pretraining).
    windows : bool
        Items are the windows (rows) of each file.
    transform : callable | None
        Training augmentation (see :class:`ArrayDataset`).
    **loader
        ``batch_size``, ``seed``, ``num_workers``, ``val_batch_size``.
    """

    def __init__(
        self,
        train_paths: Sequence[str | os.PathLike],
        val_paths: Sequence[str | os.PathLike] = (),
        *,
        train_targets: Sequence | None = None,
        val_targets: Sequence | None = None,
        windows: bool = False,
        transform: Callable | None = None,
        **loader,
    ) -> None:
        super().__init__(**loader)
        self._train = ArrayDataset(train_paths, train_targets, windows=windows, transform=transform)
        self._val = (
            ArrayDataset(val_paths, val_targets, windows=windows) if len(val_paths) else None
        )

    def train_dataset(self) -> Dataset:
        return self._train

    def val_dataset(self) -> Dataset | None:
        return self._val
