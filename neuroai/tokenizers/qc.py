"""Quality of the token round trip: frames -> tokens -> frames.

Per subject, on frames scaled to [-1, 1] (see :mod:`neuroai.tokenizers.frames`):

- **spatial correlation**: Pearson correlation between a frame and its
  reconstruction over the voxels of the brain mask, per frame (the headline
  number; TABLeT's goal is at least 0.9);
- **PSNR** in the mask: ``10 log10(range^2 / MSE)`` with range 2 (the span of
  [-1, 1]), per frame, in dB;
- **temporal correlation**: per voxel of the mask, the correlation over frames
  between input and reconstruction (median over voxels): how much of the BOLD
  fluctuation survives;
- **region time series**: regional mean signals of input and reconstruction
  (the labels resampled onto the grid by nearest neighbour; the same numbers
  as nilearn's ``NiftiLabelsMasker``, which the tests use as the oracle),
  correlated per region over frames (median over regions);
- **compression**: values per frame stored as tokens against voxels per frame.

:func:`dct_round_trip` is the fixed linear codec of the same size that a learned
tokenizer is measured against (benchmarks and tests).

Example slices (input, reconstruction, difference through the centre of each
axis) are kept for the report.
"""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace
from typing import Any

import numpy as np

from neuroai.errors import DataError, check_option


def _flat(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)[:, mask.ravel()]


def _check(inputs: np.ndarray, reconstructions: np.ndarray, mask: np.ndarray) -> None:
    if inputs.shape != reconstructions.shape or inputs.ndim != 4:
        raise DataError(
            f"Inputs {inputs.shape} and reconstructions {reconstructions.shape} must both be "
            "(n_frames, S, S, S)."
        )
    if mask.shape != inputs.shape[1:] or not mask.any():
        raise DataError(f"The mask must be a non-empty {inputs.shape[1:]} boolean volume.")


def _rowwise_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=1) / denominator, np.nan)


def spatial_correlation(
    inputs: np.ndarray, reconstructions: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Per-frame Pearson correlation over the mask's voxels.

    Parameters
    ----------
    inputs, reconstructions : ndarray, shape (n_frames, S, S, S)
    mask : ndarray of bool, shape (S, S, S)

    Returns
    -------
    ndarray, shape (n_frames,)
    """
    _check(inputs, reconstructions, mask)
    return _rowwise_correlation(_flat(inputs, mask), _flat(reconstructions, mask))


def psnr(
    inputs: np.ndarray, reconstructions: np.ndarray, mask: np.ndarray, *, data_range: float = 2.0
) -> np.ndarray:
    """Per-frame peak signal-to-noise ratio in the mask, in dB (``data_range`` = 2 for [-1, 1])."""
    _check(inputs, reconstructions, mask)
    mse = ((_flat(inputs, mask) - _flat(reconstructions, mask)) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / mse)


def temporal_correlation(
    inputs: np.ndarray, reconstructions: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Per-voxel correlation over frames, for the voxels of the mask, shape (n_voxels,).

    NaN for voxels constant in either series (and for fewer than 3 frames).
    """
    _check(inputs, reconstructions, mask)
    if len(inputs) < 3:
        return np.full(int(mask.sum()), np.nan)
    return _rowwise_correlation(_flat(inputs, mask).T, _flat(reconstructions, mask).T)


def image_on_grid(image: Any, grid_affine: np.ndarray, size: int) -> np.ndarray:
    """A 3D image (path or nibabel image) resampled onto the frame grid by nearest neighbour.

    Each grid voxel takes the value of the image voxel nearest to its centre (0
    outside the image), as nilearn's ``resample_img(..., interpolation="nearest")``
    does; done with numpy so that the QC does not need to import nilearn.

    Returns
    -------
    ndarray, shape (size, size, size), the image's dtype
    """
    import nibabel as nib

    if isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise DataError(f"QC image {image} does not exist.")
        image = nib.load(image)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(
            f"{image.get_filename() or 'The image'} must be 3D, got shape {data.shape}."
        )
    mapping = np.linalg.inv(image.affine) @ np.asarray(grid_affine, dtype=float)
    grid = np.indices((size,) * 3).reshape(3, -1).astype(np.float64)
    position = mapping[:3, :3] @ grid + mapping[:3, 3:4]
    # Like scipy.ndimage (which nilearn uses): only centres within [0, n - 1] take a value.
    tolerance = 1e-6
    extent = np.asarray(data.shape, dtype=np.float64)[:, None] - 1.0
    inside = np.all((position >= -tolerance) & (position <= extent + tolerance), axis=0)
    source = np.clip(np.floor(position + 0.5).astype(np.int64), 0, extent.astype(np.int64))
    out = np.zeros(size**3, dtype=data.dtype)
    out[inside] = data[tuple(source[:, inside])]
    return out.reshape((size,) * 3)


def region_timeseries(frames: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Mean of each labelled region per frame (what nilearn's ``NiftiLabelsMasker`` gives).

    Parameters
    ----------
    frames : ndarray, shape (n_frames, S, S, S)
    labels : ndarray of int, shape (S, S, S)
        Region labels on the frames' grid (0 = background), for example from
        :func:`image_on_grid`.

    Returns
    -------
    series : ndarray, shape (n_frames, n_regions)
    values : list of int
        The label of each column (the labels present, sorted).
    """
    flat = np.asarray(labels).ravel().astype(np.int64)
    values = [int(v) for v in np.unique(flat) if v > 0]
    if not values:
        raise DataError("No labelled region overlaps the frames' grid.")
    index = np.searchsorted(values, flat)
    keep = flat > 0
    counts = np.bincount(index[keep], minlength=len(values))
    series = np.stack(
        [
            np.bincount(
                index[keep],
                weights=np.asarray(frame, np.float64).ravel()[keep],
                minlength=len(values),
            )
            / counts
            for frame in frames
        ]
    )
    return series, values


def region_correlation(inputs: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Per-region correlation over frames of two (n_frames, n_regions) series."""
    if inputs.shape != reconstructions.shape:
        raise DataError(
            f"Region series differ in shape: {inputs.shape} vs {reconstructions.shape}."
        )
    if len(inputs) < 3:
        return np.full(inputs.shape[1], np.nan)
    return _rowwise_correlation(np.asarray(inputs, float).T, np.asarray(reconstructions, float).T)


def example_slices(
    inputs: np.ndarray, reconstructions: np.ndarray, *, frame: int = 0
) -> np.ndarray:
    """Central slices of one frame along each axis: input, reconstruction, difference.

    Returns
    -------
    ndarray, shape (3 axes, 3 kinds, S, S), float32
        ``kinds`` = (input, reconstruction, reconstruction - input).
    """
    frame = min(max(frame, 0), len(inputs) - 1)
    x = np.asarray(inputs[frame], dtype=np.float32)
    y = np.asarray(reconstructions[frame], dtype=np.float32)
    centre = x.shape[0] // 2
    rows = []
    for axis in range(3):
        a, b = np.take(x, centre, axis=axis), np.take(y, centre, axis=axis)
        rows.append(np.stack([a, b, b - a]))
    return np.stack(rows)


def dct_slices(images: np.ndarray, *, block: int = 32, keep: int = 32) -> np.ndarray:
    """Blockwise DCT codec of (n, H, W) images: each tile keeps its lowest frequencies.

    Every ``block`` x ``block`` tile keeps its ``keep`` lowest-frequency DCT-II
    coefficients (ordered by i + j) and is rebuilt from them. With the defaults,
    32 values per 32 x 32 tile: exactly the 3 x 3 x 32 latents DC-AE f32c32 keeps
    per 96 x 96 slice.
    """
    from scipy.fft import dctn, idctn

    images = np.asarray(images, dtype=np.float32)
    n, height, width = images.shape
    if height % block or width % block:
        raise DataError(
            f"The DCT codec needs images whose sides are a multiple of {block}; got {height} x "
            f"{width}."
        )
    order = sorted((i + j, i, j) for i in range(block) for j in range(block))[:keep]
    keep_mask = np.zeros((block, block), bool)
    for _, i, j in order:
        keep_mask[i, j] = True
    tiles = images.reshape(n, height // block, block, width // block, block)
    coefficients = dctn(tiles, axes=(2, 4), norm="ortho") * keep_mask[None, None, :, None, :]
    return idctn(coefficients, axes=(2, 4), norm="ortho").reshape(images.shape)


class DctCodec:
    """:func:`dct_slices` with an autoencoder's call signature (``codec(x).sample`` on
    tensors), so that :func:`neuroai.tokenizers.fusion.measure_distortion` can measure it."""

    def __init__(self, *, block: int = 32, keep: int = 32) -> None:
        self.block, self.keep = block, keep

    def to(self, device: Any) -> DctCodec:
        return self

    def eval(self) -> DctCodec:
        return self

    def __call__(self, images: Any) -> SimpleNamespace:
        import torch

        flat = images.detach().cpu().numpy().reshape(-1, *images.shape[-2:])
        rebuilt = dct_slices(flat, block=self.block, keep=self.keep).reshape(images.shape)
        return SimpleNamespace(sample=torch.from_numpy(rebuilt).to(images.device))


@functools.lru_cache(maxsize=4)
def _dct_distortion(size: int, block: int, keep: int) -> np.ndarray:
    """The DCT codec's distortion map (fixed for a size and codec: measured once per process)."""
    from neuroai.tokenizers.fusion import measure_distortion

    distortion = measure_distortion(DctCodec(block=block, keep=keep), size=size, device="cpu")
    distortion.setflags(write=False)
    return distortion


def dct_round_trip(
    frames: np.ndarray, *, block: int = 32, keep: int = 32, merge: str = "mean"
) -> np.ndarray:
    """A fixed linear codec of the tokens' size: the baseline a learned tokenizer should beat.

    Every slice along each axis goes through :func:`dct_slices`, and the three axes'
    volumes are merged as the tokens' decodings are: averaged (``merge="mean"``) or
    frequency by frequency with the codec's own distortion map measured on the
    photographs (``merge="spectral"``, see :mod:`neuroai.tokenizers.fusion`).

    Parameters
    ----------
    frames : ndarray, shape (n_frames, S, S, S)
        S a multiple of ``block``.
    block, keep : int
        See :func:`dct_slices`.
    merge : {"mean", "spectral"}

    Returns
    -------
    ndarray, float32, the shape of ``frames``.
    """
    import torch

    from neuroai.tokenizers.fusion import axis_weights, merge_axes

    check_option("merge", merge, ("mean", "spectral"))
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1:] != (frames.shape[1],) * 3:
        raise DataError(f"dct_round_trip needs frames of shape (n, S, S, S); got {frames.shape}.")
    n, size = len(frames), frames.shape[1]
    per_axis = np.zeros((n, 3, size, size, size), np.float32)
    for axis in range(3):
        moved = np.moveaxis(frames, axis + 1, 1).reshape(n * size, size, size)
        rebuilt = dct_slices(moved, block=block, keep=keep).reshape(n, size, size, size)
        per_axis[:, axis] = np.moveaxis(rebuilt, 1, axis + 1)
    if merge == "mean":
        return per_axis.mean(axis=1)
    weights = torch.from_numpy(axis_weights(_dct_distortion(size, block, keep)))
    return merge_axes(torch.from_numpy(per_axis), weights).numpy()


def describe(values) -> dict[str, float | None]:
    """Mean, median, min and max of the finite values (None when there are none)."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "median": None, "min": None, "max": None}
    return {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def round_trip_qc(
    inputs: np.ndarray,
    reconstructions: np.ndarray,
    mask: np.ndarray,
    *,
    n_tokens: int,
    token_dim: int,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """All round-trip metrics of one subject.

    Parameters
    ----------
    inputs, reconstructions : ndarray, shape (n_frames, S, S, S)
        Frames in [-1, 1] and their decoded tokens.
    mask : ndarray of bool, shape (S, S, S)
        Brain voxels to score.
    n_tokens, token_dim : int
        The token layout, for the compression ratio.
    labels : ndarray of int, shape (S, S, S) | None
        Region labels on the frames' grid for the region time-series
        correlation (skipped if None); see :func:`image_on_grid`.

    Returns
    -------
    dict
        ``spatial_correlation``, ``psnr_db``, ``temporal_correlation``
        (summaries: mean, median, min, max), per-frame lists, ``region_correlation``
        (summary and per-region values) when labels are given, ``compression``.
    """
    spatial = spatial_correlation(inputs, reconstructions, mask)
    peak = psnr(inputs, reconstructions, mask)
    temporal = temporal_correlation(inputs, reconstructions, mask)
    voxels = int(np.prod(inputs.shape[1:]))
    values = n_tokens * token_dim
    result: dict[str, Any] = {
        "n_frames": int(len(inputs)),
        "n_mask_voxels": int(mask.sum()),
        "spatial_correlation": describe(spatial),
        "spatial_correlation_per_frame": [float(v) for v in spatial],
        "psnr_db": describe(peak),
        "psnr_db_per_frame": [float(v) for v in peak],
        "temporal_correlation": describe(temporal),
        "compression": {
            "voxels_per_frame": voxels,
            "values_per_frame": values,
            "ratio": voxels / values,
            "n_tokens": n_tokens,
            "token_dim": token_dim,
        },
    }
    if labels is not None:
        series_in, regions = region_timeseries(inputs, labels)
        series_out, _ = region_timeseries(reconstructions, labels)
        per_region = region_correlation(series_in, series_out)
        result["region_correlation"] = describe(per_region)
        result["region_correlation_per_region"] = {
            str(label): (float(v) if np.isfinite(v) else None)
            for label, v in zip(regions, per_region, strict=False)
        }
    return result


def qc_mask(frames: np.ndarray, brain_mask: np.ndarray | None) -> np.ndarray:
    """Voxels to score: inside ``brain_mask`` (if given) and with signal in some frame.

    Parameters
    ----------
    frames : ndarray, shape (n_frames, S, S, S)
        Scaled frames (-1 = no signal).
    brain_mask : ndarray of bool, shape (S, S, S) | None
    """
    signal = np.asarray(np.max(frames, axis=0), dtype=np.float32) > -1.0 + 1e-3
    mask = signal if brain_mask is None else signal & np.asarray(brain_mask, dtype=bool)
    if not mask.any():
        raise DataError(
            "No voxel has signal inside the brain mask: the frames and the mask do not overlap."
        )
    return mask


def default_brain_mask() -> Any:
    """nilearn's MNI152 2 mm brain mask (bundled with nilearn, no download)."""
    from nilearn.datasets import load_mni152_brain_mask

    return load_mni152_brain_mask(resolution=2)
