"""One EEG recording to windows and spectral patch sequences (a patch store + QC).

Reads any supported format (EDF/EDF+, BDF, FIF, BrainVision, EEGLAB, BIDS, TUH with
its .csv/.csv_bi annotations), standardises the channels, filters, resamples, cuts
windows (rejecting flat and saturated ones), labels them and writes their patches.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# MNE imports numba (~0.2 s per job) when present; nothing here needs it, and this
# stage runs once per recording.
os.environ.setdefault("MNE_USE_NUMBA", "false")

from neuroai.eeg.params import EEGParams
from neuroai.eeg.recording import (
    ProcessedRecording,
    RecordingMeta,
    process_recording,
    save_recording,
)
from neuroai.pipelines._stage import execute, stage_parser

_D = EEGParams()


def run(
    recording: str | Path,
    store: str | Path,
    qc: str | Path,
    *,
    meta: dict | None = None,
    montage: str | None = _D.montage,
    missing_channels: str = _D.missing_channels,
    max_interpolated: float = _D.max_interpolated,
    reference: str | None = _D.reference,
    line_freq: float | None = _D.line_freq,
    l_freq: float = _D.l_freq,
    h_freq: float = _D.h_freq,
    sfreq: float = _D.sfreq,
    clip_uv: float | None = _D.clip_uv,
    normalize: str = _D.normalize,
    window_s: float = _D.window_s,
    stride_s: float = _D.stride_s,
    reject_flat_uv: float = _D.reject_flat_uv,
    reject_saturation_uv: float = _D.reject_saturation_uv,
    event_min_overlap_s: float = _D.event_min_overlap_s,
    patch_len: int = _D.patch_len,
    patch_stride: int = _D.patch_stride,
    dtype: str = _D.dtype,
) -> Path:
    """Process one recording into a patch store and a QC summary.

    Parameters
    ----------
    recording : path-like
        The EEG file.
    store : path-like
        Destination patch-store folder (format: :mod:`neuroai.eeg.store`).
    qc : path-like
        Destination QC summary (JSON).
    meta : dict | None
        ``key``, ``subject``, ``session``, ``split``, ``label`` of the recording
        (inferred from the path when ``None``).
    montage, missing_channels, ..., dtype
        See :class:`neuroai.eeg.EEGParams`.

    Returns
    -------
    Path
        ``store``.
    """
    # The keyword arguments named like EEGParams fields are the stage's --params.
    params = EEGParams.from_mapping(
        {name: value for name, value in locals().items() if name in EEGParams.field_names()}
    )
    info = RecordingMeta(**meta) if meta else None
    save_recording(recording, store, qc, params=params, meta=info)
    return Path(store)


def process_one(recording: dict, *, params: EEGParams) -> ProcessedRecording:
    """One recording processed, not written: the task of the batch stage
    (neuroai.pipelines.eeg_recording_batch), which writes it as :func:`run` does.

    Parameters
    ----------
    recording : dict
        ``path`` (absolute: workers may run elsewhere), ``source`` (the path as given,
        which the QC summary names) and ``meta`` (a
        :class:`~neuroai.eeg.recording.RecordingMeta`).
    params : EEGParams

    Returns
    -------
    ProcessedRecording
    """
    result = process_recording(recording["path"], params=params, meta=recording["meta"])
    result.qc["source"] = recording["source"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eeg_recording")
    parser.add_argument("--recording", required=True, help="the EEG file")
    parser.add_argument("--store", required=True, help="destination patch-store folder")
    parser.add_argument("--qc", required=True, help="destination QC summary (.json)")
    parser.add_argument(
        "--meta", default=None, help="recording key, subject, session, split, label as JSON"
    )
    args = parser.parse_args(argv)
    meta = json.loads(args.meta) if args.meta else None
    execute(args, run, args.recording, args.store, args.qc, meta=meta)


if __name__ == "__main__":
    main(sys.argv[1:])
