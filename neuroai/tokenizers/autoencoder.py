"""The 2D autoencoder: diffusers' ``AutoencoderDC`` (DC-AE), built, saved and loaded offline.

TABLeT tokenizes fMRI frames with DC-AE f32c32 (Chen et al. 2025, "Deep
Compression Autoencoder for Efficient High-Resolution Diffusion Models",
https://arxiv.org/abs/2410.10733): a 2D autoencoder that maps a 3-channel image
of H x W pixels to C latent channels on an (H/f) x (W/f) grid, f = 32, C = 32.

Architectures are plain ``AutoencoderDC`` configurations (:data:`PRESETS`):

- ``paper``: the published dc-ae-f32c32-in-1.0 architecture (about 323 M
  parameters), for the published weights or for training on a GPU.
- ``medium``: ResBlocks only, four times the demo's widths (about 22 M
  parameters): the size to train on one GPU in minutes (README, "What the demo
  tokenizer reconstructs", has what five minutes on an H200 give).
- ``demo``: a small model of the same family that trains in about a minute on
  2 CPU cores (see the README for what it reconstructs).

:func:`bundled_autoencoder_dir` is a ``demo`` model trained here for 24,000 steps
on the same photographs (natural images only) and shipped with the package, with
its provenance record: the workflow's default tokenizer, since the minute of
training a demo run can afford reconstructs fMRI frames poorly (README, "What the
demo tokenizer reconstructs").

A checkpoint is a folder in the diffusers layout, so the published weights and
the ones trained here load through the same function::

    config.json                          AutoencoderDC configuration (JSON)
    diffusion_pytorch_model.safetensors  weights (safetensors)

:func:`load_autoencoder` never downloads: it reads a local folder and says
exactly which file is missing or what does not match.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option, did_you_mean

logger = get_logger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
EXPECTED_FILES = (CONFIG_NAME, WEIGHTS_NAME)
PUBLISHED_REPO = "mit-han-lab/dc-ae-f32c32-in-1.0-diffusers"
#: The shipped checkpoint: the ``demo`` preset trained on scikit-image's photographs.
BUNDLED_DIR = Path(__file__).resolve().parent / "weights" / "demo_photographs"

_RESNET, _VIT = "ResBlock", "EfficientViTBlock"

#: AutoencoderDC configurations by preset name.
PRESETS: dict[str, dict[str, Any]] = {
    # dc-ae-f32c32-in-1.0, as converted to diffusers (scripts/convert_dcae_to_diffusers.py).
    "paper": {
        "in_channels": 3,
        "latent_channels": 32,
        "attention_head_dim": 32,
        "encoder_block_types": [_RESNET] * 3 + [_VIT] * 3,
        "decoder_block_types": [_RESNET] * 3 + [_VIT] * 3,
        "encoder_block_out_channels": [128, 256, 512, 512, 1024, 1024],
        "decoder_block_out_channels": [128, 256, 512, 512, 1024, 1024],
        "encoder_layers_per_block": [0, 4, 8, 2, 2, 2],
        "decoder_layers_per_block": [0, 5, 10, 2, 2, 2],
        "encoder_qkv_multiscales": [[], [], [], [], [], []],
        "decoder_qkv_multiscales": [[], [], [], [], [], []],
        "decoder_norm_types": ["batch_norm"] * 3 + ["rms_norm"] * 3,
        "decoder_act_fns": ["relu"] * 3 + ["silu"] * 3,
        "downsample_block_type": "pixel_unshuffle",
        "upsample_block_type": "pixel_shuffle",
    },
    # A small model of the same family: f32c32, ResBlocks only, CPU-sized.
    "demo": {
        "in_channels": 3,
        "latent_channels": 32,
        "attention_head_dim": 8,
        "encoder_block_types": _RESNET,
        "decoder_block_types": _RESNET,
        "encoder_block_out_channels": [8, 8, 16, 32, 64, 64],
        "decoder_block_out_channels": [8, 8, 16, 32, 64, 64],
        "encoder_layers_per_block": [0, 1, 1, 1, 1, 1],
        "decoder_layers_per_block": [0, 1, 1, 1, 1, 1],
        "encoder_qkv_multiscales": [[], [], [], [], [], []],
        "decoder_qkv_multiscales": [[], [], [], [], [], []],
        "decoder_norm_types": "rms_norm",
        "decoder_act_fns": "silu",
        "downsample_block_type": "pixel_unshuffle",
        "upsample_block_type": "pixel_shuffle",
    },
}


# The demo's layout, four times wider with two blocks per stage (~22 M parameters): GPU-sized.
PRESETS["medium"] = {
    **PRESETS["demo"],
    "encoder_block_out_channels": [32, 64, 128, 256, 256, 256],
    "decoder_block_out_channels": [32, 64, 128, 256, 256, 256],
    "encoder_layers_per_block": [0, 1, 2, 2, 2, 2],
    "decoder_layers_per_block": [0, 1, 2, 2, 2, 2],
}


def preset_config(preset: str, **overrides: Any) -> dict[str, Any]:
    """An ``AutoencoderDC`` configuration from :data:`PRESETS`, with overrides."""
    check_option("preset", preset, PRESETS)
    config = copy.deepcopy(PRESETS[preset])
    config.update(overrides)
    return config


def _init_parameters() -> list[str]:
    from diffusers import AutoencoderDC

    signature = inspect.signature(AutoencoderDC.__init__)
    return [name for name in signature.parameters if name != "self"]


def compression_factor(config: Mapping[str, Any]) -> int:
    """Spatial downsampling factor f of a configuration: 2^(number of stages - 1)."""
    channels = (
        config.get("encoder_block_out_channels") or PRESETS["paper"]["encoder_block_out_channels"]
    )
    return 2 ** (len(channels) - 1)


def build_autoencoder(config: Mapping[str, Any], *, source: str = "the configuration"):
    """Build an untrained ``AutoencoderDC`` from a configuration (offline).

    Parameters
    ----------
    config : mapping
        ``AutoencoderDC`` keyword arguments; keys starting with ``_`` (diffusers
        metadata such as ``_class_name``) are ignored.
    source : str
        Named in errors (a file).

    Raises
    ------
    ConfigError
        Unknown keys, ``in_channels`` other than 3 (slices are replicated to
        three channels), or values that ``AutoencoderDC`` refuses.
    """
    from diffusers import AutoencoderDC

    kwargs = {k: v for k, v in config.items() if not str(k).startswith("_")}
    known = _init_parameters()
    for key in kwargs:
        if key not in known:
            raise ConfigError(
                f"{source}: {key!r} is not an AutoencoderDC parameter.{did_you_mean(key, known)} "
                f"Valid parameters: {', '.join(known)}."
            )
    if kwargs.get("in_channels", 3) != 3:
        raise ConfigError(
            f"{source}: in_channels is {kwargs['in_channels']!r}; the tokenizer feeds each slice "
            "replicated to 3 channels, so the autoencoder must take 3."
        )
    for key, value in kwargs.items():
        if isinstance(value, list):
            kwargs[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    try:
        model = AutoencoderDC(**kwargs)
    except (AssertionError, ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(
            f"{source} is not a valid AutoencoderDC configuration: {exc or type(exc).__name__}"
        ) from exc
    return model


def autoencoder_config(model) -> dict[str, Any]:
    """The configuration of a built ``AutoencoderDC`` (JSON-ready).

    Not :func:`neuroai.models.model_config`, which builds a registered model's
    configuration from its name and preset.
    """
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    return json.loads(json.dumps(config))


def save_autoencoder(model, folder: str | os.PathLike) -> Path:
    """Write ``config.json`` and ``diffusion_pytorch_model.safetensors`` into ``folder``.

    The folder is written in place (callers make it atomic, see
    :func:`neuroai.io.write_artifact` with ``directory=True``).
    """
    from importlib.metadata import version

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "_class_name": "AutoencoderDC",
        "_diffusers_version": version("diffusers"),
        **autoencoder_config(model),
    }
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    return folder


def _weights_problem(model, weights: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as handle:
            found = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except (SafetensorError, OSError) as exc:
        return f"{weights} is not a readable safetensors file ({exc})"
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if not (missing or unexpected or mismatched):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing (first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
    if mismatched:
        first = mismatched[0]
        parts.append(
            f"{len(mismatched)} with other shapes (first: {first} is {found[first]}, "
            f"the configuration needs {expected[first]})"
        )
    return f"{weights.name} does not match {CONFIG_NAME}: " + "; ".join(parts)


def load_autoencoder(folder: str | os.PathLike, *, device: str = "cpu"):
    """Load an ``AutoencoderDC`` from a local folder in the diffusers layout; never downloads.

    Parameters
    ----------
    folder : path-like
        Holds ``config.json`` and ``diffusion_pytorch_model.safetensors``: a
        checkpoint trained here, or the published ``dc-ae-f32c32-in-1.0-diffusers``
        weights copied from a connected machine (see the README).
    device : str
        Torch device to put the model on.

    Returns
    -------
    AutoencoderDC
        In evaluation mode.

    Raises
    ------
    DataError
        The folder or one of the expected files is missing, ``config.json`` is
        not an AutoencoderDC configuration or is incompatible (for example not
        3 input channels), or the weights do not match the configuration.
    """
    import torch

    folder = Path(folder)
    expected = f"{CONFIG_NAME} and {WEIGHTS_NAME}"
    if not folder.is_dir():
        raise DataError(
            f"Autoencoder weights folder {folder} does not exist. It must hold {expected} "
            f"(the diffusers layout of {PUBLISHED_REPO}); see docs/guide/tokens.md, 'Published tokenizer "
            "weights', for how to obtain them on a connected machine."
        )
    missing = [name for name in EXPECTED_FILES if not (folder / name).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir()) or ["nothing"]
        raise DataError(
            f"Autoencoder weights folder {folder} is incomplete: {', '.join(missing)} "
            f"missing. Expected {expected}; found {', '.join(present)}. Copy the whole "
            f"{PUBLISHED_REPO} folder (see docs/guide/tokens.md), or retrain the tokenizer."
        )
    config_path = folder / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{config_path} is not valid JSON ({exc}).") from exc
    if not isinstance(config, dict):
        raise DataError(f"{config_path} must hold a JSON object, not {type(config).__name__}.")
    class_name = config.get("_class_name", "AutoencoderDC")
    if class_name != "AutoencoderDC":
        raise DataError(
            f"{config_path} describes a {class_name!r}; the tokenizer needs an AutoencoderDC "
            f"(DC-AE), such as {PUBLISHED_REPO}."
        )
    try:
        model = build_autoencoder(config, source=str(config_path))
    except ConfigError as exc:
        raise DataError(f"Incompatible autoencoder configuration: {exc}") from exc
    problem = _weights_problem(model, folder / WEIGHTS_NAME)
    if problem:
        raise DataError(
            f"Incompatible autoencoder weights in {folder}: {problem}. The two files must come "
            "from the same checkpoint."
        )
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)), strict=True)
    model.eval().requires_grad_(False)
    logger.info(
        "Loaded AutoencoderDC from %s (f%d c%d, %.2f M parameters)",
        folder,
        compression_factor(config),
        model.config.latent_channels,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model.to(torch.device(device))


def bundled_autoencoder_dir() -> Path:
    """The checkpoint folder shipped with neuroai: the ``demo`` preset trained on photographs.

    Made by this package's own tokenizer stage (``python -m neuroai.pipelines.tokenizer``,
    24,000 steps of 16 crops of 96 pixels of the photographs scikit-image ships,
    no fMRI); the command and the training history are in the README and in the
    folder's ``training.json``, its provenance record beside it
    (``demo_photographs.prov.json``). Load it with :func:`load_autoencoder`.

    Raises
    ------
    DataError
        The installation lacks the folder or one of its files.
    """
    missing = [name for name in EXPECTED_FILES if not (BUNDLED_DIR / name).is_file()]
    if missing:
        raise DataError(
            f"The bundled autoencoder {BUNDLED_DIR} lacks {', '.join(missing)}: this neuroai "
            "installation is incomplete. Reinstall it (pip install -e . from a full clone), "
            "or train the tokenizer instead (tokenizer.source: train)."
        )
    return BUNDLED_DIR


def __getattr__(name: str):
    if name == "model_config":
        warnings.warn(
            "neuroai.tokenizers.autoencoder.model_config was renamed autoencoder_config; "
            "neuroai.models.model_config is a different function. The old name will be "
            "removed.",
            FutureWarning,
            stacklevel=2,
        )
        return autoencoder_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
