"""One reader for every EEG format MNE reads: :func:`read_raw` returns an MNE Raw.

The file goes to ``mne.io.read_raw``, which picks MNE's reader by extension;
neuroai keeps the list of the extensions that can hold EEG (:data:`FORMATS`),
so an unknown extension is refused with that list rather than a bare
``ValueError``. Formats, by extension (case-insensitive):

===============================  ===============================================
extension                        format (MNE reader)
===============================  ===============================================
``.edf``                         EDF / EDF+ (``read_raw_edf``)
``.bdf``                         BioSemi BDF (``read_raw_bdf``)
``.gdf``                         GDF 1.x/2.x (``read_raw_gdf``)
``.fif``, ``.fif.gz``            FIF, MNE and MEGIN (``read_raw_fif``)
``.vhdr``, ``.ahdr``             BrainVision (``read_raw_brainvision``)
``.set``                         EEGLAB (``read_raw_eeglab``)
``.cnt``                         Neuroscan CNT (``read_raw_cnt``), then ANT eego
``.mff`` (a folder)              EGI MFF (``read_raw_egi``)
``.eeg``                         Nihon Kohden (``read_raw_nihon``)
``.lay``                         Persyst (``read_raw_persyst``)
``.cdt`` (``.dpa``, ``.cef``)    Curry 7/8 (``read_raw_curry``)
``.dat``, ``.dap``, ``.rs3``     Curry 6 and older (``.dat``: then BCI2000)
``.nxe``                         Nexstim eXimia (``read_raw_eximia``)
``.data``                        Nicolet (``read_raw_nicolet``)
``.nedf``                        Neuroelectrics NEDF (``read_raw_nedf``)
``.ns3``                         Blackrock NSx (``read_raw_nsx``)
``.mefd`` (a folder)             MEF3 (``read_raw_mef``)
===============================  ===============================================

Formats MNE reads that hold no EEG (fNIRS, eye tracking, MEG-only systems) and
FieldTrip ``.mat`` files (which need an ``info`` that a path does not carry)
are refused with this list; read such a file with MNE and pass the Raw to
:func:`neuroai.eeg.process_recording`. A BrainVision ``.eeg`` data file is read
through its ``.vhdr`` header (``.eeg`` alone means Nihon Kohden).

A file inside a BIDS dataset (``sub-<label>/[ses-<label>/]eeg/*_eeg.<ext>`` under
a folder holding ``dataset_description.json``) is read with mne-bids, which
applies ``channels.tsv`` (types, bad channels), ``events.tsv`` (as annotations)
and the sidecar's ``PowerLineFrequency``. An EDF file of the TUH corpus gets the
spans of the TUH annotation files beside it (``.csv``, ``.csv_bi``) as
annotations.

Broken input is refused with a :class:`~neuroai.errors.DataError` that names the
file: a truncated EDF/BDF, duplicate channel names, annotations past the end of
the recording, an unknown extension, a file the format's reader cannot parse,
or EEG whose amplitude is implausible in volts (:func:`check_units`: microvolts
stored under a volt label read a million times too large).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from neuroai._logging import get_logger
from neuroai.eeg.edf import check_edf
from neuroai.eeg.tuh import annotation_files, read_tuh_csv, spans_to_annotations
from neuroai.errors import DataError

logger = get_logger(__name__)

#: Extension -> format, for every extension whose MNE reader can hold EEG.
FORMATS = {
    ".edf": "EDF",
    ".bdf": "BDF",
    ".gdf": "GDF",
    ".fif": "FIF",
    ".fif.gz": "FIF",
    ".vhdr": "BrainVision",
    ".ahdr": "BrainVision",
    ".set": "EEGLAB",
    ".cnt": "CNT",
    ".mff": "EGI MFF",
    ".eeg": "Nihon Kohden",
    ".lay": "Persyst",
    ".cdt": "Curry",
    ".cdt.dpa": "Curry",
    ".cdt.cef": "Curry",
    ".dat": "Curry",
    ".dap": "Curry",
    ".rs3": "Curry",
    ".cef": "Curry",
    ".nxe": "eXimia",
    ".data": "Nicolet",
    ".nedf": "NEDF",
    ".ns3": "NSx",
    ".mefd": "MEF3",
}
#: Plausible typical amplitude of scalp EEG, in volts: the median over channels
#: of the robust standard deviation (IQR / 1.349) of a detrended stretch.
PLAUSIBLE_VOLTS = (1e-8, 5e-3)
#: Seconds read from the middle of a recording to check its units.
UNITS_CHECK_S = 10.0
_BIDS_NAME = re.compile(r"^sub-[A-Za-z0-9]+_.*_eeg$|^sub-[A-Za-z0-9]+_eeg$")
_DUPLICATES = "Channel names are not unique"
_OUTSIDE = ("outside the data range", "outside data range")


def _extension(path: Path) -> str:
    """The longest known extension of ``path`` (``.fif.gz``, ``.cdt.dpa``), lower case."""
    name = path.name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    return path.suffix.lower()


def eeg_format(path: str | os.PathLike) -> str:
    """The format of an EEG file from its extension (``EDF``, ``GDF``, ``EGI MFF`` ...).

    Raises
    ------
    DataError
        For an extension neuroai does not read, listing those it does.
    """
    path = Path(path)
    ext = _extension(path)
    if ext not in FORMATS:
        listed = ", ".join(f"{e} ({fmt})" for e, fmt in FORMATS.items())
        raise DataError(
            f"{path}: unknown EEG file extension {path.suffix!r}. neuroai reads, through "
            f"mne.io.read_raw, {listed}. Convert the file to one of these, or read it with "
            "MNE's own reader and pass the Raw to neuroai.eeg.process_recording."
        )
    return FORMATS[ext]


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


def _log_level(verbose) -> int:
    """The logging level MNE's ``verbose`` argument stands for (``None``: MNE's own)."""
    import mne

    if verbose is None:
        return mne.utils.logger.getEffectiveLevel()
    if isinstance(verbose, bool):
        return logging.INFO if verbose else logging.WARNING
    if isinstance(verbose, str):
        return logging.getLevelName(verbose.upper())
    return int(verbose)


def _reader_verbose(verbose) -> int:
    """Read at ``verbose`` but never quieter than warnings: the checks below read them."""
    return min(_log_level(verbose), logging.WARNING)


def _read_native(path: Path, preload: bool, verbose):
    import mne

    return mne.io.read_raw(path, preload=preload, verbose=_reader_verbose(verbose))


def _read_bids(path: Path, verbose):
    import mne_bids

    bids_path = mne_bids.get_bids_path_from_fname(path, verbose="error")
    return mne_bids.read_raw_bids(bids_path, verbose=_reader_verbose(verbose))


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


def check_units(raw, source: str | None = None) -> float | None:
    """Refuse EEG whose amplitude is implausible in volts.

    MNE holds EEG in volts. A file that stores microvolts under a volt label
    (or volts under a microvolt label) reads a million times too large (or too
    small), and every threshold in microvolts would then be wrong without a
    sign. This reads :data:`UNITS_CHECK_S` seconds from the middle of the
    recording, removes each EEG channel's linear trend (DC offsets of
    DC-coupled amplifiers) and takes the median over channels of the robust
    standard deviation (IQR / 1.349); flat channels are left out.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        A recording, data loaded or not (only the stretch is read).
    source : str | None
        The file, for the message (``raw.filenames[0]`` when ``None``).

    Returns
    -------
    float | None
        The typical amplitude in volts, or ``None`` when there is no EEG channel
        with any variation (nothing to judge).

    Raises
    ------
    DataError
        When the amplitude is outside :data:`PLAUSIBLE_VOLTS` (10 nV to 5 mV),
        with the factor that would bring it to a typical 20 uV and how to apply it.
    """
    from scipy.signal import detrend

    picks = [i for i, kind in enumerate(raw.get_channel_types()) if kind == "eeg"]
    if not picks or raw.n_times < 2:
        return None
    sfreq = float(raw.info["sfreq"])
    n = min(raw.n_times, max(2, int(UNITS_CHECK_S * sfreq)))
    start = (raw.n_times - n) // 2
    data = raw.get_data(picks=picks, start=start, stop=start + n)
    data = data[np.isfinite(data).all(axis=1)]
    if data.size == 0:
        return None
    q25, q75 = np.percentile(detrend(data, axis=-1), [25, 75], axis=-1)
    spread = (q75 - q25) / 1.349
    spread = spread[spread > 0]
    if spread.size == 0:
        return None
    typical = float(np.median(spread))
    low, high = PLAUSIBLE_VOLTS
    if low <= typical <= high:
        return typical
    if source is None:
        names = getattr(raw, "filenames", None) or []
        source = str(names[0]) if names and names[0] is not None else "<memory>"
    exponent = int(np.round(np.log10(20e-6 / typical) / 3)) * 3
    reasons = {
        -6: "microvolts stored under a volt label",
        -3: "millivolts stored under a volt label",
        6: "volts stored under a microvolt label",
    }
    reason = reasons.get(exponent, "not EEG in any common unit")
    raise DataError(
        f"{source}: the EEG channels have a typical amplitude of {typical:.3g} V (robust SD "
        f"over {n / sfreq:.3g} s), outside the plausible {low:g} V to {high:g} V of scalp "
        f"EEG; "
        f"likely {reason}. If so, scale it by 1e{exponent}: "
        f"raw = mne.io.read_raw(path, preload=True); "
        f"raw.apply_function(lambda x: x * 1e{exponent}, picks='eeg'); then pass the Raw to "
        "neuroai.eeg.process_recording. Otherwise exclude the recording."
    )


def read_raw(
    path: str | os.PathLike,
    *,
    preload: bool = False,
    annotations: bool = True,
    verbose: bool | str | int | None = None,
):
    """Read an EEG recording in any format MNE reads as an MNE Raw.

    Parameters
    ----------
    path : path-like
        The recording, with an extension of :data:`FORMATS` (see the module
        docstring), possibly inside a BIDS dataset. EGI ``.mff`` and MEF3
        ``.mefd`` recordings are folders.
    preload : bool
        Read the data into memory now (otherwise on first access).
    annotations : bool
        Attach the spans of TUH annotation files beside an EDF file. (BIDS
        ``events.tsv`` and the events of the formats that store them are
        always read.)
    verbose : bool | str | int | None
        MNE's ``verbose``: the level of MNE's messages while reading (``None``:
        MNE's own level, see ``mne.set_log_level``). Warnings are always read:
        the checks below turn some of them into errors.

    Returns
    -------
    mne.io.BaseRaw
        Channels and annotations as the file gives them (names are not changed:
        see :func:`neuroai.eeg.standardize_channels`).

    Raises
    ------
    DataError
        Naming the file: missing, unknown extension, truncated EDF/BDF,
        duplicate channel names, annotations that end past the recording,
        a file the format's reader cannot parse, or implausible units
        (:func:`check_units`).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"EEG recording {path} does not exist.")
    fmt = eeg_format(path)
    if fmt in ("EDF", "BDF"):
        check_edf(path)
    in_bids = bids_root(path) is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = _read_bids(path, verbose) if in_bids else _read_native(path, preload, verbose)
            if annotations and not in_bids and fmt in ("EDF", "BDF"):
                _attach_tuh_annotations(raw, path)
        except DataError:
            raise
        except (ValueError, RuntimeError, OSError, KeyError, IndexError, TypeError) as exc:
            _refuse_from_warnings(path, caught)
            kind = f"BIDS {fmt}" if in_bids else fmt
            hint = (
                " A BrainVision recording is read through its .vhdr header."
                if _extension(path) == ".eeg"
                else ""
            )
            raise DataError(f"{path} could not be read as {kind}: {exc}.{hint}") from exc
    _refuse_from_warnings(path, caught)
    if _log_level(verbose) <= logging.WARNING:
        for warning in caught:
            logger.warning("%s: %s", path.name, warning.message)
    if preload and not raw.preload:
        raw.load_data(verbose="error")
    if len(raw.ch_names) == 0:
        raise DataError(f"{path} holds no channels at all.")
    check_units(raw, str(path))
    return raw
