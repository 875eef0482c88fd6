"""Reproducible, resumable data loading for every model family.

Three pieces make a run that is killed mid-epoch resume exactly where it stopped, and
make a run on N processes see the same data as on one:

- :class:`ResumableSampler` draws the order of the items from ``(seed, epoch)`` alone,
  shards it over the processes of a distributed run, and can skip the items an
  interrupted epoch had already consumed;
- it yields ``(index, item_seed)`` pairs, and :class:`SeededDataset` reseeds the
  item's random augmentations from ``item_seed`` (a function of seed, epoch and
  index), so augmentations do not depend on worker processes or on what ran before;
- :class:`ResumableLoader` is a :class:`~torch.utils.data.DataLoader` with
  ``state_dict``/``load_state_dict``: Lightning stores its position in every
  checkpoint and restores it on resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def _derive(seed: int, *key: int) -> int:
    """A 32-bit seed from the run's seed and a key (independent streams per key)."""
    return int(np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(key)).generate_state(1)[0])


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index``'s augmentations in ``epoch`` of a run seeded ``seed``."""
    return _derive(seed, 0, epoch, index)


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableSampler(Sampler):
    """Seeded, sharded order of ``n_items`` items that can resume mid-epoch.

    Parameters
    ----------
    n_items : int
        Size of the dataset.
    shuffle : bool
        Permute the items each epoch (from ``seed`` and the epoch number).
    seed : int
        Seed of the order and of the per-item seeds.

    Notes
    -----
    In a distributed run (``torch.distributed`` initialised) each process takes every
    ``world_size``-th item of the epoch's order, starting at its rank; the order is
    padded by repetition so that every process gets the same number of items.
    """

    def __init__(self, n_items: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.n_items = int(n_items)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch."""
        self.epoch = int(epoch)

    def skip(self, n_items: int) -> None:
        """Leave out the first ``n_items`` of this process's next pass (resume)."""
        self._skip = int(n_items)

    def order(self) -> list[int]:
        """This process's item indices for the current epoch."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(_derive(self.seed, 1, self.epoch))
            indices = torch.randperm(self.n_items, generator=generator).tolist()
        else:
            indices = list(range(self.n_items))
        rank, world = _world()
        if world > 1:
            total = math.ceil(self.n_items / world) * world
            indices = (indices * math.ceil(total / max(len(indices), 1)))[:total]
            indices = indices[rank::world]
        return indices

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self.order()[self._skip :]
        self._skip = 0
        for index in indices:
            yield index, item_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        _, world = _world()
        return math.ceil(self.n_items / world)


class SeededDataset(Dataset):
    """Wrap a dataset so that each item's augmentations come from its own seed.

    Parameters
    ----------
    base : Dataset
        A map-style dataset. If it has ``get_item(index, seed)``, that is called;
        otherwise, if it has a ``transform`` with ``set_random_state`` (MONAI
        ``Compose``), the transform is reseeded before ``base[index]``.
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        index, seed = key if isinstance(key, tuple) else (key, key)
        if hasattr(self.base, "get_item"):
            return self.base.get_item(index, seed)
        transform = getattr(self.base, "transform", None)
        if transform is not None and hasattr(transform, "set_random_state"):
            transform.set_random_state(seed=seed)
        return self.base[index]


class ResumableLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` whose position is checkpointed.

    Parameters
    ----------
    dataset : Dataset
        Map-style dataset (wrapped in :class:`SeededDataset`).
    batch_size : int
        Items per batch.
    shuffle : bool
        New order each epoch.
    seed : int
        Seed of the order and the augmentations.
    drop_last : bool
        Drop a last incomplete batch.
    num_workers : int
        Worker processes (the batches do not depend on it: the order and each item's
        seed are drawn here, in the main process).
    collate_fn : callable | None
        Batch assembly (MONAI's ``list_data_collate`` for crop lists).
    pin_memory, persistent_workers : bool
        As for :class:`~torch.utils.data.DataLoader`.
    prefetch_factor : int | None
        Batches prepared ahead per worker (None with 0 workers).

    See Also
    --------
    neuroai.training.loading.loader_options : these loader options, sized from the CPUs.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
    ) -> None:
        sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed)
        super().__init__(
            SeededDataset(dataset),
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            prefetch_factor=prefetch_factor,
            # Its own generator: worker seeds never draw from the global stream.
            generator=torch.Generator().manual_seed(_derive(seed, 2)),
        )
        self._consumed = 0
        self._resume_from = 0
        self._resume_epoch = 0

    def __iter__(self):
        # Skip only within the epoch the state was saved in: a checkpoint taken on an
        # epoch's last batch resumes in the next epoch, which must start from its beginning.
        skip = self._resume_from if self.sampler.epoch == self._resume_epoch else 0
        self._resume_from = 0
        self.sampler.skip(skip * self.batch_size)
        self._consumed = skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Epoch and batches consumed in it (stored in Lightning checkpoints)."""
        return {"epoch": self.sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next pass skips the batches already consumed."""
        self._resume_epoch = int(state.get("epoch", 0))
        self.sampler.set_epoch(self._resume_epoch)
        self._resume_from = int(state.get("batches", 0))
