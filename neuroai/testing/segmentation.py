"""Tiny labelled volumes in the Medical Segmentation Decathlon layout.

:func:`hippocampus_like_dataset` writes a task folder shaped like MSD Task04
Hippocampus (one MRI channel; labels 0 background, 1 anterior, 2 posterior; uint8
labels; ``dataset.json`` with ``training`` and ``test`` lists), with tiny volumes of
unequal sizes so that a swapped axis fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.io.decathlon import write_dataset_json

HIPPOCAMPUS_LABELS = {0: "background", 1: "Anterior", 2: "Posterior"}


def _ellipsoid(shape: Sequence[int], centre: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    grid = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    return distance <= 1.0


def hippocampus_like_case(
    shape: Sequence[int] = (19, 23, 17), *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32, arbitrary units) and label (uint8, values 0-2).

    A bright elongated ellipsoid on a darker noisy background; its front half along
    the second axis is label 1 (anterior), the back half label 2 (posterior).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    centre = [s / 2 + rng.uniform(-1, 1) for s in shape]
    radii = [shape[0] / 4, shape[1] / 3, shape[2] / 4]
    body = _ellipsoid(shape, centre, radii)
    label = np.zeros(shape, dtype=np.uint8)
    front = np.arange(shape[1])[None, :, None] < centre[1]
    label[body & front] = 1
    label[body & ~front] = 2
    image = 40.0 + 10.0 * rng.standard_normal(shape)
    image[body] += 60.0
    image[label == 2] += 15.0
    image += 20.0 * np.ones(shape)  # a non-zero background, as in MRI crops
    return image.astype(np.float32), label


def hippocampus_like_dataset(
    root: str | os.PathLike,
    *,
    n_train: int = 3,
    n_test: int = 1,
    shapes: Sequence[Sequence[int]] = ((19, 23, 17), (21, 22, 18), (18, 25, 16)),
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    test_labels: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny MSD-Hippocampus-format task folder; return ``dataset.json``.

    Parameters
    ----------
    root : path-like
        Task folder to create.
    n_train, n_test : int
        Labelled training cases and test cases.
    shapes : sequence of (int, int, int)
        Volume shapes, used in turn.
    spacing : (float, float, float)
        Voxel size in mm.
    test_labels : bool
        Also write ``labelsTs/`` (nnU-Net convention) for the test cases.
    seed : int
        Random seed.
    """
    import nibabel as nib

    root = Path(root)
    for folder in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    affine = np.diag([*[float(s) for s in spacing], 1.0])
    training, test = [], []
    for i in range(n_train + n_test):
        name = f"hippocampus_{i + 1:03d}.nii.gz"
        image, label = hippocampus_like_case(shapes[i % len(shapes)], seed=seed + i)
        is_test = i >= n_train
        images = "imagesTs" if is_test else "imagesTr"
        nib.save(nib.Nifti1Image(image, affine), root / images / name)
        if not is_test or test_labels:
            nib.save(
                nib.Nifti1Image(label, affine),
                root / ("labelsTs" if is_test else "labelsTr") / name,
            )
        if is_test:
            test.append(f"imagesTs/{name}")
        else:
            training.append((f"imagesTr/{name}", f"labelsTr/{name}"))
    return write_dataset_json(
        root,
        name="Hippocampus",
        labels=HIPPOCAMPUS_LABELS,
        modalities={0: "MRI"},
        training=training,
        test=test,
        extra={"description": "neuroai test data shaped like MSD Task04 Hippocampus (synthetic)"},
    )
