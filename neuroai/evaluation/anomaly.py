"""Anomaly scores of windows and recordings from a model trained on normal data only.

A vector-quantised autoencoder pretrained on normal recordings reconstructs normal
EEG well and uses its codes in a typical proportion; abnormal EEG should be
reconstructed worse, sit farther from the codes, and use codes that are rare in normal
data. Three scores per window (higher = more anomalous):

``reconstruction``
    mean squared error of the reconstructed patches (over channels and patches);
``quantization``
    mean squared distance of the encoded patches to their nearest codes;
``code_rarity``
    mean negative log frequency of the window's codes among the normal training
    windows' codes (smoothed): ``-mean log p_normal(code)``.

Recording scores average the windows' scores. :func:`anomaly_metrics` reports how
well each score separates abnormal from normal recordings (AUROC, AUPRC with
intervals from resampling recordings, see :mod:`neuroai.evaluation.windows`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroai.errors import DataError
from neuroai.evaluation.codebook import CodebookRun, code_counts, log_frequencies
from neuroai.evaluation.windows import aggregate_recordings, cluster_bootstrap, weighted_metric

SCORES = ("reconstruction", "quantization", "code_rarity")


def normal_code_model(reference: CodebookRun, smoothing: float = 1.0) -> np.ndarray:
    """Log frequencies ``(codebook_size,)`` of the codes of normal reference windows."""
    return log_frequencies(code_counts(reference.codes, reference.codebook_size), smoothing)


def anomaly_scores(run: CodebookRun, log_frequency: np.ndarray) -> dict[str, np.ndarray]:
    """The three window scores (see the module docstring): name -> ``(n_windows,)``."""
    if log_frequency.shape != (run.codebook_size,):
        raise DataError(
            f"anomaly_scores: {log_frequency.shape[0]} code frequencies for a codebook of "
            f"{run.codebook_size}."
        )
    return {
        "reconstruction": run.reconstruction_error.mean(axis=1).astype(float),
        "quantization": run.quantization_error.mean(axis=1).astype(float),
        "code_rarity": -log_frequency[run.codes].mean(axis=(1, 2)),
    }


def anomaly_metrics(
    scores: dict[str, np.ndarray],
    abnormal: Sequence[int],
    recordings: Sequence[str],
    *,
    metrics: Sequence[str] = ("auroc", "auprc"),
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """How well each score separates abnormal (1) from normal (0) windows and recordings.

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
    for name, values in scores.items():
        ids, y_rec, s_rec = aggregate_recordings(recordings, y, values, how="mean")
        out[name] = {"window": {}, "recording": {}}
        for metric_name in metrics:
            metric = weighted_metric(metric_name)
            out[name]["window"][metric_name] = cluster_bootstrap(
                y, values, recordings, metric, **common
            )
            out[name]["recording"][metric_name] = cluster_bootstrap(
                y_rec, s_rec, ids, metric, **common
            )
    return out
