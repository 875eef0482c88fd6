"""Model configurations: one dataclass per model family, stored in every checkpoint.

A family's hyperparameters live in a ``@dataclass`` subclass of :class:`ModelConfig`
(nanoGPT's ``GPTConfig`` habit). The config is written as JSON beside the weights, so
a checkpoint rebuilds its model without the original config file; reading it back
goes through :meth:`ModelConfig.from_dict`, which names unknown keys and suggests the
nearest valid one, and turns JSON lists back into the tuples the dataclass declares.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from neuroai.errors import ConfigError, did_you_mean


def _wants_tuple(annotation: Any) -> bool:
    """Whether a field annotation (maybe a string) declares a tuple."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith("tuple") or "tuple[" in text or "Tuple[" in text


def _to_tuples(value: Any) -> Any:
    """Lists become tuples, also inside dicts (JSON has no tuples; configs keep them)."""
    if isinstance(value, list | tuple):
        return tuple(_to_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_tuples(v) for k, v in value.items()}
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


@dataclasses.dataclass
class JsonConfig:
    """A dataclass of plain JSON types that round-trips through JSON with checks.

    Subclasses are dataclasses whose fields are numbers, strings, booleans, tuples
    and dicts of those; they may override :meth:`validate` to check values at
    construction, as MONAI does ("hidden_size should be divisible by num_heads").
    """

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if _wants_tuple(field.type) or isinstance(value, dict):
                setattr(self, field.name, _to_tuples(value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~neuroai.errors.ConfigError` for inconsistent values."""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (tuples become lists)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "the model config") -> Self:
        """Build the config from a mapping (a checkpoint's JSON, a preset, overrides).

        Raises
        ------
        ConfigError
            For a key that is not a field, naming the nearest valid one.
        """
        names = cls.field_names()
        for key in values:
            if key not in names:
                raise ConfigError(
                    f"Unknown parameter {key!r} in {source} ({cls.__name__})."
                    f"{did_you_mean(key, names)} Valid parameters: {', '.join(names)}."
                )
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            kwargs[key] = _to_tuples(value) if _wants_tuple(hints.get(key, "")) else value
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"Invalid {source} for {cls.__name__}: {exc}") from exc

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated like a new config)."""
        merged = {**self.to_dict(), **changes}
        return type(self).from_dict(merged)


@dataclasses.dataclass
class ModelConfig(JsonConfig):
    """Base class of the model-family configs (one dataclass per family)."""

    #: Registry name of the family the config belongs to (set by ``register_model``).
    family: ClassVar[str] = ""
