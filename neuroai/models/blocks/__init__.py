"""Building blocks shared by the model families."""

from neuroai.models.blocks.heads import StageHead
from neuroai.models.blocks.quantizer import Quantized, VectorQuantizer, code_perplexity
from neuroai.models.blocks.ushape import (
    BACKBONES,
    StageOutputs,
    StageSpec,
    UShapedBackbone,
    backbone_option_names,
    check_backbone_channels,
    check_backbone_options,
    size_divisor,
)

__all__ = [
    "BACKBONES",
    "Quantized",
    "StageHead",
    "StageOutputs",
    "StageSpec",
    "UShapedBackbone",
    "VectorQuantizer",
    "backbone_option_names",
    "check_backbone_channels",
    "check_backbone_options",
    "code_perplexity",
    "size_divisor",
]
