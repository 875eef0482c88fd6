"""The model card: a ``README.md`` in every pretrained folder, written from its ``config.json``.

Whoever receives a model folder reads what it is, what it was trained on and how, what
it scored and what it is not for, without neuroai installed. The card is written by
:func:`neuroai.models.checkpoint.write_pretrained` (so every export, stage output and
``save_pretrained`` folder carries one) from the ``config.json`` document alone; the
weights' SHA-256 ties the card to the weights beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"

#: What each family is for and what it is not, in one paragraph each.
_INTENDED_USE = {
    "eegformer": (
        "Embeddings and fine-tuning for scalp EEG classification (abnormal, artifact, slowing, "
        "seizure) and anomaly scores, on recordings resampled to the model's rate and montage.",
        "Not a diagnostic device. Trained on the data listed below only: recordings from other "
        "montages, ages or devices may fall outside what it has seen.",
    ),
    "tablet": (
        "Subject-level embeddings and fine-tuning on fMRI volume tokens (27 x 3072 per frame).",
        "Tokens must come from the same tokenizer the model was trained on; not a diagnostic "
        "device; demo presets are tiny and their scores are not meaningful.",
    ),
    "dfc_gnn": (
        "Embeddings and fine-tuning on dynamic functional-connectivity graphs of region time "
        "series (same atlas, window and sparsity as below).",
        "Graphs from another atlas, window or density are not comparable; not a diagnostic device.",
    ),
    "dsd": (
        "3D segmentation of volumes of the kind listed below (same channels and classes).",
        "Not validated for clinical use; other scanners, contrasts or anatomy may fail silently.",
    ),
    "probe": (
        "A linear or fine-tuned head on a pretrained encoder for the task named below.",
        "Valid only for the encoder and task it was fitted on; not a diagnostic device.",
    ),
}


def weights_checksum(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _training_dict(document: Mapping[str, Any]) -> dict[str, Any]:
    training = document.get("training")
    if isinstance(training, str):  # older exports stored the repr
        return {}
    return dict(training or {})


def _metrics_lines(metrics: Mapping[str, Any]) -> list[str]:
    """``name: value [low, high]`` for each metric; intervals when the entry has them."""
    lines = []
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            point = value.get("value", value.get("mean", value.get("estimate")))
            low = value.get("ci_low", value.get("low"))
            high = value.get("ci_high", value.get("high"))
            interval = f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
            shown = f"{point:.4g}" if isinstance(point, int | float) else _json(value)
            lines.append(f"- {name}: {shown}{interval}")
        elif isinstance(value, int | float):
            lines.append(f"- {name}: {value:.4g}")
        else:
            lines.append(f"- {name}: {value}")
    return lines


def task_and_mode(document: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The task a model was trained for and its mode or variant, where recorded."""
    task, mode = document.get("task"), document.get("mode") or document.get("variant")
    stage_info = document.get("tablet")
    if isinstance(stage_info, Mapping):  # TABLeT records its task and variant here
        inner = stage_info.get("task")
        task = task or (inner.get("name") if isinstance(inner, Mapping) else inner)
        mode = mode or stage_info.get("variant")
    return (str(task) if task else None), (str(mode) if mode else None)


def _heldout_lines(heldout: Mapping[str, Any]) -> list[str]:
    """How the test metrics were measured, then one line per metric."""
    lines = []
    n_test, unit = heldout.get("n_test"), heldout.get("unit", "subjects")
    bootstrap = heldout.get("bootstrap") or {}
    how = f"Scored by `{heldout.get('stage', 'the evaluation stage')}`"
    if n_test is not None:
        how += f" on {n_test} held-out test {unit}, none of them seen in training"
    if bootstrap:
        level = bootstrap.get("confidence", 0.95)
        resampled = str(bootstrap.get("unit", unit)).rstrip("s") + "s"
        how += (
            f"; intervals: {level:.0%} percentile bootstrap resampling {resampled} "
            f"({bootstrap.get('n_resamples', '?')} resamples)"
        )
    lines += [how + ".", ""]
    if heldout.get("metrics_file"):
        lines.append(f"- Full results: `{heldout['metrics_file']}`")
    if heldout.get("note"):
        lines.append(f"- {heldout['note']}")
    metrics = heldout.get("metrics") or {}
    lines += _metrics_lines(metrics) if metrics else ["- No metric could be computed."]
    return lines


def model_card(document: Mapping[str, Any], *, checksum: str | None = None) -> str:
    """The card's Markdown text for a pretrained folder's ``config.json`` document.

    Parameters
    ----------
    document : mapping
        The ``config.json`` document: ``model``, ``config``, ``n_parameters`` and any
        training metadata (``preset``, ``dataset``/``datasets``, ``data_cards``,
        ``splits``, ``step``, ``objective``, ``monitor``, ``metrics``, ``task``).
    checksum : str | None
        SHA-256 of the weights file.

    Returns
    -------
    str
        Markdown, ending in a newline.
    """
    family = str(document.get("model", "unknown"))
    training = _training_dict(document)
    use, limits = _INTENDED_USE.get(
        family, ("As described by its family.", "Not validated outside the data listed below.")
    )
    task, mode = task_and_mode(document)
    title = f"# {family} model"
    if task:
        title += f": {task}"
    if mode:
        title += f" ({mode})"
    lines = [title, ""]
    lines += [
        f"- Family: `{family}` (load with `neuroai.models.load_pretrained(folder)` or "
        f"`NeuroModel.from_pretrained(folder)`)",
        f"- Preset: {document.get('preset', 'not recorded')}"
        if family != "probe"
        else f"- Encoder: `{(document.get('config') or {}).get('encoder', 'unknown')}` and a "
        "task head",
        f"- Parameters: {document.get('n_parameters', 'not recorded'):,}"
        if isinstance(document.get("n_parameters"), int)
        else "- Parameters: not recorded",
        f"- Embedding size: {document.get('embed_dim')}",
        f"- neuroai version: {document.get('neuroai_version', 'unknown')}; "
        f"written {document.get('created', 'unknown')}",
        "",
        "## Training data",
        "",
    ]
    datasets = document.get("datasets") or (
        [document["dataset"]] if document.get("dataset") else []
    )
    stores = document.get("stores") or []
    if datasets:
        lines += [f"- Dataset: `{d}`" for d in datasets]
    if stores and not datasets:
        lines += [f"- EEG patch store: `{s}`" for s in stores]
    if not datasets and not stores:
        lines.append("- Not recorded (a model saved outside a training stage).")
    mode = str(document.get("mode", ""))
    from_random = mode in ("scratch", "eegnet") or mode.startswith("braindecode.")
    if isinstance(document.get("pretrained"), str) and not from_random:
        lines.append(f"- Started from the pretrained encoder `{document['pretrained']}`")
    for card in document.get("data_cards") or []:
        lines.append(f"- Data card: `{card}`")
    if document.get("splits"):
        lines.append(f"- Subjects' split file: [{document['splits']}]({document['splits']})")
    if task:
        lines.append(f"- Task: {task}")
    lines += ["", "## Training", ""]
    objective = document.get("objective")
    if isinstance(objective, Mapping):
        objective = objective.get("name", _json(objective))
    lines.append(f"- Objective: {objective or 'supervised (the family training loss)'}")
    if "step" in document:
        lines.append(
            f"- Steps: {document['step']} of at most {training.get('max_steps', 'unknown')} "
            f"({document.get('export', 'export')} export)"
        )
    for key in ("batch_size", "optimizer", "lr", "schedule", "seed"):
        if key in training:
            lines.append(f"- {key}: {training[key]}")
    heldout = document.get("heldout")
    if isinstance(heldout, Mapping):
        lines += ["", "## Held-out test metrics", ""]
        lines += _heldout_lines(heldout)
    lines += ["", "## Metrics" if not isinstance(heldout, Mapping) else "## Validation", ""]
    metrics = document.get("metrics")
    monitor = document.get("monitor")
    if isinstance(metrics, Mapping) and metrics:
        lines += _metrics_lines(metrics)
    elif isinstance(monitor, Mapping) and monitor.get("best") is not None:
        lines.append(
            f"- Best {monitor.get('metric')}: {monitor['best']:.4g} at step "
            f"{monitor.get('best_step')} (validation; no interval)"
        )
    elif isinstance(heldout, Mapping):
        lines.append("- No validation score recorded.")
    else:
        lines.append(
            "- No held-out metrics in this folder: the evaluation stage scores it on the test "
            "subjects and writes a copy of it with them (its `evaluated/` folder)."
        )
    lines += ["", "## Intended use", "", use, "", "## Limitations", "", limits, ""]
    lines += ["## Provenance", ""]
    lines.append(
        f"- Weights `{document.get('weights', 'model.safetensors')}` SHA-256: `{checksum}`"
    )
    lines.append(f"- Format `{document.get('format')}`; the full record is `config.json`.")
    lines.append("")
    lines += [
        "## Model configuration",
        "",
        "```json",
        json.dumps(document.get("config", {}), indent=2, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(folder: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """Write ``README.md`` into a pretrained folder (its weights file must be there)."""
    folder = Path(folder)
    weights = folder / str(document.get("weights", "model.safetensors"))
    checksum = weights_checksum(weights) if weights.is_file() else None
    path = folder / CARD_NAME
    path.write_text(model_card(document, checksum=checksum), encoding="utf-8")
    return path
