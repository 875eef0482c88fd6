"""Dual self-distillation (DSD) of U-shaped networks for 3D segmentation.

Banerjee S, Dinh-Le H, Ruan D et al. (2024). "Dual self-distillation of U-shaped
networks for 3D medical image segmentation", IEEE ISBI; and (2025) "Volumetric medical
image segmentation through dual self-distillation in U-shaped networks", IEEE TBME.
Reference code: https://github.com/soumbane/DualSelfDistillation.

A U-shaped backbone (MONAI ``UNETR``, ``DynUNet`` (nnU-Net), ``SwinUNETR`` or ``VNet``,
the paper's four; ``UNet`` as an extra the paper does not use) gets a head on each of
its encoder stages ``enc1 .. encN`` and decoder stages ``decN .. dec1`` (a 1x1x1
convolution to the classes, then one shared x2 transposed convolution applied
``log2(scale)`` times, see :class:`~neuroai.models.blocks.StageHead`). As in the
reference (``networks/unetr/self_distill_unetr.py``, ``loss_functions.py``,
``train_SelfDistil_Original.py``), the loss is

.. math::

    L = \\mathrm{DiceCE}(z_{main}, y) + \\sum_{j=1}^{N} \\mathrm{DiceCE}(z_{dec_j}, y)
        + \\alpha T^2 \\Big( \\sum_{j=2}^{N} \\mathrm{KL}(p^T_{dec_1} \\,\\|\\, p^T_{dec_j})
        + \\sum_{k=1}^{N-1} \\mathrm{KL}(p^T_{enc_N} \\,\\|\\, p^T_{enc_k}) \\Big)

with :math:`p^T = \\mathrm{softmax}(z / T)`. The decoder teacher ``dec1`` is the
deepest decoder stage (highest resolution, just before the output); the encoder
teacher ``encN`` is the deepest encoder stage (the deepest skip, not the bottleneck).
Dice + CE applies to the main output and to every decoder stage, the bottleneck
``decN`` included; encoder heads get none. The KL divergence is summed over classes
per voxel and averaged over voxels and batch; :math:`\\alpha = 1`, :math:`T = 3`;
teachers are not detached. On UNETR, DynUNet (5 levels), SwinUNETR and VNet,
``N = 4``: 5 Dice + CE terms and 3 + 3 KL terms, with eight heads.

Which tensor each stage is, per backbone (``fs`` the feature size, ``h`` UNETR's
hidden size; ``*`` the teachers; scale = down-sampling factor):

========= =============================== ======================================
backbone  encoder enc1, enc2, enc3, enc4* decoder dec4, dec3, dec2, dec1*
========= =============================== ======================================
UNETR     ``encoder1..encoder4``          ViT bottleneck (``proj_feat``, h),
          fs, 2fs, 4fs, 8fs at 1, 2, 4, 8 ``decoder5, decoder4, decoder3``:
                                          8fs, 4fs, 2fs; at 16, 8, 4, 2
DynUNet   ``input_block, downsamples``    ``bottleneck``, ``upsamples[:-1]``;
          at 1, 2, 4, 8                   at 16, 8, 4, 2
SwinUNETR ``encoder1..encoder4``          ``decoder5, decoder4, decoder3,
          fs, fs, 2fs, 4fs at 1, 2, 4, 8  decoder2``: 8fs, 4fs, 2fs, fs; at
                                          16, 8, 4, 2 (no head on the 1/32
                                          bottleneck ``encoder10``)
VNet      ``in_tr, down_tr32, down_tr64,  ``down_tr256`` (bottleneck),
          down_tr128``: 16..128 at 1..8   ``up_tr256, up_tr128, up_tr64``;
                                          at 16, 8, 4, 2
UNet      the down paths (N = levels)     bottom layer, up paths but the top
========= =============================== ======================================

The general rule, read off the four reference networks: the encoder stages are the
skip features from the top of the U to the deepest skip (teacher: the deepest); the
decoder stages are the bottleneck and every decoder block's output except the last
(teacher: the last of them). SwinUNETR's reference, which has one level more, drops
the deepest level on both sides. :mod:`neuroai.models.blocks.ushape` lists every
tensor; ``docs/dsd.md`` has the tables and the fidelity notes.

``mode="deep_supervision"`` keeps only the decoder heads and their Dice + CE terms;
``mode="plain"`` trains the backbone alone: the three are switches of one model, for
ablations. Inference uses the main output only, so the heads cost nothing at test time.

Shapes:
    input ``(B, C_in, D, H, W)``; main and head logits ``(B, K, D, H, W)``;
    targets ``(B, 1, D, H, W)`` class indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import INPUTS, TARGET, NeuroModel
from neuroai.models.blocks import (
    BACKBONES,
    StageHead,
    UShapedBackbone,
    check_backbone_channels,
    check_backbone_options,
    size_divisor,
)
from neuroai.models.config import ModelConfig
from neuroai.models.registry import register_model

MODES = ("plain", "deep_supervision", "dsd")


# -- the loss ---------------------------------------------------------------------------


def _dice_ce():
    from monai.losses import DiceCELoss

    return DiceCELoss(
        include_background=True, to_onehot_y=True, softmax=True, lambda_dice=1.0, lambda_ce=1.0
    )


def _check_logits(name: str, logits: torch.Tensor, reference: torch.Tensor) -> None:
    if logits.shape != reference.shape:
        raise DataError(
            f"dsd_loss: {name} has shape {tuple(logits.shape)}, but the main logits have "
            f"{tuple(reference.shape)}; every head must be upsampled to full resolution "
            "(B x K x D x H x W)."
        )


def distillation_kl(
    logits: Sequence[torch.Tensor], *, temperature: float = 3.0, detach_teacher: bool = False
) -> torch.Tensor:
    """Sum of KL(teacher || student) over the students, softened by ``temperature``.

    Parameters
    ----------
    logits : sequence of Tensor, each (B, K, D, H, W)
        The teacher first, then the students.
    temperature : float
        Softmax temperature ``T``.
    detach_teacher : bool
        Stop gradients through the teacher.

    Returns
    -------
    Tensor
        Scalar: per voxel ``sum_k p_k (log p_k - log q_k)`` averaged over voxels and
        batch, summed over students (0 with fewer than two entries). Not scaled by T^2.
    """
    if len(logits) < 2:
        return logits[0].new_zeros(()) if logits else torch.zeros(())
    teacher = logits[0].float() / temperature
    if detach_teacher:
        teacher = teacher.detach()
    log_p = F.log_softmax(teacher, dim=1)
    total = teacher.new_zeros(())
    for student in logits[1:]:
        log_q = F.log_softmax(student.float() / temperature, dim=1)
        total = total + F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(1).mean()
    return total


def dsd_loss_terms(
    main_logits: torch.Tensor,
    decoder_logits: Sequence[torch.Tensor],
    encoder_logits: Sequence[torch.Tensor],
    target: torch.Tensor,
    *,
    alpha: float = 1.0,
    temperature: float = 3.0,
    detach_teacher: bool = False,
) -> dict[str, torch.Tensor]:
    """The DSD loss and its parts: ``loss``, ``dice_ce``, ``kl_decoder``, ``kl_encoder``.

    See :func:`dsd_loss` for the parameters.
    """
    if target.ndim != main_logits.ndim or target.shape[1] != 1:
        raise DataError(
            f"dsd_loss: target must hold class indices with shape (B, 1, D, H, W); got "
            f"{tuple(target.shape)} for logits {tuple(main_logits.shape)}."
        )
    if target.shape[0] != main_logits.shape[0] or target.shape[2:] != main_logits.shape[2:]:
        raise DataError(
            f"dsd_loss: target {tuple(target.shape)} does not match logits "
            f"{tuple(main_logits.shape)} in batch or spatial size."
        )
    for i, logits in enumerate(decoder_logits):
        _check_logits(f"decoder_logits[{i}]", logits, main_logits)
    for i, logits in enumerate(encoder_logits):
        _check_logits(f"encoder_logits[{i}]", logits, main_logits)
    dice_ce = _dice_ce()
    seg = dice_ce(main_logits.float(), target)
    for logits in decoder_logits:
        seg = seg + dice_ce(logits.float(), target)
    kl_dec = distillation_kl(decoder_logits, temperature=temperature, detach_teacher=detach_teacher)
    kl_enc = distillation_kl(encoder_logits, temperature=temperature, detach_teacher=detach_teacher)
    kl_dec, kl_enc = kl_dec.to(seg.device), kl_enc.to(seg.device)
    loss = seg + alpha * temperature**2 * (kl_dec + kl_enc)
    return {
        "loss": loss,
        "dice_ce": seg.detach(),
        "kl_decoder": kl_dec.detach(),
        "kl_encoder": kl_enc.detach(),
    }


def dsd_loss(
    main_logits: torch.Tensor,
    decoder_logits: Sequence[torch.Tensor],
    encoder_logits: Sequence[torch.Tensor],
    target: torch.Tensor,
    alpha: float = 1.0,
    temperature: float = 3.0,
    detach_teacher: bool = False,
) -> torch.Tensor:
    """The dual self-distillation loss.

    Parameters
    ----------
    main_logits : Tensor, shape (B, K, D, H, W)
        The network's output logits.
    decoder_logits : sequence of Tensor, each (B, K, D, H, W)
        Decoder-head logits upsampled to full resolution: the teacher ``dec1`` (the
        deepest decoder stage, highest resolution, just before the output) first,
        then the students ``dec2 .. decN`` (``decN``: the bottleneck, except on
        SwinUNETR). Each gets a Dice + CE term.
    encoder_logits : sequence of Tensor, each (B, K, D, H, W)
        Encoder-head logits: the teacher ``encN`` (the deepest encoder stage, the
        deepest skip; not the bottleneck) first, then the students ``enc{N-1} ..
        enc1``. They get no Dice + CE term.
    target : Tensor, shape (B, 1, D, H, W)
        Class indices.
    alpha : float
        Weight of the distillation terms.
    temperature : float
        Softmax temperature ``T``; the KL terms are scaled by ``T**2``.
    detach_teacher : bool
        Stop gradients through the teachers' logits (the reference does not).

    Returns
    -------
    Tensor
        Scalar: Dice + CE (MONAI ``DiceCELoss``: softmax, one-hot target, background
        included, weights 1:1) over the main output and every decoder head, plus
        ``alpha * T**2 * (KL terms)``.
    """
    return dsd_loss_terms(
        main_logits,
        decoder_logits,
        encoder_logits,
        target,
        alpha=alpha,
        temperature=temperature,
        detach_teacher=detach_teacher,
    )["loss"]


# -- the config and presets -------------------------------------------------------------


@dataclass
class DSDConfig(ModelConfig):
    """Hyperparameters of a DSD segmentation network.

    Attributes
    ----------
    backbone : {"unet", "dynunet", "unetr", "swinunetr", "vnet"}
        The MONAI network (the paper's: UNETR, DynUNet, SwinUNETR, VNet; UNet is an
        extra the paper does not use).
    in_channels : int
        Image channels (modalities).
    out_channels : int
        Classes, background included.
    roi_size : tuple of int
        Training patch size and sliding-window size (voxels, D x H x W).
    mode : {"dsd", "deep_supervision", "plain"}
        Which heads and loss terms are used.
    alpha, temperature : float
        Distillation weight and softmax temperature.
    detach_teacher : bool
        Stop gradients through the teachers.
    backbone_options : dict
        Keyword arguments of the MONAI class (channels, strides, feature_size ...).
    sw_overlap : float
        Overlap of sliding-window inference (fraction of the window).
    sw_batch_size : int
        Windows per forward pass in sliding-window inference.
    sw_mode : {"gaussian", "constant"}
        Blending of overlapping windows.
    """

    backbone: str = "unet"
    in_channels: int = 1
    out_channels: int = 4
    roi_size: tuple[int, ...] = (48, 48, 48)
    mode: str = "dsd"
    alpha: float = 1.0
    temperature: float = 3.0
    detach_teacher: bool = False
    backbone_options: dict = field(default_factory=dict)
    sw_overlap: float = 0.5
    sw_batch_size: int = 2
    sw_mode: str = "gaussian"

    def validate(self) -> None:
        check_option("backbone", self.backbone, BACKBONES)
        check_option("mode", self.mode, MODES)
        check_option("sw_mode", self.sw_mode, ("gaussian", "constant"))
        check_backbone_options(self.backbone, self.backbone_options)
        check_backbone_channels(self.backbone, self.in_channels)
        if len(self.roi_size) != 3 or any(int(s) < 1 for s in self.roi_size):
            raise ConfigError(f"roi_size must be three positive sizes, got {self.roi_size}.")
        if self.in_channels < 1 or self.out_channels < 2:
            raise ConfigError(
                f"DSD needs in_channels >= 1 and out_channels >= 2 (background included); got "
                f"{self.in_channels} and {self.out_channels}."
            )
        if self.alpha < 0 or self.temperature <= 0:
            raise ConfigError(
                f"alpha must be >= 0 and temperature > 0; got {self.alpha}, {self.temperature}."
            )
        if not 0 <= self.sw_overlap < 1:
            raise ConfigError(f"sw_overlap must be in [0, 1), got {self.sw_overlap}.")
        divisor = size_divisor(self.backbone, self.backbone_options)
        if any(int(s) % d for s, d in zip(self.roi_size, divisor, strict=True)):
            raise ConfigError(
                f"roi_size {tuple(self.roi_size)} must be a multiple of {divisor} for backbone "
                f"{self.backbone!r} and its strides."
            )


#: Tiny settings that train in CPU minutes (see workflows/config/config.yaml).
DEMO_BACKBONES: dict[str, dict[str, Any]] = {
    "unet": {
        "roi_size": (32, 32, 32),
        "backbone_options": {"channels": (8, 16, 32, 64), "strides": (2, 2, 2), "num_res_units": 1},
    },
    "dynunet": {
        "roi_size": (32, 32, 32),
        "backbone_options": {
            "kernel_size": (3, 3, 3, 3),
            "strides": (1, 2, 2, 2),
            "upsample_kernel_size": (2, 2, 2),
            "filters": (8, 16, 32, 64),
            "norm_name": "instance",
            "res_block": True,
        },
    },
    "unetr": {
        "roi_size": (32, 32, 32),
        "backbone_options": {
            "feature_size": 8,
            "hidden_size": 48,
            "mlp_dim": 96,
            "num_heads": 4,
            "proj_type": "perceptron",
            "norm_name": "instance",
            "res_block": True,
        },
    },
    "swinunetr": {
        # 64^3: at 32^3 the bottleneck is 1 voxel, where instance norm is undefined.
        "roi_size": (64, 64, 64),
        "backbone_options": {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2)},
    },
    # MONAI's VNet has fixed widths (16 to 256 channels, 45.6 M parameters): not tiny.
    "vnet": {"roi_size": (32, 32, 32), "backbone_options": {}},
}

#: Published sizes. DynUNet, UNETR and SwinUNETR follow the DSD reference code
#: (MMWHS CT settings, 96^3 patches); VNet is MONAI's with its defaults, as the reference
#: trains it (MSD-BraTS, 128^3 patches: ``train.sh``). The reference has no MONAI UNet, so
#: ``unet`` uses the 3D UNet of the MONAI tutorials (channels 16-256, two residual units).
PAPER_BACKBONES: dict[str, dict[str, Any]] = {
    "unet": {
        "roi_size": (96, 96, 96),
        "backbone_options": {
            "channels": (16, 32, 64, 128, 256),
            "strides": (2, 2, 2, 2),
            "num_res_units": 2,
        },
    },
    "dynunet": {
        "roi_size": (96, 96, 96),
        "backbone_options": {
            "kernel_size": (3, 3, 3, 3, 3),
            "strides": (1, 2, 2, 2, 2),
            "upsample_kernel_size": (2, 2, 2, 2),
            "filters": (32, 64, 128, 256, 320),
            "norm_name": "instance",
            "res_block": True,
        },
    },
    "unetr": {
        "roi_size": (96, 96, 96),
        "backbone_options": {
            "feature_size": 16,
            "hidden_size": 768,
            "mlp_dim": 3072,
            "num_heads": 12,
            "proj_type": "perceptron",
            "norm_name": "instance",
            "res_block": True,
            "dropout_rate": 0.0,
        },
    },
    "swinunetr": {
        "roi_size": (96, 96, 96),
        "backbone_options": {"feature_size": 36},
    },
    "vnet": {"roi_size": (128, 128, 128), "backbone_options": {}},
}


def _preset(table: Mapping[str, dict[str, Any]], **extra: Any):
    def values(overrides: Mapping[str, Any]) -> dict[str, Any]:
        backbone = overrides.get("backbone", "unet")
        check_option("backbone", backbone, table)
        chosen = table[backbone]
        return {
            "backbone": backbone,
            "roi_size": chosen["roi_size"],
            "backbone_options": dict(chosen["backbone_options"]),
            **extra,
        }

    return values


# -- the model --------------------------------------------------------------------------


@dataclass
class DSDOutputs:
    """Logits of one forward pass with heads, teacher first in each list.

    ``decoder`` is dec1 (teacher), dec2 .. decN; ``encoder`` is encN (teacher),
    enc{N-1} .. enc1 (see :meth:`DSDNet.loss_plan`).
    """

    main: torch.Tensor
    decoder: list[torch.Tensor]
    encoder: list[torch.Tensor]


@register_model(
    "dsd",
    config=DSDConfig,
    presets={
        "demo": _preset(DEMO_BACKBONES, sw_overlap=0.25, sw_batch_size=4),
        "paper": _preset(PAPER_BACKBONES, sw_overlap=0.5, sw_batch_size=2),
    },
    description="Dual self-distillation of a U-shaped MONAI backbone for 3D segmentation",
)
class DSDNet(NeuroModel):
    """A U-shaped segmentation network with DSD heads (see the module docstring).

    Parameters
    ----------
    config : DSDConfig
        Its hyperparameters.

    Attributes
    ----------
    backbone : UShapedBackbone
        The MONAI network, stages exposed.
    encoder_heads, decoder_heads : nn.ModuleList
        One :class:`StageHead` per stage, in the order of ``backbone.encoder_specs``
        (enc1 .. encN) and ``backbone.decoder_specs`` (decN .. dec1); empty when the
        mode does not use them.
    """

    modality = "volume"
    item_ndim = 4

    def __init__(self, config: DSDConfig) -> None:
        super().__init__(config)
        self.backbone = UShapedBackbone(
            config.backbone,
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            roi_size=config.roi_size,
            options=config.backbone_options,
        )
        k = config.out_channels
        with_decoder = config.mode in ("deep_supervision", "dsd")
        with_encoder = config.mode == "dsd"
        self.decoder_heads = nn.ModuleList(
            [StageHead(s.channels, k, s.steps) for s in self.backbone.decoder_specs]
            if with_decoder
            else []
        )
        self.encoder_heads = nn.ModuleList(
            [StageHead(s.channels, k, s.steps) for s in self.backbone.encoder_specs]
            if with_encoder
            else []
        )

    @property
    def embed_dim(self) -> int:
        return self.backbone.bottleneck_channels

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        """Random patches ``(batch_size, in_channels, *roi_size)``."""
        return torch.randn(batch_size, self.config.in_channels, *self.config.roi_size)

    def head_parameter_count(self) -> int:
        """Parameters of the DSD / deep-supervision heads alone."""
        heads = [*self.decoder_heads.parameters(), *self.encoder_heads.parameters()]
        return sum(p.numel() for p in heads)

    def loss_plan(self) -> dict[str, list]:
        """The stages each loss term uses in this mode, by name.

        Returns
        -------
        dict
            ``"dice_ce"``: the outputs with a Dice + CE term (``"main"``, then
            ``decN .. dec1``); ``"kl_decoder"``, ``"kl_encoder"``: ``(teacher, student)``
            pairs. On UNETR in mode ``"dsd"``: 5 Dice + CE terms, 3 + 3 KL terms.
        """
        decoder = [s.name for s in self.backbone.decoder_specs] if self.decoder_heads else []
        encoder = [s.name for s in self.backbone.encoder_specs] if self.encoder_heads else []
        distil = self.config.mode == "dsd"

        def pairs(names: list[str]) -> list[tuple[str, str]]:
            if not distil or not names:
                return []
            teacher = names[-1]
            return [(teacher, student) for student in reversed(names[:-1])]

        return {
            "dice_ce": ["main", *decoder],
            "kl_decoder": pairs(decoder),
            "kl_encoder": pairs(encoder),
        }

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise DataError(
                f"DSD expects input of shape (B, {self.config.in_channels}, D, H, W); got "
                f"{tuple(x.shape)}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Main logits ``(B, K, D, H, W)`` (no heads: inference cost of the backbone)."""
        return self.backbone(x)

    def forward_heads(self, x: torch.Tensor) -> DSDOutputs:
        """Main logits and every head's full-resolution logits, teachers first
        (decoder: dec1, dec2 .. decN; encoder: encN, enc{N-1} .. enc1)."""
        stages = self.backbone.forward_stages(x)
        decoder = [head(f) for head, f in zip(self.decoder_heads, stages.decoder, strict=False)]
        encoder = [head(f) for head, f in zip(self.encoder_heads, stages.encoder, strict=False)]
        return DSDOutputs(stages.main, decoder[::-1], encoder[::-1])

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """DSD, deep-supervision or plain Dice + CE loss of a batch of patches."""
        x, target = batch[INPUTS], batch[TARGET]
        self._check_input(x)
        cfg = self.config
        if cfg.mode == "plain":
            return dsd_loss_terms(self(x), [], [], target, alpha=0.0, temperature=cfg.temperature)
        out = self.forward_heads(x)
        return dsd_loss_terms(
            out.main,
            out.decoder,
            out.encoder if cfg.mode == "dsd" else [],
            target,
            alpha=cfg.alpha if cfg.mode == "dsd" else 0.0,
            temperature=cfg.temperature,
            detach_teacher=cfg.detach_teacher,
        )

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of whole volumes by sliding-window inference, ``(B, K, D, H, W)``."""
        from monai.inferers import sliding_window_inference

        self._check_input(x)
        cfg = self.config
        return sliding_window_inference(
            x,
            roi_size=tuple(cfg.roi_size),
            sw_batch_size=cfg.sw_batch_size,
            predictor=self.forward,
            overlap=cfg.sw_overlap,
            mode=cfg.sw_mode,
        )

    @torch.no_grad()
    def validation_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        """Dice + CE and foreground Dice (mean and per class) of whole volumes."""
        from monai.metrics import compute_dice

        x, target = batch[INPUTS], batch[TARGET]
        logits = self.predict(x)
        loss = _dice_ce()(logits.float(), target)
        k = self.config.out_channels
        pred = F.one_hot(logits.argmax(1), k).movedim(-1, 1)
        true = F.one_hot(target[:, 0].long(), k).movedim(-1, 1)
        dice = compute_dice(pred, true, include_background=False)  # (B, K - 1), nan when absent
        metrics = {"loss": loss, "dice": torch.nanmean(dice)}
        for c in range(1, k):
            metrics[f"dice_class{c}"] = torch.nanmean(dice[:, c - 1])
        return metrics

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck features averaged over space, ``(B, embed_dim)``.

        Volumes of any size: they are padded to the backbone's size divisor
        (UNETR: cut into ``roi_size`` tiles whose features are averaged).
        """
        self._check_input(x)
        cfg = self.config
        if cfg.backbone == "unetr":
            return _tiled_mean(self.backbone.bottleneck_features, x, tuple(cfg.roi_size))
        divisor = size_divisor(cfg.backbone, cfg.backbone_options)
        padded = _pad_to_multiple(x, divisor)
        return self.backbone.bottleneck_features(padded).mean(dim=(2, 3, 4))


def _pad_to_multiple(x: torch.Tensor, divisor: Sequence[int]) -> torch.Tensor:
    pad = []
    for size, d in zip(reversed(x.shape[2:]), reversed(tuple(divisor)), strict=True):
        extra = (-size) % d
        pad.extend([extra // 2, extra - extra // 2])
    return F.pad(x, pad) if any(pad) else x


def _tiled_mean(features, x: torch.Tensor, tile: tuple[int, int, int]) -> torch.Tensor:
    padded = _pad_to_multiple(x, tile)
    sums, count = None, 0
    for i in range(0, padded.shape[2], tile[0]):
        for j in range(0, padded.shape[3], tile[1]):
            for k in range(0, padded.shape[4], tile[2]):
                patch = padded[:, :, i : i + tile[0], j : j + tile[1], k : k + tile[2]]
                pooled = features(patch).mean(dim=(2, 3, 4))
                sums = pooled if sums is None else sums + pooled
                count += 1
    return sums / count
