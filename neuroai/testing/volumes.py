"""Tiny 4D BOLD runs and autoencoders for the volume-token tests (see :mod:`neuroai.testing`)."""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def lattice_affine(
    *, voxel_size: float = 2.0, flip_x: bool = True, origin: tuple = (24.0, -30.0, -20.0)
) -> np.ndarray:
    """An affine on the even-millimetre 2 mm lattice (FSL-like: x flipped by default)."""
    affine = np.diag([-voxel_size if flip_x else voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = origin
    return affine


def lattice_bold_image(
    shape: tuple[int, int, int, int] = (7, 8, 9, 11),
    *,
    affine: np.ndarray | None = None,
    tr: float = 2.0,
    seed: int = 0,
    offset: float = 100.0,
):
    """A 4D NIfTI on the 2 mm lattice, smooth positive signal plus noise, sform/qform set.

    For the volume-token tests (one 4D ``shape``, MNI sform and qform codes).
    :func:`neuroai.testing.bold_image` is the fMRI one (3D ``shape`` plus
    ``n_volumes``, BOLD-like sources and offset).

    Parameters
    ----------
    shape : tuple of int
        (n_x, n_y, n_z, n_frames); keep the sides unequal.
    affine : ndarray, shape (4, 4) | None
        :func:`lattice_affine` by default.
    tr : float
        Repetition time written to the header, seconds.
    seed : int
        Random seed.
    offset : float
        Baseline added to the signal.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    grid = np.indices(shape[:3]).astype(np.float32)
    spatial = offset + 10.0 * np.sin(grid[0] / 2.0) + 5.0 * np.cos(grid[1] / 3.0) + grid[2]
    data = spatial[..., None] + rng.normal(scale=3.0, size=shape).astype(np.float32)
    affine = lattice_affine() if affine is None else np.asarray(affine, dtype=float)
    image = nib.Nifti1Image(data.astype(np.float32), affine)
    image.set_sform(affine, code="mni")
    image.set_qform(affine, code="mni")
    image.header.set_zooms(tuple(np.sqrt((affine[:3, :3] ** 2).sum(axis=0))) + (tr,))
    image.header.set_xyzt_units("mm", "sec")
    return image


def write_bold_run(
    path: str | os.PathLike, image=None, *, sidecar: dict[str, Any] | None = None, **kwargs: Any
) -> Path:
    """Write :func:`lattice_bold_image` (or ``image``) to ``path`` with an optional JSON sidecar."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(lattice_bold_image(**kwargs) if image is None else image, path)
    if sidecar is not None:
        stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
        path.with_name(stem + ".json").write_text(json.dumps(sidecar), encoding="utf-8")
    return path


def tiny_autoencoder_config(*, latent_channels: int = 4, stages: int = 4) -> dict[str, Any]:
    """An ``AutoencoderDC`` configuration small enough for unit tests.

    ``stages`` stages of 4, 8, 8, 16, 16, 32 ... channels give a downsampling factor
    of 2^(stages - 1) (8 by default: 24^3 frames make 27 tokens of 3 * 8 * 4 = 96).
    ``latent_channels`` must divide the last stage's channels. As in DC-AE, the
    first stage has no blocks (a pixel-unshuffle convolution enters the second).
    """
    channels = [4 * 2 ** ((i + 1) // 2) for i in range(stages)]
    if channels[-1] % latent_channels:
        raise ValueError(f"latent_channels must divide {channels[-1]}, got {latent_channels}.")
    return {
        "in_channels": 3,
        "latent_channels": latent_channels,
        "attention_head_dim": 4,
        "encoder_block_types": "ResBlock",
        "decoder_block_types": "ResBlock",
        "encoder_block_out_channels": channels,
        "decoder_block_out_channels": channels,
        "encoder_layers_per_block": [0] + [1] * (stages - 1),
        "decoder_layers_per_block": [0] + [1] * (stages - 1),
        "encoder_qkv_multiscales": [[]] * stages,
        "decoder_qkv_multiscales": [[]] * stages,
    }


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the previous number.

    On a machine shared with other jobs, torch's default of one thread per core
    can make small convolutions many times slower (threads wait for each other);
    tests of the tokenizer run single-threaded.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def __getattr__(name: str):
    if name == "bold_image":
        warnings.warn(
            "neuroai.testing.volumes.bold_image was renamed lattice_bold_image; "
            "neuroai.testing.bold_image is the fMRI one. The old name will be removed.",
            FutureWarning,
            stacklevel=2,
        )
        return lattice_bold_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
