"""Figures of classifiers and training runs, drawn from stored predictions and histories.

Every model page uses these: ROC and precision-recall curves and confusion
matrices from the scores a model's evaluate stage saved, and learning curves
from the history a training stage saved. Curves are computed with
scikit-learn from those scores; no model is run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

COLOURS = ("#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f")


def roc_pr_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, title: str = ""
) -> Figure | None:
    """ROC and precision-recall curves, one line per model.

    Parameters
    ----------
    curves : mapping
        Model name to ``(targets, scores)``, each shape (n_items,); targets are
        0/1, scores rank the positive class (probabilities or logits).
    title : str
        Figure title.

    Returns
    -------
    Figure | None
        ``None`` when no model has both classes among its targets.
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    usable = {
        name: (np.asarray(y, dtype=int), np.asarray(s, dtype=float))
        for name, (y, s) in curves.items()
        if len(np.unique(np.asarray(y))) == 2
    }
    if not usable:
        return None
    fig = Figure(figsize=(9.0, 3.8))
    roc_ax, pr_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    roc_ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    for i, (name, (y, s)) in enumerate(usable.items()):
        colour = COLOURS[i % len(COLOURS)]
        fpr, tpr, _ = roc_curve(y, s)
        roc_ax.plot(fpr, tpr, color=colour, label=f"{name} (AUC {roc_auc_score(y, s):.2f})")
        precision, recall, _ = precision_recall_curve(y, s)
        pr_ax.step(
            recall,
            precision,
            where="post",
            color=colour,
            label=f"{name} (AP {average_precision_score(y, s):.2f})",
        )
    prevalence = np.mean(next(iter(usable.values()))[0])
    pr_ax.axhline(prevalence, ls=":", color="grey", lw=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7, loc="lower right" if ax is roc_ax else "lower left")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_figure(
    matrices: Mapping[str, np.ndarray], labels: Sequence[str], *, title: str = ""
) -> Figure:
    """Confusion matrices side by side, counts written in the cells.

    Parameters
    ----------
    matrices : mapping
        Model name to its confusion matrix, shape (n_classes, n_classes), rows
        the true class and columns the predicted one (scikit-learn's layout).
    labels : sequence of str
        Class names, in the matrices' order.
    title : str
        Figure title.
    """
    n = len(matrices)
    fig = Figure(figsize=(2.9 * n + 0.6, 3.0))
    for k, (name, matrix) in enumerate(matrices.items()):
        ax = fig.add_subplot(1, n, k + 1)
        matrix = np.asarray(matrix)
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for (i, j), value in np.ndenumerate(matrix):
            dark = value > matrix.max() / 2
            ax.text(j, i, str(value), ha="center", va="center", color="w" if dark else "k")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set(xlabel="predicted", ylabel="true" if k == 0 else "", title=name)
        ax.title.set_fontsize(9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curves(
    runs: Mapping[str, object], columns: Sequence[str], *, x: str = "step", title: str = ""
) -> Figure | None:
    """Training and validation curves of several runs, one panel per quantity.

    Parameters
    ----------
    runs : mapping
        Run name to its history (a pandas DataFrame with column ``x`` and
        columns ``train/<name>`` and ``val/<name>``, NaN where not logged).
    columns : sequence of str
        Quantities to draw (``"loss"``, ``"auroc"`` ...); those no run logged
        are left out.
    x : str
        Column of the horizontal axis.
    title : str
        Figure title.

    Returns
    -------
    Figure | None
        ``None`` when no run logged any of ``columns``.
    """
    present = [
        c
        for c in columns
        if any(f"{split}/{c}" in frame for frame in runs.values() for split in ("train", "val"))
    ]
    if not present:
        return None
    fig = Figure(figsize=(3.4 * len(present) + 0.4, 3.0))
    for k, column in enumerate(present):
        ax = fig.add_subplot(1, len(present), k + 1)
        for i, (name, frame) in enumerate(runs.items()):
            colour = COLOURS[i % len(COLOURS)]
            for split, style in (("train", "-"), ("val", "o--")):
                key = f"{split}/{column}"
                if key in frame:
                    rows = frame.dropna(subset=[key])
                    ax.plot(rows[x], rows[key], style, color=colour, lw=1, ms=3,
                            label=f"{name} ({split})")  # fmt: skip
        ax.set(xlabel=x.replace("_", " "), ylabel=column.replace("_", " "))
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["confusion_figure", "learning_curves", "roc_pr_figure"]
