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
    Any folder of EEG files in the formats :func:`neuroai.eeg.read_raw` reads,
    one entry per recording: the companions of a multi-file format are not
    listed again (a BrainVision ``.eeg`` beside its ``.vhdr``, a Persyst ``.dat``
    beside its ``.lay``, Curry ``.dap``/``.rs3`` beside the ``.dat`` and ``.cef``
    beside the ``.cdt``); EGI ``.mff`` and MEF3 ``.mefd`` folders are recordings.

Any layout may take a labels table (``labels``, see :mod:`neuroai.datasets.labels`):
its label column becomes the recording label, and its ``split`` column the split,
over what the folders or ``participants.tsv`` say.

Keys (file stems for ``tuh`` and ``eeg_files``, the BIDS entities for
``bids_eeg``) must be unique in a dataset: they name the per-recording outputs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from neuroai.eeg.readers import FORMATS
from neuroai.eeg.recording import RecordingMeta
from neuroai.errors import ConfigError, DataError, check_option, did_you_mean

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


#: Companion extension -> extensions of a sibling (same stem) that is the recording.
_COMPANION_OF = {
    ".eeg": (".vhdr", ".ahdr"),
    ".dat": (".lay",),
    ".dap": (".dat",),
    ".rs3": (".dat", ".dap"),
    ".cef": (".cdt",),
    ".dpa": (".cdt",),
}
_FOLDER_FORMATS = (".mff", ".mefd")


def _is_companion(path: Path) -> bool:
    """A file another file of the same recording is read through."""
    siblings = _COMPANION_OF.get(path.suffix.lower(), ())
    stem = path.parent / path.stem
    return any(
        stem.with_suffix(ext).is_file() or stem.with_suffix(ext.upper()).is_file()
        for ext in siblings
    )


def _eeg_files(root: Path, suffixes) -> list[Path]:
    found = []
    for p in root.rglob("*"):
        if p.name.startswith(".") or any(
            part.lower().endswith(_FOLDER_FORMATS) for part in p.relative_to(root).parts[:-1]
        ):
            continue
        folder_format = p.is_dir() and p.suffix.lower() in _FOLDER_FORMATS
        if (p.is_file() or folder_format) and p.name.lower().endswith(suffixes):
            if not _is_companion(p):
                found.append(p)
    return sorted(found)


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
    labels: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> list[EEGRecording]:
    """List the recordings of a dataset, sorted by key.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    layout : {"tuh", "bids_eeg", "eeg_files"}
        How the folder is organised (see the module docstring).
    label_column : str | None
        The column that holds each recording's label: of ``labels`` when it has
        the column (or when ``labels`` has only one label column), else (``bids_eeg``)
        of ``participants.tsv``.
    subjects : list of str | None
        Keep only these subjects (TUH patient ids, BIDS labels without ``sub-``).
    labels : path-like | None
        A labels table (:func:`neuroai.datasets.labels.read_labels`), keyed by
        ``recording`` or ``subject`` [+ ``session``]; it wins over the folders and
        participants.tsv for the label and the split of the recordings it names.
    dataset : str | None
        The dataset's name, for messages.

    Raises
    ------
    ConfigError
        A ``label_column`` that names no column (of the labels table or
        ``participants.tsv``), or that asks for a table the dataset does not have.
    DataError
        Missing folder, no recordings, duplicate keys, or a labels table that
        :func:`~neuroai.datasets.labels.read_labels` refuses.
    """
    check_option("layout", layout, LAYOUTS)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EEG dataset folder {root} does not exist.")
    if label_column is not None and labels is None and layout != "bids_eeg":
        raise ConfigError(
            f"label_column {label_column!r} names a column of a labels table (or, for "
            f"bids_eeg, of participants.tsv), but this {layout} dataset has no labels table: "
            "give one (labels: path.tsv, docs/labels.md) or drop label_column."
        )
    table = None
    if labels is not None:
        from neuroai.datasets.labels import read_labels

        table = read_labels(labels, layout=layout, dataset=dataset)
    if layout == "bids_eeg":
        in_table = table is not None and (label_column in table.columns or label_column is None)
        recordings = _bids_recordings(root, None if in_table else label_column)
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
    if table is not None:  # checked against every recording, before the subject filter
        recordings = _apply_labels(recordings, table, label_column, layout, dataset)
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


def _apply_labels(recordings, table, label_column, layout, dataset) -> list[EEGRecording]:
    """Recording labels and splits from a labels table (checked against the recordings)."""
    import pandas as pd

    from neuroai.datasets.labels import SPLIT_COLUMN, check_identities, choose_label_column

    known = pd.DataFrame(
        [
            {"recording": r.key, "subject": r.meta.subject or "", "session": r.meta.session or ""}
            for r in recordings
        ]
    )
    check_identities(table, known, dataset=dataset)
    if layout == "bids_eeg" and label_column is not None and label_column not in table.columns:
        column = None  # the label comes from participants.tsv
    else:
        column = choose_label_column(table, label_column, dataset=dataset)
    keys = list(table.index.names)
    out = []
    for recording in recordings:
        meta = recording.meta
        if keys == ["recording"]:
            row = table.loc[meta.key] if meta.key in table.index else None
        elif keys == ["subject", "session"]:
            exact = (meta.subject, meta.session or "")
            whole = (meta.subject, "")
            row = next((table.loc[k] for k in (exact, whole) if k in table.index), None)
        else:
            row = table.loc[meta.subject] if meta.subject in table.index else None
        if row is not None:
            label = row[column] if column is not None else None
            split = row[SPLIT_COLUMN] if SPLIT_COLUMN in table.columns else None
            meta = replace(
                meta,
                label=meta.label if column is None or pd.isna(label) else str(label),
                split=meta.split if split is None or pd.isna(split) else str(split),
            )
        out.append(EEGRecording(recording.path, meta))
    return out


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
            raise ConfigError(
                f"{root} has no participants.tsv, but label_column={label_column!r} asks for "
                "one. Drop label_column, or give a labels table (labels: path.tsv)."
            )
        table = pd.read_csv(table_path, sep="\t", dtype=str, keep_default_na=False)
        if label_column not in table.columns:
            raise ConfigError(
                f"label_column {label_column!r} is not a column of {table_path}; columns: "
                f"{list(table.columns)}.{did_you_mean(label_column, table.columns)}"
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
