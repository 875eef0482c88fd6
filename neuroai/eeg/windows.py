"""Fixed-length windows: where they start, which are rejected, what labels they carry.

A recording of ``n_times`` samples gives windows of ``length`` samples every
``stride`` samples (the tail shorter than a window is left out). A window is
rejected, and counted by reason, when

- ``flat``: a channel is flat in it, either over the whole preprocessed window
  (peak-to-peak below ``flat_uv``) or, in the recording as read (before any
  filter, which would smear a dead stretch), for at least one second
  (:func:`constant_spans`: a disconnected electrode, a paused amplifier);
- ``saturated``: a channel's preprocessed absolute value exceeds
  ``saturation_uv`` (an electrode pop off the scale, a huge artifact), or the
  recording as read sits at a channel's extreme value for a second or more (an
  amplifier at its rail). Constant stretches are judged on the signal as read,
  so DC offsets (BioSemi) do not count as saturation;
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

from neuroai._windows import window_starts
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


def constant_spans(
    data_uv: np.ndarray, sfreq: float, *, tolerance_uv: float, block_s: float = 1.0
) -> dict[str, np.ndarray]:
    """Stretches where a channel of the signal as read does not move.

    The signal is cut into blocks of ``block_s`` seconds; a block in which a
    channel's peak-to-peak amplitude is below ``tolerance_uv`` is constant. It is
    ``saturated`` when its value is the channel's largest or smallest over the
    recording (a rail), ``flat`` otherwise.

    Parameters
    ----------
    data_uv : ndarray, shape (n_channels, n_times)
        Unfiltered signals in microvolts.
    sfreq : float
        Sampling frequency in Hz.
    tolerance_uv : float
        Peak-to-peak amplitude below which a block is constant.
    block_s : float
        Block length in seconds.

    Returns
    -------
    dict
        ``{"flat": spans, "saturated": spans}``, each of shape (n_spans, 2):
        start and stop in seconds from the first sample.
    """
    block = max(1, int(round(block_s * sfreq)))
    n_blocks = data_uv.shape[1] // block
    out = {"flat": np.zeros((0, 2)), "saturated": np.zeros((0, 2))}
    if n_blocks == 0:
        return out
    blocks = data_uv[:, : n_blocks * block].reshape(data_uv.shape[0], n_blocks, block)
    constant = np.ptp(blocks, axis=2) < tolerance_uv
    level = blocks[:, :, 0]
    top, bottom = data_uv.max(axis=1, keepdims=True), data_uv.min(axis=1, keepdims=True)
    at_rail = constant & (
        (np.abs(level - top) < tolerance_uv) | (np.abs(level - bottom) < tolerance_uv)
    )
    for reason, mask in (("saturated", at_rail), ("flat", constant & ~at_rail)):
        hit = np.flatnonzero(mask.any(axis=0))
        out[reason] = np.column_stack([hit * block / sfreq, (hit + 1) * block / sfreq])
    return out


def _overlapping(begin: np.ndarray, end: np.ndarray, spans: np.ndarray | None) -> np.ndarray:
    """Windows [begin, end) that overlap any span [start, stop] (seconds)."""
    hit = np.zeros(begin.shape, dtype=bool)
    if spans is None:
        return hit
    for onset, stop in np.asarray(spans, dtype=float).reshape(-1, 2):
        hit |= (begin < max(stop, onset + 1e-9)) & (end > onset)
    return hit


def find_windows(
    data_uv: np.ndarray,
    *,
    sfreq: float,
    length: int,
    stride: int,
    flat_uv: float,
    saturation_uv: float,
    spans: dict[str, np.ndarray] | None = None,
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
    spans : dict | None
        Reason (``flat``, ``saturated``, ``bad_annotation``) to spans of shape
        (n_spans, 2), start and stop in seconds, that reject the windows they
        overlap (from :func:`constant_spans` and bad annotations).
    """
    spans = spans or {}
    n_times = data_uv.shape[1]
    starts = (
        window_starts(n_times, length, stride)
        if n_times >= length
        else np.zeros(0, dtype=np.int64)  # a recording shorter than a window has none
    )
    flat = np.zeros(starts.shape, dtype=bool)
    saturated = np.zeros(starts.shape, dtype=bool)
    for i, start in enumerate(starts):
        segment = data_uv[:, start : start + length]
        flat[i] = bool((np.ptp(segment, axis=1) < flat_uv).any())
        saturated[i] = bool((np.abs(segment) > saturation_uv).any())
    begin = starts / sfreq
    end = begin + length / sfreq
    reasons = {
        "flat": flat | _overlapping(begin, end, spans.get("flat")),
        "saturated": saturated | _overlapping(begin, end, spans.get("saturated")),
        "bad_annotation": _overlapping(begin, end, spans.get("bad_annotation")),
    }
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
