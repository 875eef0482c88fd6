"""Cleaning of region time series: detrending, filtering, confound removal, scaling.

:func:`clean` follows the order and the numerics of :func:`nilearn.signal.clean`
(tested equal to it), so results can be compared with nilearn-based pipelines:

1. censored volumes (``sample_mask``): with a Butterworth filter they are first
   filled by a cubic spline through the kept volumes (Lindquist et al. 2019,
   second recommendation) and removed after filtering; otherwise they are
   removed first;
2. linear detrending of the signals and of the confounds;
3. Butterworth band-pass (order 5, zero phase) of signals *and* confounds, so
   that the regression stays orthogonal to the filter; or discrete cosine
   regressors added to the confounds with ``filter="cosine"``;
4. projection onto the orthogonal complement of the (standardised) confounds,
   using a pivoted QR decomposition that drops collinear regressors;
5. standardisation (``"zscore_sample"``: z-score with ddof=1; ``"psc"``:
   percent signal change).

Cleaning is linear in the signals except for the last step, so cleaning region
means equals averaging cleaned voxels up to the scaling (this is what nilearn's
``NiftiLabelsMasker`` does: extract, then clean).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

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


def scale_signals(signals: np.ndarray, kind: str | None = "zscore_sample") -> np.ndarray:
    """Scale each column: z-score (ddof=1) or percent signal change.

    Constant columns keep a unit scale (z-score) or become 0 (psc, logged).
    """
    check_option("standardize", kind, STANDARDIZE)
    out = np.array(signals, copy=True)
    if kind is None or out.shape[0] == 1:
        return out
    if kind == "zscore_sample":
        out = out - out.mean(axis=0)
        std = out.std(axis=0, ddof=1)
        std[std < _EPS] = 1.0
        return out / std
    mean = out.mean(axis=0)
    flat = np.abs(mean) < _EPS
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (out - mean) / np.abs(mean) * 100
    if flat.any():
        logger.warning(
            "Percent signal change is undefined for %d signals with zero mean; set to 0.",
            int(flat.sum()),
        )
        out[:, flat] = 0
    return out


def _critical(freq: float, nyquist: float, which: str) -> float:
    eps = np.finfo(np.float32).eps
    if freq >= nyquist:
        lowered = nyquist - nyquist * 10 * eps
        logger.warning(
            "The %s-pass cutoff %.4g Hz is at or above the Nyquist frequency %.4g Hz; "
            "lowered to %.6g Hz.",
            which,
            freq,
            nyquist,
            lowered,
        )
        return lowered
    if freq < 0:
        raise ConfigError(f"The {which}-pass cutoff must be >= 0 Hz, got {freq}.")
    return freq


def butterworth(
    signals: np.ndarray,
    sampling_rate: float,
    *,
    low_pass: float | None = None,
    high_pass: float | None = None,
    order: int = 5,
) -> np.ndarray:
    """Zero-phase Butterworth filter (second-order sections) along time.

    Parameters
    ----------
    signals : ndarray, shape (n_timepoints, n_signals)
        The signals; a filtered copy is returned.
    sampling_rate : float
        In Hz (1 / TR).
    low_pass, high_pass : float | None
        Cutoffs in Hz; both give a band-pass.
    order : int
        Filter order.

    Raises
    ------
    DataError
        When the run is too short for the filter's padding.
    """
    from scipy import signal as sp_signal

    if low_pass is None and high_pass is None:
        return np.array(signals, copy=True)
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ConfigError(
            f"The high-pass cutoff ({high_pass} Hz) must be below the low-pass cutoff "
            f"({low_pass} Hz)."
        )
    nyquist = sampling_rate / 2
    freqs = []
    if high_pass is not None:
        freqs.append(_critical(high_pass, nyquist, "high"))
        btype = "high"
    if low_pass is not None:
        freqs.append(_critical(low_pass, nyquist, "low"))
        btype = "low"
    if len(freqs) == 2:
        btype = "band"
        if freqs[0] == freqs[1]:
            logger.warning("Band-pass cutoffs collapse to one frequency: signals left unfiltered.")
            return np.array(signals, copy=True)
    sos = sp_signal.butter(
        N=order,
        Wn=freqs if len(freqs) == 2 else freqs[0],
        btype=btype,
        output="sos",
        fs=sampling_rate,
    )
    out = np.array(signals, dtype=np.result_type(signals, np.float64), copy=True)
    try:
        # Column by column, as nilearn does: the same floating-point results.
        for column in out.T:
            column[:] = sp_signal.sosfiltfilt(sos, column, padtype="odd")
    except ValueError as exc:
        raise DataError(
            f"Cannot filter {signals.shape[0]} time points with an order-{order} Butterworth "
            f"filter ({exc}); the run is too short for this filter. Use filter='cosine' or "
            "drop the band-pass."
        ) from exc
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
    """Clean time series; equal to :func:`nilearn.signal.clean` for the same options.

    Parameters
    ----------
    signals : ndarray, shape (n_timepoints, n_signals)
        Time series (one column per region or voxel).
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
        Shapes that do not match, non-finite values, invalid sample mask.
    """
    check_option("filter", filter, FILTERS)
    check_option("standardize", standardize, (False, *STANDARDIZE))
    standardize = standardize or None  # nilearn's False means None
    x = np.asarray(signals)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"clean needs signals of shape (n_timepoints, n_signals), got {x.shape}.")
    x = np.array(x, dtype=x.dtype if x.dtype.kind == "f" else np.float64, order="C", copy=True)
    if not np.isfinite(x).all():
        raise DataError("The signals to clean contain NaN or Inf values.")
    n = x.shape[0]
    conf = None
    if confounds is not None:
        conf = np.array(confounds, dtype=np.float64, order="C", copy=True)
        if conf.ndim == 1:
            conf = conf[:, None]
        if conf.shape[0] != n:
            raise DataError(
                f"Confounds have {conf.shape[0]} rows but the signals have {n} time points."
            )
        if not np.isfinite(conf).all():
            raise DataError("The confounds contain NaN or Inf values.")
        if not detrend and not standardize_confounds:
            logger.warning(
                "Confounds given with detrend=False and standardize_confounds=False: they "
                "must already be centred or the regression leaves an offset."
            )
    mask = _check_sample_mask(sample_mask, n)
    filter_type = filter
    if filter == "butterworth" and low_pass is None and high_pass is None:
        filter_type = False
    if filter_type in ("butterworth", "cosine") and t_r is None:
        raise ConfigError(f"Filtering ({filter}) needs the repetition time t_r in seconds.")
    if filter_type == "cosine" and high_pass is None:
        raise ConfigError("filter='cosine' needs high_pass (Hz).")
    if filter is False and (low_pass is not None or high_pass is not None):
        logger.warning("low_pass/high_pass given with filter=False: no filtering is done.")
    if filter_type == "cosine":
        conf = _add_cosines(conf, cosine_drift(high_pass, n, t_r))
        if low_pass is not None:
            logger.warning("low_pass is ignored with filter='cosine'.")
    if mask is not None:
        if filter_type == "butterworth":
            x = _interpolate(x, mask, t_r, extrapolate)
            keep = ~np.isnan(x).all(axis=1)
            x = x[keep]
            if conf is not None:
                conf = _interpolate(conf, mask, t_r, extrapolate)[keep]
            if not extrapolate:
                mask = mask - mask[0]
        else:
            x = x[mask]
            if conf is not None:
                conf = conf[mask]
    original_mean = x.mean(axis=0)
    if detrend:
        x = linear_detrend(x)
        if conf is not None:
            conf = linear_detrend(conf)
    if filter_type == "butterworth":
        rate = 1.0 / t_r
        x = butterworth(x, rate, low_pass=low_pass, high_pass=high_pass)
        if conf is not None:
            conf = butterworth(conf, rate, low_pass=low_pass, high_pass=high_pass)
        if mask is not None:
            x = x[mask]
            if conf is not None:
                conf = conf[mask]
    if conf is not None:
        if standardize_confounds:
            conf = scale_signals(conf, "zscore_sample")
        else:
            peak = np.abs(conf).max(axis=0)
            peak[peak == 0] = 1
            conf = conf / peak
        q, r, _ = linalg.qr(conf, mode="economic", pivoting=True)
        q = q[:, np.abs(np.diag(r)) > _EPS * 100.0]
        x = x - (q @ q.T) @ x
    if standardize is None:
        return x
    if standardize == "psc":
        shrunk = np.abs(x.mean(0)).mean() / np.abs(original_mean).mean() < 0.1
        if shrunk:
            return scale_signals(x + original_mean, "psc")
    return scale_signals(x, standardize)


def _add_cosines(conf: np.ndarray | None, cosines: np.ndarray) -> np.ndarray | None:
    if cosines.shape[1] == 0:
        logger.warning("No cosine regressor fits below high_pass for this run length.")
        return conf
    if conf is None:
        return cosines
    corr = np.corrcoef(cosines.T, conf.T)
    np.fill_diagonal(corr, 0)
    if (corr[: cosines.shape[1]] > 0.9).any():
        logger.warning("The confounds already hold cosine regressors; none is added.")
        return conf
    return np.hstack([conf, cosines])


def _interpolate(values: np.ndarray, mask: np.ndarray, t_r: float, extrapolate: bool) -> np.ndarray:
    from scipy.interpolate import CubicSpline

    times = np.arange(values.shape[0]) * t_r
    spline = CubicSpline(times[mask], values[mask], extrapolate=extrapolate)
    out = values.copy()
    censored = np.ones(values.shape[0], dtype=bool)
    censored[mask] = False
    out[censored] = spline(times)[censored]
    return out
