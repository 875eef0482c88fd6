"""Merging the three axes' reconstructions of a frame, frequency by frequency.

A frame is encoded three times, as stacks of 2D slices along each axis, and each
stack decodes to a whole volume. A 2D autoencoder loses fine detail within the
slice plane but nothing across slices (each slice is coded on its own), so the
reconstruction from the axis-0 slices keeps the frequencies that run along axis
0 and blurs those that run across it, and likewise for the other two. The plain
mean of the three volumes gives every 3D frequency equal weights, and so blurs
each fine detail that two of the three axes lose.

The spectral merge weighs, at each 3D frequency k = (k0, k1, k2), the Fourier
coefficient of axis a's reconstruction by the inverse of the autoencoder's
distortion at that axis's in-plane frequency (k1, k2 for axis 0, and so on),
the weights normalised to sum to 1 at every k. The distortion is
D(u, v) = |1 - H(u, v)|^2 + floor, where H is the autoencoder's 2D transfer
function (the cross spectrum of output and input over the input's power
spectrum), measured on grey crops of the natural photographs the tokenizer is
trained on (:class:`~neuroai.tokenizers.natural_images.PhotoCrops`): no brain
image is used. A frequency that all three axes keep equally well (the mean, a
constant) is unchanged; with a flat distortion the merge is the plain mean.

The distortion map of a checkpoint is stored beside its weights as
``axis_fusion.safetensors`` (one tensor, ``distortion``, S x S float32);
:class:`~neuroai.tokenizers.tokenizer.VolumeTokenizer` uses it when present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroai._logging import get_logger
from neuroai.errors import DataError
from neuroai.tokenizers._private import check_positive, resolve_device

logger = get_logger(__name__)

FUSION_FILE = "axis_fusion.safetensors"
DISTORTION_FLOOR = 1e-6


@torch.inference_mode()
def measure_distortion(
    autoencoder,
    *,
    size: int = 96,
    n_crops: int = 256,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "auto",
) -> np.ndarray:
    """The autoencoder's 2D distortion |1 - H|^2 on grey photograph crops.

    Parameters
    ----------
    autoencoder : diffusers.AutoencoderDC
    size : int
        Side of the crops, the frame size S the map will merge.
    n_crops, batch_size : int
        Crops averaged, and crops per autoencoder call.
    seed : int
        Seed of the crops.
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    ndarray, shape (size, size), float32
        D(u, v) + floor, in the unshifted layout of ``numpy.fft.fft2``.
    """
    from neuroai.tokenizers.natural_images import PhotoCrops

    check_positive("n_crops", n_crops)
    run_on = resolve_device(device)
    autoencoder.to(run_on).eval()
    crops = PhotoCrops(crop_size=size, grayscale_prob=1.0, seed=seed)
    cross = torch.zeros((size, size), dtype=torch.complex128)
    power = torch.zeros((size, size), dtype=torch.float64)
    done = 0
    while done < n_crops:
        batch = crops.sample(min(batch_size, n_crops - done)).to(run_on)
        output = autoencoder(batch).sample
        x = torch.fft.fft2(batch[:, 0].double().cpu())
        y = torch.fft.fft2(output[:, 0].double().cpu())
        cross += (y * x.conj()).sum(dim=0)
        power += (x.abs() ** 2).sum(dim=0)
        done += len(batch)
    transfer = cross / power.clamp_min(1e-12)
    distortion = (1.0 - transfer).abs() ** 2 + DISTORTION_FLOOR
    return distortion.float().numpy()


def axis_weights(distortion: np.ndarray) -> np.ndarray:
    """Per-frequency weights of the three axes' reconstructions, for ``numpy.fft.rfftn``.

    Parameters
    ----------
    distortion : ndarray, shape (S, S)
        From :func:`measure_distortion`.

    Returns
    -------
    ndarray, shape (3, S, S, S // 2 + 1), float32
        Weights summing to 1 at every frequency of a real S^3 volume's ``rfftn``.
    """
    d = np.asarray(distortion, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or not np.all(np.isfinite(d)) or d.min() <= 0:
        raise DataError(
            f"A distortion map must be a square, finite, positive 2D array; got shape "
            f"{d.shape}. Re-measure it with measure_distortion."
        )
    size, half = d.shape[0], d.shape[0] // 2 + 1
    inverse = 1.0 / d
    shape = (size, size, half)  # (k0, k1, k2), k2 over rfftn's non-negative half
    stacked = np.stack(
        [
            np.broadcast_to(inverse[None, :, :half], shape),  # axis-0 slices: plane (k1, k2)
            np.broadcast_to(inverse[:, None, :half], shape),  # axis 1: (k0, k2)
            np.broadcast_to(inverse[:, :, None], shape),  # axis 2: (k0, k1)
        ]
    )
    return (stacked / stacked.sum(axis=0, keepdims=True)).astype(np.float32)


def merge_axes(volumes: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Merge (n, 3, S, S, S) per-axis reconstructions with :func:`axis_weights` weights."""
    size = volumes.shape[-1]
    spectra = torch.fft.rfftn(volumes.float(), dim=(-3, -2, -1))
    merged = (spectra * weights.to(spectra.device)).sum(dim=1)
    return torch.fft.irfftn(merged, s=(size, size, size), dim=(-3, -2, -1))


def save_distortion(folder: str | os.PathLike, distortion: np.ndarray, **meta: Any) -> Path:
    """Write ``axis_fusion.safetensors`` into a checkpoint folder (atomically)."""
    from safetensors.numpy import save_file

    from neuroai.io import atomic_path

    axis_weights(distortion)  # validates
    path = Path(folder) / FUSION_FILE
    with atomic_path(path) as tmp:
        save_file(
            {"distortion": np.ascontiguousarray(distortion, dtype=np.float32)},
            str(tmp),
            metadata={k: str(v) for k, v in meta.items()},
        )
    return path


def load_distortion(folder: str | os.PathLike) -> np.ndarray | None:
    """The distortion map stored in a checkpoint folder, or None when it has none."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(folder) / FUSION_FILE
    if not path.is_file():
        return None
    try:
        distortion = load_file(str(path))["distortion"]
    except (SafetensorError, KeyError, OSError) as error:
        raise DataError(
            f"{path} is not a readable distortion map ({error}); delete it and re-measure "
            "with `python -m neuroai.pipelines.tokenizer --calibrate FOLDER`."
        ) from error
    try:
        axis_weights(distortion)
    except DataError as error:
        raise DataError(f"{path}: {error}") from error
    return distortion
