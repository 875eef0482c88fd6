"""Stage heads: a 1x1x1 convolution to the classes, upsampled to full size.

DSD (and deep supervision) attach one head to an encoder or decoder stage of a
U-shaped network. As in the DSD reference implementation (``DeepUp`` in
``networks/*/deepUp.py`` of soumbane/DualSelfDistillation, upsampling mode
``DECONV``, ``multiple_upsample=True``), a head is

1. a 1x1x1 convolution from the stage's channels to the classes (with bias), then
2. ONE learned transposed convolution, ``n_classes -> n_classes``, kernel = stride = 2,
   applied ``log2(scale)`` times: the same weights at every step. A stage at full
   resolution (scale 1) gets a 1x1x1 transposed convolution instead (the reference's
   ``UpSample(scale_factor=1)``), so every head has exactly one upsampling layer.

Parameters of a head on a stage with ``C`` channels and ``K`` classes:
``C*K + K`` (projection) + ``8*K*K + K`` (x2 transposed convolution) or ``K*K + K``
(scale 1). On UNETR (feature size 16, 8 classes) the eight DSD heads hold 13,632.

Anisotropic strides (DynUNet, UNet) generalise this: each stride is split into x2
steps per axis (``(4, 4, 2)`` -> ``(2, 2, 2)``, ``(2, 2, 1)``), and the head holds one
shared transposed convolution per distinct step, applied as often as that step occurs.
With isotropic x2 strides (every backbone of the paper) this is the reference head.

Shapes:
    input: ``(B, C_stage, D / s_D, H / s_H, W / s_W)`` where ``s`` is the product
    of the stage's strides; output: ``(B, n_classes, D, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _x2_steps(stride: Sequence[int]) -> list[tuple[int, ...]]:
    """Split one stride into x2 steps per axis (a factor that is not a power of two
    stays whole): ``(4, 4, 2)`` -> ``[(2, 2, 2), (2, 2, 1)]``, ``(3, 3, 1)`` -> ``[(3, 3, 1)]``."""
    remaining = [int(v) for v in stride]
    if any(v < 1 for v in remaining):
        raise ValueError(f"StageHead: strides must be positive, got {tuple(stride)}.")
    steps = []
    while any(v > 1 for v in remaining):
        step = tuple(2 if v % 2 == 0 else v for v in remaining)
        steps.append(step)
        remaining = [v // s for v, s in zip(remaining, step, strict=True)]
    return steps


class StageHead(nn.Module):
    """Class logits at full resolution from one stage's features.

    Parameters
    ----------
    in_channels : int
        Channels of the stage's feature map.
    n_classes : int
        Output channels (classes, background included).
    steps : sequence of (int, int, int)
        The strides between the input and the stage, from the input downwards
        (``[(2, 2, 2), (2, 2, 2)]`` for a stage at a quarter of the resolution).
        Steps of all ones are skipped.

    Attributes
    ----------
    project : nn.Conv3d
        The 1x1x1 convolution to the classes.
    upsample : nn.ModuleList of nn.ConvTranspose3d
        One transposed convolution per distinct x2 step (one in all for isotropic
        strides; a 1x1x1 one for a stage at full resolution).
    plan : tuple of int
        Which entry of ``upsample`` each application uses, in order.
    """

    def __init__(self, in_channels: int, n_classes: int, steps: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.project = nn.Conv3d(in_channels, n_classes, kernel_size=1)
        factors = [f for stride in reversed(list(steps)) for f in _x2_steps(stride)]
        if not factors:  # full resolution: the reference's kernel-1 transposed convolution
            factors = [(1, 1, 1)]
        kinds = list(dict.fromkeys(factors))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose3d(n_classes, n_classes, kernel_size=k, stride=k) for k in kinds
        )
        self.plan = tuple(kinds.index(f) for f in factors)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.project(features)
        for index in self.plan:
            logits = self.upsample[index](logits)
        return logits
