"""Masked volume modelling: restore randomly masked cubes of a 3D image.

A self-supervised objective for dense 3D networks (the U-shaped DSD backbones): cubes
of ``patch_size`` voxels are masked with probability ``mask_ratio`` (set to zero, the
intensity of scaled background), the network sees the masked image, a 1x1x1
convolution maps its dense output back to the image channels, and the loss is the
mean squared error on the masked voxels only. This is the inpainting pretext task of
restoration-style pretraining for U-Nets (the whole network, encoder and decoder, is
pretrained; fine-tuning keeps every layer whose shape matches).

Shapes:
    ``batch["inputs"]``: ``(B, C, D, H, W)`` with each size a multiple of
    ``patch_size``; the encoder's ``forward`` must return ``(B, K, D, H, W)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError
from neuroai.models.base import INPUTS, NeuroModel
from neuroai.models.objectives.base import Objective, register_objective


@register_objective("masked_volume")
class MaskedVolumeModeling(Objective):
    """Masked-cube inpainting around a dense 3D encoder.

    Parameters
    ----------
    encoder : NeuroModel
        A dense 3D model (``forward`` keeps the spatial size), e.g. ``create_model("dsd")``.
    mask_ratio : float
        Fraction of cubes masked, in (0, 1).
    patch_size : int
        Edge of the masked cubes in voxels.
    """

    def __init__(self, encoder: NeuroModel, mask_ratio: float = 0.5, patch_size: int = 8) -> None:
        super().__init__(encoder, mask_ratio=mask_ratio, patch_size=patch_size)
        if not 0 < mask_ratio < 1 or patch_size < 1:
            raise ConfigError(
                f"mask_ratio must be in (0, 1) and patch_size >= 1; got {mask_ratio}, {patch_size}."
            )
        channels_in = encoder.config.in_channels
        channels_out = encoder.config.out_channels
        self.mask_ratio = mask_ratio
        self.patch_size = patch_size
        self.reconstruct = nn.Conv3d(channels_out, channels_in, kernel_size=1)

    def random_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean mask ``(B, 1, D, H, W)``, True where voxels are hidden."""
        p = self.patch_size
        if any(s % p for s in x.shape[2:]):
            raise DataError(
                f"masked_volume: input size {tuple(x.shape[2:])} must be a multiple of patch_size {p}."
            )
        grid = [s // p for s in x.shape[2:]]
        cubes = torch.rand((x.shape[0], 1, *grid), device=x.device) < self.mask_ratio
        return cubes.repeat_interleave(p, 2).repeat_interleave(p, 3).repeat_interleave(p, 4)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x = batch[INPUTS]
        mask = self.random_mask(x)
        restored = self.reconstruct(self.encoder(x.masked_fill(mask, 0.0)))
        error = F.mse_loss(restored.float(), x.float(), reduction="none")
        weight = mask.expand_as(error).float()
        loss = (error * weight).sum() / weight.sum().clamp_min(1.0)
        return {"loss": loss, "masked_fraction": weight.mean().detach()}
