"""Frames: each BOLD volume on a 96^3 MNI grid of 2 mm voxels, scaled as TABLeT does.

TABLeT feeds its 2D autoencoder cubic frames of 96 voxels per side at 2 mm. This
module puts every frame of a subject's 4D runs on that grid and scales it:

1. **Placement.** When a run's voxel grid is the target grid up to a permutation
   or flip of the axes and an integer shift (any 2 mm MNI image on the even
   millimetre lattice: nilearn's 99x117x95, FSL's 91x109x91), the frames are
   transposed, flipped and padded/cropped exactly, with no interpolation.
   Otherwise they are resampled with :func:`nilearn.image.resample_img` onto
   the grid (``interpolation`` ``"linear"``, ``"continuous"`` or ``"nearest"``;
   values outside the run's field of view are 0). Either way the grid and the
   padding/cropping or the covered box go into the provenance record.
2. **Scaling.** Values are clamped at 0, divided by the subject's maximum over
   all its frames, and mapped to [-1, 1]: ``x' = 2 * max(x, 0) / m - 1``, so
   the background is -1.

The grid (:func:`mni_grid`) is axis-aligned (RAS) with its centre at MNI
(1, -17, 5) mm, the centre of the MNI152 brain mask's bounding box; with 96
voxels of 2 mm it spans x -94..96, y -112..78, z -90..100 mm and holds the whole
brain (73 x 90 x 78 voxels) with a margin. Its voxel centres lie on the even
millimetre lattice of the common 2 mm templates.

Frames are stored per subject as one ``.npy`` array of shape
(n_frames, 96, 96, 96), float16, C order (each frame contiguous), frames of all
runs in run order. Both passes (the maximum, then the writing) stream chunks of
frames, so memory does not grow with the length of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.tokenizers._private import NpyStream
from neuroai.tokenizers.runs import OpenedBold, open_bold

logger = get_logger(__name__)

FRAME_SIZE = 96
VOXEL_SIZE_MM = 2.0
MNI_CENTER_MM = (1.0, -17.0, 5.0)
INTERPOLATIONS = ("linear", "continuous", "nearest")
FRAMES_STAGE = "frames"


def mni_grid(size: int = FRAME_SIZE, voxel_size_mm: float = VOXEL_SIZE_MM) -> np.ndarray:
    """The affine of the cubic MNI frame grid.

    Parameters
    ----------
    size : int
        Voxels per side (96 for TABLeT).
    voxel_size_mm : float
        Voxel side in millimetres (2 for TABLeT).

    Returns
    -------
    ndarray, shape (4, 4)
        Voxel indices to MNI millimetres; axis-aligned, RAS, centred on
        :data:`MNI_CENTER_MM`.
    """
    affine = np.eye(4)
    affine[:3, :3] *= voxel_size_mm
    affine[:3, 3] = np.asarray(MNI_CENTER_MM) - voxel_size_mm * (size - 1) / 2.0
    return affine


@dataclass(frozen=True)
class Placement:
    """How one run's voxels reach the frame grid.

    Attributes
    ----------
    method : {"pad_crop", "resample"}
        Exact re-indexing, or interpolation with nilearn.
    axes : tuple of int | None
        ``pad_crop``: the run's axis that feeds each grid axis.
    flips : tuple of bool | None
        ``pad_crop``: whether that axis is reversed.
    offsets : tuple of int | None
        ``pad_crop``: grid index of the run's first voxel along each grid axis
        after transposition and flips (negative: cropped at the start).
    pad_before, pad_after, crop_before, crop_after : tuple of int | None
        ``pad_crop``: voxels of padding added and of data cropped per grid axis.
    interpolation : str | None
        ``resample``: nilearn's interpolation.
    covered_box : list of [start, stop] | None
        Grid voxels (per axis, stop exclusive) inside the run's field of view.
    """

    method: str
    axes: tuple[int, ...] | None = None
    flips: tuple[bool, ...] | None = None
    offsets: tuple[int, ...] | None = None
    pad_before: tuple[int, ...] | None = None
    pad_after: tuple[int, ...] | None = None
    crop_before: tuple[int, ...] | None = None
    crop_after: tuple[int, ...] | None = None
    interpolation: str | None = None
    covered_box: list[list[int]] | None = None

    def describe(self) -> dict[str, Any]:
        """The placement as a plain dict (for provenance), without empty fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def _covered_box(affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray, size: int):
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in shape[:3]], indexing="ij"))
    corners = corners.reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    inv = np.linalg.inv(grid_affine)
    grid = inv[:3, :3] @ world + inv[:3, 3:4]
    lo = np.clip(np.ceil(grid.min(axis=1) - 0.5), 0, size).astype(int)
    hi = np.clip(np.floor(grid.max(axis=1) + 0.5), 0, size).astype(int)
    return [[int(a), int(b)] for a, b in zip(lo, hi, strict=True)]


def plan_placement(
    affine: np.ndarray,
    shape: Sequence[int],
    *,
    size: int = FRAME_SIZE,
    grid_affine: np.ndarray | None = None,
    interpolation: str = "linear",
    path: str | os.PathLike = "the run",
) -> Placement:
    """Decide how a run with ``affine`` and spatial ``shape`` reaches the grid.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        The run's voxel-to-world affine (mm).
    shape : sequence of int
        The run's spatial shape (n_x, n_y, n_z[, n_frames]).
    size : int
        Grid voxels per side.
    grid_affine : ndarray, shape (4, 4) | None
        The grid; :func:`mni_grid` by default.
    interpolation : {"linear", "continuous", "nearest"}
        Used when the run is not on the grid's lattice.
    path : path-like
        Named in errors.

    Raises
    ------
    DataError
        When the run's field of view does not overlap the grid at all.
    """
    check_option("interpolation", interpolation, INTERPOLATIONS)
    grid_affine = mni_grid(size) if grid_affine is None else np.asarray(grid_affine, float)
    box = _covered_box(affine, shape, grid_affine, size)
    if any(hi <= lo for lo, hi in box):
        raise DataError(
            f"{path} does not overlap the {size}^3 MNI frame grid at all: its voxels lie "
            "outside MNI x -94..96, y -112..78, z -90..100 mm. The volume path expects runs "
            "normalised to MNI space; check the image's affine."
        )
    mapping = np.linalg.inv(grid_affine) @ np.asarray(affine, float)
    linear, shift = mapping[:3, :3], mapping[:3, 3]
    rounded = np.round(linear)
    signed_permutation = (
        np.allclose(linear, rounded, atol=1e-4)
        and np.all(np.abs(rounded).sum(axis=0) == 1)
        and np.all(np.abs(rounded).sum(axis=1) == 1)
    )
    if not (signed_permutation and np.allclose(shift, np.round(shift), atol=1e-3)):
        return Placement("resample", interpolation=interpolation, covered_box=box)
    axes, flips, offsets = [], [], []
    for target in range(3):
        source = int(np.flatnonzero(rounded[target])[0])
        sign = rounded[target, source]
        n = int(shape[source])
        offset = int(round(shift[target])) - (n - 1 if sign < 0 else 0)
        axes.append(source)
        flips.append(bool(sign < 0))
        offsets.append(offset)
    lengths = [int(shape[a]) for a in axes]
    return Placement(
        "pad_crop",
        axes=tuple(axes),
        flips=tuple(flips),
        offsets=tuple(offsets),
        pad_before=tuple(max(o, 0) for o in offsets),
        pad_after=tuple(max(size - (o + n), 0) for o, n in zip(offsets, lengths, strict=True)),
        crop_before=tuple(max(-o, 0) for o in offsets),
        crop_after=tuple(max(o + n - size, 0) for o, n in zip(offsets, lengths, strict=True)),
        covered_box=box,
    )


def place_frames(
    data: np.ndarray,
    affine: np.ndarray,
    placement: Placement,
    *,
    size: int = FRAME_SIZE,
    grid_affine: np.ndarray | None = None,
) -> np.ndarray:
    """Put a chunk of frames on the grid.

    Parameters
    ----------
    data : ndarray, shape (n_x, n_y, n_z, n_frames)
        Frames of one run, in the run's voxel order.
    affine : ndarray, shape (4, 4)
        The run's affine.
    placement : Placement
        From :func:`plan_placement`.
    size : int
        Grid voxels per side.
    grid_affine : ndarray | None
        The grid; :func:`mni_grid` by default.

    Returns
    -------
    ndarray, shape (n_frames, size, size, size), float32
        Values on the grid, not yet clamped or scaled; 0 outside the run.
    """
    data = np.asarray(data, dtype=np.float32)
    if placement.method == "pad_crop":
        moved = np.transpose(data, (*placement.axes, 3))
        flip_axes = tuple(a for a, f in enumerate(placement.flips) if f)
        if flip_axes:
            moved = np.flip(moved, axis=flip_axes)
        out = np.zeros((data.shape[3], size, size, size), dtype=np.float32)
        src, dst = [], []
        for offset, n in zip(placement.offsets, moved.shape[:3], strict=True):
            start, stop = max(0, -offset), min(n, size - offset)
            src.append(slice(start, stop))
            dst.append(slice(start + offset, stop + offset))
        out[(slice(None), *dst)] = np.moveaxis(moved[tuple(src)], 3, 0)
        return out
    import nibabel as nib
    from nilearn.image import resample_img

    grid_affine = mni_grid(size) if grid_affine is None else grid_affine
    resampled = resample_img(
        nib.Nifti1Image(data, affine),
        target_affine=grid_affine,
        target_shape=(size, size, size),
        interpolation=placement.interpolation,
        fill_value=0.0,
        force_resample=True,
        copy_header=True,
    )
    values = np.asarray(resampled.dataobj, dtype=np.float32)
    if values.ndim == 3:
        values = values[..., None]
    return np.ascontiguousarray(np.moveaxis(values, 3, 0))


@dataclass(frozen=True)
class _Plan:
    runs: list[OpenedBold]
    placements: list[Placement]
    counts: list[int]


def _plan(
    runs: Sequence[str | os.PathLike | OpenedBold],
    *,
    max_frames: int | None,
    size: int,
    interpolation: str,
) -> _Plan:
    if not runs:
        raise DataError("No BOLD runs given: a subject needs at least one 4D run.")
    opened = [r if isinstance(r, OpenedBold) else open_bold(r) for r in runs]
    trs = {round(r.tr, 6) for r in opened}
    if len(trs) > 1:
        listing = ", ".join(f"{r.path.name}: {r.tr} s" for r in opened)
        raise DataError(
            f"The runs of one subject have different repetition times ({listing}); a token "
            "store holds frames of one TR. Give the runs to separate datasets or resample them."
        )
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1 or None, got {max_frames}.")
    counts, left = [], max_frames
    for run in opened:
        n = run.n_frames if left is None else min(run.n_frames, left)
        counts.append(n)
        if left is not None:
            left -= n
    placements = [
        plan_placement(r.affine, r.shape, size=size, interpolation=interpolation, path=r.path)
        for r in opened
    ]
    return _Plan(opened, placements, counts)


def _chunks(
    plan: _Plan, *, size: int, chunk_frames: int, stats: dict | None = None
) -> Iterator[np.ndarray]:
    """Yield the planned frames in order, clamped at 0, chunk by chunk: (n, size, size, size) float32."""
    for run, placement, count in zip(plan.runs, plan.placements, plan.counts, strict=True):
        for start in range(0, count, chunk_frames):
            stop = min(start + chunk_frames, count)
            raw = np.asarray(run.image.dataobj[..., start:stop], dtype=np.float32)
            bad = ~np.isfinite(raw)
            if bad.any():
                raw[bad] = 0.0
                if stats is not None:
                    stats["n_nonfinite"] += int(bad.sum())
            frames = place_frames(raw, run.affine, placement, size=size)
            np.maximum(frames, 0.0, out=frames)
            if stats is not None:
                peaks = frames.reshape(len(frames), -1).max(axis=1)
                stats["maximum"] = max(stats["maximum"], float(peaks.max()))
                stats["n_zero_frames"] += int((peaks == 0).sum())
            yield frames


def write_frames(
    runs: Sequence[str | os.PathLike | OpenedBold],
    output: str | os.PathLike,
    *,
    max_frames: int | None = None,
    chunk_frames: int = 8,
    interpolation: str = "linear",
    size: int = FRAME_SIZE,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    progress_bar: bool | None = None,
) -> dict[str, Any]:
    """Write a subject's frames, scaled to [-1, 1], as float16 ``.npy`` with provenance.

    Parameters
    ----------
    runs : sequence of path-like or OpenedBold
        The subject's 4D runs, in the order their frames are stored.
    output : path-like
        Destination ``.npy``; holds (n_frames, size, size, size) float16.
    max_frames : int | None
        Keep only the first frames of the subject (over its runs in order).
    chunk_frames : int
        Frames read, placed and written at a time (bounds the memory).
    interpolation : {"linear", "continuous", "nearest"}
        For runs that are not on the grid's lattice.
    size : int
        Grid voxels per side (96 for TABLeT).
    params : dict | None
        The stage parameters recorded in provenance.
    extra : dict | None
        More facts for the provenance record.
    progress_bar : bool | None
        See :func:`neuroai.progress`.

    Returns
    -------
    dict
        What was recorded as provenance ``extra``: n_frames, tr, the grid, each
        run's placement and frame count, the subject's maximum (in the runs'
        units), counts of zero frames and of non-finite input values.

    Raises
    ------
    DataError
        Bad runs (see :func:`neuroai.tokenizers.runs.open_bold`), runs of
        different TRs, a run outside the grid, or frames whose maximum is 0
        after clamping (nothing to scale by). Nothing is written then.
    """
    from neuroai.io.store import write_artifact

    if chunk_frames < 1:
        raise ConfigError(f"chunk_frames must be at least 1, got {chunk_frames}.")
    plan = _plan(runs, max_frames=max_frames, size=size, interpolation=interpolation)
    n_frames = sum(plan.counts)
    stats = {"maximum": 0.0, "n_zero_frames": 0, "n_nonfinite": 0}
    chunks = _chunks(plan, size=size, chunk_frames=chunk_frames, stats=stats)
    for _ in progress(chunks, desc="frames: maximum", enabled=progress_bar):
        pass
    names = ", ".join(str(r.path) for r in plan.runs)
    if not stats["maximum"] > 0:
        raise DataError(
            f"All {n_frames} frames of {names} are zero (or negative) on the grid after "
            "clamping at 0, so there is no maximum to scale by (it would divide by zero). "
            "Check that the file holds BOLD signal (not a mask or a zero-filled volume) and "
            "that the run lies inside the MNI grid."
        )
    if stats["n_zero_frames"]:
        logger.warning("%s: %d of %d frames are all zero.", names, stats["n_zero_frames"], n_frames)
    if stats["n_nonfinite"]:
        logger.warning("%s: %d NaN or Inf values were set to 0.", names, stats["n_nonfinite"])
    scale = stats["maximum"]

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            store = NpyStream(handle, (n_frames, size, size, size), np.float16)
            chunks = _chunks(plan, size=size, chunk_frames=chunk_frames)
            for frames in progress(chunks, desc="frames: write", enabled=progress_bar):
                frames *= 2.0 / scale
                frames -= 1.0
                store.write(frames)
            store.close()

    record = {
        "n_frames": n_frames,
        "frame_shape": [size] * 3,
        "dtype": "float16",
        "tr": plan.runs[0].tr,
        "tr_source": plan.runs[0].tr_source,
        "grid": {
            "space": "MNI152 (runs are assumed normalised to MNI)",
            "affine": mni_grid(size).tolist(),
            "voxel_size_mm": VOXEL_SIZE_MM,
            "shape": [size] * 3,
        },
        "scaling": "x' = 2 * max(x, 0) / maximum - 1",
        "maximum": scale,
        "n_zero_frames": stats["n_zero_frames"],
        "n_nonfinite": stats["n_nonfinite"],
        "runs": [
            {
                "path": str(r.path),
                "shape": list(r.shape),
                "affine": r.affine.tolist(),
                "n_frames_used": n,
                "placement": p.describe(),
            }
            for r, p, n in zip(plan.runs, plan.placements, plan.counts, strict=True)
        ],
        **(extra or {}),
    }
    write_artifact(
        output,
        _write,
        stage=FRAMES_STAGE,
        params=params or {},
        inputs=[r.path for r in plan.runs],
        extra=record,
    )
    logger.info(
        "Wrote %s: %d frames of %d^3 (maximum %.4g, placement %s)",
        output,
        n_frames,
        size,
        scale,
        "/".join(p.method for p in plan.placements),
    )
    return record


def load_frames(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, dict]:
    """Read a frames store made by :func:`write_frames`, checked, memory-mapped.

    Returns
    -------
    frames : ndarray, shape (n_frames, size, size, size), float16
    record : dict
        Its provenance record (``record["extra"]`` holds TR, grid, runs).
    """
    from neuroai.io.store import check_artifact

    record = check_artifact(path, stage=FRAMES_STAGE)
    frames = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if frames.ndim != 4 or frames.dtype != np.float16 or len(set(frames.shape[1:])) != 1:
        raise DataError(
            f"{path} holds an array of shape {frames.shape} and dtype {frames.dtype}; a frames "
            "store is (n_frames, size, size, size) float16."
        )
    return frames, record
