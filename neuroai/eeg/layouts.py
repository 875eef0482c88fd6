"""Finding the recordings of an EEG dataset on disk.

Layouts:

``tuh``
    The TUH EEG corpus and its subsets (TUAB, TUAR, TUSZ, TUSL), or anything laid
    out like them: every ``*.edf`` below the root; ``normal``/``abnormal`` folders
    give the recording label and ``train``/``dev``/``eval`` folders the split
    (see :func:`neuroai.eeg.tuh.parse_tuh_path`).
``bids_eeg``
    A BIDS dataset: ``sub-*/[ses-*/]eeg/*_eeg.{edf,bdf,vhdr,set,fif}`` found with
    mne-bids; a column of ``participants.tsv`` may give the recording label.
``eeg_files``
    Any folder of EEG files in the formats :func:`neuroai.eeg.read_raw` reads.

Keys (file stems for ``tuh`` and ``eeg_files``, the BIDS entities for
``bids_eeg``) must be unique in a dataset: they name the per-recording outputs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from neuroai.eeg.readers import FORMATS
from neuroai.eeg.recording import RecordingMeta
from neuroai.errors import DataError, check_option

LAYOUTS = ("tuh", "bids_eeg", "eeg_files")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class EEGRecording:
    """One recording of a dataset: where it is and what is known about it."""

    path: Path
    meta: RecordingMeta

    @property
    def key(self) -> str:
        return self.meta.key


def _eeg_files(root: Path, suffixes) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    )


def _check_keys(recordings: list[EEGRecording], root: Path) -> list[EEGRecording]:
    seen: dict[str, Path] = {}
    for recording in recordings:
        if not _KEY.match(recording.key):
            raise DataError(
                f"Recording {recording.path} has the key {recording.key!r}; keys (file stems) "
                "must be letters, digits, '_' and '-'. Rename the file."
            )
        if recording.key in seen:
            raise DataError(
                f"Two recordings under {root} have the key {recording.key!r}: "
                f"{seen[recording.key]} and {recording.path}. Keys name the outputs and must be "
                "unique; rename one of them."
            )
        seen[recording.key] = recording.path
    return recordings


def index_eeg_recordings(
    root: str | os.PathLike,
    layout: str,
    *,
    label_column: str | None = None,
    subjects: list[str] | None = None,
) -> list[EEGRecording]:
    """List the recordings of a dataset, sorted by key.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    layout : {"tuh", "bids_eeg", "eeg_files"}
        How the folder is organised (see the module docstring).
    label_column : str | None
        ``bids_eeg`` only: the column of ``participants.tsv`` that holds each
        subject's recording label.
    subjects : list of str | None
        Keep only these subjects (TUH patient ids, BIDS labels without ``sub-``).

    Raises
    ------
    DataError
        Missing folder, no recordings, duplicate keys, or a missing label column.
    """
    check_option("layout", layout, LAYOUTS)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EEG dataset folder {root} does not exist.")
    if layout == "bids_eeg":
        recordings = _bids_recordings(root, label_column)
    else:
        suffixes = (".edf",) if layout == "tuh" else tuple(FORMATS)
        recordings = [
            EEGRecording(path, RecordingMeta.from_path(path)) for path in _eeg_files(root, suffixes)
        ]
        if layout == "eeg_files":
            recordings = [
                EEGRecording(r.path, RecordingMeta(key=r.key, subject=r.meta.subject))
                for r in recordings
            ]
    if subjects is not None:
        wanted = set(subjects)
        recordings = [r for r in recordings if r.meta.subject in wanted]
    if not recordings:
        raise DataError(
            f"No EEG recordings found under {root} for layout {layout!r}"
            + (f" and subjects {sorted(subjects)}" if subjects is not None else "")
            + "."
        )
    return sorted(_check_keys(recordings, root), key=lambda r: r.key)


def _bids_recordings(root: Path, label_column: str | None) -> list[EEGRecording]:
    import mne_bids
    import pandas as pd

    paths = mne_bids.find_matching_paths(
        root,
        datatypes="eeg",
        suffixes="eeg",
        extensions=[".edf", ".bdf", ".vhdr", ".set", ".fif"],
    )
    labels: dict[str, str] = {}
    if label_column is not None:
        table_path = root / "participants.tsv"
        if not table_path.is_file():
            raise DataError(
                f"{root} has no participants.tsv, but label_column={label_column!r} asks for one."
            )
        table = pd.read_csv(table_path, sep="\t", dtype=str, keep_default_na=False)
        if label_column not in table.columns:
            raise DataError(
                f"{table_path} has no column {label_column!r}; columns: {list(table.columns)}."
            )
        labels = {
            pid.removeprefix("sub-"): value
            for pid, value in zip(table["participant_id"], table[label_column], strict=True)
            if value not in ("", "n/a")
        }
    recordings = []
    for bids_path in paths:
        path = Path(bids_path.fpath)
        meta = RecordingMeta.from_path(path)
        meta = RecordingMeta(
            key=meta.key,
            subject=meta.subject,
            session=meta.session,
            label=labels.get(meta.subject or ""),
        )
        recordings.append(EEGRecording(path, meta))
    return recordings
