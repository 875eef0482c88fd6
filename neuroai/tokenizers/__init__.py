"""Tokenizers: fMRI volumes to TABLeT tokens with a 2D natural-image autoencoder.

- :mod:`~neuroai.tokenizers.runs`: 4D BOLD runs, found and opened with checks.
- :mod:`~neuroai.tokenizers.frames`: frames on the 96^3 MNI grid, scaled to [-1, 1].
- :mod:`~neuroai.tokenizers.autoencoder`: diffusers' ``AutoencoderDC``: presets,
  checkpoints, the bundled photograph-trained checkpoint, loading the published
  DC-AE weights from a local folder.
- :mod:`~neuroai.tokenizers.natural_images`, :mod:`~neuroai.tokenizers.training`:
  training it on scikit-image's photographs; fine-tuning on fMRI slices.
- :mod:`~neuroai.tokenizers.layout`: slices and the 27 x 3072 cube-token layout.
- :mod:`~neuroai.tokenizers.tokenizer`: :class:`VolumeTokenizer` and token stores.
- :mod:`~neuroai.tokenizers.fusion`: merging the three axes' decodings frequency by
  frequency with the autoencoder's distortion map.
- :mod:`~neuroai.tokenizers.qc`: round-trip quality metrics.

Public names are imported on first use (PEP 562), so that ``import
neuroai.tokenizers.frames`` does not pay for importing torch and diffusers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "OpenedBold": "runs",
    "bold_files_by_subject": "runs",
    "open_bold": "runs",
    "Placement": "frames",
    "load_frames": "frames",
    "mni_grid": "frames",
    "plan_placement": "frames",
    "place_frames": "frames",
    "write_frames": "frames",
    "PRESETS": "autoencoder",
    "build_autoencoder": "autoencoder",
    "bundled_autoencoder_dir": "autoencoder",
    "load_autoencoder": "autoencoder",
    "preset_config": "autoencoder",
    "save_autoencoder": "autoencoder",
    "PhotoCrops": "natural_images",
    "FrameSlices": "training",
    "fit_autoencoder": "training",
    "frames_to_slices": "layout",
    "latents_to_tokens": "layout",
    "slices_to_frames": "layout",
    "token_shape": "layout",
    "tokens_to_latents": "layout",
    "TokenStore": "tokenizer",
    "VolumeTokenizer": "tokenizer",
    "read_token_store": "tokenizer",
    "round_trip_qc": "qc",
    "measure_distortion": "fusion",
    "merge_axes": "fusion",
}

#: Old names that still work, with a FutureWarning (from the module's ``__getattr__``).
_RENAMED = {"BoldRun": "runs", "index_bold_runs": "runs"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS or name in _RENAMED:
        module = importlib.import_module(f"{__name__}.{_EXPORTS.get(name) or _RENAMED[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
