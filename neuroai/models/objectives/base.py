"""Self-supervised objectives wrap an encoder (vit-pytorch's ``MAE(encoder=...)`` habit).

An objective is an :class:`torch.nn.Module` that owns an encoder (any registered
:class:`~neuroai.models.NeuroModel`) and whatever extra parts its pretext task needs
(a decoder, a codebook, a mask token). Its ``forward(batch)`` returns a dict with the
scalar ``"loss"`` and any parts worth logging. After pretraining, the engine exports
``objective.encoder`` as a pretrained folder (with the objective's name and settings in
its metadata), ready for :func:`~neuroai.models.load_pretrained` and fine-tuning.

Families register their objectives with :func:`register_objective` and build them
with :func:`create_objective`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from neuroai.errors import ConfigError, check_option, did_you_mean
from neuroai.models.base import NeuroModel


class Objective(nn.Module):
    """Base class of self-supervised objectives.

    Parameters
    ----------
    encoder : NeuroModel
        The network being pretrained.

    Attributes
    ----------
    name : str
        Registry name (set by :func:`register_objective`).
    settings : dict
        The keyword arguments the objective was built with (stored in checkpoints).
    """

    name: ClassVar[str] = ""

    def __init__(self, encoder: NeuroModel, **settings: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.settings = dict(settings)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the checkpoint metadata records about the objective."""
        return {"name": self.name, "settings": dict(self.settings)}


_OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator adding an objective to the registry."""

    def decorate(cls: type[Objective]) -> type[Objective]:
        if name in _OBJECTIVES and _OBJECTIVES[name] is not cls:
            raise ConfigError(f"An objective named {name!r} is already registered.")
        cls.name = name
        _OBJECTIVES[name] = cls
        return cls

    return decorate


def list_objectives() -> list[str]:
    """Names of the registered objectives."""
    _load_builtin()
    return sorted(_OBJECTIVES)


def create_objective(name: str, encoder: NeuroModel, **settings: Any) -> Objective:
    """Wrap ``encoder`` in the objective ``name`` with ``settings``."""
    _load_builtin()
    check_option("objective", name, sorted(_OBJECTIVES))
    cls = _OBJECTIVES[name]
    import inspect

    accepted = [
        p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "encoder")
    ]
    for key in settings:
        if key not in accepted:
            raise ConfigError(
                f"Unknown setting {key!r} for objective {name!r}.{did_you_mean(key, accepted)} "
                f"Valid settings: {', '.join(accepted)}."
            )
    return cls(encoder, **settings)


#: Modules that register the built-in objectives; a new family adds its module here.
BUILTIN_MODULES = (
    "neuroai.models.objectives.masked_volume",
    "neuroai.models.objectives.vqvae",
    "neuroai.models.objectives.masked_dfc",
    "neuroai.models.objectives.masked_tokens",
)


def _load_builtin() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
