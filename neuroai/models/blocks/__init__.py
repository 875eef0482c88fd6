"""Building blocks shared by the model families."""

from neuroai.models.blocks.heads import StageHead
from neuroai.models.blocks.ushape import (
    BACKBONES,
    StageOutputs,
    StageSpec,
    UShapedBackbone,
    backbone_option_names,
    check_backbone_options,
    size_divisor,
)

__all__ = [
    "BACKBONES",
    "StageHead",
    "StageOutputs",
    "StageSpec",
    "UShapedBackbone",
    "backbone_option_names",
    "check_backbone_options",
    "size_divisor",
]
