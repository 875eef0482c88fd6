"""Static functional connectivity of region time series.

The estimators follow nilearn's :class:`~nilearn.connectome.ConnectivityMeasure`
with its default covariance estimator (Ledoit-Wolf shrinkage), so results are
numerically equal to it: ``"correlation"`` z-scores each region (ddof=1) before
estimating the covariance; the other kinds estimate it on the raw signal.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from neuroai.errors import DataError, check_option

KINDS = ("correlation", "partial correlation", "covariance", "precision")


def _zscore_sample(ts: np.ndarray) -> np.ndarray:
    centred = ts - ts.mean(axis=0)
    std = centred.std(axis=0, ddof=1)
    std[std < np.finfo(np.float64).eps] = 1.0
    return centred / std


def cov_to_corr(covariance: np.ndarray) -> np.ndarray:
    """Correlation matrix of a covariance matrix, with a unit diagonal."""
    scale = 1.0 / np.sqrt(np.diag(covariance))
    correlation = covariance * scale[:, None] * scale[None, :]
    np.fill_diagonal(correlation, 1.0)
    return correlation


def prec_to_partial(precision: np.ndarray) -> np.ndarray:
    """Partial correlation matrix of a precision matrix, with a unit diagonal."""
    partial = -cov_to_corr(precision)
    np.fill_diagonal(partial, 1.0)
    return partial


def _ledoit_wolf(ts: np.ndarray) -> np.ndarray:
    from sklearn.covariance import ledoit_wolf

    covariance, _ = ledoit_wolf(ts, assume_centered=False)
    return covariance


def connectivity(
    ts: np.ndarray,
    kind: str = "correlation",
    *,
    fisher_z: bool = False,
) -> np.ndarray:
    """Static functional connectivity of one run.

    Parameters
    ----------
    ts : ndarray, shape (n_timepoints, n_regions)
        Region time series (any units).
    kind : {"correlation", "partial correlation", "covariance", "precision"}
        The connectivity measure, estimated with Ledoit-Wolf shrinkage as
        nilearn's ``ConnectivityMeasure`` does by default.
    fisher_z : bool
        Apply the Fisher z-transform (``arctanh``) to a correlation or partial
        correlation; the diagonal is set to 0 (its transform is infinite).

    Returns
    -------
    ndarray, shape (n_regions, n_regions)
        Symmetric connectivity matrix (float64).

    Raises
    ------
    DataError
        When ``ts`` is not 2-D, has fewer than 3 time points, or holds NaN/Inf.
    """
    check_option("kind", kind, KINDS)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 2:
        raise DataError(
            f"Connectivity needs time series of shape (n_timepoints, n_regions); got shape {ts.shape}."
        )
    if ts.shape[0] < 3:
        raise DataError(f"Connectivity needs at least 3 time points; got {ts.shape[0]}.")
    if not np.isfinite(ts).all():
        raise DataError("Connectivity input contains NaN or Inf values.")
    if fisher_z and kind not in ("correlation", "partial correlation"):
        raise DataError(f"fisher_z applies to correlations, not to kind={kind!r}.")
    if kind == "correlation":
        matrix = cov_to_corr(_ledoit_wolf(_zscore_sample(ts)))
    else:
        covariance = _ledoit_wolf(ts)
        if kind == "covariance":
            matrix = covariance
        else:
            precision = linalg.inv(covariance)
            matrix = precision if kind == "precision" else prec_to_partial(precision)
    matrix = 0.5 * (matrix + matrix.T)
    if fisher_z:
        matrix = np.arctanh(np.clip(matrix, -1 + 1e-12, 1 - 1e-12))
        np.fill_diagonal(matrix, 0.0)
    return matrix


def zero_variance_regions(ts: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """Indices of regions whose signal is constant (std below ``tol``)."""
    return np.flatnonzero(np.asarray(ts).std(axis=0) < tol)
