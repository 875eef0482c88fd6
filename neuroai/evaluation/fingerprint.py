"""Subject fingerprinting: identify a subject from one segment of a scan among all subjects.

Finn ES, Shen X, Scheinost D et al. (2015). "Functional connectome fingerprinting:
identifying individuals using patterns of brain connectivity", Nature Neuroscience 18,
1664-1671: every subject has a *database* profile (session 1) and a *target* profile
(session 2); a target is identified as the database subject whose profile correlates
best with it (Pearson correlation of the profiles: there, the upper triangles of the
static FC matrices). The identification accuracy is the share of targets identified
correctly, computed in both directions (each session as the database) and averaged;
chance is ``1 / n_subjects``. The differential identifiability of Amico & Goni (2018,
Scientific Reports 8, 8254) adds how far self-similarity stands above the similarity to
others: ``100 * (mean self-correlation - mean correlation to other subjects)``.

With one run per subject, the two "sessions" are the two halves of each run
(:func:`scan_halves`): windows that lie entirely in the first half of the run's time
points and windows that lie entirely in the second, so no time point is shared and a
gap of about one window separates them. Any profile can be used: static FC upper
triangles (Finn's baseline) or learnt subject embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroai.errors import DataError


def scan_halves(n_windows: int, window: int, step: int) -> dict[str, dict[str, tuple[int, int]]]:
    """Two non-overlapping segments of a run: its first and second half in time.

    Parameters
    ----------
    n_windows : int
        Windows of the run's dynamic FC (starts ``0, step, 2 * step, ...``).
    window, step : int
        Window length and step in TRs.

    Returns
    -------
    dict
        ``{"first": {"timepoints": (t0, t1), "windows": (w0, w1)}, "second": {...}}``:
        the TR range ``[t0, t1)`` of each half of the ``(n_windows - 1) * step + window``
        time points the windows cover, and the range ``[w0, w1)`` of the windows lying
        entirely inside it.

    Raises
    ------
    DataError
        When a half holds no whole window (the run is shorter than two windows).
    """
    n_timepoints = (n_windows - 1) * step + window
    middle = n_timepoints / 2
    first_t = (0, int(np.floor(middle)))
    second_t = (int(np.ceil(middle)), n_timepoints)
    starts = np.arange(n_windows) * step
    first_w = np.nonzero(starts + window <= first_t[1])[0]
    second_w = np.nonzero(starts >= second_t[0])[0]
    if first_w.size == 0 or second_w.size == 0:
        raise DataError(
            f"A run of {n_windows} windows ({n_timepoints} TRs, window {window}, step {step}) "
            "is too short to split into two halves of whole windows: fingerprinting needs "
            f"runs of at least {2 * window} TRs."
        )
    return {
        "first": {"timepoints": first_t, "windows": (int(first_w[0]), int(first_w[-1]) + 1)},
        "second": {"timepoints": second_t, "windows": (int(second_w[0]), int(second_w[-1]) + 1)},
    }


def upper_triangle(matrices: np.ndarray) -> np.ndarray:
    """Upper triangles (no diagonal) of ``(..., n, n)`` matrices, shape ``(..., n(n-1)/2)``."""
    matrices = np.asarray(matrices)
    rows, cols = np.triu_indices(matrices.shape[-1], k=1)
    return matrices[..., rows, cols]


def profile_similarity(database: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Pearson correlation of every target profile with every database profile.

    Parameters
    ----------
    database, targets : ndarray, shape (n_subjects, n_features)
        One profile per subject, subjects in the same order.

    Returns
    -------
    ndarray, shape (n_subjects, n_subjects)
        ``[t, d]`` is the correlation of target ``t`` with database subject ``d``.
    """
    database = np.asarray(database, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if database.ndim != 2 or database.shape != targets.shape:
        raise DataError(
            f"Fingerprinting needs database and target profiles of the same shape (subjects x "
            f"features); got {database.shape} and {targets.shape}."
        )

    def z(a: np.ndarray) -> np.ndarray:
        centred = a - a.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1, keepdims=True)
        return centred / np.where(norm > 0, norm, 1.0)

    return z(targets) @ z(database).T


def identification(
    first: np.ndarray,
    second: np.ndarray,
    *,
    subjects: Sequence[str] | None = None,
    center: bool = False,
) -> dict:
    """Finn et al.'s identification accuracy in both directions, and identifiability.

    Parameters
    ----------
    first, second : ndarray, shape (n_subjects, n_features)
        Profiles of the first and the second segment, row ``i`` of both the same subject.
    subjects : sequence of str | None
        Subject labels (recorded with the predictions).
    center : bool
        Subtract the mean profile over all segments of all subjects from every profile
        first (no identity information is used; it removes the component every profile
        shares, which dominates the correlations of embeddings).

    Returns
    -------
    dict
        ``accuracy`` (mean of both directions), ``accuracy_first_to_second`` (database:
        first halves), ``accuracy_second_to_first``, ``chance``, ``n_subjects``,
        ``differential_identifiability`` (Amico & Goni, in percent, from the
        first-to-second similarity matrix), ``mean_rank`` (mean rank of the true subject
        among the database, 1 is best), ``predicted`` (per direction, the database
        subject chosen for each target) and ``similarity`` (targets = second halves x
        database = first halves, as a nested list).
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    n = first.shape[0]
    if n < 2:
        raise DataError(f"Fingerprinting needs at least two subjects, got {n}.")
    if center:
        mean = np.concatenate([first, second]).mean(axis=0, keepdims=True)
        first, second = first - mean, second - mean
    labels = list(subjects) if subjects is not None else [str(i) for i in range(n)]
    if len(labels) != n:
        raise DataError(f"{len(labels)} subject labels for {n} profiles.")
    forward = profile_similarity(first, second)  # targets: second halves
    backward = forward.T  # targets: first halves, database: second halves
    truth = np.arange(n)
    hits_forward = forward.argmax(axis=1) == truth
    hits_backward = backward.argmax(axis=1) == truth
    ranks = 1 + (forward > np.diag(forward)[:, None]).sum(axis=1)
    off = ~np.eye(n, dtype=bool)
    return {
        "accuracy": float((hits_forward.mean() + hits_backward.mean()) / 2),
        "accuracy_first_to_second": float(hits_forward.mean()),
        "accuracy_second_to_first": float(hits_backward.mean()),
        "chance": 1.0 / n,
        "n_subjects": n,
        "differential_identifiability": float(
            100 * (np.diag(forward).mean() - forward[off].mean())
        ),
        "mean_rank": float(ranks.mean()),
        "predicted": {
            "first_to_second": [labels[i] for i in forward.argmax(axis=1)],
            "second_to_first": [labels[i] for i in backward.argmax(axis=1)],
        },
        "subjects": labels,
        "similarity": forward.tolist(),
    }
