"""U-shaped MONAI backbones with every encoder and decoder stage exposed.

The four backbones DSD supports (MONAI ``UNet``, ``DynUNet``, ``UNETR``,
``SwinUNETR``) are built unchanged; :class:`UShapedBackbone` re-walks their forward
pass with the same submodules and returns, besides the main logits, the feature map
of every stage (a test checks the main logits equal the MONAI network's own output).

Stages are listed in forward order:

- ``encoder``: from the shallowest encoder stage down to the bottleneck (the last
  entry, lowest resolution: DSD's encoder teacher);
- ``decoder``: from the stage just after the bottleneck up to the last decoder stage
  before the output layer (the last entry, highest resolution: DSD's decoder
  teacher). The final decoder stage, which produces the main output, is not listed.

Each stage comes with a :class:`StageSpec` (channels and the strides between it and
the input), from which heads are built.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuroai.errors import ConfigError, check_option, did_you_mean

BACKBONES = ("unet", "dynunet", "unetr", "swinunetr")
#: Arguments the backbone wrapper sets itself.
_FIXED = {"spatial_dims", "in_channels", "out_channels", "img_size", "deep_supervision"}


@dataclass(frozen=True)
class StageSpec:
    """One stage of a U-shaped network.

    Attributes
    ----------
    name : str
        ``"encoder2"``, ``"bottleneck"``, ``"decoder1"``...
    channels : int
        Feature channels at the stage.
    steps : tuple of (int, int, int)
        Strides from the input down to the stage (empty at full resolution).
    """

    name: str
    channels: int
    steps: tuple[tuple[int, int, int], ...]

    @property
    def scale(self) -> tuple[int, int, int]:
        """Total down-sampling factor per axis."""
        total = [1, 1, 1]
        for step in self.steps:
            total = [t * s for t, s in zip(total, step, strict=True)]
        return tuple(total)


@dataclass
class StageOutputs:
    """Main logits and stage features of one forward pass (see module docstring)."""

    main: torch.Tensor
    encoder: list[torch.Tensor]
    decoder: list[torch.Tensor]


def _triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise ConfigError(f"Expected 3 values per stride, got {values}.")
    return values


def _monai_class(backbone: str):
    from monai.networks import nets

    return {
        "unet": nets.UNet,
        "dynunet": nets.DynUNet,
        "unetr": nets.UNETR,
        "swinunetr": nets.SwinUNETR,
    }[backbone]


def backbone_option_names(backbone: str) -> list[str]:
    """Keyword arguments of the MONAI class that ``backbone_options`` may set."""
    check_option("backbone", backbone, BACKBONES)
    signature = inspect.signature(_monai_class(backbone).__init__)
    return [n for n in signature.parameters if n not in {"self", *_FIXED}]


def check_backbone_options(backbone: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for an option the MONAI backbone does not take."""
    names = backbone_option_names(backbone)
    for key in options:
        if key not in names:
            raise ConfigError(
                f"Unknown backbone option {key!r} for {backbone!r} "
                f"(monai.networks.nets.{_monai_class(backbone).__name__}).{did_you_mean(key, names)} "
                f"Valid options: {', '.join(names)}."
            )


def size_divisor(backbone: str, options: Mapping[str, Any]) -> tuple[int, int, int]:
    """Input sizes must be multiples of this (UNETR needs exactly its ``img_size``)."""
    if backbone in ("unet", "dynunet"):
        strides = options.get("strides", ())
        total = [1, 1, 1]
        for stride in strides:
            total = [t * s for t, s in zip(total, _triple(stride), strict=True)]
        return tuple(total)
    if backbone == "unetr":
        return (16, 16, 16)
    return (32, 32, 32)


class UShapedBackbone(nn.Module):
    """A MONAI U-shaped network whose forward pass exposes every stage.

    Parameters
    ----------
    backbone : {"unet", "dynunet", "unetr", "swinunetr"}
        Which MONAI network.
    in_channels, out_channels : int
        Input channels and classes (background included).
    roi_size : (int, int, int)
        Patch size the network is trained on (UNETR's fixed ``img_size``).
    options : mapping
        Further keyword arguments of the MONAI class.

    Attributes
    ----------
    net : torch.nn.Module
        The MONAI network (its ``forward`` gives the same main logits).
    encoder_specs, decoder_specs : list of StageSpec
        Stage descriptions in forward order.
    """

    def __init__(
        self,
        backbone: str,
        *,
        in_channels: int,
        out_channels: int,
        roi_size: Sequence[int],
        options: Mapping[str, Any],
    ) -> None:
        super().__init__()
        check_option("backbone", backbone, BACKBONES)
        check_backbone_options(backbone, options)
        self.backbone = backbone
        options = dict(options)
        if backbone == "swinunetr" and options.get("patch_size", 2) != 2:
            raise ConfigError("DSD supports SwinUNETR with patch_size=2 only.")
        kwargs: dict[str, Any] = {"in_channels": in_channels, "out_channels": out_channels}
        if backbone in ("unet", "dynunet", "swinunetr"):
            kwargs["spatial_dims"] = 3
        if backbone == "unetr":
            kwargs["img_size"] = tuple(roi_size)
        self.net = _monai_class(backbone)(**kwargs, **options)
        self.encoder_specs, self.decoder_specs = getattr(self, f"_specs_{backbone}")(options)

    # -- stage descriptions -------------------------------------------------------------

    def _specs_unet(self, options):
        channels = list(options["channels"])
        strides = [_triple(s) for s in options["strides"]]
        n = len(channels)
        encoder = [
            StageSpec(f"encoder{i}", channels[i], tuple(strides[: i + 1])) for i in range(n - 1)
        ]
        encoder.append(StageSpec("bottleneck", channels[-1], tuple(strides[: n - 1])))
        decoder = [
            StageSpec(f"decoder{i}", channels[i - 1], tuple(strides[:i]))
            for i in range(n - 2, 0, -1)
        ]
        return encoder, decoder

    def _specs_dynunet(self, options):
        filters = list(self.net.filters)
        strides = [_triple(s) for s in options["strides"]]
        n = len(strides)
        encoder = [
            StageSpec(f"encoder{k}", filters[k], tuple(strides[: k + 1])) for k in range(n - 1)
        ]
        encoder.append(StageSpec("bottleneck", filters[n - 1], tuple(strides)))
        decoder = [
            StageSpec(f"decoder{n - 2 - j}", filters[n - 2 - j], tuple(strides[: n - 1 - j]))
            for j in range(n - 2)
        ]
        return encoder, decoder

    def _specs_unetr(self, options):
        fs = options.get("feature_size", 16)
        hidden = options.get("hidden_size", 768)
        two = (2, 2, 2)
        encoder = [
            StageSpec("encoder1", fs, ()),
            StageSpec("encoder2", 2 * fs, (two,)),
            StageSpec("encoder3", 4 * fs, (two,) * 2),
            StageSpec("encoder4", 8 * fs, (two,) * 3),
            StageSpec("bottleneck", hidden, (two,) * 4),
        ]
        decoder = [
            StageSpec("decoder5", 8 * fs, (two,) * 3),
            StageSpec("decoder4", 4 * fs, (two,) * 2),
            StageSpec("decoder3", 2 * fs, (two,)),
        ]
        return encoder, decoder

    def _specs_swinunetr(self, options):
        fs = options.get("feature_size", 24)
        two = (2, 2, 2)
        encoder = [
            StageSpec("encoder1", fs, ()),
            StageSpec("encoder2", fs, (two,)),
            StageSpec("encoder3", 2 * fs, (two,) * 2),
            StageSpec("encoder4", 4 * fs, (two,) * 3),
            StageSpec("swin_stage4", 8 * fs, (two,) * 4),
            StageSpec("bottleneck", 16 * fs, (two,) * 5),
        ]
        decoder = [
            StageSpec("decoder5", 8 * fs, (two,) * 4),
            StageSpec("decoder4", 4 * fs, (two,) * 3),
            StageSpec("decoder3", 2 * fs, (two,) * 2),
            StageSpec("decoder2", fs, (two,)),
        ]
        return encoder, decoder

    @property
    def bottleneck_channels(self) -> int:
        return self.encoder_specs[-1].channels

    # -- forward passes -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Main logits only (the MONAI network's own forward)."""
        return self.net(x)

    def forward_stages(self, x: torch.Tensor) -> StageOutputs:
        """Main logits and every stage's features, in forward order."""
        return getattr(self, f"_stages_{self.backbone}")(x)

    def _stages_unet(self, x):
        from monai.networks.layers.simplelayers import SkipConnection

        encoder: list[torch.Tensor] = []
        decoder: list[torch.Tensor] = []

        def level(block: nn.Sequential, h: torch.Tensor, top: bool) -> torch.Tensor:
            down, skip, up = block[0], block[1], block[2]
            d = down(h)
            encoder.append(d)
            sub = skip.submodule
            if (
                isinstance(sub, nn.Sequential)
                and len(sub) == 3
                and isinstance(sub[1], SkipConnection)
            ):
                inner = level(sub, d, False)
            else:  # the bottom layer
                inner = sub(d)
                encoder.append(inner)
            out = up(torch.cat([d, inner], dim=skip.dim))
            if not top:
                decoder.append(out)
            return out

        main = level(self.net.model, x, True)
        return StageOutputs(main, encoder, decoder)

    def _stages_dynunet(self, x):
        net = self.net
        skips = [net.input_block(x)]
        for down in net.downsamples:
            skips.append(down(skips[-1]))
        h = net.bottleneck(skips[-1])
        encoder = [*skips, h]
        decoder = []
        for j, up in enumerate(net.upsamples):
            h = up(h, skips[-1 - j])
            decoder.append(h)
        main = net.output_block(decoder.pop())
        return StageOutputs(main, encoder, decoder)

    def _stages_unetr(self, x):
        net = self.net
        last, hidden = net.vit(x)
        enc1 = net.encoder1(x)
        enc2 = net.encoder2(net.proj_feat(hidden[3]))
        enc3 = net.encoder3(net.proj_feat(hidden[6]))
        enc4 = net.encoder4(net.proj_feat(hidden[9]))
        bottleneck = net.proj_feat(last)
        dec3 = net.decoder5(bottleneck, enc4)
        dec2 = net.decoder4(dec3, enc3)
        dec1 = net.decoder3(dec2, enc2)
        main = net.out(net.decoder2(dec1, enc1))
        return StageOutputs(main, [enc1, enc2, enc3, enc4, bottleneck], [dec3, dec2, dec1])

    def _stages_swinunetr(self, x):
        net = self.net
        hidden = net.swinViT(x, net.normalize)
        enc0 = net.encoder1(x)
        enc1 = net.encoder2(hidden[0])
        enc2 = net.encoder3(hidden[1])
        enc3 = net.encoder4(hidden[2])
        bottleneck = net.encoder10(hidden[4])
        dec3 = net.decoder5(bottleneck, hidden[3])
        dec2 = net.decoder4(dec3, enc3)
        dec1 = net.decoder3(dec2, enc2)
        dec0 = net.decoder2(dec1, enc1)
        main = net.out(net.decoder1(dec0, enc0))
        encoder = [enc0, enc1, enc2, enc3, hidden[3], bottleneck]
        return StageOutputs(main, encoder, [dec3, dec2, dec1, dec0])

    def bottleneck_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features at the bottleneck, ``(B, C_bottleneck, d, h, w)``."""
        if self.backbone == "unetr":
            last, _ = self.net.vit(x)
            return self.net.proj_feat(last)
        if self.backbone == "swinunetr":
            return self.net.encoder10(self.net.swinViT(x, self.net.normalize)[4])
        if self.backbone == "dynunet":
            h = self.net.input_block(x)
            for down in self.net.downsamples:
                h = down(h)
            return self.net.bottleneck(h)
        # unet: walk down the down paths to the bottom layer
        from monai.networks.layers.simplelayers import SkipConnection

        block, h = self.net.model, x
        while True:
            h = block[0](h)
            sub = block[1].submodule
            if (
                isinstance(sub, nn.Sequential)
                and len(sub) == 3
                and isinstance(sub[1], SkipConnection)
            ):
                block = sub
                continue
            return sub(h)
