"""Validation of configuration mappings against a JSON Schema written in YAML.

The workflow validates its whole config before any job runs; stages validate
their slice. Unknown keys are errors that name the key, suggest the nearest
valid one and list the valid keys; defaults declared in the schema are filled
in. Schemas may be split over several YAML files joined by relative ``$ref``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

from neuroai.errors import ConfigError, did_you_mean


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with ``yaml.safe_load``; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"YAML file {path} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc


def _validator_for(schema_path: Path):
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str) -> Resource:
        if not uri.startswith("file://"):
            raise ConfigError(
                f"Schema reference {uri!r} is not a local file; only local refs are allowed."
            )
        from urllib.parse import unquote, urlparse

        contents = dict(read_yaml(unquote(urlparse(uri).path)))
        # Without "$schema", jsonschema keeps our default-filling validator class
        # for the referenced file instead of switching to the dialect's own class.
        contents.pop("$schema", None)
        return Resource(contents=contents, specification=DRAFT202012)

    schema = read_yaml(schema_path)
    if not isinstance(schema, dict):
        raise ConfigError(f"Schema {schema_path} must be a mapping.")
    schema = dict(schema)
    schema.setdefault("$id", schema_path.resolve().as_uri())
    base = jsonschema.Draft202012Validator
    properties_check = base.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema_):
        if isinstance(instance, MutableMapping):
            for name, subschema in properties.items():
                if (
                    isinstance(subschema, Mapping)
                    and "default" in subschema
                    and name not in instance
                ):
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from properties_check(validator, properties, instance, schema_)

    filling = jsonschema.validators.extend(base, {"properties": fill_defaults})
    registry = Registry(retrieve=retrieve)
    return filling(schema, registry=registry), base(schema, registry=registry)


def _where(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error) -> list[str]:
    where = _where(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = list((error.schema.get("properties") or {}).keys())
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        import re

        messages = []
        for key in error.instance:
            if key in allowed or any(re.search(p, str(key)) for p in patterns):
                continue
            location = f"{where}.{key}" if where != "(top level)" else str(key)
            valid = ", ".join(sorted(allowed)) or "(none)"
            messages.append(
                f"Unknown config key {location!r}.{did_you_mean(str(key), allowed)} "
                f"Valid keys here: {valid}."
            )
        if messages:
            return messages
    if error.validator == "anyOf" and isinstance(error.instance, str):
        # A string that fits none of the choices: name the fixed values and the patterns.
        values = [str(v) for s in error.validator_value for v in s.get("enum", [])]
        patterns = [s["pattern"] for s in error.validator_value if "pattern" in s]
        if values or patterns:
            accepted = ", ".join([*values, *(f"a match of {p!r}" for p in patterns)])
            return [
                f"Config key {where!r}: {error.instance!r} is not one of {accepted}."
                f"{did_you_mean(error.instance, values)}"
            ]
    if error.validator == "enum":
        allowed = [str(v) for v in error.validator_value]
        return [
            f"Config key {where!r}: {error.instance!r} is not one of {error.validator_value}."
            f"{did_you_mean(str(error.instance), allowed)}"
        ]
    return [f"Config key {where!r}: {error.message}."]


def validate_config(
    config: MutableMapping[str, Any],
    schema_path: str | os.PathLike,
    *,
    source: str = "the config",
) -> MutableMapping[str, Any]:
    """Validate ``config`` in place against a YAML JSON Schema; fill defaults.

    Parameters
    ----------
    config : mutable mapping
        The configuration (Snakemake's ``config``). Defaults are written into it.
    schema_path : path-like
        The schema, a YAML file; relative ``$ref`` to other YAML files resolve
        against its folder.
    source : str
        How to name the config in messages (a file name, ``--config``).

    Returns
    -------
    mapping
        ``config`` itself, with defaults filled in.

    Raises
    ------
    ConfigError
        Listing every problem: unknown keys with a suggestion, wrong types,
        values out of range or not among the allowed ones.
    """
    schema_path = Path(schema_path)
    filling, _ = _validator_for(schema_path)
    errors = sorted(filling.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for error in errors:
            for line in _describe(error):
                if line not in lines:
                    lines.append(line)
        bullet = "\n  - "
        raise ConfigError(
            f"{source} does not match the schema {schema_path.name}:{bullet}" + bullet.join(lines)
        )
    return config
