"""EDF/EDF+ and BDF files: header checks before reading, and writing.

MNE reads a truncated EDF file without complaint (it infers fewer records from
the file size and warns), and renames duplicate channel labels with running
numbers. Both hide broken files in a large corpus, so :func:`check_edf` reads the
fixed-layout header itself and refuses such files with a message that names the
file and the problem.

:func:`write_edf` writes a Raw as EDF through ``mne.export`` (which needs
``edfio``), with the physical range given in microvolts: passing volts would
clip every channel silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroai.errors import DataError


@dataclass(frozen=True)
class EdfHeader:
    """The parts of an EDF/BDF header needed to check a file.

    Attributes
    ----------
    path : Path
    kind : str
        ``"EDF"`` or ``"BDF"``.
    header_bytes : int
    n_records : int
        Number of data records (-1 when the writer did not know it).
    record_duration : float
        Seconds per data record.
    labels : list of str
        Signal labels, stripped of padding.
    samples_per_record : list of int
        Samples per data record, one per signal.
    """

    path: Path
    kind: str
    header_bytes: int
    n_records: int
    record_duration: float
    labels: list[str]
    samples_per_record: list[int]

    @property
    def bytes_per_sample(self) -> int:
        return 3 if self.kind == "BDF" else 2

    @property
    def record_bytes(self) -> int:
        return sum(self.samples_per_record) * self.bytes_per_sample

    @property
    def expected_size(self) -> int:
        """File size the header promises, in bytes (-1 when unknown)."""
        if self.n_records < 0:
            return -1
        return self.header_bytes + self.n_records * self.record_bytes


def _field(raw: bytes, start: int, width: int, path: Path, what: str) -> str:
    try:
        return raw[start : start + width].decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not a valid EDF/BDF file: the header field {what!r} holds non-ASCII bytes."
        ) from exc


def _number(text: str, path: Path, what: str, cast=int):
    try:
        return cast(text)
    except ValueError as exc:
        raise DataError(
            f"{path} is not a valid EDF/BDF file: the header field {what!r} is {text!r}, "
            "not a number."
        ) from exc


def read_edf_header(path: str | os.PathLike) -> EdfHeader:
    """Read the fixed-layout header of an EDF/EDF+ or BDF file.

    Raises
    ------
    DataError
        When the file is shorter than its header or the header is malformed.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        fixed = handle.read(256)
        if len(fixed) < 256:
            raise DataError(
                f"{path} is not a valid EDF/BDF file: it is {len(fixed)} bytes long, shorter "
                "than the 256-byte header. The file is truncated or empty."
            )
        kind = "BDF" if fixed[:1] == b"\xff" else "EDF"
        header_bytes = _number(_field(fixed, 184, 8, path, "header bytes"), path, "header bytes")
        n_signals = _number(_field(fixed, 252, 4, path, "number of signals"), path, "ns")
        n_records = _number(_field(fixed, 236, 8, path, "number of records"), path, "records")
        duration = _number(
            _field(fixed, 244, 8, path, "record duration"), path, "record duration", float
        )
        if n_signals < 1 or header_bytes != 256 * (n_signals + 1):
            raise DataError(
                f"{path} is not a valid EDF/BDF file: the header says {n_signals} signals and "
                f"{header_bytes} header bytes (expected 256 x (signals + 1))."
            )
        signals = handle.read(header_bytes - 256)
    if len(signals) < header_bytes - 256:
        raise DataError(
            f"{path} is truncated inside its header ({256 + len(signals)} of {header_bytes} "
            "header bytes). Copy the file again or exclude it."
        )
    labels = [_field(signals, 16 * i, 16, path, "label") for i in range(n_signals)]
    offset = n_signals * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
    samples = [
        _number(_field(signals, offset + 8 * i, 8, path, "samples"), path, "samples per record")
        for i in range(n_signals)
    ]
    return EdfHeader(path, kind, header_bytes, n_records, duration, labels, samples)


def check_edf(path: str | os.PathLike) -> EdfHeader:
    """Refuse a truncated EDF/BDF file or one with duplicate channel labels.

    Parameters
    ----------
    path : path-like
        An ``.edf`` or ``.bdf`` file.

    Returns
    -------
    EdfHeader

    Raises
    ------
    DataError
        Naming the file and the problem: shorter than its header promises
        (truncated copy or interrupted recording), or the same label twice.
    """
    header = read_edf_header(path)
    size = Path(path).stat().st_size
    expected = header.expected_size
    if expected >= 0 and size < expected:
        held = (size - header.header_bytes) / header.record_bytes if header.record_bytes else 0
        raise DataError(
            f"{path} is truncated: its header promises {header.n_records} data records "
            f"({expected} bytes) but the file holds {size} bytes ({max(held, 0):.1f} records). "
            "It was cut short (an interrupted copy, download or recording). Copy it again, "
            "or exclude it."
        )
    if header.n_records < 0 and header.record_bytes:
        if (size - header.header_bytes) % header.record_bytes:
            raise DataError(
                f"{path} is truncated: its data ({size - header.header_bytes} bytes) are not a "
                f"whole number of {header.record_bytes}-byte records."
            )
    seen: dict[str, int] = {}
    for label in header.labels:
        seen[label] = seen.get(label, 0) + 1
    duplicates = sorted(label for label, count in seen.items() if count > 1)
    if duplicates:
        raise DataError(
            f"{path} has duplicate channel names {duplicates}: every channel must have its own "
            "label. Rename the channels in the file (or exclude it); neuroai does not guess "
            "which of two same-named channels is the electrode."
        )
    return header


def write_edf(
    path: str | os.PathLike,
    data_uv: np.ndarray,
    *,
    sfreq: float,
    ch_names: list[str],
    physical_range_uv: tuple[float, float] = (-3000.0, 3000.0),
    annotations=None,
) -> Path:
    """Write signals in microvolts as an EDF file (16-bit, through ``mne.export``).

    Parameters
    ----------
    path : path-like
        Destination ``.edf``; written through a temporary file in the same folder.
    data_uv : ndarray, shape (n_channels, n_times)
        Signals in microvolts; values outside ``physical_range_uv`` are clipped
        to it (as an amplifier saturates).
    sfreq : float
        Sampling frequency in Hz.
    ch_names : list of str
        Channel labels as they should appear in the file (``EEG FP1-REF``).
    physical_range_uv : (float, float)
        Physical minimum and maximum in microvolts, shared by all channels.
    annotations : mne.Annotations | None
        Written as EDF+ annotations.
    """
    import mne

    from neuroai.io.atomic import atomic_path

    data_uv = np.clip(np.asarray(data_uv, dtype=float), *physical_range_uv)
    info = mne.create_info(list(ch_names), float(sfreq), "eeg")
    raw = mne.io.RawArray(data_uv * 1e-6, info, verbose="error")
    if annotations is not None:
        raw.set_annotations(annotations)
    with atomic_path(path) as tmp:
        mne.export.export_raw(
            tmp,
            raw,
            fmt="edf",
            physical_range=physical_range_uv,
            overwrite=True,
            verbose="error",
        )
    return Path(path)
