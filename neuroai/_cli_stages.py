"""``neuroai stage``: each stage's parameters, read from the schema the workflow validates.

A stage (``neuroai.pipelines.<stage>``) gets its parameters from one slice of the
workflow config; the rules in ``workflows/rules/*.smk`` cut that slice
(``stage_params("static_fc")``, ``tablet_pretrain_params`` and friends). :data:`STAGES`
records, for every stage, which config keys those are, so ``neuroai stage NAME --help``
can list them with the types, defaults and meanings written in
``workflows/schemas/config/<section>.schema.yaml``, and ``--set key=value`` can be
checked against the same schema before it becomes ``--params`` JSON.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neuroai.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class StageConfig:
    """Where a stage's parameters live in the workflow config.

    Attributes
    ----------
    section : tuple of str
        Path of the config mapping the parameters come from (``("static_fc",)``;
        ``"*"`` stands for any dataset name under ``datasets``).
    keys : tuple of str | None
        The keys of that mapping the stage receives (``None``: all of them but ``drop``).
    drop : tuple of str
        Keys the rule uses itself (which datasets, the batch size) and does not pass.
    direct : bool
        Whether the keys reach ``--params`` unchanged (so ``--set key=value`` maps onto
        them); otherwise the rule renames or merges them (see ``note``).
    note : str
        What the rule adds or renames.
    """

    section: tuple[str, ...]
    keys: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ("datasets",)
    direct: bool = True
    note: str = ""

    @property
    def dotted(self) -> str:
        return ".".join(self.section)


_BUILD = ("datasets", "*", "build")
#: Keys that choose jobs (which datasets, batches): a per-run stage gets none of them, a
#: batch stage gets ``on_error`` too (the rules' ``BATCH_KEYS`` and ``batch_params``).
_PER_RUN = ("datasets", "batch_size", "on_error")
_BATCH = ("datasets", "batch_size")
_BATCH_NOTE = "The batched form of {}: one job per batch of runs (`{}.batch_size` > 0)."
_DEMO_NOTE = "Builds an embedded demo dataset; the rule passes the dataset's `build:` keys it uses."

#: Stage module -> where its parameters live in the config (from the rules' params).
STAGES: dict[str, StageConfig] = {
    "demo_regions": StageConfig(_BUILD, direct=False, note=_DEMO_NOTE),
    "demo_bold": StageConfig(_BUILD, ("builder",), direct=False, note=_DEMO_NOTE),
    "demo_volumes": StageConfig(_BUILD, direct=False, note=_DEMO_NOTE),
    "demo_tissue": StageConfig(
        _BUILD, ("n_train", "n_test", "seed"), direct=False, note=_DEMO_NOTE
    ),
    "eeg_demo": StageConfig(_BUILD, direct=False, note=_DEMO_NOTE),
    "fmri_timeseries": StageConfig(
        ("fmri_timeseries",),
        drop=_PER_RUN,
        note="The rule adds the dataset's `layout`, `atlas`, `desc` and its `confounds` overrides.",
    ),
    "fmri_timeseries_batch": StageConfig(
        ("fmri_timeseries",),
        drop=_BATCH,
        direct=False,
        note=_BATCH_NOTE.format("fmri_timeseries", "fmri_timeseries")
        + " The rule adds each dataset's `layout`, `atlas`, `desc` and `confounds` overrides.",
    ),
    "static_fc": StageConfig(("static_fc",), drop=_PER_RUN),
    "static_fc_batch": StageConfig(
        ("static_fc",), drop=_BATCH, note=_BATCH_NOTE.format("static_fc", "static_fc")
    ),
    "group_fc": StageConfig(("group_fc",), note="The rule adds `dataset`."),
    "dynamic_fc": StageConfig(("dynamic_fc",), drop=_PER_RUN),
    "dynamic_fc_batch": StageConfig(
        ("dynamic_fc",), drop=_BATCH, note=_BATCH_NOTE.format("dynamic_fc", "dynamic_fc")
    ),
    "graph_dataset": StageConfig(("graph_dataset",), note="The rule adds `dataset`."),
    "eeg_recording": StageConfig(("eeg",), drop=_PER_RUN),
    "eeg_recording_batch": StageConfig(
        ("eeg",), drop=_BATCH, note=_BATCH_NOTE.format("eeg_recording", "eeg")
    ),
    "eeg_store": StageConfig(("eeg",), drop=_PER_RUN),
    "eegformer_pretrain": StageConfig(
        ("eegformer",),
        ("model", "objective", "split", "transductive", "pretraining", "anomaly"),
        direct=False,
        note="`pretraining` is passed as `training`; the normal-only model of the anomaly "
        "detector adds `anomaly.pretraining` and `anomaly.normal` (as `labels`).",
    ),
    "eegformer_finetune": StageConfig(
        ("eegformer",),
        ("tasks", "finetuning", "split", "encoder_lr_scale", "head"),
        direct=False,
        note="One job per task and mode: the task's keys are passed as `definition`, "
        "`finetuning` as `training`.",
    ),
    "eegformer_evaluate": StageConfig(("eegformer", "evaluation")),
    "eegformer_anomaly": StageConfig(
        ("eegformer",),
        ("anomaly", "split", "evaluation"),
        direct=False,
        note="`anomaly.normal` and `anomaly.abnormal`, `split` and the `evaluation` keys.",
    ),
    "eegformer_interpret": StageConfig(
        ("eegformer", "interpretation"), note="The rule adds `eegformer.split` as `split`."
    ),
    "segmentation_train": StageConfig(
        ("segmentation",), ("model", "training", "data", "split"), drop=()
    ),
    "segmentation_evaluate": StageConfig(("segmentation", "evaluation")),
    "embed": StageConfig(("embed",), ("split",), drop=()),
    "predict": StageConfig(("predict",), ("split",), drop=()),
    "tokenizer": StageConfig(
        ("tokenizer",),
        ("preset", "architecture", "train", "finetune"),
        direct=False,
        note="Training passes `preset`, `architecture` and the `train` keys; fine-tuning "
        "the `finetune` keys but `enabled` and `subjects_per_dataset`.",
    ),
    "frames": StageConfig(("tokens", "frames")),
    "tokens": StageConfig(
        ("tokens",),
        ("encode", "qc"),
        direct=False,
        note="Passed as `batch_size`, `chunk_frames` (from `encode`), `qc_max_frames` and "
        "`example_frame` (from `qc`).",
    ),
    "tokens_summary": StageConfig(("tokens",), ("group_by",), note="The rule adds `dataset`."),
    "dfc_gnn_pretrain": StageConfig(
        ("dfc_gnn",),
        ("model", "data", "pretrain", "holdout", "transductive"),
        direct=False,
        note="The `pretrain` keys are merged into the top level.",
    ),
    "dfc_gnn_finetune": StageConfig(
        ("dfc_gnn",),
        ("finetune", "data", "holdout", "transductive"),
        direct=False,
        note="One job per task: the `finetune` keys but `tasks`, the task's keys and its `name`.",
    ),
    "dfc_gnn_evaluate": StageConfig(
        ("dfc_gnn",), ("evaluate", "data"), direct=False, note="The `evaluate` keys and `data`."
    ),
    "tablet_pretrain": StageConfig(
        ("tablet",),
        ("model", "data", "split", "pretraining"),
        direct=False,
        note="`pretraining` is passed as `training`; one job per `model.positional` flag.",
    ),
    "tablet_finetune": StageConfig(
        ("tablet",),
        ("tasks", "model", "finetuning", "data", "split"),
        direct=False,
        note="One job per task and variant: the task as `task`, `finetuning` as `training`.",
    ),
    "tablet_evaluate": StageConfig(
        ("tablet",),
        ("data", "evaluation"),
        direct=False,
        note="`data.window_frames` and the `evaluation` keys.",
    ),
    "report": StageConfig(
        ("report",), direct=False, note="The rule adds the whole config and the artifacts' paths."
    ),
}

#: Stages that take no parameters from the config: their command line is all there is.
NO_CONFIG = frozenset({"dataset_labels"})


# ---- the schemas ----


def _load(path: Path, cache: dict[Path, Any]) -> Any:
    path = path.resolve()
    if path not in cache:
        cache[path] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return cache[path]


def resolve_refs(node: Any, path: Path, cache: dict[Path, Any] | None = None) -> Any:
    """``node`` (part of the schema file ``path``) with every local ``$ref`` replaced.

    Keys written beside a ``$ref`` (a ``default``, a ``description``) win over the
    referenced schema's own.
    """
    cache = {} if cache is None else cache
    if isinstance(node, list):
        return [resolve_refs(item, path, cache) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target, _, pointer = node["$ref"].partition("#")
        target_path = (path.parent / target) if target else path
        resolved: Any = _load(target_path, cache)
        for part in filter(None, pointer.split("/")):
            resolved = resolved[part]
        resolved = resolve_refs(resolved, target_path, cache)
        extra = {k: resolve_refs(v, path, cache) for k, v in node.items() if k != "$ref"}
        return {**resolved, **extra}
    return {k: resolve_refs(v, path, cache) for k, v in node.items()}


def config_schema(root: Path) -> dict:
    """The workflow's whole config schema, references resolved."""
    path = root / "workflows" / "schemas" / "config.schema.yaml"
    return resolve_refs(_load(path, {}), path)


def schema_file(root: Path, section: str) -> str:
    """The file, relative to ``workflows/schemas``, that describes a top-level section."""
    path = root / "workflows" / "schemas" / "config.schema.yaml"
    ref = _load(path, {})["properties"][section].get("$ref", "config.schema.yaml")
    return ref.partition("#")[0]


def section_schema(schema: Mapping, section: Sequence[str]) -> dict:
    """The schema of the config mapping at ``section`` (``"*"``: any name)."""
    node: Any = schema
    for part in section:
        if part == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return node


@dataclass
class Parameter:
    """One config key as the schema describes it."""

    name: str
    kind: str
    default: Any = None
    has_default: bool = False
    description: str = ""
    children: list[Parameter] = field(default_factory=list)


def _kind(schema: Mapping) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    types = schema.get("type")
    if types is None and "oneOf" in schema:
        return " | ".join(_kind(s) for s in schema["oneOf"])
    types = [types] if isinstance(types, str) else list(types or ["any"])
    words = []
    for t in types:
        if t == "array" and isinstance(schema.get("items"), Mapping):
            words.append(f"list of {_kind(schema['items'])}")
        else:
            words.append(t)
    kind = " | ".join(words)
    bounds = [
        f"{symbol} {schema[key]}"
        for key, symbol in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    return f"{kind} ({', '.join(bounds)})" if bounds else kind


def parameters(schema: Mapping, prefix: str = "") -> list[Parameter]:
    """The keys an object schema declares, nested objects as dotted names."""
    found = []
    for name, sub in (schema.get("properties") or {}).items():
        dotted = f"{prefix}{name}"
        children: list[Parameter] = []
        if sub.get("properties"):
            children = parameters(sub, f"{dotted}.")
        elif isinstance(sub.get("additionalProperties"), Mapping) and sub[
            "additionalProperties"
        ].get("properties"):
            children = parameters(sub["additionalProperties"], f"{dotted}.<name>.")
        found.append(
            Parameter(
                name=dotted,
                kind="mapping" if children else _kind(sub),
                default=copy.deepcopy(sub.get("default")),
                has_default="default" in sub,
                description=" ".join(str(sub.get("description", "")).split()),
                children=children,
            )
        )
    return found


def _lines(params: list[Parameter], width: int = 100) -> list[str]:
    lines = []
    for p in params:
        head = f"  {p.name}: {p.kind}"
        if p.has_default:
            head += f"; default {json.dumps(p.default)}"
        lines.append(head)
        if p.description:
            lines += textwrap.wrap(
                p.description, width, initial_indent="      ", subsequent_indent="      "
            )
        lines += _lines(p.children, width)
    return lines


# ---- the stage modules ----


def stage_names() -> list[str]:
    """Every stage module of ``neuroai.pipelines``, sorted."""
    import pkgutil

    import neuroai.pipelines

    return sorted(
        m.name
        for m in pkgutil.iter_modules(neuroai.pipelines.__path__)
        if not m.name.startswith("_")
    )


def check_stage(name: str) -> None:
    """Raise :class:`ConfigError` naming the nearest stages when ``name`` is not one."""
    names = stage_names()
    if name not in names:
        raise ConfigError(
            f"Unknown stage {name!r}.{did_you_mean(name, names)} Stages: {', '.join(names)}."
        )


def stage_main(name: str):
    """The ``main(argv)`` of ``neuroai.pipelines.<name>``."""
    import importlib

    check_stage(name)
    return importlib.import_module(f"neuroai.pipelines.{name}").main


def stage_argparse_help(name: str) -> str:
    """The stage's own ``--help`` text (its argparse parser), with the ``neuroai`` prog."""
    main = stage_main(name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    return out.getvalue()


def stage_options(name: str) -> list[str]:
    """The ``--options`` the stage's parser accepts (read from its help)."""
    return sorted(set(re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", stage_argparse_help(name))))


def stage_help(name: str, root: Path) -> str:
    """What ``neuroai stage NAME --help`` prints: config keys from the schema, then options."""
    check_stage(name)
    text = stage_argparse_help(name)
    lines = [f"neuroai stage {name}", ""]
    entry = STAGES.get(name)
    if entry is None:
        lines += [
            "This stage has no section in the workflow config: everything it takes is on its "
            "command line (below).",
        ]
    else:
        schema = section_schema(config_schema(root), entry.section)
        params = parameters(schema)
        chosen = [
            p
            for p in params
            if (entry.keys is None or p.name in entry.keys) and p.name not in entry.drop
        ]
        rule_keys = [p for p in params if p.name in entry.drop]
        lines.append(
            f"Workflow config: `{entry.dotted}` (schema "
            f"workflows/schemas/{schema_file(root, entry.section[0])}). "
            + (
                "These keys reach the stage's --params unchanged; `--set key=value` sets one "
                "when you run the stage here."
                if entry.direct
                else "The rule builds the stage's --params from these keys."
            )
        )
        if entry.note:
            lines += textwrap.wrap(entry.note, 100)
        lines += ["", "Parameters:"] + (_lines(chosen) or ["  (none)"])
        if rule_keys:
            lines += ["", "Keys of the section the rule uses itself (not passed to the stage):"]
            lines += _lines(rule_keys)
    lines += ["", "Command-line options (python -m neuroai.pipelines." + name + "):", "", text]
    return "\n".join(lines).rstrip() + "\n"


def settings_to_params(name: str, settings: Sequence[str], root: Path) -> dict[str, Any]:
    """``key=value`` pairs (values in YAML) checked against the stage's schema slice.

    Dotted keys set nested values (``training.lr=0.01``). Returns the mapping to merge
    into ``--params``.

    Raises
    ------
    ConfigError
        A pair without ``=``, a stage whose config keys do not reach ``--params``
        unchanged, an unknown key (with the nearest one), or a value the schema refuses.
    """
    check_stage(name)
    entry = STAGES.get(name)
    if entry is None or not entry.direct:
        how = "has no config section" if entry is None else "gets its --params built by the rule"
        raise ConfigError(
            f"Stage {name!r} {how}, so --set cannot map onto its parameters; pass "
            "--params '{...}' (see `neuroai stage " + name + " --help`)."
        )
    schema = section_schema(config_schema(root), entry.section)
    allowed = [
        k
        for k in (schema.get("properties") or {})
        if (entry.keys is None or k in entry.keys) and k not in entry.drop
    ]
    values: dict[str, Any] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {setting!r}: write key=value (for example kind=covariance).")
        top = key.split(".")[0]
        if top not in allowed:
            raise ConfigError(
                f"Unknown parameter {top!r} for stage {name!r}.{did_you_mean(top, allowed)} "
                f"Parameters: {', '.join(allowed) or '(none)'}."
            )
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {setting!r}: the value is not valid YAML ({exc}).") from exc
        node = values
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    _validate(values, schema, f"--set for stage {name!r}")
    return values


def _validate(values: Mapping[str, Any], schema: Mapping, source: str) -> None:
    import jsonschema

    checked = dict(schema)
    checked.pop("required", None)  # only the keys given are checked
    validator = jsonschema.Draft202012Validator(checked)
    errors = sorted(validator.iter_errors(dict(values)), key=lambda e: list(map(str, e.path)))
    if errors:
        problems = []
        for error in errors:
            where = ".".join(map(str, error.absolute_path)) or "(top level)"
            message = error.message
            if error.validator == "additionalProperties":
                known = list(error.schema.get("properties") or {})
                unknown = [k for k in error.instance if k not in known]
                message = "; ".join(
                    f"unknown key {k!r}.{did_you_mean(k, known)} Valid: {', '.join(known)}"
                    for k in unknown
                )
            elif error.validator == "enum":
                allowed = [str(v) for v in error.validator_value]
                message += "." + did_you_mean(str(error.instance), allowed)
            problems.append(f"{where}: {message}")
        raise ConfigError(f"{source}: " + "; ".join(problems))
