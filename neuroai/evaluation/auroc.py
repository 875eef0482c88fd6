"""The area under the ROC curve, in its fast rank (Mann-Whitney) form.

``AUROC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``
with average ranks for tied scores, so a tie between a positive and a negative
counts one half: the same number as :func:`sklearn.metrics.roc_auc_score`
(trapezoids under the ROC curve), in one sort instead of a curve, which matters
inside bootstrap loops. The one AUROC of neuroai: every metric table calls it
(:mod:`~neuroai.evaluation.windows` keeps a weighted form vectorised over
bootstrap resamples, tested equal to it).
"""

from __future__ import annotations

import numpy as np

from neuroai.errors import DataError


def _binary(positive: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError(
            f"AUROC is undefined with one class only ({n_pos} positive and {n_neg} negative cases)."
        )
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(y_true, y_score) -> float:
    """Area under the ROC curve; equals ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : array-like, shape (n_cases,)
        Class labels. Binary: the larger of the two labels is the positive class
        (as scikit-learn's default). Multi-class: integers ``0 .. K-1``.
    y_score : array-like, shape (n_cases,) or (n_cases, K)
        Scores of the positive class, or one column per class; with two columns
        the second is the positive class's; with K > 2 columns the result is the
        one-vs-rest macro average (``multi_class="ovr"``).

    Returns
    -------
    float

    Raises
    ------
    DataError
        One class only (also a ``ValueError``, as scikit-learn raises), or scores
        whose length does not match the labels.
    """
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if s.shape[0] != y.shape[0]:
        raise DataError(f"{y.shape[0]} labels but {s.shape[0]} scores.")
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim == 1:
        classes = np.unique(y)
        if classes.size > 2:
            raise DataError(
                f"Binary AUROC needs two classes, got {classes.size}; give one score column per "
                "class for the one-vs-rest AUROC."
            )
        return _binary(y == classes[-1], s)
    labels = y.astype(int)
    return float(np.mean([_binary(labels == k, s[:, k]) for k in range(s.shape[1])]))
