"""Preprocessing of a standardised recording: filters, resampling, units, scaling.

The order is the conventional one: notch at the power-line frequency and its
harmonics inside the pass band, zero-phase FIR band-pass (MNE's defaults), then
resampling to the target rate (MNE's FFT resampling, which low-passes before
decimating). Data then leave MNE as a float array in microvolts, where window
rejection looks at them (:mod:`neuroai.eeg.windows`) before extreme values are
clipped and each channel is normalised over the recording.
"""

from __future__ import annotations

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import DataError, check_option

logger = get_logger(__name__)


def _upper_transition(h_freq: float, nyquist: float) -> float:
    """MNE's automatic low-pass transition bandwidth (Hz)."""
    return min(max(0.25 * h_freq, 2.0), nyquist - h_freq)


def notch_frequencies(line_freq: float, h_freq: float, sfreq: float) -> list[float]:
    """Power-line harmonics to notch: those below the low-pass stop band and Nyquist.

    Parameters
    ----------
    line_freq : float
        Power-line frequency in Hz (50 or 60).
    h_freq : float
        Band-pass upper edge in Hz.
    sfreq : float
        Sampling frequency of the data being filtered, in Hz.
    """
    nyquist = sfreq / 2
    limit = min(h_freq + _upper_transition(h_freq, nyquist), nyquist - 1.0)
    harmonics = []
    k = 1
    while k * line_freq < limit:
        harmonics.append(float(k * line_freq))
        k += 1
    return harmonics


def preprocess_raw(
    raw,
    *,
    line_freq: float | None,
    l_freq: float,
    h_freq: float,
    sfreq: float,
    verbose: bool | str | int | None = None,
):
    """Notch, band-pass and resample a recording in place.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        EEG channels only, data loaded (as :func:`standardize_channels` returns).
    line_freq : float | None
        Power-line frequency in Hz; ``None`` uses ``raw.info["line_freq"]`` and
        skips the notch (with a warning) when that is unknown too.
    l_freq, h_freq : float
        Band-pass edges in Hz (``l_freq=0`` for a low-pass only).
    sfreq : float
        Output sampling frequency in Hz.
    verbose : bool | str | int | None
        MNE's ``verbose`` for the filters and the resampling (``None``: MNE's
        own level, see ``mne.set_log_level``).

    Returns
    -------
    mne.io.BaseRaw
        ``raw``, filtered and resampled.

    Raises
    ------
    DataError
        When the recording's sampling rate is too low for the band: its Nyquist
        frequency must exceed ``h_freq``.
    """
    source = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else "<memory>"
    original = float(raw.info["sfreq"])
    if original / 2 <= h_freq:
        raise DataError(
            f"{source} is sampled at {original:g} Hz (Nyquist {original / 2:g} Hz), too low "
            f"for a band-pass up to {h_freq:g} Hz. Lower h_freq below {original / 2:g} Hz for "
            "this dataset, or exclude the recording."
        )
    if line_freq is None:
        line_freq = raw.info.get("line_freq")
        if line_freq is None:
            logger.warning("%s: power-line frequency unknown; no notch filter applied.", source)
    if line_freq:
        freqs = notch_frequencies(float(line_freq), h_freq, original)
        if freqs:
            raw.notch_filter(freqs, picks="all", verbose=verbose)
            logger.info("%s: notch at %s Hz", source, freqs)
    raw.filter(l_freq or None, h_freq, picks="all", verbose=verbose)
    if abs(original - sfreq) > 1e-6:
        raw.resample(sfreq, verbose=verbose)
        logger.info("%s: resampled %g -> %g Hz", source, original, sfreq)
    return raw


def to_microvolts(raw) -> np.ndarray:
    """The data of an EEG Raw in microvolts.

    Returns
    -------
    ndarray, shape (n_channels, n_times), float64
    """
    return raw.get_data(units="uV")


def clip_amplitude(data: np.ndarray, limit: float | None) -> np.ndarray:
    """Clip values to ``[-limit, limit]`` (in the data's units); ``None`` copies."""
    data = np.array(data, dtype=np.float64, copy=True)
    if limit is not None:
        np.clip(data, -limit, limit, out=data)
    return data


def normalize_channels(
    data: np.ndarray, method: str = "robust"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise each channel over the recording.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
        Signals (microvolts).
    method : {"robust", "zscore", "none"}
        ``robust``: subtract the median, divide by IQR / 1.349 (the SD of a
        Gaussian); ``zscore``: mean and SD; ``none``: unchanged.

    Returns
    -------
    normalised : ndarray, shape (n_channels, n_times)
    center, scale : ndarray, shape (n_channels,)
        What was subtracted and divided by (microvolts). A channel with zero
        spread keeps scale 1.
    """
    check_option("normalize", method, ("robust", "zscore", "none"))
    data = np.asarray(data, dtype=np.float64)
    n_channels = data.shape[0]
    if method == "none":
        return data.copy(), np.zeros(n_channels), np.ones(n_channels)
    if method == "robust":
        q25, center, q75 = np.percentile(data, [25, 50, 75], axis=1)
        scale = (q75 - q25) / 1.349
    else:
        center = data.mean(axis=1)
        scale = data.std(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    return (data - center[:, None]) / scale[:, None], center, scale
