"""Subject-level predictions from window-level outputs, and their metrics.

Models that read windows of a recording (TABLeT's 256-frame token windows) are evaluated
per subject: every non-overlapping window is predicted, the **logits** (or regression
outputs) of a subject's windows are averaged, and the metrics are computed over subjects
with bootstrap intervals that resample subjects.

- binary classification: accuracy, AUROC, F1, sensitivity (recall of the positive class),
  specificity (recall of the negative class), at logit 0 (probability 0.5);
- regression: Pearson r, MAE, MSE.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from neuroai.errors import DataError, check_option
from neuroai.evaluation.auroc import auroc
from neuroai.evaluation.bootstrap import bootstrap_metric


def average_by_subject(values: np.ndarray, subjects: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean of the rows of ``values`` per subject.

    Parameters
    ----------
    values : ndarray, shape (n_windows,) or (n_windows, n_outputs)
        Window-level logits or outputs.
    subjects : sequence of str, length n_windows
        Subject of each window.

    Returns
    -------
    ids : list of str
        Subjects in order of first appearance.
    means : ndarray, shape (n_subjects,) or (n_subjects, n_outputs)
    """
    values = np.asarray(values, dtype=float)
    subjects = list(subjects)
    if len(subjects) != len(values):
        raise DataError(f"{len(values)} window outputs but {len(subjects)} subject ids.")
    ids = list(dict.fromkeys(subjects))
    position = {s: i for i, s in enumerate(ids)}
    rows = np.array([position[s] for s in subjects], dtype=int)
    sums = np.zeros((len(ids), *values.shape[1:]))
    np.add.at(sums, rows, values)
    counts = np.bincount(rows, minlength=len(ids)).reshape(-1, *([1] * (values.ndim - 1)))
    return ids, sums / counts


def _predicted(logits):
    return (np.asarray(logits) > 0).astype(int)


def _accuracy(y, s):
    return float(np.mean(y == _predicted(s)))


def _auroc(y, s):
    """:func:`~neuroai.evaluation.auroc.auroc`; NaN with one class only."""
    try:
        return auroc(np.asarray(y) > 0.5, s)
    except DataError:
        return float("nan")


def _f1(y, s):
    predicted, y = _predicted(s), np.asarray(y) > 0.5
    true_pos = float(np.sum(predicted[y] == 1))
    denominator = 2 * true_pos + np.sum(predicted[~y] == 1) + np.sum(predicted[y] == 0)
    return 2 * true_pos / denominator if denominator else 0.0


def _recall_of(label):
    def metric(y, s):
        chosen = y == label
        if not chosen.any():
            return float("nan")
        return float(np.mean(_predicted(s)[chosen] == label))

    return metric


def _pearson(y, p):
    if np.std(y) == 0 or np.std(p) == 0:
        return float("nan")
    return float(np.corrcoef(y, p)[0, 1])


def _mae(y, p):
    return float(np.mean(np.abs(y - p)))


def _mse(y, p):
    return float(np.mean((y - p) ** 2))


BINARY = {
    "accuracy": _accuracy,
    "auroc": _auroc,
    "f1": _f1,
    "sensitivity": _recall_of(1),
    "specificity": _recall_of(0),
}
REGRESSION = {"pearson_r": _pearson, "mae": _mae, "mse": _mse}


def subject_metrics(
    y_true: Sequence | np.ndarray,
    y_pred: Sequence | np.ndarray,
    *,
    task: str,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics over subjects with bootstrap intervals.

    Parameters
    ----------
    y_true : array-like, shape (n_subjects,)
        0/1 labels (classification) or values (regression, in the target's units).
    y_pred : array-like, shape (n_subjects,)
        Averaged logits (classification; thresholded at 0) or predicted values.
    task : {"classification", "regression"}

    Returns
    -------
    dict
        Metric name to ``estimate``, ``ci_low``, ``ci_high``, ``se``, ``n``, ``n_skipped``.
    """
    check_option("task", task, ("classification", "regression"))
    table = {"classification": BINARY, "regression": REGRESSION}[task]
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred))
    if len(y_true) != len(y_pred):
        raise DataError(f"{len(y_true)} targets but {len(y_pred)} predictions.")
    out = {}
    for name, metric in table.items():
        try:
            with warnings.catch_warnings():  # resamples with one class are skipped anyway
                warnings.simplefilter("ignore", UserWarning)
                out[name] = bootstrap_metric(
                    y_true,
                    y_pred,
                    metric,
                    n_resamples=n_resamples,
                    confidence=confidence,
                    seed=seed,
                )
        except ValueError:  # undefined on the whole set (one class only)
            nan = float("nan")
            out[name] = {
                "estimate": nan,
                "ci_low": nan,
                "ci_high": nan,
                "se": nan,
                "n": len(y_true),
                "n_skipped": n_resamples,
            }
    return out


def predict_windows(model, dataset, *, batch_size: int = 8, device=None) -> dict[str, np.ndarray]:
    """Window-level outputs of ``model`` on every item of a window dataset.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(inputs, frame_mask, tr)`` (a TABLeT).
    dataset : TokenWindows
        ``mode="all"`` for evaluation.
    batch_size : int
        Windows per forward pass.
    device : torch.device | None
        CUDA when available by default (with bf16 autocast there).

    Returns
    -------
    dict
        ``outputs`` ``(n_windows, n_outputs)`` float, ``ids`` (subject per window),
        ``starts`` (first frame per window).
    """
    import torch

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    outputs, ids, starts = [], [], []
    with torch.no_grad():
        for first in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(first, min(first + batch_size, len(dataset)))]
            x = torch.stack([it["inputs"] for it in items]).to(device)
            mask = torch.stack([it["frame_mask"] for it in items]).to(device)
            tr = torch.stack([it["tr"] for it in items]).to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(x, mask, tr)
            outputs.append(logits.float().cpu().numpy())
            ids += [it["id"] for it in items]
            starts += [it["start"] for it in items]
    return {"outputs": np.concatenate(outputs), "ids": np.array(ids), "starts": np.array(starts)}
