"""Static functional connectivity of region time series: nilearn's ``ConnectivityMeasure``.

:func:`connectivity` (one run), :class:`GroupConnectivity` and
:func:`tangent_connectivity` call :class:`nilearn.connectome.ConnectivityMeasure`
(its default Ledoit-Wolf shrinkage; ``"correlation"`` z-scores each region, ddof=1,
before estimating the covariance) behind neuroai's checks and errors, and make the
matrices exactly symmetric. ``benchmarks/nilearn_equivalents.py`` found no gain in the
re-implementation they replace (CPU time nilearn / ours, 50 runs of 200 x 100 and of
1200 x 400: 0.69-1.08 per run, 0.46-0.57 for the group kinds, 0.81-1.13 for the
tangent space).

``"tangent"`` is a group measure (Varoquaux et al. 2010): each run's covariance
is whitened by the group's geometric (Riemannian) mean covariance ``G`` and
mapped to the tangent space, ``logm(G^-1/2 C G^-1/2)``; :class:`GroupConnectivity`
fits ``G`` on a group (nilearn's fit) and transforms any number of runs against it,
one included (nilearn's ``transform`` refuses a single run).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option

logger = get_logger(__name__)

KINDS = ("correlation", "partial correlation", "covariance", "precision")
#: Kinds of :class:`GroupConnectivity`: the per-run kinds and the tangent space.
GROUP_KINDS = (*KINDS, "tangent")


def _check_timeseries(ts) -> np.ndarray:
    """``ts`` as float64, or a :class:`DataError` saying what is wrong with it."""
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 2:
        raise DataError(
            f"Connectivity needs time series of shape (n_timepoints, n_regions); got shape {ts.shape}."
        )
    if ts.shape[0] < 3:
        raise DataError(f"Connectivity needs at least 3 time points; got {ts.shape[0]}.")
    if not np.isfinite(ts).all():
        raise DataError("Connectivity input contains NaN or Inf values.")
    return ts


def _per_run(runs: list[np.ndarray], kind: str) -> np.ndarray:
    """nilearn's ``ConnectivityMeasure(kind)`` of each run, exactly symmetric.

    Returns
    -------
    ndarray, shape (n_runs, n_regions, n_regions)
    """
    from nilearn.connectome import ConnectivityMeasure

    matrices = ConnectivityMeasure(kind=kind).fit_transform(runs)
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


def connectivity(
    ts: np.ndarray,
    kind: str = "correlation",
    *,
    fisher_z: bool = False,
) -> np.ndarray:
    """Static functional connectivity of one run (nilearn's ``ConnectivityMeasure``).

    Parameters
    ----------
    ts : ndarray, shape (n_timepoints, n_regions)
        Region time series (any units).
    kind : {"correlation", "partial correlation", "covariance", "precision"}
        The connectivity measure: ``ConnectivityMeasure(kind=kind)`` of nilearn,
        with its default Ledoit-Wolf shrinkage.
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
    ts = _check_timeseries(ts)
    if fisher_z and kind not in ("correlation", "partial correlation"):
        raise ConfigError(
            f'fisher_z applies to correlations, not to kind={kind!r}: use kind="correlation" '
            'or "partial correlation", or fisher_z=False.'
        )
    matrix = _per_run([ts], kind)[0]
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

    nilearn's (``nilearn.connectome.connectivity_matrices._geometric_mean``, what
    ``ConnectivityMeasure(kind="tangent")`` fits, with its ``max_iter`` and ``tol``):
    gradient descent on the manifold from the arithmetic mean, halving the step when
    the gradient norm grows, until the Frobenius norm of the mean log-map over the
    number of entries is below ``tol``.

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

    Raises
    ------
    DataError
        When a matrix is not symmetric positive definite.
    """
    from nilearn.connectome.connectivity_matrices import _geometric_mean

    covariances = np.asarray(covariances, dtype=np.float64)
    eigen = np.linalg.eigvalsh(covariances)
    if not np.allclose(covariances, np.swapaxes(covariances, -1, -2)) or (eigen <= 0).any():
        raise DataError(
            "The tangent space needs symmetric positive definite covariances; "
            f"{int((eigen.min(axis=-1) <= 0).sum())} runs have a singular covariance."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mean = _geometric_mean(list(covariances), max_iter=max_iter, tol=tol)
    for warning in caught:
        logger.warning("nilearn's geometric mean: %s", warning.message)
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
        its default (``"covariance"``): ``fit`` and ``fit_transform`` are
        ``ConnectivityMeasure``'s.

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
        return [_check_timeseries(r) for r in runs]

    def _keep_state(self, measure) -> None:
        """The learned state of a fitted ``ConnectivityMeasure``, under our names."""
        self.mean_ = measure.mean_
        self.whitening_ = measure.whitening_
        self.n_features_in_ = measure.n_features_in_

    def fit(self, runs, y=None) -> GroupConnectivity:
        """Estimate the group reference from runs of shape (n_timepoints, n_regions).

        ``y`` is ignored (scikit-learn's signature).
        """
        from nilearn.connectome import ConnectivityMeasure

        check_option("kind", self.kind, GROUP_KINDS)
        self._keep_state(ConnectivityMeasure(kind=self.kind).fit(self._stack(runs)))
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
        if self.kind != "tangent":
            return _per_run(runs, self.kind)
        # nilearn's tangent transform, written out: it refuses a single run.
        covariances = _per_run(runs, "covariance")
        return _spd_map(np.log, self.whitening_ @ covariances @ self.whitening_)

    def fit_transform(self, runs, y=None) -> np.ndarray:
        """Fit the reference on ``runs`` and transform them (each run's matrix computed once).

        Raises
        ------
        DataError
            For the tangent kind with a single run: its tangent vector would be
            0 by construction (deviations from the group mean need a group).
        """
        from nilearn.connectome import ConnectivityMeasure

        check_option("kind", self.kind, GROUP_KINDS)
        runs = self._stack(runs)
        if self.kind == "tangent" and len(runs) < 2:
            raise DataError(
                "The tangent space needs a group of at least 2 runs: it measures each run's "
                "deviation from the group's mean covariance."
            )
        measure = ConnectivityMeasure(kind=self.kind)
        matrices = measure.fit_transform(runs)
        self._keep_state(measure)
        return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


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
