"""Demo dataset: brain tissue segmentation derived from nilearn's MNI152 template.

nilearn ships the MNI152 (2009) T1 template at 2 mm with grey- and white-matter
probability maps and a brain mask. This module makes a labelled tissue-segmentation
set from them, offline, in the Medical Segmentation Decathlon layout:

- labels (0 background, 1 CSF, 2 grey matter, 3 white matter) are the argmax of
  (CSF = 1 - GM - WM, GM, WM) inside the brain mask;
- each case is the template and its labels under its own random deformation and
  artefacts, seeded per case: a random affine (rotations up to about 9 degrees,
  scaling +-10 %, shifts up to 4 voxels) composed with a smooth elastic displacement
  (a coarse random field, up to about 3 voxels, upsampled trilinearly), resampled in
  one pass (trilinear for the image, nearest neighbour for the labels, so image and
  label stay aligned); then MONAI's bias field, gamma contrast change and Gaussian
  noise on the image. (MONAI's ``Rand3DElasticd`` smooths a full-resolution random
  field and takes about 1 s per case here; the coarse field gives the same kind of
  deformation in a tenth of the time.)

Every case is therefore the same anatomy seen through different synthetic
deformations: the data card says so, and results on it show that the pipeline works,
not how well a model generalises to real scans.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.errors import ConfigError
from neuroai.io.atomic import atomic_path
from neuroai.io.decathlon import write_dataset_json

logger = get_logger(__name__)

LABELS = {0: "background", 1: "CSF", 2: "GM", 3: "WM"}
STAGE = "demo_tissue"


def template_files() -> list[Path]:
    """The nilearn files the dataset derives from (for provenance)."""
    import nilearn

    root = Path(nilearn.__file__).parent / "datasets" / "data"
    return sorted(p for p in root.glob("mni_icbm152*") if p.is_file())


def tissue_template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T1 image (float32, 0-1), tissue labels (uint8, 0-3) and affine of the 2 mm template.

    Returns
    -------
    image : ndarray, shape (99, 117, 95)
        T1 intensities (arbitrary units, 0-1).
    labels : ndarray, shape (99, 117, 95)
        0 outside the brain mask; inside, 1 + argmax(CSF, GM, WM) with CSF = 1 - GM - WM.
    affine : ndarray, shape (4, 4)
        Voxel to MNI coordinates (mm).
    """
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=2)
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata()
    mask = datasets.load_mni152_brain_mask(resolution=2).get_fdata() > 0.5
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    tissue = np.argmax(np.stack([csf, gm, wm]), axis=0) + 1
    labels = np.where(mask, tissue, 0).astype(np.uint8)
    return t1.get_fdata().astype(np.float32), labels, t1.affine


def random_sampling_grid(
    shape: Sequence[int],
    rng: np.random.Generator,
    *,
    rotate: float = 0.15,
    scale: float = 0.1,
    translate: float = 4.0,
    control_points: Sequence[int] = (6, 7, 6),
    displacement: float = 1.5,
):
    """Sampling grid of a random affine plus smooth elastic deformation.

    Parameters
    ----------
    shape : (int, int, int)
        Volume shape (voxels).
    rng : numpy.random.Generator
        Random source.
    rotate : float
        Maximum rotation about each axis (radians).
    scale : float
        Maximum relative scaling per axis.
    translate : float
        Maximum shift per axis (voxels).
    control_points : (int, int, int)
        Size of the coarse random displacement field.
    displacement : float
        Standard deviation of the coarse displacements (voxels).

    Returns
    -------
    torch.Tensor, shape (1, X, Y, Z, 3)
        Source coordinates for :func:`torch.nn.functional.grid_sample`
        (normalised, ``align_corners=True``, last axis ordered z, y, x).
    """
    import torch
    import torch.nn.functional as F

    shape = tuple(int(s) for s in shape)
    angles = rng.uniform(-rotate, rotate, 3)
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    matrix = rz @ ry @ rx @ np.diag(1.0 + rng.uniform(-scale, scale, 3))
    shift = rng.uniform(-translate, translate, 3)
    # Voxel coordinates p relate to grid_sample's normalised ones n by p - c = D n,
    # D = diag((size - 1) / 2), c the centre; grid_sample orders axes last-first.
    half = np.array([(n - 1) / 2 for n in shape])
    theta = np.zeros((3, 4))
    theta[:, :3] = (matrix * half[None, :] / half[:, None])[::-1, ::-1]
    theta[:, 3] = (shift / half)[::-1]
    grid = F.affine_grid(
        torch.as_tensor(theta, dtype=torch.float32)[None], size=(1, 1, *shape), align_corners=True
    )
    coarse = (
        rng.normal(0.0, displacement, (1, 3, *control_points)) / half[None, :, None, None, None]
    )
    field = F.interpolate(
        torch.as_tensor(coarse, dtype=torch.float32),
        size=shape,
        mode="trilinear",
        align_corners=True,
    )
    return grid + field.permute(0, 2, 3, 4, 1).flip(-1)


def deform_case(
    image: np.ndarray, labels: np.ndarray, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One case: the template under a seeded random deformation with artefacts.

    Parameters
    ----------
    image : ndarray, shape (X, Y, Z)
        T1 intensities.
    labels : ndarray, shape (X, Y, Z)
        Tissue labels.
    seed : int
        Seed of the case's deformation and artefacts.

    Returns
    -------
    image : ndarray, float32, shape (X, Y, Z)
    labels : ndarray, uint8, shape (X, Y, Z)
    """
    import torch
    import torch.nn.functional as F
    from monai import transforms as T

    rng = np.random.default_rng(seed)
    grid = random_sampling_grid(image.shape, rng)
    volume = torch.as_tensor(image, dtype=torch.float32)[None, None]
    warped = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    tissue = torch.as_tensor(labels.astype(np.float32))[None, None]
    new_labels = F.grid_sample(
        tissue, grid, mode="nearest", padding_mode="zeros", align_corners=True
    )
    artefacts = T.Compose(
        [
            T.RandBiasField(degree=3, coeff_range=(0.1, 0.3), prob=1.0),
            T.RandAdjustContrast(gamma=(0.7, 1.5), prob=1.0),
            T.RandGaussianNoise(std=0.02, prob=1.0),
        ]
    )
    artefacts.set_random_state(seed=int(rng.integers(2**31)))
    new_image = np.asarray(artefacts(warped[0]), dtype=np.float32)[0]
    return new_image, np.rint(new_labels[0, 0].numpy()).astype(np.uint8)


def case_ids(n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    """Identifiers of the training and held-out cases."""
    ids = [f"tissue_{i + 1:03d}" for i in range(n_train + n_test)]
    return ids[:n_train], ids[n_train:]


def _save_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Labels as uint8; images as int16 with a scale slope (as scanners store them)."""
    import nibabel as nib

    if array.dtype == np.uint8:
        image = nib.Nifti1Image(array, affine)
    else:
        slope = max(float(np.abs(array).max()), 1e-6) / 30000.0
        image = nib.Nifti1Image(np.rint(array / slope).astype(np.int16), affine)
        image.header.set_slope_inter(slope, 0.0)
    image.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(image, tmp)


def build_mni152_tissue(
    out_dir: str | os.PathLike,
    *,
    n_train: int = 22,
    n_test: int = 5,
    seed: int = 0,
    progress_bar: bool | None = None,
) -> Path:
    """Build the tissue-segmentation demo in Decathlon layout; return ``dataset.json``.

    Parameters
    ----------
    out_dir : path-like
        Task folder to write (``imagesTr``, ``labelsTr``, ``imagesTs``, ``labelsTs``,
        ``dataset.json``).
    n_train, n_test : int
        Training cases and held-out cases (the held-out labels go to ``labelsTs``).
    seed : int
        Base seed; case ``i`` uses ``seed + i``.
    progress_bar : bool | None
        Show a progress bar.

    Returns
    -------
    Path
        ``dataset.json``, written last with a provenance record.
    """
    if n_train < 1 or n_test < 0:
        raise ConfigError(f"n_train must be >= 1 and n_test >= 0; got {n_train}, {n_test}.")
    out_dir = Path(out_dir)
    image, labels, affine = tissue_template()
    train_ids, test_ids = case_ids(n_train, n_test)
    training, test = [], []
    for i, case in enumerate(
        progress([*train_ids, *test_ids], desc="tissue cases", enabled=progress_bar)
    ):
        held_out = i >= n_train
        new_image, new_labels = deform_case(image, labels, seed=seed + i)
        name = f"{case}.nii.gz"
        images, labels_dir = ("imagesTs", "labelsTs") if held_out else ("imagesTr", "labelsTr")
        _save_nifti(out_dir / images / name, new_image, affine)
        _save_nifti(out_dir / labels_dir / name, new_labels, affine)
        if held_out:
            test.append(f"imagesTs/{name}")
        else:
            training.append((f"imagesTr/{name}", f"labelsTr/{name}"))
    logger.info("Wrote %d training and %d held-out tissue cases to %s", n_train, n_test, out_dir)
    return write_dataset_json(
        out_dir,
        name="MNI152Tissue",
        labels=LABELS,
        modalities={0: "T1w"},
        training=training,
        test=test,
        extra={
            "description": "Brain tissue labels derived from nilearn's MNI152 2009 template (2 mm) "
            "with GM/WM probability maps; each case is a seeded random deformation of it. "
            "Held-out labels are in labelsTs/.",
            "reference": "nilearn.datasets.load_mni152_template / _gm_template / _wm_template / _brain_mask",
            "licence": "see data_cards/demo_mni152_tissue.yaml",
        },
        provenance={
            "stage": STAGE,
            "params": {"n_train": n_train, "n_test": n_test, "seed": seed},
            "inputs": template_files(),
            "extra": {
                "cases": [*train_ids, *test_ids],
                "shape": list(image.shape),
                "spacing_mm": 2.0,
            },
        },
    )


def tissue_class_fractions(labels: Sequence[np.ndarray]) -> dict[str, float]:
    """Fraction of brain voxels per tissue class over some label volumes (for the card)."""
    counts = np.zeros(len(LABELS), dtype=np.int64)
    for lab in labels:
        counts += np.bincount(np.asarray(lab).ravel(), minlength=len(LABELS))[: len(LABELS)]
    brain = counts[1:].sum()
    return {LABELS[k]: float(counts[k] / brain) for k in range(1, len(LABELS))}
