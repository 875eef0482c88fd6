"""Anomaly scores of windows and recordings from a model trained on normal data only.

A vector-quantised autoencoder pretrained on normal recordings reconstructs normal
EEG well and uses its codes in a typical proportion; abnormal EEG should be
reconstructed worse, sit farther from the codes, and use codes that are rare in normal
data. Three scores per window (higher = more anomalous):

``reconstruction``
    mean squared error of the reconstructed patches (over channels and patches);
``reconstruction_z``
    each channel's reconstruction error standardised by the mean and SD of that
    channel's error over the normal reference windows, averaged over channels (an
    error is unusual relative to what the model does on normal EEG at that channel);
``quantization``
    mean squared distance of the encoded patches to their nearest codes;
``code_rarity``
    mean negative log frequency of the window's codes among the normal training
    windows' codes (smoothed): ``-mean log p_normal(code)``.

Recording scores average the windows' scores. :func:`anomaly_metrics` reports how
well each score separates abnormal from normal recordings (AUROC, AUPRC with
intervals from resampling subjects, see :mod:`neuroai.evaluation.windows`). The reference statistics come from
the normal training windows the model was pretrained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroai.errors import DataError
from neuroai.evaluation.codebook import CodebookRun, code_counts, log_frequencies
from neuroai.evaluation.windows import (
    aggregate_recordings,
    cluster_bootstrap,
    recording_subjects,
    weighted_metric,
)

SCORES = ("reconstruction", "reconstruction_z", "quantization", "code_rarity")


@dataclass
class NormalReference:
    """What the model does on normal EEG.

    Attributes
    ----------
    log_frequency : ndarray, shape (codebook_size,)
        Smoothed log frequencies of the codes.
    error_mean, error_std : ndarray, shape (n_chans,)
        Mean and SD of each channel's reconstruction error.
    """

    log_frequency: np.ndarray
    error_mean: np.ndarray
    error_std: np.ndarray


def normal_reference(reference: CodebookRun, smoothing: float = 1.0) -> NormalReference:
    """Code frequencies and per-channel error statistics of normal reference windows."""
    counts = code_counts(reference.codes, reference.codebook_size)
    errors = reference.reconstruction_error.astype(float)
    return NormalReference(
        log_frequencies(counts, smoothing), errors.mean(axis=0), errors.std(axis=0) + 1e-12
    )


def anomaly_scores(run: CodebookRun, reference: NormalReference) -> dict[str, np.ndarray]:
    """The window scores (see the module docstring): name -> ``(n_windows,)``."""
    if reference.log_frequency.shape != (run.codebook_size,):
        raise DataError(
            f"anomaly_scores: {reference.log_frequency.shape[0]} code frequencies for a "
            f"codebook of {run.codebook_size}."
        )
    if reference.error_mean.shape != run.reconstruction_error.shape[1:]:
        raise DataError(
            f"anomaly_scores: reference of {reference.error_mean.shape[0]} channels for windows "
            f"of {run.reconstruction_error.shape[1]}."
        )
    errors = run.reconstruction_error.astype(float)
    return {
        "reconstruction": errors.mean(axis=1),
        "reconstruction_z": ((errors - reference.error_mean) / reference.error_std).mean(axis=1),
        "quantization": run.quantization_error.mean(axis=1).astype(float),
        "code_rarity": -reference.log_frequency[run.codes].mean(axis=(1, 2)),
    }


def anomaly_metrics(
    scores: dict[str, np.ndarray],
    abnormal: Sequence[int],
    recordings: Sequence[str],
    *,
    subjects: Sequence[str] | None = None,
    metrics: Sequence[str] = ("auroc", "auprc"),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """How well each score separates abnormal (1) from normal (0) windows and recordings.

    ``subjects`` (of each window) are the bootstrap's resampling unit; without them,
    recordings are.

    Returns
    -------
    dict
        score -> level (``window``, ``recording``) -> metric -> bootstrap summary.
    """
    y = np.asarray(abnormal, dtype=int)
    if y.min() == y.max():
        raise DataError("anomaly_metrics needs both normal and abnormal windows.")
    out: dict[str, dict] = {}
    common = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    window_groups = list(recordings) if subjects is None else list(subjects)
    for name, values in scores.items():
        ids, y_rec, s_rec = aggregate_recordings(recordings, y, values, how="mean")
        recording_groups = recording_subjects(recordings, subjects, ids)
        out[name] = {"window": {}, "recording": {}}
        for metric_name in metrics:
            metric = weighted_metric(metric_name)
            out[name]["window"][metric_name] = cluster_bootstrap(
                y, values, window_groups, metric, **common
            )
            out[name]["recording"][metric_name] = cluster_bootstrap(
                y_rec, s_rec, recording_groups, metric, **common
            )
    return out
