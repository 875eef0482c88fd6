"""Sliding windows: where each one starts (shared by fMRI dynamic connectivity and EEG)."""

from __future__ import annotations

import numpy as np

from neuroai.errors import ConfigError, DataError


def window_starts(n_timepoints: int, window: int, step: int) -> np.ndarray:
    """First sample of each window of ``window`` samples, one every ``step``, that fits.

    Window ``k`` covers ``[k * step, k * step + window)``; a tail shorter than a
    window is left out. This is the one sliding-window rule: fMRI windows count
    TRs, EEG windows count samples.

    Parameters
    ----------
    n_timepoints : int
        Length of the series (TRs, samples).
    window : int
        Window length, at least 2.
    step : int
        Distance between window starts, at least 1.

    Returns
    -------
    ndarray of int64, shape (n_windows,)

    Raises
    ------
    ConfigError
        When ``window < 2`` or ``step < 1`` (or either is not an integer).
    DataError
        When the series is shorter than one window.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ConfigError(
            f"The window must be an integer number of time points, at least 2; got {window!r}."
        )
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ConfigError(
            f"The step must be a positive integer number of time points; got {step!r}."
        )
    if n_timepoints < window:
        raise DataError(
            f"The series has {n_timepoints} time points, fewer than one window of {window}: "
            "it must be at least as long as the window. Use a shorter window or leave "
            "this series out."
        )
    return np.arange(0, n_timepoints - window + 1, step, dtype=np.int64)
