"""One reader for every EEG format: :func:`read_raw` returns an MNE Raw.

Formats, by extension (case-insensitive):

==============  =====================================  ===========================
extension       format                                 read with
==============  =====================================  ===========================
``.edf``        EDF / EDF+ (TUH corpus, PhysioNet)     ``mne.io.read_raw_edf``
``.bdf``        BDF (BioSemi 24-bit)                   ``mne.io.read_raw_bdf``
``.fif``        FIF (MNE, Elekta/MEGIN)                ``mne.io.read_raw_fif``
``.vhdr``       BrainVision (.vhdr + .vmrk + .eeg)     ``mne.io.read_raw_brainvision``
``.set``        EEGLAB (.set [+ .fdt])                 ``mne.io.read_raw_eeglab``
==============  =====================================  ===========================

A file inside a BIDS dataset (``sub-<label>/[ses-<label>/]eeg/*_eeg.<ext>`` under
a folder holding ``dataset_description.json``) is read with mne-bids, which
applies ``channels.tsv`` (types, bad channels), ``events.tsv`` (as annotations)
and the sidecar's ``PowerLineFrequency``. An EDF file of the TUH corpus gets the
spans of the TUH annotation files beside it (``.csv``, ``.csv_bi``) as
annotations.

Broken input is refused with a :class:`~neuroai.errors.DataError` that names the
file: a truncated EDF/BDF, duplicate channel names, annotations past the end of
the recording, an unknown extension, or a file the format's reader cannot parse.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from neuroai._logging import get_logger
from neuroai.eeg.edf import check_edf
from neuroai.eeg.tuh import annotation_files, read_tuh_csv, spans_to_annotations
from neuroai.errors import DataError

logger = get_logger(__name__)

FORMATS = {
    ".edf": "EDF",
    ".bdf": "BDF",
    ".fif": "FIF",
    ".vhdr": "BrainVision",
    ".set": "EEGLAB",
}
_BIDS_NAME = re.compile(r"^sub-[A-Za-z0-9]+_.*_eeg$|^sub-[A-Za-z0-9]+_eeg$")
_DUPLICATES = "Channel names are not unique"
_OUTSIDE = ("outside the data range", "outside data range")


def eeg_format(path: str | os.PathLike) -> str:
    """The format of an EEG file from its extension (``EDF``, ``BDF`` ...).

    Raises
    ------
    DataError
        For an extension neuroai does not read, listing those it does.
    """
    path = Path(path)
    name = path.name.lower()
    suffix = ".fif" if name.endswith(".fif.gz") else path.suffix.lower()
    if suffix not in FORMATS:
        listed = ", ".join(f"{ext} ({fmt})" for ext, fmt in FORMATS.items())
        raise DataError(
            f"{path}: unknown EEG file extension {path.suffix!r}. neuroai reads {listed}; "
            "convert the file to one of these (MNE's readers cover many more)."
        )
    return FORMATS[suffix]


def bids_root(path: str | os.PathLike) -> Path | None:
    """The BIDS dataset a file belongs to, or ``None``.

    A file is a BIDS EEG recording when its stem is ``sub-<label>[_...]_eeg``,
    it lies in an ``eeg`` folder, and an ancestor holds ``dataset_description.json``.
    """
    path = Path(path).absolute()
    stem = path.name.split(".")[0]
    if path.parent.name != "eeg" or not _BIDS_NAME.match(stem):
        return None
    for folder in path.parents:
        if (folder / "dataset_description.json").is_file():
            return folder
    return None


def _read_native(path: Path, fmt: str, preload: bool):
    import mne

    readers = {
        "EDF": mne.io.read_raw_edf,
        "BDF": mne.io.read_raw_bdf,
        "FIF": mne.io.read_raw_fif,
        "BrainVision": mne.io.read_raw_brainvision,
        "EEGLAB": mne.io.read_raw_eeglab,
    }
    return readers[fmt](path, preload=preload, verbose="warning")


def _read_bids(path: Path):
    import mne_bids

    bids_path = mne_bids.get_bids_path_from_fname(path, verbose="error")
    return mne_bids.read_raw_bids(bids_path, verbose="warning")


def _attach_tuh_annotations(raw, path: Path) -> None:
    files = annotation_files(path)
    if not files:
        return
    duration = raw.n_times / raw.info["sfreq"]
    extra = None
    for file in files:
        spans = read_tuh_csv(file, duration=duration)
        found = spans_to_annotations(spans, orig_time=raw.annotations.orig_time)
        found.onset += raw.first_time if raw.annotations.orig_time is not None else 0.0
        extra = found if extra is None else extra + found
        logger.debug("%s: %d spans from %s", path.name, len(found), file.name)
    raw.set_annotations(raw.annotations + extra)


def _refuse_from_warnings(path: Path, caught) -> None:
    """Turn MNE's warnings about duplicate names or out-of-range annotations into errors."""
    for warning in caught:
        message = str(warning.message)
        if message.startswith(_DUPLICATES):
            raise DataError(
                f"{path} has duplicate channel names ({message.split(':', 1)[-1].strip()}). "
                "Every channel must have its own name; rename them in the file or exclude it."
            )
        if any(text in message for text in _OUTSIDE):
            raise DataError(
                f"{path}: annotations end past the end of the recording ({message}). The events "
                "belong to another recording, or the recording is truncated; fix the events or "
                "exclude the file."
            )


def read_raw(path: str | os.PathLike, *, preload: bool = False, annotations: bool = True):
    """Read an EEG recording in any supported format as an MNE Raw.

    Parameters
    ----------
    path : path-like
        The recording: ``.edf``, ``.bdf``, ``.fif``, ``.vhdr`` or ``.set``
        (see the module docstring), possibly inside a BIDS dataset.
    preload : bool
        Read the data into memory now (otherwise on first access).
    annotations : bool
        Attach the spans of TUH annotation files beside an EDF file. (BIDS
        ``events.tsv`` and EDF+/BrainVision/EEGLAB events are always read.)

    Returns
    -------
    mne.io.BaseRaw
        Channels and annotations as the file gives them (names are not changed:
        see :func:`neuroai.eeg.standardize_channels`).

    Raises
    ------
    DataError
        Naming the file: missing, unknown extension, truncated EDF/BDF,
        duplicate channel names, annotations that end past the recording, or a
        file the format's reader cannot parse.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"EEG recording {path} does not exist.")
    fmt = eeg_format(path)
    if fmt in ("EDF", "BDF"):
        check_edf(path)
    in_bids = bids_root(path) is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = _read_bids(path) if in_bids else _read_native(path, fmt, preload)
            if annotations and not in_bids and fmt in ("EDF", "BDF"):
                _attach_tuh_annotations(raw, path)
        except DataError:
            raise
        except (ValueError, RuntimeError, OSError, KeyError, IndexError, TypeError) as exc:
            _refuse_from_warnings(path, caught)
            kind = f"BIDS {fmt}" if in_bids else fmt
            raise DataError(f"{path} could not be read as {kind}: {exc}") from exc
    _refuse_from_warnings(path, caught)
    for warning in caught:
        logger.warning("%s: %s", path.name, warning.message)
    if preload and not raw.preload:
        raw.load_data(verbose="error")
    if len(raw.ch_names) == 0:
        raise DataError(f"{path} holds no channels at all.")
    return raw
