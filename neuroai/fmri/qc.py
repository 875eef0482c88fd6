"""Run-level quality measures: framewise displacement, DVARS, carpet plots.

- Framewise displacement (Power et al. 2012): the sum of absolute volume-to-volume
  changes of the 6 rigid-body parameters, rotations (radians) converted to mm
  on a sphere of 50 mm radius. fMRIPrep writes it as ``framewise_displacement``;
  :func:`framewise_displacement` computes it from motion parameters otherwise.
- DVARS: root mean square over brain voxels of the volume-to-volume change,
  computed from the image by :class:`~neuroai.fmri.extraction.AtlasMasker`;
  it is the motion-sensitive trace used where no motion parameters exist (raw
  BIDS runs), and is reported in percent of the mean brain signal.
- Carpet plot (Power 2017): sampled brain voxels (rows, ordered by region)
  against time, each row detrended and z-scored.
"""

from __future__ import annotations

import numpy as np

from neuroai.errors import DataError
from neuroai.fmri.confounds import MOTION


def framewise_displacement(motion: np.ndarray, *, radius: float = 50.0) -> np.ndarray:
    """Power's framewise displacement in mm.

    Parameters
    ----------
    motion : ndarray, shape (n_timepoints, 6)
        Translations (mm) x, y, z then rotations (radians) x, y, z, in
        fMRIPrep's order (``trans_x`` ... ``rot_z``).
    radius : float
        Head radius in mm that turns rotations into displacements.

    Returns
    -------
    ndarray, shape (n_timepoints,)
        0 for the first volume.
    """
    motion = np.asarray(motion, dtype=np.float64)
    if motion.ndim != 2 or motion.shape[1] != 6:
        raise DataError(f"Motion parameters must be (n_timepoints, 6), got {motion.shape}.")
    change = np.abs(np.diff(motion, axis=0))
    change[:, 3:] *= radius
    return np.concatenate([[0.0], change.sum(axis=1)])


def motion_trace(confounds_file) -> tuple[str, np.ndarray] | None:
    """``("framewise displacement (mm)", fd)`` from an fMRIPrep confounds table.

    Uses the ``framewise_displacement`` column (its leading ``n/a`` read as 0), or
    computes it from the 6 motion parameters; ``None`` when the table has neither.
    """
    import pandas as pd

    table = pd.read_csv(confounds_file, sep="\t", na_values=["n/a"])
    if "framewise_displacement" in table.columns:
        return "framewise displacement (mm)", table["framewise_displacement"].fillna(0).to_numpy()
    if set(MOTION) <= set(table.columns):
        return "framewise displacement (mm)", framewise_displacement(table[list(MOTION)].to_numpy())
    return None


def carpet_image(carpet: np.ndarray) -> np.ndarray:
    """Rows linearly detrended and z-scored (constant rows become 0), float16.

    Parameters
    ----------
    carpet : ndarray, shape (n_voxels, n_timepoints)
        Raw voxel time courses.
    """
    from neuroai.fmri.cleaning import linear_detrend

    rows = linear_detrend(np.asarray(carpet, dtype=np.float64).T).T
    sd = rows.std(axis=1, keepdims=True)
    sd[sd == 0] = 1.0
    return np.clip(rows / sd, -6, 6).astype(np.float16)


def summarize_trace(values: np.ndarray, *, threshold: float | None = None) -> dict:
    """Mean, median, max and (with ``threshold``) the fraction of volumes above it."""
    values = np.asarray(values, dtype=np.float64)
    summary = {
        "mean": float(values.mean()),
        "median": float(np.median(values)),
        "max": float(values.max()),
    }
    if threshold is not None:
        summary["threshold"] = float(threshold)
        summary["fraction_above"] = float((values > threshold).mean())
    return summary
