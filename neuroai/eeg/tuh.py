"""The TUH EEG corpus layouts and annotation files.

Recordings are EDF files named ``<patient>_<session>_<token>.edf``
(``aaaaaaav_s004_t000.edf``) in folders that carry meaning:

- TUAB: ``[edf/]{train,eval}/{normal,abnormal}/01_tcp_ar/[...]/*.edf``; the
  ``normal``/``abnormal`` folder is the recording's label, ``train``/``eval``
  its split;
- TUAR, TUSZ, TUSL: EDF files with annotation files of the same stem beside
  them, giving labelled time spans.

Annotation files (NEDC ``csv_v1.0.0``) are comma-separated with ``#`` comment
lines on top, among them ``# duration = 1750.0000 secs``, then the header
``channel,start_time,stop_time,label,confidence`` and one row per span:

- ``.csv``: channel-based spans; ``channel`` is a TCP derivation such as
  ``FP1-F7`` (TUAR artifacts ``eyem``, ``chew``, ``shiv``, ``musc``, ``elpp``,
  ``elec`` and combinations such as ``eyem_musc``; TUSZ seizure types such as
  ``fnsz``, ``gnsz``, ``cpsz``; TUSL ``slow`` and ``seiz``);
- ``.csv_bi``: term-based spans over the whole montage (``channel`` is
  ``TERM``), such as TUSZ's binary ``seiz``/``bckg``.

``bckg`` (background) rows mean "no event" and are not turned into annotations.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open

CSV_VERSION = "csv_v1.0.0"
COLUMNS = ("channel", "start_time", "stop_time", "label", "confidence")
ANNOTATION_SUFFIXES = (".csv", ".csv_bi")
BACKGROUND = "bckg"
TERM = "TERM"
SPLITS = {"train": "train", "dev": "dev", "devtest": "dev", "dev_test": "dev", "eval": "eval"}
RECORDING_LABELS = ("normal", "abnormal")
_NAME = re.compile(r"^(?P<subject>[A-Za-z0-9]+)_(?P<session>s\d+)_(?P<token>t\d+)$")
#: Tolerance (seconds) for spans that end just past the last sample.
END_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class TuhSpan:
    """One row of a TUH annotation file.

    Attributes
    ----------
    channel : str
        The derivation (``FP1-F7``) or ``TERM`` for the whole montage.
    start, stop : float
        Seconds from the start of the recording.
    label : str
        ``eyem``, ``musc``, ``seiz``, ``slow``, ``bckg`` ...
    confidence : float
        Annotator confidence in [0, 1].
    """

    channel: str
    start: float
    stop: float
    label: str
    confidence: float = 1.0


def parse_tuh_path(path: str | os.PathLike) -> dict[str, str | None]:
    """What a TUH path says about a recording.

    Returns
    -------
    dict
        ``key`` (the file stem), ``subject``, ``session`` and ``token`` (from a
        ``<patient>_<session>_<token>`` stem, else the stem and ``None``),
        ``split`` (``train``, ``dev``, ``eval`` or ``None``), ``label``
        (``normal``, ``abnormal`` or ``None``) and ``montage`` (the
        ``01_tcp_ar``-style folder or ``None``), from the nearest folders.
    """
    path = Path(path)
    match = _NAME.match(path.stem)
    info: dict[str, str | None] = {
        "key": path.stem,
        "subject": match["subject"] if match else path.stem,
        "session": match["session"] if match else None,
        "token": match["token"] if match else None,
        "split": None,
        "label": None,
        "montage": None,
    }
    for folder in reversed(path.parent.parts):
        name = folder.lower()
        if info["label"] is None and name in RECORDING_LABELS:
            info["label"] = name
        elif info["split"] is None and name in SPLITS:
            info["split"] = SPLITS[name]
        elif info["montage"] is None and re.match(r"^\d\d_tcp_", name):
            info["montage"] = name
    return info


def annotation_files(recording: str | os.PathLike) -> list[Path]:
    """The TUH annotation files beside a recording (same stem), in a fixed order."""
    recording = Path(recording)
    found = []
    for suffix in ANNOTATION_SUFFIXES:
        candidate = recording.with_suffix(suffix)
        if candidate.is_file():
            found.append(candidate)
    seiz = recording.with_name(recording.stem + "_seiz.csv")  # TUAR v3 seizure events
    if seiz.is_file():
        found.append(seiz)
    return found


def read_tuh_csv(path: str | os.PathLike, *, duration: float | None = None) -> list[TuhSpan]:
    """Read a TUH ``.csv`` / ``.csv_bi`` annotation file.

    Parameters
    ----------
    path : path-like
        The annotation file.
    duration : float | None
        Length of the recording in seconds; a span that ends after it (by more
        than half a second) is an error.

    Returns
    -------
    list of TuhSpan
        Every row, ``bckg`` included, in file order.

    Raises
    ------
    DataError
        Naming the file and the line: a missing or different column header,
        a row with the wrong number of fields, times that are not numbers, a
        span that ends before it starts, or a span past the end of the recording.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"TUH annotation file {path} is not UTF-8 text ({exc}).") from exc
    spans: list[TuhSpan] = []
    header_seen = False
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = [field.strip() for field in text.split(",")]
        if not header_seen:
            if tuple(f.lower() for f in fields) != COLUMNS:
                raise DataError(
                    f"TUH annotation file {path}, line {number}: expected the header "
                    f"{','.join(COLUMNS)!r} before any span, got {text!r}."
                )
            header_seen = True
            continue
        if len(fields) != len(COLUMNS):
            raise DataError(
                f"TUH annotation file {path}, line {number}: expected {len(COLUMNS)} "
                f"comma-separated fields ({','.join(COLUMNS)}), got {len(fields)}: {text!r}."
            )
        channel, start_text, stop_text, label, confidence_text = fields
        try:
            start, stop, confidence = float(start_text), float(stop_text), float(confidence_text)
        except ValueError as exc:
            raise DataError(
                f"TUH annotation file {path}, line {number}: start_time, stop_time and "
                f"confidence must be numbers, got {text!r}."
            ) from exc
        if start < 0 or stop <= start:
            raise DataError(
                f"TUH annotation file {path}, line {number}: the span {start}-{stop} s is "
                "empty or starts before the recording."
            )
        if duration is not None and stop > duration + END_TOLERANCE_S:
            raise DataError(
                f"TUH annotation file {path}, line {number}: the span {label!r} ends at "
                f"{stop:.4f} s, past the end of the recording ({duration:.4f} s). The annotation "
                "file belongs to another (longer) recording, or the EDF file is truncated."
            )
        spans.append(TuhSpan(channel, start, stop, label.lower(), confidence))
    if not header_seen:
        raise DataError(
            f"TUH annotation file {path} has no header line {','.join(COLUMNS)!r}; it is not "
            "a csv_v1.0.0 annotation file."
        )
    return spans


def write_tuh_csv(
    path: str | os.PathLike,
    spans: Iterable[TuhSpan],
    *,
    duration: float,
    montage_file: str = "$NEDC_NFC/lib/nedc_eas_default_montage.txt",
) -> Path:
    """Write spans as a TUH ``csv_v1.0.0`` annotation file (atomically).

    Parameters
    ----------
    path : path-like
        ``<stem>.csv`` (channel-based) or ``<stem>.csv_bi`` (term-based).
    spans : iterable of TuhSpan
    duration : float
        Length of the recording in seconds (written in the header).
    """
    path = Path(path)
    buffer = io.StringIO()
    buffer.write(f"# version = {CSV_VERSION}\n# bname = {path.stem}\n")
    buffer.write(f"# duration = {duration:.4f} secs\n# montage_file = {montage_file}\n#\n")
    buffer.write(",".join(COLUMNS) + "\n")
    for span in spans:
        buffer.write(
            f"{span.channel},{span.start:.4f},{span.stop:.4f},{span.label},{span.confidence:.4f}\n"
        )
    with atomic_open(path, "w") as handle:
        handle.write(buffer.getvalue())
    return path


def spans_to_annotations(spans: Sequence[TuhSpan], *, orig_time=None):
    """Turn spans into :class:`mne.Annotations` (``bckg`` dropped).

    The description is the label; the derivation is kept in the annotation's
    ``extras`` as ``{"channel": ...}`` where MNE supports extras (>= 1.10).
    """
    import mne

    kept = [span for span in spans if span.label != BACKGROUND]
    kwargs = {}
    if "extras" in mne.Annotations.__init__.__code__.co_varnames:
        kwargs["extras"] = [{"channel": s.channel, "confidence": s.confidence} for s in kept]
    return mne.Annotations(
        onset=[s.start for s in kept],
        duration=[s.stop - s.start for s in kept],
        description=[s.label for s in kept],
        orig_time=orig_time,
        **kwargs,
    )
