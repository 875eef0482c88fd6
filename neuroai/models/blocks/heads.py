"""Stage heads: a 1x1x1 convolution to the classes, upsampled to full size.

DSD (and deep supervision) attach one head to an encoder or decoder stage of a
U-shaped network. As in the DSD reference implementation, the head maps the stage's
features to class logits with a 1x1x1 convolution and brings them back to the input
resolution with learned transposed convolutions, one per down-sampling step the
stage lies below the input (kernel = stride, so each step exactly undoes one stride).

Shapes:
    input: ``(B, C_stage, D / s_D, H / s_H, W / s_W)`` where ``s`` is the product
    of the stage's strides; output: ``(B, n_classes, D, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


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
    """

    def __init__(self, in_channels: int, n_classes: int, steps: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.project = nn.Conv3d(in_channels, n_classes, kernel_size=1)
        upsample = []
        for stride in reversed([tuple(int(v) for v in s) for s in steps]):
            if all(v == 1 for v in stride):
                continue
            upsample.append(
                nn.ConvTranspose3d(n_classes, n_classes, kernel_size=stride, stride=stride)
            )
        self.upsample = nn.Sequential(*upsample)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.project(features))
