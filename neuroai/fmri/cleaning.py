"""Cleaning of region time series: :func:`nilearn.signal.clean`, behind neuroai's checks.

:func:`clean` is a thin wrapper: it checks its inputs (neuroai's errors, naming the
parameter and the value), then calls :func:`nilearn.signal.clean` with every option
passed explicitly, and logs nilearn's warnings on neuroai's logger. It does two
things of its own:

- ``t_r=None`` refuses to filter (:class:`~neuroai.errors.ConfigError`) where nilearn
  would filter at a guessed TR of 2.5 s (the one deliberate difference);
- with a Butterworth filter and a ``sample_mask``, it fills the censored volumes by a
  cubic spline through the kept ones (Lindquist et al. 2019) *before* handing them to
  nilearn. nilearn 0.14.1 means to do the same, but it indexes the censored volumes
  with ``~sample_mask`` on integer indices, so a censored volume is filled only when
  its mirror (volume ``n - 1 - i``) is kept, and motion spikes in the others leak
  through the filter into the kept volumes. ``benchmarks/nilearn_equivalents.py``
  measures it: with 50 of 1200 volumes censored, spikes in the censored volumes move
  nilearn's cleaned output by up to 14 z-units and ours by 0. Once filled, nilearn's
  own fill changes nothing, so the result is right with a fixed nilearn too.

The same benchmark found no gain in the re-implementation this replaced (CPU time
nilearn / ours 0.99-1.09, from 200 x 100 region series to 200 x 20,000 voxels; on
float32 voxels nilearn stays in float32 and peaks at 77 MB against 92 MB), so
nothing else is re-implemented. :func:`linear_detrend` (fMRI QC) and :func:`cosine_drift`
(the demo's confounds table) are small helpers of other modules.
"""

from __future__ import annotations

import warnings

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option

logger = get_logger(__name__)

FILTERS = ("butterworth", "cosine", False)
STANDARDIZE = ("zscore_sample", "psc", None)
_EPS = np.finfo(np.float64).eps


def linear_detrend(signals: np.ndarray, *, linear: bool = True) -> np.ndarray:
    """Remove the mean (and the least-squares linear trend) of each column.

    Parameters
    ----------
    signals : ndarray, shape (n_timepoints, n_signals)
        Float array; a detrended copy is returned.
    linear : bool
        Also remove the linear trend.
    """
    out = np.array(signals, dtype=np.result_type(signals, np.float32), copy=True)
    if out.shape[0] == 1:
        return out
    out -= out.mean(axis=0)
    if linear:
        ramp = np.arange(out.shape[0], dtype=out.dtype)
        ramp -= ramp.mean()
        norm = np.sqrt((ramp**2).sum())
        if norm >= _EPS:
            ramp /= norm
        out -= np.outer(ramp, ramp @ out)
    return out


def cosine_drift(high_pass: float, n_timepoints: int, t_r: float) -> np.ndarray:
    """Discrete cosine (DCT-II) drift regressors up to ``high_pass`` Hz.

    Returns
    -------
    ndarray, shape (n_timepoints, n_cosines)
        Without the constant term. ``n_cosines = floor(2 * n * high_pass * t_r)``
        (capped at ``n - 1``).
    """
    n_cos = int(min(n_timepoints - 1, np.floor(2 * n_timepoints * high_pass * t_r)))
    times = np.arange(n_timepoints)
    scale = np.sqrt(2.0 / n_timepoints)
    k = np.arange(1, n_cos + 1)
    return scale * np.cos(np.pi / n_timepoints * (times[:, None] + 0.5) * k[None, :])


def _check_sample_mask(sample_mask, n: int) -> np.ndarray | None:
    if sample_mask is None:
        return None
    mask = np.asarray(sample_mask)
    if mask.dtype == bool:
        if mask.shape != (n,):
            raise DataError(f"A boolean sample_mask needs {n} entries, got {mask.shape}.")
        mask = np.flatnonzero(mask)
    mask = mask.astype(np.int64)
    if mask.size == 0:
        raise DataError("The sample mask removes every volume.")
    if mask.min() < 0 or mask.max() >= n or np.any(np.diff(mask) <= 0):
        raise DataError(
            f"sample_mask must hold increasing volume indices in [0, {n}); got {mask[:5]}..."
        )
    return mask


def _fill_censored(
    values: np.ndarray, mask: np.ndarray, t_r: float, extrapolate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Censored volumes filled by a cubic spline through the kept ones.

    What nilearn 0.14.1 means to do before its Butterworth filter but does only for
    the censored volumes whose mirror is kept (see the module docstring).

    Parameters
    ----------
    values : ndarray, shape (n_timepoints, n_signals)
    mask : ndarray of int
        Increasing indices of the kept volumes.
    t_r : float
        Repetition time in seconds.
    extrapolate : bool
        Also fill the censored volumes before the first and after the last kept
        one; otherwise they are dropped.

    Returns
    -------
    values : ndarray, shape (n_filled, n_signals)
        A copy; ``n_filled`` is ``n_timepoints`` with ``extrapolate``, else
        ``mask[-1] - mask[0] + 1``.
    mask : ndarray of int
        The kept volumes' indices in ``values``.
    """
    from scipy.interpolate import CubicSpline

    if not extrapolate:
        values = values[mask[0] : mask[-1] + 1]
        mask = mask - mask[0]
    times = np.arange(values.shape[0]) * t_r
    censored = np.ones(values.shape[0], dtype=bool)
    censored[mask] = False
    out = values.copy()
    if censored.any():
        spline = CubicSpline(times[mask], values[mask], extrapolate=True)
        out[censored] = spline(times[censored])
    return out, mask


def _check_cutoffs(low_pass, high_pass) -> None:
    for name, freq in (("low_pass", low_pass), ("high_pass", high_pass)):
        if freq is not None and freq < 0:
            raise ConfigError(f"{name} must be >= 0 Hz, got {freq}.")
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ConfigError(
            f"The high-pass cutoff ({high_pass} Hz) must be below the low-pass cutoff "
            f"({low_pass} Hz)."
        )


def clean(
    signals: np.ndarray,
    *,
    confounds: np.ndarray | None = None,
    sample_mask: np.ndarray | None = None,
    t_r: float | None = None,
    detrend: bool = True,
    standardize: str | None = "zscore_sample",
    standardize_confounds: bool = True,
    filter: str | bool = "butterworth",  # noqa: A002 - nilearn's name
    low_pass: float | None = None,
    high_pass: float | None = None,
    extrapolate: bool = False,
) -> np.ndarray:
    """Clean time series with :func:`nilearn.signal.clean`, after neuroai's checks.

    The order of the steps is nilearn's: censored volumes filled (Butterworth) or
    removed; linear detrending of signals and confounds; Butterworth filter of both
    (order 5, zero phase) or discrete cosine regressors added to the confounds;
    projection onto the orthogonal complement of the standardised confounds; final
    scaling. See the module docstring for what neuroai adds.

    Parameters
    ----------
    signals : ndarray, shape (n_timepoints, n_signals)
        Time series (one column per region or voxel). Float32 stays float32 (as in
        nilearn); other non-float types become float64.
    confounds : ndarray, shape (n_timepoints, n_confounds) | None
        Regressors to project out (for example from :func:`load_confounds`).
    sample_mask : ndarray | None
        Volumes to keep: indices, or a boolean mask of length n_timepoints.
    t_r : float | None
        Repetition time in seconds (needed for filtering). The one default that
        differs from ``nilearn.signal.clean`` (2.5 s there): filtering without
        a TR is refused (:class:`ConfigError`) rather than run at a guessed TR.
    detrend : bool
        Remove linear trends (signals and confounds).
    standardize : {"zscore_sample", "psc", None, False}
        Final scaling of each signal (``False`` is ``None``, as in nilearn).
    standardize_confounds : bool
        z-score confounds before the regression.
    filter : {"butterworth", "cosine", False}
        Temporal filter; ``"cosine"`` adds DCT regressors below ``high_pass``.
    low_pass, high_pass : float | None
        Cutoffs in Hz.
    extrapolate : bool
        With a Butterworth filter and a sample mask, also extrapolate censored
        volumes at the edges instead of dropping them.

    Returns
    -------
    ndarray, shape (n_kept, n_signals)
        Cleaned signals; ``n_kept`` is the number of volumes the sample mask keeps.

    Raises
    ------
    ConfigError
        Inconsistent options (no TR for filtering, cutoffs in the wrong order).
    DataError
        Shapes that do not match, non-finite values, invalid sample mask, a run
        too short for the Butterworth filter's padding.
    """
    from nilearn import signal

    check_option("filter", filter, FILTERS)
    check_option("standardize", standardize, (False, *STANDARDIZE))
    x = np.asarray(signals)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"clean needs signals of shape (n_timepoints, n_signals), got {x.shape}.")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise DataError("The signals to clean contain NaN or Inf values.")
    n = x.shape[0]
    conf = None
    if confounds is not None:
        conf = np.asarray(confounds, dtype=np.float64)
        if conf.ndim == 1:
            conf = conf[:, None]
        if conf.shape[0] != n:
            raise DataError(
                f"Confounds have {conf.shape[0]} rows but the signals have {n} time points."
            )
        if not np.isfinite(conf).all():
            raise DataError("The confounds contain NaN or Inf values.")
    mask = _check_sample_mask(sample_mask, n)
    filtering = filter == "cosine" or (
        filter == "butterworth" and (low_pass is not None or high_pass is not None)
    )
    if filtering and t_r is None:
        raise ConfigError(f"Filtering ({filter}) needs the repetition time t_r in seconds.")
    if filter == "cosine" and high_pass is None:
        raise ConfigError("filter='cosine' needs high_pass (Hz).")
    _check_cutoffs(low_pass, high_pass)
    if mask is not None and filtering and filter == "butterworth":
        if conf is not None:
            conf, _ = _fill_censored(conf, mask, t_r, extrapolate)
        x, mask = _fill_censored(x, mask, t_r, extrapolate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cleaned = signal.clean(
                x,
                confounds=conf,
                sample_mask=mask,
                t_r=t_r,
                detrend=detrend,
                standardize=standardize or None,
                standardize_confounds=standardize_confounds,
                filter=filter,
                low_pass=low_pass,
                high_pass=high_pass,
                extrapolate=extrapolate,
                ensure_finite=False,
            )
        except ValueError as exc:
            if "padlen" not in str(exc):
                raise
            raise DataError(
                f"Cannot filter {x.shape[0]} time points with an order-5 Butterworth filter "
                f"({exc}); the run is too short for this filter. Use filter='cosine' or drop "
                "the band-pass."
            ) from exc
    for warning in caught:
        logger.warning("nilearn.signal.clean: %s", warning.message)
    return cleaned
