"""Fixed-length windows: where they start, which are rejected, what labels they carry.

A recording of ``n_times`` samples gives windows of ``length`` samples every
``stride`` samples (the tail shorter than a window is left out). A window is
rejected, and counted by reason, when

- ``flat``: a channel's peak-to-peak amplitude is below ``flat_uv`` (a
  disconnected electrode, a paused amplifier);
- ``saturated``: a channel's absolute value exceeds ``saturation_uv`` (an
  amplifier at its rail, an electrode pop off the scale);
- ``bad_annotation``: it overlaps an annotation marked bad (MNE's ``BAD_*``
  convention, EEGLAB's ``boundary`` discontinuities).

Event labels come from annotations (TUH spans, BIDS ``events.tsv``, EDF+
annotations): a window carries every label whose span overlaps it by at least
``min_overlap_s`` seconds, or by the whole span when the span is shorter; a
point event (duration 0) labels the window it falls in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroai.eeg.tuh import BACKGROUND

REJECT_REASONS = ("flat", "saturated", "bad_annotation")


def is_bad_description(description: str) -> bool:
    """Whether an annotation marks data as unusable (``BAD_*``, ``boundary``)."""
    text = description.strip().lower()
    return text.startswith("bad") or text in ("boundary", "edge boundary")


@dataclass(frozen=True)
class Windows:
    """Candidate windows of one recording and why some are rejected.

    Attributes
    ----------
    starts : ndarray of int, shape (n_windows,)
        First sample of each window.
    length : int
        Samples per window.
    sfreq : float
        Sampling frequency in Hz.
    reasons : dict of str to ndarray of bool, shape (n_windows,)
        For each reason in :data:`REJECT_REASONS`, which windows it rejects.
    """

    starts: np.ndarray
    length: int
    sfreq: float
    reasons: dict[str, np.ndarray]

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the windows that no reason rejects, shape (n_windows,)."""
        rejected = np.zeros(self.starts.shape, dtype=bool)
        for mask in self.reasons.values():
            rejected |= mask
        return ~rejected

    @property
    def start_s(self) -> np.ndarray:
        """Window starts in seconds from the first sample, shape (n_windows,)."""
        return self.starts / self.sfreq

    def counts(self) -> dict[str, int]:
        """``total``, ``kept``, ``rejected`` and one count per reason (a window may have several)."""
        kept = self.kept
        counts = {"total": int(kept.size), "kept": int(kept.sum()), "rejected": int((~kept).sum())}
        counts.update({reason: int(mask.sum()) for reason, mask in self.reasons.items()})
        return counts


def window_starts(n_times: int, length: int, stride: int) -> np.ndarray:
    """First samples of the windows that fit in ``n_times`` samples, shape (n_windows,)."""
    if n_times < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_times - length + 1, stride, dtype=np.int64)


def find_windows(
    data_uv: np.ndarray,
    *,
    sfreq: float,
    length: int,
    stride: int,
    flat_uv: float,
    saturation_uv: float,
    bad_spans: np.ndarray | None = None,
) -> Windows:
    """Place windows on a recording and decide which to reject.

    Parameters
    ----------
    data_uv : ndarray, shape (n_channels, n_times)
        Preprocessed signals in microvolts, before clipping.
    sfreq : float
        Sampling frequency in Hz.
    length, stride : int
        Window length and stride in samples.
    flat_uv, saturation_uv : float
        Rejection thresholds in microvolts (see the module docstring).
    bad_spans : ndarray, shape (n_spans, 2) | None
        Start and stop (seconds) of spans marked bad.
    """
    starts = window_starts(data_uv.shape[1], length, stride)
    flat = np.zeros(starts.shape, dtype=bool)
    saturated = np.zeros(starts.shape, dtype=bool)
    for i, start in enumerate(starts):
        segment = data_uv[:, start : start + length]
        flat[i] = bool((np.ptp(segment, axis=1) < flat_uv).any())
        saturated[i] = bool((np.abs(segment) > saturation_uv).any())
    bad = np.zeros(starts.shape, dtype=bool)
    if bad_spans is not None and len(bad_spans):
        begin = starts / sfreq
        end = begin + length / sfreq
        spans = np.asarray(bad_spans, dtype=float).reshape(-1, 2)
        for onset, stop in spans:
            bad |= (begin < max(stop, onset + 1e-9)) & (end > onset)
    reasons = {"flat": flat, "saturated": saturated, "bad_annotation": bad}
    return Windows(starts=starts, length=length, sfreq=float(sfreq), reasons=reasons)


def extract_windows(data: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Cut windows out of a recording.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times)
    starts : ndarray of int, shape (n_windows,)
    length : int

    Returns
    -------
    ndarray, shape (n_windows, n_channels, length)
        A copy.
    """
    if len(starts) == 0:
        return np.zeros((0, data.shape[0], length), dtype=data.dtype)
    return np.stack([data[:, s : s + length] for s in starts])


def window_events(
    onset: np.ndarray,
    duration: np.ndarray,
    description: list[str],
    *,
    starts_s: np.ndarray,
    window_s: float,
    min_overlap_s: float,
) -> list[tuple[str, ...]]:
    """Labels each window takes from annotations.

    Parameters
    ----------
    onset, duration : ndarray, shape (n_annotations,)
        Seconds from the first sample of the data.
    description : list of str
        One label per annotation. ``bckg`` and bad-marking annotations give no label.
    starts_s : ndarray, shape (n_windows,)
        Window starts in seconds.
    window_s : float
        Window length in seconds.
    min_overlap_s : float
        Overlap a span needs (or its whole duration when shorter).

    Returns
    -------
    list of tuple of str
        Sorted, distinct labels per window (empty tuple for none).
    """
    labels: list[set[str]] = [set() for _ in range(len(starts_s))]
    begin = np.asarray(starts_s, dtype=float)
    end = begin + window_s
    for on, dur, text in zip(onset, duration, description, strict=True):
        label = text.strip().lower()
        if not label or label == BACKGROUND or is_bad_description(label):
            continue
        if dur <= 0:
            hit = (begin <= on) & (on < end)
        else:
            overlap = np.minimum(end, on + dur) - np.maximum(begin, on)
            hit = overlap >= min(min_overlap_s, dur) - 1e-9
        for index in np.flatnonzero(hit):
            labels[index].add(label)
    return [tuple(sorted(found)) for found in labels]
