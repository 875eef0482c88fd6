"""The pretrained-model folder: weights as safetensors with a JSON config beside.

Every trained model (the ``best`` and ``last`` exports of a training run, the output
of a training stage) is a folder::

    <folder>/
      config.json        format, model name, the config dataclass as JSON, metadata
      model.safetensors  the state dict (no pickle)
      README.md          the model card (neuroai.models.card), written from config.json

:func:`load_pretrained` rebuilds the model from the folder alone through the
registry: it reads ``config.json``, builds the family's config dataclass, creates the
model and loads the weights. Nothing is unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from neuroai._logging import get_logger
from neuroai.errors import ArtifactError, ConfigError
from neuroai.io.atomic import atomic_path
from neuroai.models.base import NeuroModel
from neuroai.models.card import write_model_card

logger = get_logger(__name__)

FORMAT = "neuroai.pretrained/1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _state_dict_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies; tensors shared between keys are stored once each."""
    state = {}
    for key, value in model.state_dict().items():
        state[key] = value.detach().to("cpu").contiguous().clone()
    return state


def write_pretrained(
    folder: str | os.PathLike,
    model: NeuroModel,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into an existing folder.

    Used inside an atomic writer (see :func:`save_pretrained` and the training
    exports); most callers want :func:`save_pretrained`.
    """
    from safetensors.torch import save_file

    from neuroai import __version__

    folder = Path(folder)
    if not model.family:
        raise ConfigError(
            f"{type(model).__name__} is not a registered model: register it with "
            "neuroai.models.register_model so that its checkpoint can rebuild it."
        )
    state = _state_dict_for_saving(model)
    save_file(state, folder / WEIGHTS_NAME, metadata={"format": "pt", "model": model.family})
    document = {
        "format": FORMAT,
        "model": model.family,
        "config": model.config.to_dict(),
        "neuroai_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "n_parameters": model.parameter_count(),
        "embed_dim": _safe_embed_dim(model),
        "weights": WEIGHTS_NAME,
        **dict(metadata or {}),
    }
    (folder / CONFIG_NAME).write_text(json.dumps(document, indent=2, default=str) + "\n")
    write_model_card(folder, json.loads(json.dumps(document, default=str)))
    return folder


def _safe_embed_dim(model: NeuroModel) -> int | None:
    try:
        return int(model.embed_dim)
    except NotImplementedError:
        return None


def save_pretrained(
    model: NeuroModel,
    folder: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` as a pretrained folder, atomically.

    Parameters
    ----------
    model : NeuroModel
        A registered model.
    folder : path-like
        Destination folder; replaced as a whole if it exists.
    metadata : mapping | None
        Extra JSON-able entries for ``config.json`` (training step, metrics,
        training config, the objective it was pretrained with).
    """
    with atomic_path(folder, directory=True) as tmp:
        write_pretrained(tmp, model, metadata=metadata)
    return Path(folder)


def read_pretrained_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``config.json`` of a pretrained folder."""
    folder = Path(path)
    if folder.is_file() and folder.name == CONFIG_NAME:
        folder = folder.parent
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ArtifactError(
            f"{folder} is not a pretrained-model folder: {CONFIG_NAME} is missing. A folder "
            f"written by neuroai.models.save_pretrained holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        )
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{config_path} is not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArtifactError(
            f"{config_path} is not a neuroai pretrained config (expected format {FORMAT!r}, "
            f"got {document.get('format') if isinstance(document, dict) else document!r})."
        )
    if not (folder / document.get("weights", WEIGHTS_NAME)).is_file():
        raise ArtifactError(f"{folder} has {CONFIG_NAME} but its weights file is missing.")
    return document


def load_pretrained(
    path: str | os.PathLike,
    *,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> NeuroModel:
    """Rebuild a trained model from its pretrained folder alone.

    Parameters
    ----------
    path : path-like
        The folder (or its ``config.json``).
    map_location : str | torch.device
        Device the weights are loaded onto.
    strict : bool
        Require the weights to match the model's parameters exactly.

    Returns
    -------
    NeuroModel
        The model in eval mode, with ``model.pretrained_info`` holding the
        ``config.json`` document.
    """
    from safetensors.torch import load_file

    from neuroai.models.registry import build_model

    document = read_pretrained_config(path)
    folder = Path(path).parent if Path(path).is_file() else Path(path)
    model = build_model(document["model"], document["config"])
    state = load_file(folder / document.get("weights", WEIGHTS_NAME), device=str(map_location))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise ArtifactError(
            f"The weights in {folder} do not match model {document['model']!r} built from its "
            f"config: missing {missing[:5]}, unexpected {unexpected[:5]}."
        )
    model.to(map_location)
    model.eval()
    model.pretrained_info = document
    return model


def load_weights_into(
    model: torch.nn.Module,
    path: str | os.PathLike,
    *,
    prefix: str = "",
    allow_shape_mismatch: bool = True,
) -> dict[str, list[str]]:
    """Copy matching weights of a pretrained folder into ``model`` (fine-tuning init).

    Parameters
    ----------
    model : torch.nn.Module
        The model to initialise (for example a DSD network whose output layer has
        another number of classes than the pretrained one).
    path : path-like
        Pretrained folder.
    prefix : str
        Only keys starting with this prefix are copied (``"backbone."``).
    allow_shape_mismatch : bool
        Skip tensors whose shapes differ instead of raising.

    Returns
    -------
    dict
        ``{"loaded": [...], "skipped_shape": [...], "missing": [...]}`` key lists.
    """
    from safetensors.torch import load_file

    document = read_pretrained_config(path)
    folder = Path(path).parent if Path(path).is_file() else Path(path)
    source = load_file(folder / document.get("weights", WEIGHTS_NAME))
    target = model.state_dict()
    loaded, skipped, missing = [], [], []
    for key, value in target.items():
        if not key.startswith(prefix):
            continue
        if key not in source:
            missing.append(key)
        elif source[key].shape != value.shape:
            if not allow_shape_mismatch:
                raise ArtifactError(
                    f"{folder}: {key} has shape {tuple(source[key].shape)}, the model expects "
                    f"{tuple(value.shape)}."
                )
            skipped.append(key)
        else:
            target[key] = source[key]
            loaded.append(key)
    model.load_state_dict(target)
    logger.info(
        "Initialised %d tensors from %s (%d skipped for shape, %d not in the checkpoint)",
        len(loaded),
        folder,
        len(skipped),
        len(missing),
    )
    return {"loaded": loaded, "skipped_shape": skipped, "missing": missing}


def check_pretrained(
    path: str | os.PathLike,
    *,
    family: str | None = None,
    expect: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a pretrained folder without loading its weights: family, config, weights, shapes.

    The workflow calls this when it parses the config, so that a folder given as
    ``<family>.pretrained`` is refused before any job runs.

    Parameters
    ----------
    path : path-like
        The folder.
    family : str | None
        The registry name the folder must hold (``"eegformer"``).
    expect : mapping | None
        Config values the folder's model must have (``{"n_chans": 19}``: the input
        size the workflow will feed it).

    Returns
    -------
    dict
        The ``config.json`` document.

    Raises
    ------
    ArtifactError
        Naming the folder and the mismatch: another family, another input size, a
        missing or unreadable weights file, or weights whose names or shapes do not
        match the model its config builds.
    """
    from safetensors import safe_open

    from neuroai.models.registry import build_model

    folder = Path(path)
    if not folder.is_dir():
        raise ArtifactError(f"Pretrained folder {folder} does not exist (or is not a folder).")
    document = read_pretrained_config(folder)
    found = document.get("model")
    if family is not None and found != family:
        raise ArtifactError(
            f"{folder} holds a {found!r} model, but it is given as the {family!r} checkpoint: "
            f"point {family}.pretrained at a folder written for {family!r}."
        )
    config = dict(document.get("config") or {})
    for key, wanted in (expect or {}).items():
        if key in config and config[key] != wanted:
            raise ArtifactError(
                f"{folder}: the model was built for {key}={config[key]!r}, but this workflow "
                f"feeds it {key}={wanted!r}."
            )
    try:
        with torch.device("meta"):
            model = build_model(found, config)
    except ConfigError as exc:
        raise ArtifactError(
            f"{folder}/{CONFIG_NAME} does not build a {found!r} model: {exc}"
        ) from exc
    weights = folder / document.get("weights", WEIGHTS_NAME)
    try:
        with safe_open(str(weights), framework="pt") as handle:
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for a corrupt header
        raise ArtifactError(f"{weights} is not a readable safetensors file ({exc}).") from exc
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or unexpected or wrong:
        detail = [
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
        ]
        detail += [f"{k} is {shapes[k]}, its config needs {expected[k]}" for k in wrong[:3]]
        raise ArtifactError(
            f"The weights in {folder} do not match the {found!r} model its config.json builds: "
            + "; ".join(d for d in detail if d)
            + "."
        )
    return document
