"""Tiny synthetic EEG for tests: MNE Raw objects and TUH-style EDF files.

Sizes are small and unequal on purpose (19 electrodes + an ECG channel, 37 s at
256 Hz), and every generator takes a ``seed``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.eeg.edf import write_edf
from neuroai.eeg.tuh import TuhSpan, write_tuh_csv

#: The 19 10-20 electrodes as TUH spells them (old names, upper case).
TUH_ELECTRODES = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
                  "F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ")  # fmt: skip


def eeg_signals(
    n_channels: int, n_times: int, sfreq: float, *, seed: int = 0, alpha_hz: float = 10.0
) -> np.ndarray:
    """EEG-like signals in microvolts: 1/f noise, an alpha rhythm, independent noise.

    Returns
    -------
    ndarray, shape (n_channels, n_times)
    """
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    shape = np.zeros_like(freqs)
    shape[1:] = freqs[1:] ** -0.5
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal((n_channels, n_times))) * shape, n_times)
    pink /= pink.std(axis=1, keepdims=True)
    t = np.arange(n_times) / sfreq
    alpha = np.sin(2 * np.pi * alpha_hz * t + rng.uniform(0, 2 * np.pi, (n_channels, 1)))
    return 10 * pink + 8 * alpha + 2 * rng.standard_normal((n_channels, n_times))


def tuh_raw(
    *,
    sfreq: float = 256.0,
    duration_s: float = 37.0,
    suffix: str = "REF",
    seed: int = 0,
    electrodes: Sequence[str] = TUH_ELECTRODES,
):
    """An MNE Raw with TUH-style channel names and an ECG channel (volts)."""
    import mne

    n_times = int(round(duration_s * sfreq))
    names = [f"EEG {e}-{suffix}" for e in electrodes] + [f"EEG EKG1-{suffix}"]
    data = eeg_signals(len(names), n_times, sfreq, seed=seed) * 1e-6
    info = mne.create_info(names, sfreq, "eeg")
    return mne.io.RawArray(data, info, verbose="error")


def tuh_edf(
    path: str | os.PathLike,
    *,
    sfreq: float = 256.0,
    duration_s: float = 37.0,
    suffix: str = "REF",
    seed: int = 0,
    electrodes: Sequence[str] = TUH_ELECTRODES,
    artifacts: Sequence[TuhSpan] | None = None,
    events: Sequence[TuhSpan] | None = None,
) -> Path:
    """Write a TUH-style EDF file, with ``.csv`` / ``.csv_bi`` annotation files if given."""
    raw = tuh_raw(
        sfreq=sfreq, duration_s=duration_s, suffix=suffix, seed=seed, electrodes=electrodes
    )
    path = Path(path)
    if artifacts is not None:
        write_tuh_csv(path.with_suffix(".csv"), artifacts, duration=duration_s)
    if events is not None:
        write_tuh_csv(path.with_suffix(".csv_bi"), events, duration=duration_s)
    return write_edf(path, raw.get_data() * 1e6, sfreq=sfreq, ch_names=raw.ch_names)
