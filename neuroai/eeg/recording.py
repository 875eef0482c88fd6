"""One recording from file to patch sequences: the per-recording EEG pipeline.

:func:`process_recording` chains the steps for one file or one MNE ``Raw``::

    read_raw -> standardize_channels -> preprocess_raw -> microvolts
      -> find_windows (reject flat / saturated / bad) -> clip -> normalise per channel
      -> window labels (layout + annotations) -> window_patches

and returns the windows as a :class:`~neuroai.eeg.store.PatchPart` with a
quality-control summary (channel decisions, window counts, power spectrum).
:func:`save_recording` writes both: a patch store with the channel report in
its provenance, and the summary as JSON.

A ``Raw`` the user prepared in MNE (after ICA, with bad channels marked, or read
by a reader neuroai does not route) goes through the same steps from
``standardize_channels`` on, with the same checks; a ``Raw`` read from a file
gives exactly what the file's path gives. ``mne.Epochs`` are refused: the
chain filters and resamples continuous data and cuts its own windows, and
filtering epochs one by one would put filter edge effects into every window.
Pass the continuous ``Raw`` the epochs were cut from.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroai._logging import get_logger
from neuroai.eeg.montages import montage_electrodes
from neuroai.eeg.params import EEGParams
from neuroai.eeg.patches import PatchLayout, window_patches
from neuroai.eeg.preprocessing import (
    clip_amplitude,
    normalize_channels,
    preprocess_raw,
    to_microvolts,
)
from neuroai.eeg.readers import bids_root, check_units, read_raw
from neuroai.eeg.standardize import standardize_channels
from neuroai.eeg.store import MISSING, PatchPart, write_patch_store
from neuroai.eeg.tuh import annotation_files, parse_tuh_path
from neuroai.eeg.windows import (
    constant_spans,
    extract_windows,
    find_windows,
    is_bad_description,
    window_events,
)
from neuroai.errors import ConfigError, DataError
from neuroai.io.store import save_json

logger = get_logger(__name__)
#: Welch segment length for the QC power spectrum, seconds (0.5 Hz resolution).
PSD_SEGMENT_S = 2.0


@dataclass(frozen=True)
class RecordingMeta:
    """What is known about a recording besides its signals.

    Attributes
    ----------
    key : str
        Unique name of the recording in its dataset (the file stem).
    subject, session, split : str | None
        Patient, session and data split (``train``, ``dev``, ``eval``).
    label : str | None
        Recording-level label from the layout (TUAB ``normal``/``abnormal``).
    """

    key: str
    subject: str | None = None
    session: str | None = None
    split: str | None = None
    label: str | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> RecordingMeta:
        """Infer from a TUH path (folders give split and label) or a BIDS name."""
        path = Path(path)
        if bids_root(path) is not None:
            entities = dict(part.split("-", 1) for part in path.name.split("_")[:-1] if "-" in part)
            key = path.name.rsplit("_", 1)[0]
            return cls(key=key, subject=entities.get("sub"), session=entities.get("ses"))
        info = parse_tuh_path(path)
        return cls(
            key=info["key"],
            subject=info["subject"],
            session=info["session"],
            split=info["split"],
            label=info["label"],
        )


@dataclass
class ProcessedRecording:
    """A recording's windows as patches, and its quality-control summary.

    Attributes
    ----------
    part : PatchPart
        Kept windows (index, channel set, patches, statistics).
    layout : PatchLayout
    qc : dict
        JSON-ready summary: ``recording`` (meta), ``source``, ``sfreq_in``,
        ``duration_s``, ``channels`` (the channel report), ``windows`` (counts
        by reason), ``events`` (windows per label), ``psd`` (``freqs`` in Hz and
        the channel-mean power of kept windows, ``power`` in uV^2/Hz).
    """

    part: PatchPart
    layout: PatchLayout
    qc: dict[str, Any]


def _relative_annotations(raw) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Annotation onsets (seconds from the first sample), durations and labels."""
    annotations = raw.annotations
    onset = np.asarray(annotations.onset, dtype=float) - raw.first_time
    return onset, np.asarray(annotations.duration, dtype=float), list(annotations.description)


def _psd(windows_uv: np.ndarray, sfreq: float, h_freq: float) -> dict[str, list[float]]:
    from scipy.signal import welch

    if windows_uv.shape[0] == 0:
        return {"freqs": [], "power": []}
    nperseg = min(int(PSD_SEGMENT_S * sfreq), windows_uv.shape[-1])
    freqs, power = welch(windows_uv, fs=sfreq, nperseg=nperseg, axis=-1)
    keep = freqs <= h_freq + 5
    mean = power.mean(axis=(0, 1))[keep]
    return {"freqs": freqs[keep].round(4).tolist(), "power": mean.tolist()}


def _raw_file(raw) -> Path | None:
    """The file a Raw was read from, or ``None`` for one built in memory."""
    names = getattr(raw, "filenames", None) or []
    return Path(names[0]) if names and names[0] is not None else None


def _open_recording(recording, meta: RecordingMeta | None, verbose):
    """``(raw, source, meta)`` for a path or an MNE Raw; refuses anything else."""
    import mne

    if isinstance(recording, str | os.PathLike):
        path = Path(recording)
        return read_raw(path, verbose=verbose), str(path), meta or RecordingMeta.from_path(path)
    if isinstance(recording, mne.BaseEpochs):
        raise ConfigError(
            "process_recording takes continuous data, not mne.Epochs: it filters, resamples "
            "and cuts its own windows, and filtering epochs one by one would put filter edge "
            "effects into every window. Pass the continuous Raw the epochs were cut from "
            "(with any ICA applied to it), and set window_s/stride_s for the windows."
        )
    if not isinstance(recording, mne.io.BaseRaw):
        raise ConfigError(
            f"process_recording takes a path or an mne.io.Raw, not {type(recording).__name__}."
        )
    file = _raw_file(recording)
    if meta is None:
        if file is None:
            raise ConfigError(
                "This Raw was built in memory, so its recording key cannot be inferred from a "
                "file name: pass meta=RecordingMeta(key=..., subject=...)."
            )
        meta = RecordingMeta.from_path(file)
    source = str(file) if file is not None else "<memory>"
    if len(recording.ch_names) == 0:
        raise DataError(f"{source} holds no channels at all.")
    check_units(recording, source)
    return recording, source, meta


def process_recording(
    recording,
    *,
    params: EEGParams,
    meta: RecordingMeta | None = None,
    verbose: bool | str | int | None = None,
) -> ProcessedRecording:
    """Turn one EEG recording into patch sequences of its usable windows.

    Parameters
    ----------
    recording : path-like | mne.io.BaseRaw
        An EEG file in any format :func:`neuroai.eeg.read_raw` reads, or a
        continuous MNE ``Raw`` (not modified). A ``Raw`` read from a file gives
        the same windows and patches as the file's path. ``mne.Epochs`` are
        refused (see the module docstring).
    params : EEGParams
        Channels, filters, windows and patches.
    meta : RecordingMeta | None
        Identity and labels; inferred from the path (or the file a ``Raw`` was
        read from) when ``None``. Required for a ``Raw`` built in memory.
    verbose : bool | str | int | None
        MNE's ``verbose`` for reading, interpolation, filters and resampling
        (``None``: MNE's own level, see ``mne.set_log_level``).

    Returns
    -------
    ProcessedRecording

    Raises
    ------
    ConfigError
        For ``mne.Epochs``, another type, or a ``Raw`` built in memory without
        ``meta``.
    DataError
        For the bad inputs :func:`read_raw`, :func:`standardize_channels` and
        :func:`preprocess_raw` refuse, naming the file; a ``Raw`` gets the same
        unit check (:func:`neuroai.eeg.readers.check_units`) as a file.
    """
    original, source, meta = _open_recording(recording, meta, verbose)
    name = Path(source).name
    sfreq_in = float(original.info["sfreq"])
    n_channels_in = len(original.ch_names)
    raw, report = standardize_channels(
        original,
        params.montage,
        missing=params.missing_channels,
        max_interpolated=params.max_interpolated,
        reference=params.reference,
        return_report=True,
        verbose=verbose,
    )
    # Dead and railed stretches, judged on the electrodes as read (filters smear them).
    used = [
        source
        for name, source in report.sources.items()
        if params.montage is None or name in montage_electrodes(params.montage)
    ]
    spans = constant_spans(
        original.get_data(picks=used) * 1e6, sfreq_in, tolerance_uv=params.reject_flat_uv
    )
    preprocess_raw(
        raw,
        line_freq=params.line_freq,
        l_freq=params.l_freq,
        h_freq=params.h_freq,
        sfreq=params.sfreq,
        verbose=verbose,
    )
    data_uv = to_microvolts(raw)
    onset, duration, description = _relative_annotations(raw)
    bad = [is_bad_description(d) for d in description]
    spans["bad_annotation"] = np.column_stack([onset, onset + duration])[
        np.asarray(bad, dtype=bool)
    ]
    windows = find_windows(
        data_uv,
        sfreq=params.sfreq,
        length=params.window_samples,
        stride=params.stride_samples,
        flat_uv=params.reject_flat_uv,
        saturation_uv=params.reject_saturation_uv,
        spans=spans,
    )
    kept = windows.kept
    starts = windows.starts[kept]
    counts = windows.counts()
    if counts["rejected"]:
        logger.info(
            "%s: rejected %d of %d windows (%s)",
            name,
            counts["rejected"],
            counts["total"],
            ", ".join(f"{r}: {counts[r]}" for r in ("flat", "saturated", "bad_annotation")),
        )
    psd = _psd(extract_windows(data_uv, starts, params.window_samples), params.sfreq, params.h_freq)
    scaled, _, _ = normalize_channels(clip_amplitude(data_uv, params.clip_uv), params.normalize)
    window_data = extract_windows(scaled, starts, params.window_samples)
    events = window_events(
        onset,
        duration,
        description,
        starts_s=starts / params.sfreq,
        window_s=params.window_s,
        min_overlap_s=params.event_min_overlap_s,
    )
    layout = PatchLayout(params.window_samples, params.patch_len, params.patch_stride)
    patches, stats = window_patches(window_data, layout, dtype=params.dtype)
    part = PatchPart(
        index=_index_table(meta, starts / params.sfreq, events, len(raw.ch_names)),
        channel_sets=[list(raw.ch_names)],
        patches=patches,
        stats=stats,
    )
    event_counts: dict[str, int] = {}
    for labels in events:
        for label in labels:
            event_counts[label] = event_counts.get(label, 0) + 1
    qc = {
        "recording": asdict(meta),
        "source": source,
        "format_sfreq_hz": sfreq_in,
        "n_channels_in": n_channels_in,
        "duration_s": raw.n_times / raw.info["sfreq"],
        "channels": report.to_dict(),
        "windows": counts,
        "events": dict(sorted(event_counts.items())),
        "psd": psd,
    }
    return ProcessedRecording(part=part, layout=layout, qc=qc)


def _index_table(
    meta: RecordingMeta, start_s: np.ndarray, events, n_channels: int
) -> dict[str, np.ndarray]:
    """The recording's windows as ``index.tsv`` columns (see :mod:`neuroai.eeg.store`)."""
    n = len(start_s)

    def repeat(value: str | None) -> np.ndarray:
        return np.array([value or MISSING] * n, dtype=object)

    return {
        "window": np.arange(n, dtype=np.int64),
        "recording": repeat(meta.key),
        "subject": repeat(meta.subject),
        "session": repeat(meta.session),
        "split": repeat(meta.split),
        "label": repeat(meta.label),
        "events": np.array([";".join(labels) for labels in events], dtype=object),
        "channel_set": np.zeros(n, dtype=np.int64),
        "row": np.arange(n, dtype=np.int64) * n_channels,
        "n_channels": np.full(n, n_channels, dtype=np.int64),
        "start_s": np.asarray(start_s, dtype=float),
    }


def recording_inputs(recording) -> list[Path]:
    """The files a recording is read from: the data file and its annotation files.

    For an MNE ``Raw``, the file it was read from (none for one built in memory).
    """
    if not isinstance(recording, str | os.PathLike):
        file = _raw_file(recording)
        return [file] if file is not None and file.is_file() else []
    path = Path(recording)
    found = [path, *annotation_files(path)]
    companions = {".vhdr": (".vmrk", ".eeg"), ".set": (".fdt",)}
    for suffix in companions.get(path.suffix.lower(), ()):
        if path.with_suffix(suffix).is_file():
            found.append(path.with_suffix(suffix))
    return found


def save_recording(
    recording,
    store: str | os.PathLike,
    qc_output: str | os.PathLike,
    *,
    params: EEGParams,
    meta: RecordingMeta | None = None,
    stage: str = "eeg_recording",
    verbose: bool | str | int | None = None,
) -> ProcessedRecording:
    """Process one recording and write its patch store and QC summary.

    Parameters
    ----------
    recording : path-like | mne.io.BaseRaw
        The EEG file, or a continuous MNE ``Raw`` (see :func:`process_recording`).
    store : path-like
        Destination patch-store folder (see :mod:`neuroai.eeg.store`).
    qc_output : path-like
        Destination JSON of the QC summary.
    params : EEGParams
    meta : RecordingMeta | None
    stage : str
        Stage name recorded in the provenance.
    verbose : bool | str | int | None
        MNE's ``verbose`` (see :func:`process_recording`).

    Notes
    -----
    For a ``Raw`` the provenance lists the file it was read from (its checksum
    describes the file, not what was done to the ``Raw`` since), and records
    ``"in_memory": true``.
    """
    result = process_recording(recording, params=params, meta=meta, verbose=verbose)
    write_recording(result, recording, store, qc_output, params=params, stage=stage)
    return result


def write_recording(
    result: ProcessedRecording,
    recording,
    store: str | os.PathLike,
    qc_output: str | os.PathLike,
    *,
    params: EEGParams,
    stage: str = "eeg_recording",
) -> None:
    """Write a processed recording's patch store and QC summary (:func:`save_recording`'s
    second half, for a recording processed elsewhere, e.g. on a Dask worker).

    Parameters
    ----------
    result : ProcessedRecording
        From :func:`process_recording`.
    recording : path-like | mne.io.BaseRaw
        What ``result`` was processed from (its files are the records' inputs).
    store, qc_output, params, stage
        See :func:`save_recording`.
    """
    inputs = recording_inputs(recording)
    in_memory = not isinstance(recording, str | os.PathLike)
    write_patch_store(
        store,
        [result.part],
        layout=result.layout,
        sfreq=params.sfreq,
        dtype=params.dtype,
        params=params.to_dict(),
        stage=stage,
        inputs=inputs,
        extra={
            "recording": result.qc["recording"],
            "channels": result.qc["channels"],
            "windows": result.qc["windows"],
            **({"in_memory": True} if in_memory else {}),
        },
    )
    save_json(qc_output, result.qc, stage=stage, params=params.to_dict(), inputs=inputs)
