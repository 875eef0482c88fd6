"""The model registry: one place that knows every model family and its presets.

As in timm, models are built by name::

    from neuroai.models import create_model, list_models

    model = create_model("dsd", preset="demo", backbone="unet", out_channels=4)
    list_models()  # ['dsd', 'probe', ...]

A family registers its model class with :func:`register_model`, naming its config
dataclass and its presets: ``demo`` (tiny, CPU minutes) and ``paper`` (the published
sizes). A preset is a dict of config values, or a function of the overrides that
returns one (DSD's ``paper`` preset depends on the backbone asked for). Overrides are
applied on top of the preset, and the merged values are validated by the config
dataclass, so a misspelled keyword fails with the nearest valid name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neuroai.errors import ConfigError, check_option
from neuroai.models.base import NeuroModel
from neuroai.models.config import ModelConfig

Preset = Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]]
PRESETS = ("demo", "paper")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model family.

    Attributes
    ----------
    name : str
        Registry name.
    model_class : type[NeuroModel]
        Built as ``model_class(config)``.
    config_class : type[ModelConfig]
        The family's config dataclass.
    presets : dict
        ``"demo"`` and ``"paper"`` (at least) to a dict or a function of the overrides.
    description : str
        One line shown by :func:`describe_models`.
    """

    name: str
    model_class: type[NeuroModel]
    config_class: type[ModelConfig]
    presets: dict[str, Preset] = field(default_factory=dict)
    description: str = ""

    def preset_values(self, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        check_option("preset", preset, self.presets)
        values = self.presets[preset]
        if callable(values):
            values = values(overrides)
        return dict(values)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    config: type[ModelConfig],
    presets: Mapping[str, Preset],
    description: str = "",
) -> Callable[[type[NeuroModel]], type[NeuroModel]]:
    """Class decorator that adds a model family to the registry.

    Parameters
    ----------
    name : str
        Registry name (lower case, no spaces).
    config : type[ModelConfig]
        The family's config dataclass.
    presets : mapping
        Must hold ``"demo"`` and ``"paper"``.
    description : str
        One line about the family.
    """
    missing = [p for p in PRESETS if p not in presets]
    if missing:
        raise ConfigError(f"Model {name!r} must define the presets {PRESETS}; missing {missing}.")

    def decorate(model_class: type[NeuroModel]) -> type[NeuroModel]:
        if name in _REGISTRY and _REGISTRY[name].model_class is not model_class:
            raise ConfigError(f"A model named {name!r} is already registered.")
        model_class.family = name
        config.family = name
        _REGISTRY[name] = ModelEntry(name, model_class, config, dict(presets), description)
        return model_class

    return decorate


def list_models() -> list[str]:
    """Names of the registered model families, sorted."""
    _load_builtin_models()
    return sorted(_REGISTRY)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (a clear error suggests the nearest name)."""
    _load_builtin_models()
    check_option("model", name, sorted(_REGISTRY))
    return _REGISTRY[name]


def model_config(name: str, preset: str = "demo", **overrides: Any) -> ModelConfig:
    """The validated config of ``name`` for ``preset`` with ``overrides`` applied."""
    entry = get_model_entry(name)
    values = {**entry.preset_values(preset, overrides), **overrides}
    return entry.config_class.from_dict(values, source=f"model {name!r} (preset {preset!r})")


def create_model(name: str, preset: str = "demo", **overrides: Any) -> NeuroModel:
    """Build a model from the registry.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    preset : {"demo", "paper"}
        Starting values: ``demo`` is tiny (CPU minutes), ``paper`` the published size.
    **overrides
        Config fields to change.

    Returns
    -------
    NeuroModel
        A freshly initialised model; seed with :func:`torch.manual_seed` first for
        reproducible weights.
    """
    config = model_config(name, preset, **overrides)
    return build_model(name, config)


def build_model(name: str, config: ModelConfig | Mapping[str, Any]) -> NeuroModel:
    """Build ``name`` from a config instance or a plain mapping (a checkpoint's JSON)."""
    entry = get_model_entry(name)
    if not isinstance(config, entry.config_class):
        if isinstance(config, ModelConfig):
            raise ConfigError(
                f"Model {name!r} needs a {entry.config_class.__name__}, got {type(config).__name__}."
            )
        config = entry.config_class.from_dict(config, source=f"the config of model {name!r}")
    return entry.model_class(config)


def describe_models() -> list[dict[str, Any]]:
    """One dict per family: name, description, config class, presets."""
    return [
        {
            "name": e.name,
            "description": e.description,
            "config": e.config_class.__name__,
            "presets": sorted(e.presets),
            "modality": e.model_class.modality,
        }
        for e in (get_model_entry(n) for n in list_models())
    ]


#: Modules that register the built-in families; a new family adds its module here.
BUILTIN_MODULES = (
    "neuroai.models.dsd",
    "neuroai.models.eegformer",
    "neuroai.models.eegnet",
    "neuroai.models.braindecode_models",
    "neuroai.models.probe",
    "neuroai.models.dfc_gnn",
    "neuroai.models.tablet",
)


def _load_builtin_models() -> None:
    """Import the modules that register the built-in families (once each)."""
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(module)
