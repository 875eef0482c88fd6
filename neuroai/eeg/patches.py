"""Channel-independent patch sequences of windows: time signal and FFT amplitude.

EEGFormer (Chen et al. 2024, "EEGFormer: Towards transferable and interpretable
large-scale EEG foundation model", arXiv:2401.10278) treats every channel of a
window as its own univariate sequence, normalises it per instance and cuts it
into patches; its input is the FFT amplitude. For each channel ``x`` of a window
of ``L`` samples this module makes

- time patches: ``(x - mean(x)) / std(x)`` cut into patches of ``patch_len``
  samples every ``patch_stride`` samples;
- spectral patches: ``a = |rfft(x)|`` at bins ``0 .. L/2 - 1`` (0 Hz up to just
  below Nyquist in steps of ``sfreq / L``), normalised the same way over bins,
  cut into patches of ``patch_len`` bins every ``patch_stride`` bins.

Both share ``patch_len``, so one array holds them side by side::

    patches[row] = [time patch 0, ..., time patch T-1, spectral patch 0, ..., spectral patch S-1]

with ``T = (L - patch_len) // patch_stride + 1`` and
``S = (L // 2 - patch_len) // patch_stride + 1``. The instance-normalisation
statistics are kept (``stats[row] = [time mean, time std, spectrum mean,
spectrum std]``) so the signal can be put back in its units.

Shapes: windows ``(n_windows, n_channels, L)`` -> patches
``(n_windows * n_channels, T + S, patch_len)`` and stats ``(n_windows * n_channels, 4)``,
rows ordered window-major (all channels of window 0, then window 1 ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroai.errors import DataError

EPS = 1e-6


def n_patches(length: int, patch_len: int, patch_stride: int) -> int:
    """Number of patches of ``patch_len`` every ``patch_stride`` in ``length`` values."""
    if length < patch_len:
        return 0
    return (length - patch_len) // patch_stride + 1


def instance_norm(x: np.ndarray, eps: float = EPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise over the last axis: ``(x - mean) / (std + eps)``.

    Returns
    -------
    normalised : ndarray, same shape as ``x``
    mean, std : ndarray, shape ``x.shape[:-1]``
    """
    mean = x.mean(axis=-1)
    std = x.std(axis=-1)
    return (x - mean[..., None]) / (std[..., None] + eps), mean, std


def unfold(x: np.ndarray, patch_len: int, patch_stride: int) -> np.ndarray:
    """Cut the last axis into patches: shape ``(..., n_patches, patch_len)`` (a view)."""
    view = np.lib.stride_tricks.sliding_window_view(x, patch_len, axis=-1)
    return view[..., ::patch_stride, :]


def fft_amplitude(x: np.ndarray) -> np.ndarray:
    """``|rfft(x)|`` over the last axis, bins ``0 .. L/2 - 1``: shape ``(..., L // 2)``."""
    length = x.shape[-1]
    return np.abs(np.fft.rfft(x, axis=-1))[..., : length // 2]


@dataclass(frozen=True)
class PatchLayout:
    """Where time and spectral patches sit in a patch sequence.

    Attributes
    ----------
    window_samples : int
        ``L``, samples per window.
    patch_len, patch_stride : int
    n_time, n_spectrum : int
        Number of time and spectral patches (``T`` and ``S``).
    """

    window_samples: int
    patch_len: int
    patch_stride: int

    @property
    def n_time(self) -> int:
        return n_patches(self.window_samples, self.patch_len, self.patch_stride)

    @property
    def n_spectrum(self) -> int:
        return n_patches(self.window_samples // 2, self.patch_len, self.patch_stride)

    @property
    def n_patches(self) -> int:
        return self.n_time + self.n_spectrum

    def segments(self) -> dict[str, list[int]]:
        """``{"time": [0, T], "spectrum": [T, T + S]}``: patch-axis slices."""
        return {"time": [0, self.n_time], "spectrum": [self.n_time, self.n_patches]}


def window_patches(
    windows: np.ndarray, layout: PatchLayout, *, dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """Patch sequences of windows (see the module docstring).

    Parameters
    ----------
    windows : ndarray, shape (n_windows, n_channels, L)
        Preprocessed windows, ``L = layout.window_samples``.
    layout : PatchLayout
    dtype : str
        Precision of the patches (statistics are float32).

    Returns
    -------
    patches : ndarray, shape (n_windows * n_channels, T + S, patch_len)
    stats : ndarray, shape (n_windows * n_channels, 4), float32
    """
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 3 or windows.shape[-1] != layout.window_samples:
        raise DataError(
            f"windows must be (n_windows, n_channels, {layout.window_samples}); got {windows.shape}."
        )
    rows = windows.reshape(-1, layout.window_samples)
    time, time_mean, time_std = instance_norm(rows)
    spectrum, spec_mean, spec_std = instance_norm(fft_amplitude(rows))
    patches = np.empty((rows.shape[0], layout.n_patches, layout.patch_len), dtype=dtype)
    patches[:, : layout.n_time] = unfold(time, layout.patch_len, layout.patch_stride)
    patches[:, layout.n_time :] = unfold(spectrum, layout.patch_len, layout.patch_stride)
    stats = np.stack([time_mean, time_std, spec_mean, spec_std], axis=1).astype(np.float32)
    return patches, stats


def reconstruct_time(patches: np.ndarray, stats: np.ndarray, layout: PatchLayout) -> np.ndarray:
    """Put time patches back into signals in their original units.

    Overlapping patches are averaged; with ``patch_stride > patch_len`` the
    samples between patches are NaN.

    Parameters
    ----------
    patches : ndarray, shape (n_rows, T + S, patch_len)
    stats : ndarray, shape (n_rows, 4)

    Returns
    -------
    ndarray, shape (n_rows, L), float64
    """
    n_rows = patches.shape[0]
    total = np.zeros((n_rows, layout.window_samples))
    count = np.zeros(layout.window_samples)
    for k in range(layout.n_time):
        start = k * layout.patch_stride
        total[:, start : start + layout.patch_len] += patches[:, k].astype(np.float64)
        count[start : start + layout.patch_len] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = total / count
    mean, std = stats[:, 0:1].astype(np.float64), stats[:, 1:2].astype(np.float64)
    return signal * (std + EPS) + mean
