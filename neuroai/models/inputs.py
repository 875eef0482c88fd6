"""Reading new data for a trained model: one function for the embed and predict stages.

An input file is one subject or recording: a NIfTI volume (``.nii`` / ``.nii.gz``,
preprocessed as the model was trained: the ``data`` entry of its ``config.json``) or
an ``.npy`` artifact written through :mod:`neuroai.io` (EEG windows, token sequences,
graphs). An array with the model's ``item_ndim`` dimensions is one item; with one
more, its first axis lists windows, each embedded or predicted separately.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroai.errors import DataError
from neuroai.io.decathlon import DecathlonCase, case_id, read_decathlon
from neuroai.io.external import load_input_array
from neuroai.models.base import INPUTS, NeuroModel


@dataclass
class ModelInput:
    """One input file read for a model.

    Attributes
    ----------
    id : str
        Subject / recording identifier (the file name without its suffixes).
    path : Path
        The file.
    items : Tensor, shape (n_items, *item_shape)
        What the model takes, one row per item (window).
    level : {"subject", "window"}
        Whether the file is one item or a stack of windows.
    affine : ndarray | None, shape (4, 4)
        Voxel to world of a preprocessed volume (None for arrays).
    """

    id: str
    path: Path
    items: torch.Tensor
    level: str
    affine: np.ndarray | None = None


def input_id(path: str | os.PathLike) -> str:
    """Identifier of an input file (``sub-01_task-rest_eeg.npy`` -> ``sub-01_task-rest_eeg``)."""
    name = Path(path).name
    return case_id(name) if ".nii" in name else Path(name).stem


def read_model_input(path: str | os.PathLike, model: NeuroModel) -> ModelInput:
    """Read ``path`` as ``model`` expects it (see the module docstring)."""
    path = Path(path)
    name = path.name
    if name.endswith((".nii", ".nii.gz")):
        if model.modality != "volume":
            raise DataError(
                f"{path} is a volume, but model {model.family!r} takes {model.modality!r} inputs."
            )
        from neuroai.training.segmentation_data import SegmentationDataConfig, preprocess_case

        info = getattr(model, "pretrained_info", {}) or {}
        config = SegmentationDataConfig.from_dict(
            info.get("data", {}), source=f"the data config of {model.family}"
        )
        data = preprocess_case(DecathlonCase(input_id(path), path, None), config, with_label=False)
        image = data[INPUTS]
        return ModelInput(
            input_id(path),
            path,
            image.as_tensor()[None].float(),
            "subject",
            np.asarray(image.affine),
        )
    if name.endswith(".npy"):
        array = load_input_array(path, mmap=True)  # ours (checked) or the user's own
        ndim = model.item_ndim
        if array.ndim == ndim:
            return ModelInput(
                input_id(path),
                path,
                torch.from_numpy(np.array(array, dtype=np.float32))[None],
                "subject",
            )
        if array.ndim == ndim + 1:
            return ModelInput(
                input_id(path), path, torch.from_numpy(np.array(array, dtype=np.float32)), "window"
            )
        raise DataError(
            f"{path} has shape {array.shape}; model {model.family!r} takes items with {ndim} "
            f"dimensions, or stacks of windows with {ndim + 1}."
        )
    raise DataError(
        f"{path}: unsupported input; give NIfTI volumes (.nii, .nii.gz) or .npy artifacts."
    )


def dataset_inputs(dataset: str | os.PathLike, split: str = "test") -> list[Path]:
    """Image files of a Decathlon dataset's split (``training``, ``test`` or ``all``)."""
    return [case.image for case in read_decathlon(dataset).cases(split)]


def batched(items: torch.Tensor, batch_size: int):
    """Consecutive slices of at most ``batch_size`` rows."""
    for start in range(0, items.shape[0], batch_size):
        yield items[start : start + batch_size]
