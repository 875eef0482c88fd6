"""Data cards: one YAML file per dataset saying what it is and how to use it.

A card states where the data come from, their license, modality, counts,
sampling, space and atlas, the labels available, whether the data are real,
derived, semi-synthetic or simulated (and how they were made), their known
limitations and intended use. Cards are validated against
``workflows/schemas/data_card.schema.yaml`` (bundled with the package as
``neuroai/datasets/data_card.schema.yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuroai.config import read_yaml, validate_config
from neuroai.errors import ConfigError

SCHEMA_PATH = Path(__file__).with_name("data_card.schema.yaml")
NATURES = ("real", "derived", "semi-synthetic", "simulated")


@dataclass(frozen=True)
class DataCard:
    """A validated data card.

    Attributes
    ----------
    name : str
        Identifier, equal to the file name without ``.yaml``.
    fields : dict
        The whole card, defaults filled in.
    path : Path
        The YAML file.
    """

    name: str
    fields: dict
    path: Path

    @property
    def nature(self) -> str:
        """``real``, ``derived``, ``semi-synthetic`` or ``simulated``."""
        return self.fields["nature"]

    @property
    def bundled(self) -> bool:
        """Whether the workflow can build it offline from installed packages."""
        return bool(self.fields["bundled"])

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def load_card(path: str | os.PathLike, *, schema: str | os.PathLike | None = None) -> DataCard:
    """Read and validate one data card.

    Parameters
    ----------
    path : path-like
        The card, ``data_cards/<name>.yaml``.
    schema : path-like | None
        The card schema; the bundled one by default.

    Raises
    ------
    ConfigError
        When the card is not valid YAML, does not match the schema, or its
        ``name`` differs from its file name.
    """
    path = Path(path)
    fields = read_yaml(path)
    if not isinstance(fields, dict):
        raise ConfigError(f"Data card {path} must be a YAML mapping, got {type(fields).__name__}.")
    validate_config(fields, schema or SCHEMA_PATH, source=f"Data card {path}")
    if fields["name"] != path.stem:
        raise ConfigError(
            f"Data card {path} has name {fields['name']!r}; it must equal its file name {path.stem!r}."
        )
    return DataCard(name=fields["name"], fields=fields, path=path)


def load_cards(
    paths: Iterable[str | os.PathLike], *, schema: str | os.PathLike | None = None
) -> list[DataCard]:
    """Read and validate several cards (see :func:`load_card`)."""
    return [load_card(p, schema=schema) for p in paths]
