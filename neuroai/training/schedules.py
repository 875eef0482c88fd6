"""Learning-rate schedules with linear warm-up, stepped per optimizer step.

:func:`lr_factor` gives the multiplier of the peak learning rate at a step; the
optimizer wrapper builds a :class:`torch.optim.lr_scheduler.LambdaLR` from it. The
schedule is a plain function of the step, so a resumed run continues it exactly from
the step stored in its checkpoint.
"""

from __future__ import annotations

import math

import torch

from neuroai.training.config import TrainConfig


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` before optimizer step ``step`` (0-based).

    Warm-up is linear from ``1 / warmup_steps`` to 1 over ``warmup_steps`` steps; then

    - ``constant``: 1;
    - ``cosine``: half a cosine from 1 down to ``min_lr_ratio`` at ``max_steps``;
    - ``linear``: a straight line to ``min_lr_ratio``;
    - ``poly``: ``(1 - progress) ** gamma`` floored at ``min_lr_ratio``;
    - ``step``: ``gamma ** (step // step_size)`` (``step_size`` 0: ``max_steps // 6``).
    """
    warmup = config.warmup_steps
    if warmup and step < warmup:
        return (step + 1) / warmup
    schedule = config.schedule
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        size = config.step_size or max(config.max_steps // 6, 1)
        return config.gamma ** ((step - warmup) // size)
    span = max(config.max_steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = config.min_lr_ratio
    if schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return floor + (1 - floor) * (1 - progress)
    return max(floor, (1 - progress) ** config.gamma)  # poly


def build_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over ``parameters``."""
    params = [p for p in parameters if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """A per-step :class:`~torch.optim.lr_scheduler.LambdaLR` following :func:`lr_factor`."""

    def factor(step: int) -> float:
        return lr_factor(step, config)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
