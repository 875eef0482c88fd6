"""U-shaped MONAI backbones with their DSD stages exposed.

The five backbones DSD supports (MONAI ``UNETR``, ``DynUNet``, ``SwinUNETR``, ``VNet``,
as in the paper, and ``UNet``, an extra) are built unchanged; :class:`UShapedBackbone`
re-walks their forward pass with the same submodules and returns, besides the main
logits, the feature map of every DSD stage (a test checks the main logits equal the
MONAI network's own output).

Stages follow the DSD reference code (soumbane/DualSelfDistillation,
``networks/*/self_distill_*.py``), named as there:

- ``encoder``: ``enc1`` (shallowest) ... ``encN`` (deepest), in forward order: the
  encoder's skip features, from the top of the U down to the deepest skip. The last
  entry, ``encN``, is DSD's encoder teacher. The bottleneck is not an encoder stage.
- ``decoder``: ``decN`` (deepest) ... ``dec1``, in forward order: the bottleneck and
  the output of every decoder block except the last (which feeds the output layer),
  i.e. the feature map entering each decoder block. The last entry, ``dec1`` (highest
  resolution, just before the output), is DSD's decoder teacher. SwinUNETR, as in the
  reference, taps the outputs of its first four decoder blocks and leaves its 1/32
  bottleneck (and the raw 1/16 Swin skip) out.

Per backbone (``x`` the input, ``fs`` the feature size, ``h`` UNETR's hidden size;
scale = down-sampling factor per axis):

============ ======== =========================================================== ======== ======
backbone     stage    tensor (MONAI attribute names)                              channels scale
============ ======== =========================================================== ======== ======
UNETR        enc1     ``encoder1(x)``                                             fs       1
             enc2     ``encoder2(proj_feat(hidden_states[3]))``                   2 fs     2
             enc3     ``encoder3(proj_feat(hidden_states[6]))``                   4 fs     4
             enc4 *   ``encoder4(proj_feat(hidden_states[9]))``                   8 fs     8
             dec4     ``proj_feat(vit(x)[0])`` (the bottleneck)                   h        16
             dec3     ``decoder5(dec4, enc4)``                                    8 fs     8
             dec2     ``decoder4(dec3, enc3)``                                    4 fs     4
             dec1 *   ``decoder3(dec2, enc2)``                                    2 fs     2
SwinUNETR    enc1     ``encoder1(x)``                                             fs       1
             enc2     ``encoder2(hidden_states[0])``                              fs       2
             enc3     ``encoder3(hidden_states[1])``                              2 fs     4
             enc4 *   ``encoder4(hidden_states[2])``                              4 fs     8
             dec4     ``decoder5(encoder10(hidden_states[4]), hidden_states[3])`` 8 fs     16
             dec3     ``decoder4(dec4, enc4)``                                    4 fs     8
             dec2     ``decoder3(dec3, enc3)``                                    2 fs     4
             dec1 *   ``decoder2(dec2, enc2)``                                    fs       2
VNet         enc1     ``in_tr(x)``                                                16       1
             enc2     ``down_tr32(enc1)``                                         32       2
             enc3     ``down_tr64(enc2)``                                         64       4
             enc4 *   ``down_tr128(enc3)``                                        128      8
             dec4     ``down_tr256(enc4)`` (the bottleneck)                       256      16
             dec3     ``up_tr256(dec4, enc4)``                                    256      8
             dec2     ``up_tr128(dec3, enc3)``                                    128      4
             dec1 *   ``up_tr64(dec2, enc2)``                                     64       2
DynUNet      enc1     ``input_block(x)``                                          f(0)     S(0)
(n levels)   enc{k}   ``downsamples[k-2]``, k = 2 .. n-1 (enc{n-1} *)             f(k-1)   S(k-1)
             dec{n-1} ``bottleneck`` (the bottleneck)                             f(n-1)   S(n-1)
             dec{j}   ``upsamples[n-2-j]``, j = n-2 .. 1 (dec1 *)                 f(j)     S(j)
UNet         enc{k}   down path of level k-1, k = 1 .. n-1 (enc{n-1} *)           c(k-1)   S(k-1)
(n channels) dec{n-1} the bottom layer (the bottleneck)                           c(n-1)   S(n-2)
             dec{j}   up path of level j, j = n-2 .. 1 (dec1 *)                   c(j-1)   S(j-1)
============ ======== =========================================================== ======== ======

``*`` marks the teachers. DynUNet: ``f`` its filters, ``S(i)`` the product of its
first ``i + 1`` strides; with the reference's 5 levels (strides 1, 2, 2, 2, 2) it is
enc1..enc4 at scales 1, 2, 4, 8 and dec4..dec1 at 16, 8, 4, 2, exactly as in the
reference's ``self_distill_nnunet.py``. UNet (not in the paper; MONAI's first
convolution already strides, so it has no full-resolution stage): ``c`` its channels,
``S(i)`` the product of its first ``i + 1`` strides; the rule is the one above.

Each stage comes with a :class:`StageSpec` (its name, channels, the strides between it
and the input and the tensor it is), from which heads are built.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuroai.errors import ConfigError, check_option, did_you_mean

BACKBONES = ("unet", "dynunet", "unetr", "swinunetr", "vnet")
#: Arguments the backbone wrapper sets itself.
_FIXED = {"spatial_dims", "in_channels", "out_channels", "img_size", "deep_supervision"}
_TWO = (2, 2, 2)


@dataclass(frozen=True)
class StageSpec:
    """One stage of a U-shaped network.

    Attributes
    ----------
    name : str
        ``"enc1"`` ... ``"encN"``, ``"decN"`` ... ``"dec1"`` (as the DSD reference
        names them), or ``"bottleneck"``.
    channels : int
        Feature channels at the stage.
    steps : tuple of (int, int, int)
        Strides from the input down to the stage (empty at full resolution).
    tensor : str
        How the MONAI network computes it (attribute names of the MONAI class).
    """

    name: str
    channels: int
    steps: tuple[tuple[int, int, int], ...]
    tensor: str = ""

    @property
    def scale(self) -> tuple[int, int, int]:
        """Total down-sampling factor per axis."""
        total = [1, 1, 1]
        for step in self.steps:
            total = [t * s for t, s in zip(total, step, strict=True)]
        return tuple(total)


@dataclass
class StageOutputs:
    """Main logits and stage features of one forward pass (see module docstring).

    ``encoder`` is enc1 ... encN and ``decoder`` decN ... dec1: the teacher last in both.
    """

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
        "vnet": nets.VNet,
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


def check_backbone_channels(backbone: str, in_channels: int) -> None:
    """Raise :class:`ConfigError` where the backbone cannot take ``in_channels``."""
    if backbone == "vnet" and 16 % in_channels:
        raise ConfigError(
            f"Backbone 'vnet' (monai.networks.nets.VNet) needs in_channels dividing 16 (its "
            f"first stage repeats the input to 16 channels); got in_channels={in_channels}."
        )


def size_divisor(backbone: str, options: Mapping[str, Any]) -> tuple[int, int, int]:
    """Input sizes must be multiples of this (UNETR needs exactly its ``img_size``)."""
    if backbone in ("unet", "dynunet"):
        strides = options.get("strides", ())
        total = [1, 1, 1]
        for stride in strides:
            total = [t * s for t, s in zip(total, _triple(stride), strict=True)]
        return tuple(total)
    if backbone in ("unetr", "vnet"):
        return (16, 16, 16)
    return (32, 32, 32)


class UShapedBackbone(nn.Module):
    """A MONAI U-shaped network whose forward pass exposes its DSD stages.

    Parameters
    ----------
    backbone : {"unet", "dynunet", "unetr", "swinunetr", "vnet"}
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
    encoder_specs : list of StageSpec
        enc1 ... encN in forward order (the teacher, encN, last).
    decoder_specs : list of StageSpec
        decN ... dec1 in forward order (the teacher, dec1, last).
    bottleneck_spec : StageSpec
        The deepest feature map (what :meth:`bottleneck_features` returns); on every
        backbone but SwinUNETR it is also the decoder stage ``decN``.
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
        check_backbone_channels(backbone, in_channels)
        self.backbone = backbone
        options = dict(options)
        if backbone == "swinunetr" and options.get("patch_size", 2) != 2:
            raise ConfigError("DSD supports SwinUNETR with patch_size=2 only.")
        kwargs: dict[str, Any] = {"in_channels": in_channels, "out_channels": out_channels}
        if backbone in ("unet", "dynunet", "swinunetr", "vnet"):
            kwargs["spatial_dims"] = 3
        if backbone == "unetr":
            kwargs["img_size"] = tuple(roi_size)
        self.net = _monai_class(backbone)(**kwargs, **options)
        specs = getattr(self, f"_specs_{backbone}")(options)
        self.encoder_specs, self.decoder_specs, self.bottleneck_spec = specs

    @property
    def bottleneck_channels(self) -> int:
        return self.bottleneck_spec.channels

    # -- stage descriptions -------------------------------------------------------------

    def _specs_unet(self, options):
        channels = list(options["channels"])
        strides = [_triple(s) for s in options["strides"]]
        n = len(channels)
        encoder = [
            StageSpec(f"enc{k}", channels[k - 1], tuple(strides[:k]), f"down path of level {k - 1}")
            for k in range(1, n)
        ]
        bottom = StageSpec(f"dec{n - 1}", channels[-1], tuple(strides[: n - 1]), "bottom layer")
        decoder = [bottom] + [
            StageSpec(f"dec{j}", channels[j - 1], tuple(strides[:j]), f"up path of level {j}")
            for j in range(n - 2, 0, -1)
        ]
        return encoder, decoder, _as_bottleneck(bottom)

    def _specs_dynunet(self, options):
        filters = list(self.net.filters)
        strides = [_triple(s) for s in options["strides"]]
        n = len(strides)
        encoder = [StageSpec("enc1", filters[0], tuple(strides[:1]), "input_block(x)")] + [
            StageSpec(f"enc{k}", filters[k - 1], tuple(strides[:k]), f"downsamples[{k - 2}]")
            for k in range(2, n)
        ]
        bottom = StageSpec(f"dec{n - 1}", filters[n - 1], tuple(strides), "bottleneck")
        decoder = [bottom] + [
            StageSpec(f"dec{j}", filters[j], tuple(strides[: j + 1]), f"upsamples[{n - 2 - j}]")
            for j in range(n - 2, 0, -1)
        ]
        return encoder, decoder, _as_bottleneck(bottom)

    def _specs_unetr(self, options):
        fs = options.get("feature_size", 16)
        hidden = options.get("hidden_size", 768)
        encoder = [
            StageSpec("enc1", fs, (), "encoder1(x)"),
            StageSpec("enc2", 2 * fs, (_TWO,), "encoder2(proj_feat(hidden_states[3]))"),
            StageSpec("enc3", 4 * fs, (_TWO,) * 2, "encoder3(proj_feat(hidden_states[6]))"),
            StageSpec("enc4", 8 * fs, (_TWO,) * 3, "encoder4(proj_feat(hidden_states[9]))"),
        ]
        decoder = [
            StageSpec("dec4", hidden, (_TWO,) * 4, "proj_feat(vit(x)[0])"),
            StageSpec("dec3", 8 * fs, (_TWO,) * 3, "decoder5(dec4, enc4)"),
            StageSpec("dec2", 4 * fs, (_TWO,) * 2, "decoder4(dec3, enc3)"),
            StageSpec("dec1", 2 * fs, (_TWO,), "decoder3(dec2, enc2)"),
        ]
        return encoder, decoder, _as_bottleneck(decoder[0])

    def _specs_swinunetr(self, options):
        fs = options.get("feature_size", 24)
        encoder = [
            StageSpec("enc1", fs, (), "encoder1(x)"),
            StageSpec("enc2", fs, (_TWO,), "encoder2(hidden_states[0])"),
            StageSpec("enc3", 2 * fs, (_TWO,) * 2, "encoder3(hidden_states[1])"),
            StageSpec("enc4", 4 * fs, (_TWO,) * 3, "encoder4(hidden_states[2])"),
        ]
        decoder = [
            StageSpec("dec4", 8 * fs, (_TWO,) * 4, "decoder5(bottleneck, hidden_states[3])"),
            StageSpec("dec3", 4 * fs, (_TWO,) * 3, "decoder4(dec4, enc4)"),
            StageSpec("dec2", 2 * fs, (_TWO,) * 2, "decoder3(dec3, enc3)"),
            StageSpec("dec1", fs, (_TWO,), "decoder2(dec2, enc2)"),
        ]
        bottleneck = StageSpec("bottleneck", 16 * fs, (_TWO,) * 5, "encoder10(hidden_states[4])")
        return encoder, decoder, bottleneck

    def _specs_vnet(self, options):
        encoder = [
            StageSpec("enc1", 16, (), "in_tr(x)"),
            StageSpec("enc2", 32, (_TWO,), "down_tr32(enc1)"),
            StageSpec("enc3", 64, (_TWO,) * 2, "down_tr64(enc2)"),
            StageSpec("enc4", 128, (_TWO,) * 3, "down_tr128(enc3)"),
        ]
        decoder = [
            StageSpec("dec4", 256, (_TWO,) * 4, "down_tr256(enc4)"),
            StageSpec("dec3", 256, (_TWO,) * 3, "up_tr256(dec4, enc4)"),
            StageSpec("dec2", 128, (_TWO,) * 2, "up_tr128(dec3, enc3)"),
            StageSpec("dec1", 64, (_TWO,), "up_tr64(dec2, enc2)"),
        ]
        return encoder, decoder, _as_bottleneck(decoder[0])

    # -- forward passes -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Main logits only (the MONAI network's own forward)."""
        return self.net(x)

    def forward_stages(self, x: torch.Tensor) -> StageOutputs:
        """Main logits and every stage's features, in forward order."""
        return getattr(self, f"_stages_{self.backbone}")(x)

    def _stages_unet(self, x):
        encoder: list[torch.Tensor] = []
        decoder: list[torch.Tensor] = []

        def level(block: nn.Sequential, h: torch.Tensor, top: bool) -> torch.Tensor:
            down, skip, up = block[0], block[1], block[2]
            d = down(h)
            encoder.append(d)
            sub = skip.submodule
            if _is_unet_level(sub):
                inner = level(sub, d, False)
            else:  # the bottom layer: the deepest decoder stage
                inner = sub(d)
                decoder.append(inner)
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
        decoder = [h]
        for j, up in enumerate(net.upsamples):
            h = up(h, skips[-1 - j])
            decoder.append(h)
        main = net.output_block(decoder.pop())
        return StageOutputs(main, skips, decoder)

    def _stages_unetr(self, x):
        net = self.net
        last, hidden = net.vit(x)
        enc1 = net.encoder1(x)
        enc2 = net.encoder2(net.proj_feat(hidden[3]))
        enc3 = net.encoder3(net.proj_feat(hidden[6]))
        enc4 = net.encoder4(net.proj_feat(hidden[9]))
        dec4 = net.proj_feat(last)
        dec3 = net.decoder5(dec4, enc4)
        dec2 = net.decoder4(dec3, enc3)
        dec1 = net.decoder3(dec2, enc2)
        main = net.out(net.decoder2(dec1, enc1))
        return StageOutputs(main, [enc1, enc2, enc3, enc4], [dec4, dec3, dec2, dec1])

    def _stages_swinunetr(self, x):
        net = self.net
        hidden = net.swinViT(x, net.normalize)
        enc1 = net.encoder1(x)
        enc2 = net.encoder2(hidden[0])
        enc3 = net.encoder3(hidden[1])
        enc4 = net.encoder4(hidden[2])
        bottleneck = net.encoder10(hidden[4])
        dec4 = net.decoder5(bottleneck, hidden[3])
        dec3 = net.decoder4(dec4, enc4)
        dec2 = net.decoder3(dec3, enc3)
        dec1 = net.decoder2(dec2, enc2)
        main = net.out(net.decoder1(dec1, enc1))
        return StageOutputs(main, [enc1, enc2, enc3, enc4], [dec4, dec3, dec2, dec1])

    def _stages_vnet(self, x):
        net = self.net
        enc1 = net.in_tr(x)
        enc2 = net.down_tr32(enc1)
        enc3 = net.down_tr64(enc2)
        enc4 = net.down_tr128(enc3)
        dec4 = net.down_tr256(enc4)
        dec3 = net.up_tr256(dec4, enc4)
        dec2 = net.up_tr128(dec3, enc3)
        dec1 = net.up_tr64(dec2, enc2)
        main = net.out_tr(net.up_tr32(dec1, enc1))
        return StageOutputs(main, [enc1, enc2, enc3, enc4], [dec4, dec3, dec2, dec1])

    def bottleneck_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features at the bottleneck, ``(B, C_bottleneck, d, h, w)`` (``bottleneck_spec``)."""
        net = self.net
        if self.backbone == "unetr":
            last, _ = net.vit(x)
            return net.proj_feat(last)
        if self.backbone == "swinunetr":
            return net.encoder10(net.swinViT(x, net.normalize)[4])
        if self.backbone == "vnet":
            return net.down_tr256(net.down_tr128(net.down_tr64(net.down_tr32(net.in_tr(x)))))
        if self.backbone == "dynunet":
            h = net.input_block(x)
            for down in net.downsamples:
                h = down(h)
            return net.bottleneck(h)
        # unet: walk down the down paths to the bottom layer
        block, h = net.model, x
        while True:
            h = block[0](h)
            sub = block[1].submodule
            if _is_unet_level(sub):
                block = sub
                continue
            return sub(h)


def _as_bottleneck(spec: StageSpec) -> StageSpec:
    return StageSpec("bottleneck", spec.channels, spec.steps, spec.tensor)


def _is_unet_level(module: nn.Module) -> bool:
    """Whether a MONAI UNet skip's submodule is another level (down, skip, up)."""
    from monai.networks.layers.simplelayers import SkipConnection

    return (
        isinstance(module, nn.Sequential)
        and len(module) == 3
        and isinstance(module[1], SkipConnection)
    )
