"""Segmentation evaluation: sliding-window prediction and per-class surface metrics.

For each case and each class except the background: Dice, the 95th percentile
Hausdorff distance (HD95, mm) and the symmetric mean surface distance (MSD, mm), all
from MONAI (``compute_dice``, ``compute_hausdorff_distance(percentile=95)``,
``compute_average_surface_distance(symmetric=True)``) with the voxel spacing of the
evaluated grid. A class absent from both prediction and reference has undefined
metrics (NaN, left out of the summaries). A class missing from only one of them (a
structure missed entirely, or predicted where none exists) has Dice 0 and no surface
distance; it scores the worst case instead, HD95 = MSD = the diagonal of the evaluated
volume in mm (as Metrics Reloaded recommends), so that exactly these failures count in
every mean and paired comparison, and is flagged ``missed`` or ``spurious``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neuroai.errors import DataError
from neuroai.io.decathlon import DecathlonCase
from neuroai.models.base import INPUTS, TARGET, NeuroModel

METRICS = ("dice", "hd95", "msd")


def _onehot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), n_classes).movedim(-1, 1).float()


def segmentation_metrics(
    prediction: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    *,
    n_classes: int,
    spacing: Sequence[float],
) -> list[dict[str, float]]:
    """Dice, HD95 and MSD per foreground class of one case.

    Parameters
    ----------
    prediction, reference : array, shape (D, H, W)
        Label volumes (class indices).
    n_classes : int
        Classes including the background.
    spacing : (float, float, float)
        Voxel size in mm.

    Returns
    -------
    list of dict
        One dict per class 1..K-1: ``class_index``, ``dice``, ``hd95`` (mm), ``msd``
        (mm), ``reference_voxels``, ``predicted_voxels``, ``missed`` (in the reference,
        not predicted), ``spurious`` (predicted, not in the reference), and
        ``empty_prediction`` (the same as ``missed``; kept for readers of older tables).
    """
    from monai.metrics import compute_dice
    from monai.metrics.utils import get_edge_surface_distance

    pred = torch.as_tensor(np.asarray(prediction))
    ref = torch.as_tensor(np.asarray(reference))
    if pred.shape != ref.shape or pred.ndim != 3:
        raise DataError(
            f"Prediction {tuple(pred.shape)} and reference {tuple(ref.shape)} must be equal 3D volumes."
        )
    p, r = _onehot(pred[None], n_classes), _onehot(ref[None], n_classes)
    spacing = [float(s) for s in spacing]
    dice = compute_dice(p, r, include_background=False, ignore_empty=True)[0]
    hd, msd = [], []
    for c in range(1, n_classes):
        # One symmetric surface-distance computation gives both HD95 (the larger of
        # the two directed 95th percentiles, as compute_hausdorff_distance) and the
        # symmetric MSD (mean over both directions, as compute_average_surface_distance).
        with np.errstate(all="ignore"):
            _, distances, _ = get_edge_surface_distance(
                p[0, c].bool(),
                r[0, c].bool(),
                spacing=spacing,
                symmetric=True,
                class_index=c,
                warn_empty=False,
            )
        if len(distances) < 2 or any(d.numel() == 0 for d in distances):
            hd.append(float("nan"))
            msd.append(float("nan"))
            continue
        hd.append(max(float(torch.quantile(d.float(), 0.95)) for d in distances))
        msd.append(float(torch.cat(distances).float().mean()))
    worst = worst_case_distance(pred.shape, spacing)
    rows = []
    for c in range(1, n_classes):
        n_ref, n_pred = int(r[0, c].sum()), int(p[0, c].sum())
        row = {
            "class_index": c,
            "dice": float(dice[c - 1]),
            "hd95": float(hd[c - 1]),
            "msd": float(msd[c - 1]),
        }
        if n_ref == 0 and n_pred == 0:
            row.update(dice=float("nan"), hd95=float("nan"), msd=float("nan"))
        elif n_ref == 0 or n_pred == 0:
            row.update(dice=0.0, hd95=worst, msd=worst)
        for key in ("hd95", "msd"):
            if not np.isfinite(row[key]):
                row[key] = float("nan")
        missed = n_pred == 0 and n_ref > 0
        row.update(
            reference_voxels=n_ref,
            predicted_voxels=n_pred,
            missed=missed,
            spurious=n_ref == 0 and n_pred > 0,
            empty_prediction=missed,
        )
        rows.append(row)
    return rows


def worst_case_distance(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """The diagonal of a volume of ``shape`` voxels of ``spacing`` mm: the largest distance
    two of its points can be apart, the score of a missed or spurious structure (mm)."""
    return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))


@dataclass
class CasePrediction:
    """A case after preprocessing, with a model's prediction.

    Attributes
    ----------
    id : str
        Case identifier.
    image : ndarray, shape (C, D, H, W)
        Preprocessed image.
    reference : ndarray | None, shape (D, H, W)
        Preprocessed reference labels.
    prediction : ndarray, shape (D, H, W)
        Predicted labels (uint8).
    affine : ndarray, shape (4, 4)
        Voxel to world of the preprocessed grid (mm).
    spacing : tuple of float
        Voxel size of the preprocessed grid (mm).
    """

    id: str
    image: np.ndarray
    reference: np.ndarray | None
    prediction: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]


def predict_case(
    model: NeuroModel, case: DecathlonCase, data_config, *, device: str | torch.device = "cpu"
) -> CasePrediction:
    """Preprocess ``case`` as in training and predict it with sliding windows."""
    from neuroai.training.segmentation_data import preprocess_case

    data = preprocess_case(case, data_config)
    image = data[INPUTS]
    affine = np.asarray(image.affine, dtype=float)
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    model = model.to(device).eval()
    with torch.no_grad():
        logits = model.predict(image.as_tensor()[None].to(device).float())
    prediction = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
    reference = None
    if TARGET in data:
        reference = np.rint(np.asarray(data[TARGET].as_tensor()[0])).astype(np.uint8)
    return CasePrediction(
        case.id, np.asarray(image.as_tensor()), reference, prediction, affine, spacing
    )
