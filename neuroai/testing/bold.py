"""Tiny, seeded 4D BOLD images, atlases and BIDS / fMRIPrep trees for tests.

Shapes are unequal (``(7, 8, 9)`` voxels, 37 volumes ...) so that a swapped axis
fails loudly. The images have a smooth, region-structured signal plus noise, so
that connectivity is not trivial.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: A 3 mm oblique-free affine with a non-zero origin.
AFFINE = np.array([[3.0, 0, 0, -10.0], [0, 3.0, 0, -14.0], [0, 0, 3.0, -12.0], [0, 0, 0, 1.0]])


def label_atlas(
    shape: Sequence[int] = (7, 8, 9),
    n_regions: int = 5,
    *,
    seed: int = 0,
    affine: np.ndarray = AFFINE,
    background: float = 0.4,
):
    """A label image: nearest of ``n_regions`` random centres, some background.

    Returns
    -------
    nibabel.Nifti1Image
        int16 labels 1..n_regions, 0 for background.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    centres = rng.uniform(0, 1, (n_regions, 3)) * (np.array(shape) - 1)
    dist = ((grid[..., None, :] - centres) ** 2).sum(-1)
    labels = (dist.argmin(-1) + 1).astype(np.int16)
    labels[rng.uniform(size=shape) < background] = 0
    for region in range(1, n_regions + 1):  # every region keeps a voxel
        if not (labels == region).any():
            labels[tuple(np.round(centres[region - 1]).astype(int))] = region
    return nib.Nifti1Image(labels, affine)


def prob_atlas(shape: Sequence[int] = (7, 8, 9), n_maps: int = 4, *, seed: int = 0, affine=AFFINE):
    """A 4D image of ``n_maps`` smooth, overlapping, non-negative maps."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    centres = rng.uniform(0, 1, (n_maps, 3)) * (np.array(shape) - 1)
    maps = np.exp(-((grid[..., None, :] - centres) ** 2).sum(-1) / 6.0)
    maps[maps < 0.05] = 0
    return nib.Nifti1Image(maps.astype(np.float32), affine)


def bold_image(
    shape: Sequence[int] = (7, 8, 9),
    n_volumes: int = 37,
    *,
    seed: int = 0,
    affine: np.ndarray = AFFINE,
    dtype=np.float32,
    tr: float = 2.0,
    n_sources: int = 4,
):
    """A 4D image: smooth spatial patterns times random time courses, plus noise.

    Returns
    -------
    nibabel.Nifti1Image
        Shape ``(*shape, n_volumes)``, values around 1000 (BOLD-like offset),
        ``pixdim[4] = tr`` seconds.
    """
    import nibabel as nib

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    centres = rng.uniform(0, 1, (n_sources, 3)) * (np.array(shape) - 1)
    patterns = np.exp(-((grid[..., None, :] - centres) ** 2).sum(-1) / 8.0)
    courses = np.cumsum(rng.standard_normal((n_volumes, n_sources)), axis=0) * 0.3
    courses += rng.standard_normal((n_volumes, n_sources))
    data = 1000 + 40 * patterns @ courses.T + 5 * rng.standard_normal((*shape, n_volumes))
    data += 50 * rng.uniform(size=shape)[..., None]
    if np.dtype(dtype).kind == "i":
        data = np.round(data)
    image = nib.Nifti1Image(data.astype(dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    zooms = list(image.header.get_zooms())
    zooms[3] = tr
    image.header.set_zooms(zooms)
    return image


def fmriprep_confounds(n_volumes: int, *, seed: int = 0, with_motion: bool = True):
    """A confounds table with fMRIPrep's column names, and its JSON metadata.

    Returns
    -------
    table : pandas.DataFrame
        Motion (24), csf / white_matter / global_signal (x4), cosines,
        aCompCor (combined, WM, CSF) and tCompCor components, framewise
        displacement, DVARS and standardised DVARS, non-steady-state flags;
        derivative columns start with NaN as fMRIPrep writes ``n/a``.
    meta : dict
        Per-column metadata (``Mask`` of each CompCor component).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}

    def add(base: str, values: np.ndarray) -> None:
        cols[base] = values
        deriv = np.r_[np.nan, np.diff(values)]
        cols[f"{base}_derivative1"] = deriv
        cols[f"{base}_power2"] = values**2
        cols[f"{base}_derivative1_power2"] = deriv**2

    for name in ("global_signal", "csf", "white_matter"):
        add(name, 1000 + np.cumsum(rng.standard_normal(n_volumes)))
    if with_motion:
        for name in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
            add(name, np.cumsum(rng.standard_normal(n_volumes)) * 0.05)
    fd = np.abs(rng.standard_normal(n_volumes)) * 0.2
    fd[[5, 6, n_volumes // 2, n_volumes - 3]] = 0.9
    fd[0] = np.nan
    cols["framewise_displacement"] = fd
    cols["dvars"] = np.r_[np.nan, 20 + rng.standard_normal(n_volumes - 1)]
    std_dvars = np.r_[np.nan, 1 + 0.1 * rng.standard_normal(n_volumes - 1)]
    std_dvars[n_volumes // 3] = 2.0
    cols["std_dvars"] = std_dvars
    meta: dict = {}
    for i in range(3):
        cols[f"cosine{i:02d}"] = np.cos(np.pi * (np.arange(n_volumes) + 0.5) * (i + 1) / n_volumes)
    for i, mask in enumerate(["combined", "combined", "combined", "WM", "WM", "CSF"]):
        cols[f"a_comp_cor_{i:02d}"] = rng.standard_normal(n_volumes)
        meta[f"a_comp_cor_{i:02d}"] = {"Mask": mask, "Method": "aCompCor"}
    for i in range(2):
        cols[f"t_comp_cor_{i:02d}"] = rng.standard_normal(n_volumes)
        meta[f"t_comp_cor_{i:02d}"] = {"Method": "tCompCor"}
    flags = np.zeros(n_volumes)
    flags[0] = 1
    cols["non_steady_state_outlier00"] = flags
    return pd.DataFrame(cols), meta


def _write_nifti(image, path: Path) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path


def bids_dataset(
    root: str | os.PathLike,
    *,
    subjects: Sequence[str] = ("01", "02"),
    sessions: Sequence[str] | None = None,
    runs: Sequence[int] = (1,),
    task: str = "rest",
    n_volumes: int = 37,
    shape: Sequence[int] = (7, 8, 9),
    tr: float = 2.0,
    sites: Sequence[str] = ("A", "B"),
    tr_at_root: bool = True,
    seed: int = 0,
) -> list[Path]:
    """Write a raw BIDS dataset of 4D BOLD runs; return the image paths.

    The repetition time is written once at the root (``task-<task>_bold.json``,
    inherited by every run) when ``tr_at_root``, else in each run's sidecar.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "neuroai test", "BIDSVersion": "1.9.0"}), encoding="utf-8"
    )
    if tr_at_root:
        (root / f"task-{task}_bold.json").write_text(
            json.dumps({"RepetitionTime": tr, "TaskName": task}), encoding="utf-8"
        )
    paths = []
    rows = []
    for i, sub in enumerate(subjects):
        rows.append(f"sub-{sub}\t{sites[i % len(sites)]}\t{20 + i}")
        for ses in sessions or [None]:
            folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
            for run in runs:
                entities = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + f"_task-{task}"
                entities += f"_run-{run}"
                image = bold_image(shape, n_volumes, seed=seed + 31 * i + run, tr=tr)
                path = _write_nifti(image, folder / f"{entities}_bold.nii.gz")
                if not tr_at_root:
                    (folder / f"{entities}_bold.json").write_text(
                        json.dumps({"RepetitionTime": tr}), encoding="utf-8"
                    )
                paths.append(path)
    (root / "participants.tsv").write_text(
        "participant_id\tsite\tage\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return paths


def fmriprep_dataset(
    root: str | os.PathLike,
    *,
    subjects: Sequence[str] = ("01", "02"),
    spaces: Sequence[str] = ("MNI152NLin2009cAsym",),
    task: str = "rest",
    n_volumes: int = 41,
    shape: Sequence[int] = (7, 8, 9),
    tr: float = 2.0,
    sites: Sequence[str] = ("A", "B"),
    seed: int = 0,
) -> list[Path]:
    """Write fMRIPrep-style derivatives: preproc BOLD, brain mask, confounds.

    Returns
    -------
    list of Path
        The ``desc-preproc_bold.nii.gz`` images.
    """
    import nibabel as nib

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "fMRIPrep - test", "DatasetType": "derivative"}), encoding="utf-8"
    )
    paths = []
    rows = []
    for i, sub in enumerate(subjects):
        rows.append(f"sub-{sub}\t{sites[i % len(sites)]}")
        folder = root / f"sub-{sub}" / "func"
        base = f"sub-{sub}_task-{task}"
        table, meta = fmriprep_confounds(n_volumes, seed=seed + i)
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(
            folder / f"{base}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a"
        )
        (folder / f"{base}_desc-confounds_timeseries.json").write_text(
            json.dumps(meta), encoding="utf-8"
        )
        for space in spaces:
            image = bold_image(shape, n_volumes, seed=seed + 7 * i, tr=tr)
            stem = f"{base}_space-{space}"
            path = _write_nifti(image, folder / f"{stem}_desc-preproc_bold.nii.gz")
            (folder / f"{stem}_desc-preproc_bold.json").write_text(
                json.dumps({"RepetitionTime": tr, "SkullStripped": True}), encoding="utf-8"
            )
            mask = np.ones(tuple(shape), dtype=np.uint8)
            mask[0] = 0
            _write_nifti(
                nib.Nifti1Image(mask, image.affine), folder / f"{stem}_desc-brain_mask.nii.gz"
            )
            paths.append(path)
    (root / "participants.tsv").write_text(
        "participant_id\tsite\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return paths
