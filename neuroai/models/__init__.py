"""Models: a registry of model families, their checkpoints and SSL objectives.

Build models by name (``create_model("dsd", preset="demo", backbone="unet")``), list
them (``list_models()``), save and reload them as a folder of safetensors weights with
a JSON config beside (``save_pretrained`` / ``load_pretrained``). Each family lives in
one module (``dsd.py``) with its config dataclass; shared blocks are in ``blocks/``;
self-supervised objectives, which wrap an encoder, in ``objectives/``. See
``neuroai/models/README.md`` for how to add a model family.
"""

from neuroai.models.base import INPUTS, TARGET, NeuroModel
from neuroai.models.card import model_card, write_model_card
from neuroai.models.checkpoint import (
    check_pretrained,
    load_pretrained,
    load_weights_into,
    read_pretrained_config,
    save_pretrained,
)
from neuroai.models.config import ModelConfig
from neuroai.models.registry import (
    build_model,
    create_model,
    describe_models,
    get_model_entry,
    list_models,
    model_config,
    register_model,
)

__all__ = [
    "INPUTS",
    "TARGET",
    "ModelConfig",
    "NeuroModel",
    "build_model",
    "check_pretrained",
    "create_model",
    "describe_models",
    "get_model_entry",
    "list_models",
    "load_pretrained",
    "load_weights_into",
    "model_card",
    "model_config",
    "read_pretrained_config",
    "register_model",
    "save_pretrained",
    "write_model_card",
]
