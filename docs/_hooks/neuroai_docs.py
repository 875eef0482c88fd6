"""MkDocs hook: pages generated from the code when the site is built.

A page asks for generated content with one directive on a line of its own::

    <!-- neuroai:fidelity tablet -->        the fidelity table, neuroai/reports/fidelity/tablet.yaml
    <!-- neuroai:presets tablet -->         the family's presets, from the model registry
    <!-- neuroai:config-reference -->       every config key, from workflows/schemas/config*.yaml
    <!-- neuroai:schema workflows/schemas/data_card.schema.yaml -->   one schema's keys
    <!-- neuroai:example connectivity.py --> docs/examples/connectivity.py and its printed output
    <!-- neuroai:stages -->                  every stage's run(...) and what it does

The examples run once per build, each in its own process, from the repository root; a
failing example, an unknown directive or a missing file fails the build. Nothing here
downloads anything. mkdocs.yml names this file under ``hooks:`` and excludes ``_hooks/`` from
the pages.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from mkdocs.exceptions import PluginError

DIRECTIVE = re.compile(r"^<!-- neuroai:([a-z-]+)(?: +(\S+))? -->[ \t]*$", re.M)
FAMILIES = {
    "eegformer": "eegformer",
    "tablet": "tablet",
    "dfc_gnn": "dfc_gnn",
    "dsd": "segmentation",
}
EXAMPLE_TIMEOUT_S = 120

_repo: Path | None = None
_example_output: dict[str, str] = {}


def on_config(config, **kwargs):
    """Remember the repository root (the folder of mkdocs.yml)."""
    global _repo
    _repo = Path(config.config_file_path).resolve().parent
    _example_output.clear()
    return config


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """Replace each ``<!-- neuroai:... -->`` directive of a page by its generated Markdown."""
    page_dir = Path(page.file.src_uri).parent

    def replace(match: re.Match) -> str:
        kind, argument = match.group(1), match.group(2)
        where = f"{page.file.src_uri}: <!-- neuroai:{kind} {argument or ''} -->"
        try:
            if kind == "fidelity":
                return fidelity_table(argument, page_dir)
            if kind == "presets":
                return presets_table(argument)
            if kind == "config-reference":
                return config_reference()
            if kind == "schema":
                path = _root() / argument
                return schema_reference(_load(path), path, heading_level=2)
            if kind == "example":
                return example(argument)
            if kind == "stages":
                return stages_table()
        except PluginError:
            raise
        except Exception as error:  # a broken generator names the page and the directive
            raise PluginError(f"{where}: {type(error).__name__}: {error}") from error
        raise PluginError(
            f"{where}: unknown directive {kind!r}; "
            "known: fidelity, presets, config-reference, schema, example, stages"
        )

    return DIRECTIVE.sub(replace, markdown)


# -- helpers ------------------------------------------------------------------------------


def _root() -> Path:
    if _repo is None:
        raise PluginError("neuroai docs hook: on_config did not run")
    return _repo


def _load(path: Path) -> Any:
    if not path.is_file():
        raise PluginError(f"neuroai docs hook: {path} does not exist")
    return yaml.safe_load(path.read_text())


def _cell(value: Any) -> str:
    """One Markdown table cell of prose: one line, pipes, stars and angle brackets escaped.

    Spans in backticks are kept as they are (Markdown shows them literally).
    """
    text = " ".join(str(value).split())
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = parts[i].replace("*", "\\*").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def _code(value: Any) -> str:
    """A value as inline code (strings without quotes)."""
    text = " ".join(str(value).split()).replace("|", "\\|").replace("`", "'")
    return f"`{text}`" if text else ""


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- fidelity tables ----------------------------------------------------------------------


def fidelity_table(family: str | None, page_dir: Path) -> str:
    """The family's fidelity table, as the report renders it (paper or code, ours, why)."""
    if family not in FAMILIES:
        raise PluginError(f"fidelity: unknown family {family!r}; known: {sorted(FAMILIES)}")
    path = _root() / "neuroai" / "reports" / "fidelity" / f"{FAMILIES[family]}.yaml"
    document = _load(path)
    rows = [
        [_cell(row[key]) for key in ("item", "reference", "ours", "difference", "why")]
        for row in document["rows"]
    ]
    doc = document.get("doc", "")
    details = ""
    if doc.startswith("docs/"):
        link = os.path.relpath(doc.removeprefix("docs/"), start=page_dir.as_posix() or ".")
        details = f" Details: [{doc.removeprefix('docs/')}]({Path(link).as_posix()})."
    source = path.relative_to(_root()).as_posix()
    return (
        f"**{_cell(document['title'])}.** Reference: {_cell(document['reference'])}.{details}\n\n"
        + _table(["item", "reference", "ours", "difference", "why"], rows)
        + f"\n\n*Generated from `{source}` when this site was built; the report's model page "
        "shows the same table.*\n"
    )


# -- presets -------------------------------------------------------------------------------


def presets_table(family: str | None) -> str:
    """The family's presets side by side: every config field that differs between them."""
    from neuroai.models import get_model_entry, model_config

    entry = get_model_entry(family)
    presets = sorted(entry.presets)
    configs = {name: model_config(family, preset=name) for name in presets}
    fields = [f.name for f in dataclasses.fields(configs[presets[0]])]
    rows, same = [], []
    for name in fields:
        values = [getattr(configs[p], name) for p in presets]
        if all(v == values[0] for v in values):
            same.append(f"`{name}` {_code(values[0])}")
        else:
            rows.append([f"`{name}`"] + [_code(v) for v in values])
    text = _table(["field"] + [f"`{p}`" for p in presets], rows)
    if same:
        text += "\n\nThe same in every preset: " + ", ".join(same) + "."
    config_class = entry.config_class
    return (
        text + f"\n\n*Generated from the registry (`create_model({family!r}, preset=...)`, "
        f"`{config_class.__module__}.{config_class.__name__}`) when this site was built.*\n"
    )


# -- config and schema reference ----------------------------------------------------------


def _resolve(schema: dict, base: Path) -> tuple[dict, Path]:
    """Follow ``$ref`` (a file, a file#/pointer or #/pointer); local keys override."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        target, _, pointer = ref.partition("#")
        file = (base.parent / target).resolve() if target else base
        document = _load(file) if target else _document_of(base)
        for part in [p for p in pointer.split("/") if p]:
            document = document[part]
        local = {k: v for k, v in schema.items() if k != "$ref"}
        schema, base = {**document, **local}, file
    return schema, base


_documents: dict[Path, Any] = {}


def _document_of(path: Path) -> Any:
    if path not in _documents:
        _documents[path] = _load(path)
    return _documents[path]


def _type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        item = schema["items"].get("type")
        if isinstance(item, list):
            item = " or ".join(item)
        if item:
            kind = f"array of {item}"
    return kind or ""


def _allowed(schema: dict) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(_code(v) for v in schema["enum"]))
    items = schema.get("items")
    if isinstance(items, dict) and "enum" in items:
        parts.append("items: " + ", ".join(_code(v) for v in items["enum"]))
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ):
        if key in schema:
            parts.append(f"{sign} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern {_code(schema['pattern'])}")
    for key in ("oneOf", "anyOf"):
        choices = [c.get("required") for c in schema.get(key, []) if isinstance(c, dict)]
        if choices and all(choices):
            parts.append("exactly one of " if key == "oneOf" else "at least one of ")
            parts[-1] += ", ".join("+".join(f"`{k}`" for k in c) for c in choices)
    return "; ".join(parts)


def _rows(schema: dict, base: Path, path: str, out: list[list[str]], required=()) -> None:
    """Append one row per key below ``path`` (depth first, in the schema's order)."""
    schema, base = _resolve(schema, base)
    properties = schema.get("properties", {})
    for name, child in properties.items():
        child, child_base = _resolve(child, base)
        key = f"{path}.{name}" if path else name
        default = _code(child["default"]) if "default" in child else ""
        description = _cell(child.get("description", ""))
        if name in schema.get("required", []) or name in required:
            description = ("**required.** " + description).strip()
        out.append([f"`{key}`", _type(child), default, _allowed(child), description])
        _rows(child, child_base, key, out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or "$ref" in extra):
        _rows(extra, base, f"{path}.<name>" if path else "<name>", out)
    items = schema.get("items")
    if isinstance(items, dict) and (items.get("properties") or "$ref" in items):
        _rows(items, base, f"{path}[]", out)


def schema_reference(schema: dict, path: Path, *, heading_level: int, prefix: str = "") -> str:
    """A table of every key of one schema, with type, default, allowed values, meaning."""
    schema, path = _resolve(schema, path)
    rows: list[list[str]] = []
    _rows(schema, path, prefix, rows)
    parts = []
    if schema.get("description"):
        parts.append(" ".join(schema["description"].split()))
    notes = _allowed({k: schema[k] for k in ("oneOf", "anyOf") if k in schema})
    if notes:
        parts.append(f"Each entry: {notes}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        notes = _allowed({k: extra[k] for k in ("oneOf", "anyOf") if k in extra})
        if notes:
            parts.append(f"Each `<name>` entry: {notes}.")
        if extra.get("required"):
            parts.append(
                "Each `<name>` entry requires "
                + ", ".join(f"`{k}`" for k in extra["required"])
                + "."
            )
    if rows:
        parts.append(_table(["key", "type", "default", "allowed", "meaning"], rows))
    else:
        parts.append("(no keys)")
    source = path.relative_to(_root()).as_posix()
    parts.append(f"*Generated from `{source}`.*")
    return "\n\n".join(parts) + "\n"


def config_reference() -> str:
    """The whole workflow configuration: one section per top-level key."""
    main_path = _root() / "workflows" / "schemas" / "config.schema.yaml"
    main = _load(main_path)
    required = set(main.get("required", []))
    sections = []
    for name, child in main["properties"].items():
        resolved, base = _resolve(child, main_path)
        title = f"## `{name}`"
        lines = [title, ""]
        facts = []
        if name in required:
            facts.append("**required**")
        if "default" in resolved and resolved.get("type") != "object":
            facts.append(f"default {_code(resolved['default'])}")
        elif "default" not in resolved and name not in required:
            facts.append("optional; absent unless set")
        if facts:
            lines += ["(" + ", ".join(facts) + ")", ""]
        if resolved.get("properties") or resolved.get("additionalProperties"):
            lines.append(schema_reference(child, main_path, heading_level=3, prefix=name))
        else:
            lines.append(
                _table(
                    ["key", "type", "default", "allowed", "meaning"],
                    [
                        [
                            f"`{name}`",
                            _type(resolved),
                            _code(resolved["default"]) if "default" in resolved else "",
                            _allowed(resolved),
                            _cell(resolved.get("description", "")),
                        ]
                    ],
                )
                + "\n"
            )
        sections.append("\n".join(lines))
    return "\n".join(sections)


# -- stages -------------------------------------------------------------------------------


def _call(module: str, function) -> str:
    """``neuroai.pipelines.<stage>.run(a, b, key=..., ...)`` from the signature."""
    import inspect

    positional, keywords = [], []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords.append(f"{parameter.name}=..." if len(keywords) < 3 else "...")
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter.name)
    arguments = positional + list(dict.fromkeys(keywords))
    return f"`{module}.{function.__name__}({', '.join(arguments)})`"


def stages_table() -> str:
    """One row per stage module of neuroai.pipelines: its run functions and docstring."""
    import importlib
    import inspect
    import pkgutil

    import neuroai.pipelines as package

    rows = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        name = f"neuroai.pipelines.{info.name}"
        module = importlib.import_module(name)
        functions = [
            f
            for key, f in vars(module).items()
            if (key == "run" or key.startswith("run_"))
            and inspect.isfunction(f)
            and f.__module__ == name
        ]
        summary = (module.__doc__ or "").strip().splitlines()
        rows.append(
            [
                f"`{info.name}`",
                "<br>".join(_call(name, f) for f in functions),
                _cell(summary[0] if summary else ""),
            ]
        )
    return (
        _table(["stage", "Python API", "what it does"], rows)
        + "\n\n*Generated from the stage modules' signatures and docstrings when this site was "
        "built. Every stage is also a command: `python -m neuroai.pipelines.<stage> --help`.*\n"
    )


# -- examples -----------------------------------------------------------------------------


def example(name: str | None) -> str:
    """The example's source and what it printed when this site was built."""
    if not name or "/" in name or not name.endswith(".py"):
        raise PluginError(f"example: give a file name in docs/examples/, not {name!r}")
    path = _root() / "docs" / "examples" / name
    if not path.is_file():
        raise PluginError(f"example: {path} does not exist")
    if name not in _example_output:
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        try:
            done = subprocess.run(
                [sys.executable, str(path)],
                cwd=_root(),
                env=env,
                capture_output=True,
                text=True,
                timeout=EXAMPLE_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as error:
            raise PluginError(f"example {name}: no result in {EXAMPLE_TIMEOUT_S} s") from error
        missing = re.search(r"ModuleNotFoundError: No module named '([^']+)'", done.stderr)
        if done.returncode != 0 and missing:
            raise PluginError(
                f"example {name} needs the package {missing.group(1)!r}, which is not "
                'installed: the examples run on the demo data, install with pip install -e ".[demo,docs]"'
            )
        if done.returncode != 0:
            raise PluginError(
                f"example {name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        _example_output[name] = done.stdout.rstrip()
    # The ruff directive that lets an example print is for the linter, not the reader.
    source = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("# ruff: noqa")
    ).strip()
    return (
        f"```python\n{source}\n```\n\nPrinted when this site was built "
        f"(`python docs/examples/{name}`):\n\n```text\n{_example_output[name]}\n```\n"
    )
