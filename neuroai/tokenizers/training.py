"""Training the 2D autoencoder: on natural photographs (default) or fMRI slices (fine-tuning).

:func:`fit_autoencoder` is one plain loop for both: it draws batches from a
sampler (anything with ``sample(batch_size) -> Tensor (B, 3, H, W)`` in [-1, 1]),
reconstructs them and minimises the mean absolute error plus the mean squared
error (DC-AE's published training adds perceptual and adversarial losses; this
CPU-sized stage keeps the pixel losses only), with AdamW, a short linear
warm-up and a cosine decay of the learning rate. It runs on CUDA when present.

:class:`FrameSlices` samples slices of fMRI frames along random axes for the
optional fine-tuning stage.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from neuroai._logging import get_logger, progress
from neuroai.errors import ConfigError, DataError
from neuroai.tokenizers._private import check_positive, resolve_device, seeded_generator

logger = get_logger(__name__)


class Sampler(Protocol):
    def sample(self, batch_size: int) -> torch.Tensor: ...


def fit_autoencoder(
    model,
    sampler: Sampler,
    *,
    steps: int,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.0,
    device: str = "auto",
    seed: int = 0,
    log_every: int = 50,
    warmup_steps: int | None = None,
    time_limit: float | None = None,
    loader_workers: int = 0,
    progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Train ``model`` to reconstruct batches from ``sampler``.

    Parameters
    ----------
    model : diffusers.AutoencoderDC
        Trained in place (and left in evaluation mode on the CPU).
    sampler : object with ``sample(batch_size)``
        Yields (batch_size, 3, H, W) float32 tensors in [-1, 1]. Without loader
        workers, a sampler with a ``to(device)`` method (:class:`PhotoCrops`)
        is moved to the training device first, so that batches are cut there.
    steps : int
        Optimisation steps.
    batch_size : int
        Images per step.
    learning_rate : float
        Peak learning rate (AdamW; warm-up, then cosine decay).
    weight_decay : float
        AdamW weight decay.
    device : {"auto", "cpu", "cuda"}
        Where to train.
    seed : int
        Seeds torch (initial weights are the caller's; this seeds dropout-free
        training order and any torch randomness).
    log_every : int
        Steps between loss records in the history.
    warmup_steps : int | None
        Steps of linear learning-rate warm-up; None: a tenth of ``steps``, at
        most 20 (enough for small models; larger ones want more).
    time_limit : float | None
        Wall-clock seconds after which training stops at the end of the
        current step, before the schedule has finished (a job's time limit on
        a cluster, a benchmark's budget); the report says so. None: no limit.
    loader_workers : int
        Processes that cut batches while the model trains (0: the training
        process cuts them itself, on the training device when the sampler has
        ``to``). On a GPU, crops cut one by one limit the speed; workers need a
        sampler with ``reseed(seed)`` (each worker draws from its own seed,
        derived from ``seed``, so runs stay reproducible).
    progress_bar : bool | None
        See :func:`neuroai.progress`.

    Returns
    -------
    dict
        ``history``: list of {step, loss, l1, mse, seconds}; ``steps`` (taken),
        ``planned_steps``, ``stopped_early`` (the time limit ended training),
        ``final_loss``, ``seconds``, ``device``, ``n_parameters``.
    """
    check_positive("steps", steps)
    check_positive("batch_size", batch_size)
    if loader_workers < 0 or int(loader_workers) != loader_workers:
        raise ConfigError(f"loader_workers must be an integer >= 0, got {loader_workers}.")
    if loader_workers and not callable(getattr(sampler, "reseed", None)):
        raise ConfigError(
            f"loader_workers={loader_workers} needs a sampler with a reseed(seed) method "
            f"(PhotoCrops, FrameSlices); {type(sampler).__name__} has none: use loader_workers=0."
        )
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(
            f"time_limit must be a positive number of seconds or None, got {time_limit}."
        )
    torch.manual_seed(seed)
    target = resolve_device(device)
    model.to(target).train().requires_grad_(True)
    batches = batch_stream(sampler, batch_size, workers=loader_workers, device=target)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    warmup = max(1, min(20, steps // 10)) if warmup_steps is None else max(1, int(warmup_steps))

    def factor(step: int) -> float:  # linear warm-up, then cosine decay to 0
        return min(1.0, (step + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * step / steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    history, started = [], time.perf_counter()
    window: list[tuple[float, float]] = []
    taken = 0
    for step in progress(range(1, steps + 1), desc="autoencoder", enabled=progress_bar):
        batch = next(batches).to(target, non_blocking=True)
        output = model(batch).sample
        l1, mse = F.l1_loss(output, batch), F.mse_loss(output, batch)
        loss = l1 + mse
        if not math.isfinite(loss.item()):
            raise DataError(
                f"The autoencoder's loss became {loss.item()} at step {step}; lower the learning "
                f"rate (now {learning_rate})."
            )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        window.append((l1.item(), mse.item()))
        taken = step
        out_of_time = time_limit is not None and time.perf_counter() - started >= time_limit
        if step % log_every == 0 or step == steps or out_of_time:
            l1_mean, mse_mean = (float(np.mean(v)) for v in zip(*window, strict=True))
            window = []
            history.append(
                {
                    "step": step,
                    "loss": l1_mean + mse_mean,
                    "l1": l1_mean,
                    "mse": mse_mean,
                    "seconds": round(time.perf_counter() - started, 2),
                }
            )
            logger.info("step %d/%d: l1 %.4f, mse %.4f", step, steps, l1_mean, mse_mean)
        if out_of_time and step < steps:
            logger.warning(
                "Stopped the autoencoder's training at step %d of %d: the time limit of %g s "
                "was reached.",
                step,
                steps,
                time_limit,
            )
            break
    del batches  # stops loader workers, if any
    model.eval().requires_grad_(False).to("cpu")
    return {
        "history": history,
        "steps": taken,
        "planned_steps": steps,
        "stopped_early": taken < steps,
        "final_loss": history[-1]["loss"],
        "seconds": round(time.perf_counter() - started, 2),
        "device": str(target),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }


class _Batches(torch.utils.data.IterableDataset):
    """An endless stream of ``sampler.sample(batch_size)``, for loader workers."""

    def __init__(self, sampler: Sampler, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size

    def __iter__(self):
        while True:
            yield self.sampler.sample(self.batch_size)


def _reseed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.sampler.reseed(info.seed % 2**63)  # torch: base seed + worker id


def batch_stream(sampler: Sampler, batch_size: int, *, workers: int = 0, device=None):
    """Endless batches of ``sampler.sample(batch_size)``, as :func:`fit_autoencoder` draws them.

    Without workers the calling process cuts them, on ``device`` when the sampler
    has ``to``. With workers, ``workers`` processes cut them on the CPU (pinned
    memory when ``device`` is CUDA), each from its own seed, in a fixed order:
    reproducible for a torch seed. Stop the workers by dropping the iterator.
    """
    if not workers:
        if device is not None and callable(getattr(sampler, "to", None)):
            sampler.to(device)
        return iter(lambda: sampler.sample(batch_size), None)
    # Here, not at the top: neuroai.training loads Lightning, which the tokenizer never needs.
    from neuroai.training.loading import loader_options

    if callable(getattr(sampler, "to", None)):
        sampler.to("cpu")  # workers cut on the CPU; the training loop moves each batch
    loader = torch.utils.data.DataLoader(
        _Batches(sampler, batch_size),
        batch_size=None,
        worker_init_fn=_reseed_worker,
        **loader_options(workers, cuda=torch.device(device or "cpu").type == "cuda"),
    )
    return iter(loader)


class FrameSlices:
    """Random slices of fMRI frames, replicated to 3 channels (for fine-tuning).

    Parameters
    ----------
    frames_paths : sequence of path-like
        Frames stores (see :func:`neuroai.tokenizers.frames.write_frames`),
        memory-mapped; only the slices drawn are read.
    seed : int
        Seed of the sampling.
    """

    def __init__(self, frames_paths: Sequence[str | os.PathLike], *, seed: int = 0) -> None:
        from neuroai.tokenizers.frames import load_frames

        if not frames_paths:
            raise DataError("Fine-tuning on fMRI slices needs at least one frames store.")
        self.stores_ = [load_frames(p)[0] for p in frames_paths]
        self.generator_ = seeded_generator(seed)

    def reseed(self, seed: int) -> None:
        """Restart the draws from ``seed`` (each loader worker has its own)."""
        self.generator_ = seeded_generator(seed)

    def _integer(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.generator_))

    def sample(self, batch_size: int) -> torch.Tensor:
        """A batch of slices, (batch_size, 3, S, S) float32 in [-1, 1]."""
        slices = []
        for _ in range(batch_size):
            store = self.stores_[self._integer(len(self.stores_))]
            frame = store[self._integer(len(store))]
            axis = self._integer(3)
            index = self._integer(frame.shape[axis])
            picture = np.take(frame, index, axis=axis).astype(np.float32)
            slices.append(torch.from_numpy(picture)[None].expand(3, -1, -1))
        return torch.stack(slices)
