"""The parameters of the EEG stage, with their defaults and checks, in one place.

:class:`EEGParams` is what the per-recording processing, the cohort API and the
workflow's ``eeg`` config section share; its field names are the config keys
(see ``workflows/schemas/config/eeg.schema.yaml``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neuroai.eeg.montages import MONTAGES
from neuroai.eeg.standardize import MISSING_POLICIES, REFERENCES
from neuroai.errors import ConfigError, check_option, did_you_mean

NORMALIZATIONS = ("robust", "zscore", "none")
DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class EEGParams:
    """How recordings become windows and patch sequences.

    Attributes
    ----------
    montage : str | None
        Target montage (``10-20_19``, ``10-20_21``, ``tcp_22``) or ``None`` to
        keep every EEG channel under its 10-05 name.
    missing_channels : str
        ``interpolate`` or ``error`` for montage electrodes a recording lacks.
    max_interpolated : float
        Largest fraction of montage electrodes that may be interpolated.
    reference : str | None
        ``None`` (as recorded) or ``average`` (referential montages only).
    line_freq : float | None
        Power-line frequency in Hz to notch out (with its harmonics below the
        band-pass upper edge); ``None`` takes the recording's own
        (``PowerLineFrequency`` of a BIDS sidecar) and skips the notch when unknown.
    l_freq, h_freq : float
        Band-pass edges in Hz (0.1-75 Hz by default).
    sfreq : float
        Sampling frequency after resampling, in Hz (250, as EEGFormer uses).
    clip_uv : float | None
        Clip values to +-clip_uv microvolts after rejection (``None``: no clipping).
    normalize : str
        Per-channel normalisation over the recording: ``robust`` (median and
        IQR / 1.349), ``zscore`` (mean and SD) or ``none`` (microvolts).
    window_s, stride_s : float
        Window length and stride in seconds (12 s windows by default).
    reject_flat_uv : float
        A window is rejected when a channel's peak-to-peak amplitude is below
        this (microvolts): a flat or disconnected channel.
    reject_saturation_uv : float
        A window is rejected when a channel's absolute value exceeds this
        (microvolts): a saturated amplifier or electrode.
    event_min_overlap_s : float
        A window takes an annotation's label when they overlap by at least this
        long (or by the whole annotation, when it is shorter).
    patch_len, patch_stride : int
        Patch length and stride in samples (time patches) and in frequency bins
        (spectral patches).
    dtype : str
        Stored precision of the patches: ``float16`` or ``float32``.
    """

    montage: str | None = "tcp_22"
    missing_channels: str = "interpolate"
    max_interpolated: float = 0.25
    reference: str | None = None
    line_freq: float | None = 60.0
    l_freq: float = 0.1
    h_freq: float = 75.0
    sfreq: float = 250.0
    clip_uv: float | None = 500.0
    normalize: str = "robust"
    window_s: float = 12.0
    stride_s: float = 12.0
    reject_flat_uv: float = 0.5
    reject_saturation_uv: float = 1000.0
    event_min_overlap_s: float = 1.0
    patch_len: int = 50
    patch_stride: int = 50
    dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.montage is not None:
            check_option("montage", self.montage, MONTAGES)
        check_option("missing_channels", self.missing_channels, MISSING_POLICIES)
        check_option("reference", self.reference, REFERENCES)
        check_option("normalize", self.normalize, NORMALIZATIONS)
        check_option("dtype", self.dtype, DTYPES)
        positive = ("h_freq", "sfreq", "window_s", "stride_s", "patch_len", "patch_stride")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"EEG parameter {name!r} must be positive, got {getattr(self, name)!r}."
                )
        if not 0 <= self.l_freq < self.h_freq:
            raise ConfigError(
                f"EEG band-pass: need 0 <= l_freq < h_freq, got l_freq={self.l_freq}, "
                f"h_freq={self.h_freq}."
            )
        if self.h_freq >= self.sfreq / 2:
            raise ConfigError(
                f"EEG band-pass upper edge h_freq={self.h_freq} Hz must be below the Nyquist "
                f"frequency of the output sampling rate sfreq={self.sfreq} Hz "
                f"({self.sfreq / 2} Hz). Lower h_freq or raise sfreq."
            )
        if not 0 < self.max_interpolated <= 1:
            raise ConfigError(f"max_interpolated must be in (0, 1], got {self.max_interpolated}.")
        if self.clip_uv is not None and not self.clip_uv > 0:
            raise ConfigError(f"clip_uv must be positive or null, got {self.clip_uv}.")
        if self.line_freq is not None and not self.line_freq > 0:
            raise ConfigError(f"line_freq must be positive or null, got {self.line_freq}.")
        if self.patch_len > self.window_samples // 2:
            raise ConfigError(
                f"patch_len={self.patch_len} is longer than half a window "
                f"({self.window_samples} samples, {self.window_samples // 2} frequency bins)."
            )

    @property
    def window_samples(self) -> int:
        """Samples per window at the output sampling rate."""
        return round(self.window_s * self.sfreq)

    @property
    def stride_samples(self) -> int:
        return round(self.stride_s * self.sfreq)

    @classmethod
    def field_names(cls) -> list[str]:
        """The parameter names (the keys of the workflow's ``eeg`` config section)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EEGParams:
        """Build from a config slice; unknown keys are an error with a suggestion."""
        names = cls.field_names()
        for key in values:
            if key not in names:
                raise ConfigError(
                    f"Unknown EEG parameter {key!r}.{did_you_mean(key, names)} "
                    f"Valid parameters: {', '.join(names)}."
                )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
