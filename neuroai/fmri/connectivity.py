"""Static functional connectivity of region time series.

The estimators follow nilearn's :class:`~nilearn.connectome.ConnectivityMeasure`
with its default covariance estimator (Ledoit-Wolf shrinkage), so results are
numerically equal to it: ``"correlation"`` z-scores each region (ddof=1) before
estimating the covariance; the other kinds estimate it on the raw signal.

``"tangent"`` is a group measure (Varoquaux et al. 2010): each run's covariance
is whitened by the group's geometric (Riemannian) mean covariance ``G`` and
mapped to the tangent space, ``logm(G^-1/2 C G^-1/2)``; :class:`GroupConnectivity`
fits ``G`` on a group and transforms any run against it.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroai.errors import DataError, check_option

KINDS = ("correlation", "partial correlation", "covariance", "precision")
#: Kinds of :class:`GroupConnectivity`: the per-run kinds and the tangent space.
GROUP_KINDS = (*KINDS, "tangent")


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


def _spd_map(function, matrices: np.ndarray) -> np.ndarray:
    """Apply ``function`` to the eigenvalues of symmetric matrices (batched)."""
    values, vectors = np.linalg.eigh(matrices)
    return (vectors * function(values)[..., None, :]) @ np.swapaxes(vectors, -1, -2)


def geometric_mean(covariances: np.ndarray, *, max_iter: int = 30, tol: float = 1e-7) -> np.ndarray:
    """Riemannian (geometric) mean of symmetric positive definite matrices.

    Gradient descent on the manifold from the arithmetic mean, halving the step
    when the gradient norm grows, as nilearn does (same stopping rule: the
    Frobenius norm of the mean log-map over the number of entries below ``tol``).

    Parameters
    ----------
    covariances : ndarray, shape (n_runs, n_regions, n_regions)
        SPD matrices.
    max_iter : int
        Maximum number of gradient steps.
    tol : float
        Stopping tolerance.

    Returns
    -------
    ndarray, shape (n_regions, n_regions)
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    eigen = np.linalg.eigvalsh(covariances)
    if not np.allclose(covariances, np.swapaxes(covariances, -1, -2)) or (eigen <= 0).any():
        raise DataError(
            "The tangent space needs symmetric positive definite covariances; "
            f"{int((eigen.min(axis=-1) <= 0).sum())} runs have a singular covariance."
        )
    mean = covariances.mean(axis=0)
    best = np.inf
    step = 1.0
    norm = np.inf
    for _ in range(max_iter):
        values, vectors = np.linalg.eigh(mean)
        inv_sqrt = (vectors / np.sqrt(values)) @ vectors.T
        sqrt = (vectors * np.sqrt(values)) @ vectors.T
        logs = _spd_map(np.log, inv_sqrt @ covariances @ inv_sqrt).mean(axis=0)
        if np.isnan(logs).any():
            raise DataError("The geometric mean diverged (NaN after the matrix logarithm).")
        norm = np.linalg.norm(logs)
        mean = sqrt @ _spd_map(np.exp, logs * step) @ sqrt
        if norm < best:
            best = norm
        elif norm > best:
            step /= 2.0
            norm = best
        if norm / mean.size < tol:
            break
    else:
        from neuroai._logging import get_logger

        get_logger(__name__).warning(
            "The geometric mean did not reach tolerance %g in %d iterations.", tol, max_iter
        )
    return mean


class GroupConnectivity(TransformerMixin, BaseEstimator):
    """Connectivity of a group of runs, including the tangent space.

    A scikit-learn transformer (``clone``, ``Pipeline``, ``get_params``), shaped
    and defaulted like nilearn's ``ConnectivityMeasure``: the input is a list of
    runs, each (n_timepoints, n_regions), or a 3D array of them.

    Parameters
    ----------
    kind : {"covariance", "correlation", "partial correlation", "precision", "tangent"}
        The measure; equals nilearn's ``ConnectivityMeasure(kind=kind)`` and has
        its default (``"covariance"``).

    Attributes
    ----------
    mean_ : ndarray, shape (n_regions, n_regions)
        Geometric mean covariance (tangent) or arithmetic mean connectivity.
    whitening_ : ndarray, shape (n_regions, n_regions) | None
        ``mean_ ** -1/2`` (tangent only).
    n_features_in_ : int
        Number of regions seen by :meth:`fit`.
    """

    def __init__(self, kind: str = "covariance") -> None:
        self.kind = kind

    @staticmethod
    def _stack(runs) -> list[np.ndarray]:
        runs = [np.asarray(r, dtype=np.float64) for r in runs]
        if not runs:
            raise DataError("GroupConnectivity needs at least one run.")
        sizes = {r.shape[1] if r.ndim == 2 else None for r in runs}
        if None in sizes or len(sizes) != 1:
            raise DataError(
                "Every run must be (n_timepoints, n_regions) with the same regions; got shapes "
                f"{sorted({r.shape for r in runs})}."
            )
        return runs

    def _matrices(self, runs) -> np.ndarray:
        if self.kind == "tangent":
            for r in runs:
                if r.shape[0] < 3 or not np.isfinite(r).all():
                    connectivity(r, "covariance")  # raises the right error
            return np.stack([_ledoit_wolf(r) for r in runs])
        return np.stack([connectivity(r, self.kind) for r in runs])

    def fit(self, runs, y=None) -> GroupConnectivity:
        """Estimate the group reference from runs of shape (n_timepoints, n_regions).

        ``y`` is ignored (scikit-learn's signature).
        """
        check_option("kind", self.kind, GROUP_KINDS)
        runs = self._stack(runs)
        matrices = self._matrices(runs)
        if self.kind == "tangent":
            self.mean_ = geometric_mean(matrices, max_iter=30, tol=1e-7)
            self.whitening_ = _spd_map(lambda v: 1.0 / np.sqrt(v), self.mean_)
        else:
            mean = matrices.mean(axis=0)
            self.mean_ = 0.5 * (mean + mean.T)
            self.whitening_ = None
        self.n_features_in_ = runs[0].shape[1]
        return self

    def transform(self, runs) -> np.ndarray:
        """Connectivity of each run, shape (n_runs, n_regions, n_regions)."""
        check_is_fitted(self, "mean_")
        runs = self._stack(runs)
        if runs[0].shape[1] != self.mean_.shape[0]:
            raise DataError(
                f"The runs have {runs[0].shape[1]} regions but the group reference has "
                f"{self.mean_.shape[0]}."
            )
        matrices = self._matrices(runs)
        if self.kind != "tangent":
            return matrices
        return _spd_map(np.log, self.whitening_ @ matrices @ self.whitening_)

    def fit_transform(self, runs, y=None) -> np.ndarray:
        """Fit the reference on ``runs`` and transform them.

        Raises
        ------
        DataError
            For the tangent kind with a single run: its tangent vector would be
            0 by construction (deviations from the group mean need a group).
        """
        check_option("kind", self.kind, GROUP_KINDS)
        runs = self._stack(runs)
        if self.kind == "tangent" and len(runs) < 2:
            raise DataError(
                "The tangent space needs a group of at least 2 runs: it measures each run's "
                "deviation from the group's mean covariance."
            )
        return self.fit(runs).transform(runs)


def tangent_connectivity(runs, *, reference: np.ndarray | None = None) -> np.ndarray:
    """Tangent-space connectivity of a group of runs.

    Parameters
    ----------
    runs : sequence of ndarray, each (n_timepoints, n_regions)
        The runs (of a group, or of new subjects when ``reference`` is given).
    reference : ndarray, shape (n_regions, n_regions) | None
        The group's geometric mean covariance (``GroupConnectivity.mean_``);
        estimated from ``runs`` when ``None``.

    Returns
    -------
    ndarray, shape (n_runs, n_regions, n_regions)
    """
    measure = GroupConnectivity("tangent")
    if reference is None:
        return measure.fit_transform(runs)
    reference = np.asarray(reference, dtype=np.float64)
    measure.mean_ = reference
    measure.whitening_ = _spd_map(lambda v: 1.0 / np.sqrt(v), reference)
    return measure.transform(runs)
