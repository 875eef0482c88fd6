"""Callbacks of the engine: checkpoints and exports, learning history, progress log.

:class:`RunCheckpoints` owns everything a run leaves behind:

- ``checkpoints/last.ckpt``: the resumable Lightning checkpoint (weights, optimizer
  and scheduler state, loop and data-loader positions, the random states, the history
  so far), written atomically every ``checkpoint_every`` optimizer steps and at the end;
  it holds tensors and plain Python values only, so it loads with
  ``torch.load(weights_only=True)``;
- ``last/`` and ``best/``: pretrained-model folders (safetensors + JSON config, see
  :mod:`neuroai.models.checkpoint`) of the latest weights and of the weights with the
  best monitored validation metric.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from neuroai._logging import get_logger
from neuroai.io.atomic import atomic_path
from neuroai.models.checkpoint import write_pretrained
from neuroai.training.config import TrainConfig

logger = get_logger(__name__)


def rng_state() -> dict[str, Any]:
    """Random states of Python, NumPy and torch (CPU and CUDA) as checkpointable values."""
    _, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - global state
    state = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_as_tuple(state["python"]))
    numpy = state["numpy"]
    np.random.set_state(  # noqa: NPY002 - global state
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _distributed() -> tuple[int, int]:
    """``(rank, world size)`` of the running process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rng_states_of_all_ranks() -> list[dict[str, Any]] | None:
    """Every rank's :func:`rng_state`, in rank order (a collective: all ranks must call
    it); ``None`` outside a process group of several ranks.

    Each DDP rank draws its own random numbers (masks, dropout, augmentations); a
    checkpoint written by rank 0 alone would give every rank rank 0's streams on resume.
    """
    import torch.distributed as dist

    _, world = _distributed()
    if world == 1:
        return None
    states: list[Any] = [None] * world
    dist.all_gather_object(states, rng_state())
    return states


def _as_tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def _improved(score: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(score):
        return False
    if best is None:
        return True
    return score < best if mode == "min" else score > best


class RunCheckpoints(L.Callback):
    """Resumable checkpoints, ``last``/``best`` exports and the learning history.

    Parameters
    ----------
    run_dir : path-like
        The run's folder.
    config : TrainConfig
        Cadence (``checkpoint_every``) and the monitored metric.
    metadata : dict | None
        Extra entries for the exports' ``config.json`` (the training config is added).
    """

    def __init__(
        self, run_dir: str | os.PathLike, config: TrainConfig, metadata: dict | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.config = config
        self.metadata = dict(metadata or {})
        self.best_score: float | None = None
        self.best_step = -1
        self.history: list[dict[str, float]] = []
        self._last_saved = -1
        self._last_row_step = -1
        self._rng_to_restore: dict | None = None

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "checkpoints" / "last.ckpt"

    @property
    def last_export(self) -> Path:
        return self.run_dir / "last"

    @property
    def best_export(self) -> Path:
        return self.run_dir / "best"

    # state kept in the checkpoint ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score,
            "best_step": self.best_step,
            "history": self.history,
            "rng": rng_state(),
            "rng_by_rank": rng_states_of_all_ranks(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score = state.get("best_score")
        self.best_step = int(state.get("best_step", -1))
        self.history = list(state.get("history", []))
        self._rng_to_restore = state.get("rng")
        by_rank = state.get("rng_by_rank")
        rank, world = _distributed()
        if by_rank and len(by_rank) == world:
            self._rng_to_restore = by_rank[rank]
        elif by_rank or world > 1:
            logger.warning(
                "Resuming on %d rank(s) from a checkpoint of %d: every rank continues from "
                "rank 0's random state, so the run will not repeat an uninterrupted one.",
                world,
                len(by_rank) if by_rank else 1,
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_saved = trainer.global_step
        self._last_row_step = trainer.global_step

    # the hooks --------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Restored here, just before the first step after a resume, so that nothing
        # Lightning does between loading and stepping (creating the loader's
        # iterator draws from the global generator) shifts the random streams.
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last_saved or step == 0:
            return
        # A row per logged optimizer step (the step count changes once per accumulation,
        # and on the last batch of an epoch).
        if step % self.config.log_every_steps == 0 and step != self._last_row_step:
            row = {"step": step, "epoch": trainer.current_epoch}
            row.update(
                {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
            )
            self.history.append(row)
            self._last_row_step = step
        if step % self.config.checkpoint_every == 0 and step < trainer.max_steps:
            self.save(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if not metrics:
            return
        step = trainer.global_step
        self.history.append({"step": step, "epoch": trainer.current_epoch, **metrics})
        score = metrics.get(self.config.monitor)
        if score is None:
            logger.warning(
                "The monitored metric %r was not logged (validation logged %s); the best export "
                "follows the last weights.",
                self.config.monitor,
                ", ".join(metrics),
            )
            return
        if _improved(score, self.best_score, self.config.monitor_mode):
            self.best_score, self.best_step = score, step
            self._export(trainer, pl_module, self.best_export, kind="best")

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module)

    # writing ----------------------------------------------------------------------------
    def save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write ``last.ckpt`` (atomically) and the ``last`` export."""
        target = self.last_checkpoint
        tmp = target.with_name(".last.ckpt.tmp")
        if trainer.is_global_zero:
            target.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, target)
        self._last_saved = trainer.global_step
        self._export(trainer, pl_module, self.last_export, kind="last")
        if self.best_score is None and trainer.is_global_zero:
            self._export(trainer, pl_module, self.best_export, kind="best")

    def _export(self, trainer: L.Trainer, pl_module, folder: Path, *, kind: str) -> None:
        if not trainer.is_global_zero:
            return
        metadata = {
            **self.metadata,
            **pl_module.export_metadata(),
            "export": kind,
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "training": self.config.to_dict(),
            "monitor": {
                "metric": self.config.monitor,
                "mode": self.config.monitor_mode,
                "best": self.best_score,
                "best_step": self.best_step,
            },
        }
        model = pl_module.export_model()
        with atomic_path(folder, directory=True) as tmp:
            write_pretrained(tmp, model, metadata=metadata)


class ProgressLog(L.Callback):
    """Training progress through the neuroai logger (the rule's log file)."""

    def __init__(self, every: int) -> None:
        self.every = max(int(every), 1)
        self._start = time.perf_counter()
        self._start_step = 0
        self._last_logged = -1

    def on_train_start(self, trainer, pl_module) -> None:
        self._start, self._start_step = time.perf_counter(), trainer.global_step
        self._last_logged = trainer.global_step
        logger.info("Training from step %d to %d", trainer.global_step, trainer.max_steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every or not trainer.is_global_zero or step == self._last_logged:
            return
        self._last_logged = step
        elapsed = time.perf_counter() - self._start
        rate = elapsed / max(step - self._start_step, 1)
        loss = trainer.callback_metrics.get("train/loss")
        logger.info(
            "step %d/%d  loss %.4f  %.3f s/step",
            step,
            trainer.max_steps,
            float(loss) if loss is not None else float("nan"),
            rate,
        )

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        logger.info(
            "validation at step %d: %s",
            trainer.global_step,
            ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())),
        )
