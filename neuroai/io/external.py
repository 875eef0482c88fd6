"""Inputs the pipeline did not write: read safely, named in the provenance of what is made.

One rule for every stage whose input may come from outside (an FC or dynamic-FC matrix,
region time series, EEG windows, a token array, a NIfTI volume):

- A file **with** a provenance record was written by a neuroai stage and must still match
  it: a changed, half-written or foreign artifact is refused exactly as
  :func:`neuroai.io.check_artifact` refuses it (size, stage, parameters).
- A file **without** one is an *external input*. It is read as given, never unpickled
  (``numpy.load(allow_pickle=False)``), and checked for what the stage needs (a plain
  numeric array of the expected dimensions, no NaN or Inf); a log line says it was read as
  an external input, and its path, size and SHA-256 (:func:`external_inputs`) go into
  ``extra.external_inputs`` of every artifact the stage writes from it (and, like every
  input, into ``inputs``). Files larger than
  :data:`~neuroai.io.provenance.CHECKSUM_LIMIT` are described by size and mtime instead.

A file that cannot be read as such (truncated, an ``.npz`` archive, an object array that
would need unpickling, the wrong shape, NaN) is refused before anything is written, with a
:class:`~neuroai.errors.DataError` naming the file, the problem and the fix.

Intermediate artifacts whose meaning lives in their record (frames and token stores, EEG
patch stores, graph datasets, checkpoints) have no external form: they stay strict.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroai._logging import get_logger
from neuroai.errors import DataError
from neuroai.io.provenance import file_digest, provenance_path

logger = get_logger(__name__)

#: Suffixes whose provenance may also sit in a BIDS JSON sidecar (``"Provenance"`` key).
_BIDS_SUFFIXES = (".tsv", ".tsv.gz", ".nii", ".nii.gz")
#: Values checked for NaN and Inf at a time (bounds the memory of the check).
_CHUNK = 1 << 22


def has_record(path: str | os.PathLike) -> bool:
    """Whether ``path`` claims to be a neuroai artifact (it has a provenance record).

    True when its ``.prov.json`` sidecar exists (readable or not: a broken record is
    refused by the reader, never taken as "no record"), or, for region time series and
    images, when its BIDS JSON sidecar has a ``"Provenance"`` entry.
    """
    path = Path(path)
    if provenance_path(path).exists():
        return True
    for suffix in _BIDS_SUFFIXES:
        if path.name.endswith(suffix):
            bids = path.with_name(path.name[: -len(suffix)] + ".json")
            if not bids.is_file():
                return False
            try:
                return "Provenance" in json.loads(bids.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
                return False
    return False


def external_inputs(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Describe the inputs among ``paths`` that the pipeline did not write.

    Parameters
    ----------
    paths : iterable of path-like
        A stage's input files.

    Returns
    -------
    list of dict
        For each file (or folder) without a provenance record (:func:`has_record`), in order:
        ``{"path", "size", "sha256"}`` (``"mtime"`` instead of ``"sha256"`` above
        :data:`~neuroai.io.provenance.CHECKSUM_LIMIT`). This is what a stage records as
        ``extra.external_inputs``.
    """
    found = []
    for path in paths:
        if has_record(path):
            continue
        if not Path(path).exists():
            raise DataError(f"Input {path} does not exist.")
        digest = file_digest(path)
        logger.info(
            "%s has no provenance record: read as an external input (%s).",
            path,
            f"sha256 {digest['sha256']}" if "sha256" in digest else f"{digest['size']} bytes",
        )
        found.append(digest)
    return found


def _check_shape(path: Path, array: np.ndarray, ndim, square: bool, what: str) -> None:
    wanted = (ndim,) if isinstance(ndim, int) else tuple(ndim or ())
    if wanted and array.ndim not in wanted:
        dims = " or ".join(str(n) for n in wanted)
        raise DataError(
            f"{path} holds an array of shape {array.shape} ({array.ndim} dimensions); "
            f"{what} has {dims} dimensions. Save the array in that shape (numpy.save)."
        )
    if square and (array.ndim < 2 or array.shape[-1] != array.shape[-2]):
        raise DataError(
            f"{path} holds an array of shape {array.shape}; {what} is square in its last two "
            "axes (regions x regions)."
        )


def _check_finite(path: Path, array: np.ndarray) -> None:
    """Refuse NaN and Inf, reading a memory map a chunk at a time."""
    if array.dtype.kind != "f" or array.size == 0:
        return
    flat = array.reshape(-1)
    first, n_bad = None, 0
    for start in range(0, flat.size, _CHUNK):
        bad = ~np.isfinite(flat[start : start + _CHUNK])
        count = int(bad.sum())
        if count and first is None:
            first = np.unravel_index(start + int(np.argmax(bad)), array.shape)
        n_bad += count
    if n_bad:
        raise DataError(
            f"{path} contains {n_bad} NaN or Inf values (the first at index "
            f"{tuple(int(i) for i in first)}). Replace or leave out what they stand for "
            "(for example a region without signal) and save the array again."
        )


def _read_external(
    path: str | os.PathLike,
    *,
    mmap: bool = True,
    ndim: int | Sequence[int] | None = None,
    square: bool = False,
    what: str = "the input",
) -> np.ndarray:
    """Read an ``.npy`` file the pipeline did not write, and check it (see the module)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Input {path} does not exist.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:4] == b"PK\x03\x04":
        raise DataError(
            f"{path} is an .npz archive; give one .npy file per array (numpy.save), not "
            "numpy.savez."
        )
    if magic != b"\x93NUMPY":
        kind = "a pickle" if magic[:1] == b"\x80" else "not an .npy file"
        raise DataError(
            f"{path} has no provenance record, so it was read as an external input, but it is "
            f"{kind} (it does not start as numpy.save writes one). Save the array with "
            "numpy.save(path, array): neuroai never unpickles a file."
        )
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if "object" in str(exc).lower():
            raise DataError(
                f"{path} holds Python objects (an object array), which would have to be "
                "unpickled to be read: neuroai never unpickles a file. Save an array of "
                "numbers instead (numpy.save(path, numpy.asarray(values, dtype=float)))."
            ) from exc
        raise DataError(
            f"{path} has no provenance record, so it was read as an external input, but it is "
            f"not a plain numeric .npy array ({exc}). Save it with numpy.save(path, array) "
            "from an array of numbers: neuroai never unpickles a file."
        ) from exc
    if array.dtype.kind not in "iuf":
        raise DataError(
            f"{path} holds {array.dtype} values; {what} is an array of real numbers "
            "(integers or floats)."
        )
    _check_shape(path, array, ndim, square, what)
    _check_finite(path, array)
    return array


def load_input_array(
    path: str | os.PathLike,
    *,
    stage: str | None = None,
    params: Mapping[str, Any] | None = None,
    verify: str = "size",
    mmap: bool = True,
    ndim: int | Sequence[int] | None = None,
    square: bool = False,
    what: str = "the input",
) -> np.ndarray:
    """Read an ``.npy`` input by the rule: an artifact of ours (checked) or an external one.

    :func:`read_input_array` also describes an external file; this reads only, for a
    per-run task whose caller records the cohort's :func:`external_inputs` once.

    Parameters
    ----------
    path : path-like
        The array.
    stage, params, verify
        What an artifact of ours must have been made by and with
        (:func:`neuroai.io.check_artifact`); not used for an external file.
    mmap : bool
        Memory-map it read-only instead of reading it into memory.
    ndim : int | sequence of int | None
        The number(s) of dimensions it may have (checked either way).
    square : bool
        Its last two axes must be equal (connectivity matrices).
    what : str
        What the stage expects, for the messages (``"a connectivity matrix"``).

    Returns
    -------
    ndarray
        Memory-mapped by default, never unpickled.

    Raises
    ------
    ArtifactError, ProvenanceError
        The file has a record it does not match (changed, half written, another stage or
        other parameters).
    DataError
        An external file that is not a plain, finite array of real numbers of the expected
        shape (truncated, an ``.npz`` archive, an object array, text, NaN or Inf).
    """
    from neuroai.io.store import load_array

    path = Path(path)
    if not has_record(path):
        return _read_external(path, mmap=mmap, ndim=ndim, square=square, what=what)
    array = load_array(path, stage=stage, params=params, mmap=mmap, verify=verify)
    _check_shape(path, array, ndim, square, what)
    return array


def read_input_array(path: str | os.PathLike, **options: Any) -> tuple[np.ndarray, dict | None]:
    """Read an ``.npy`` input (:func:`load_input_array`) and describe it if it is external.

    Parameters
    ----------
    path : path-like
        The array.
    **options
        ``stage``, ``params``, ``verify``, ``mmap``, ``ndim``, ``square``, ``what`` of
        :func:`load_input_array`.

    Returns
    -------
    array : ndarray
        Memory-mapped by default, never unpickled.
    external : dict | None
        ``None`` for an artifact of ours; for a file without a provenance record, its
        description for ``extra.external_inputs`` (:func:`external_inputs`).
    """
    array = load_input_array(path, **options)
    return array, (None if has_record(path) else external_inputs([path])[0])


def check_input_volume(
    path: str | os.PathLike, *, what: str = "a 3D or 4D NIfTI volume"
) -> dict | None:
    """Check a NIfTI input by the rule, before a stage reads it its own way.

    A volume with a provenance record must match it (:func:`neuroai.io.check_artifact`);
    one without is an external input: it must open with nibabel, be 3D or 4D, and hold
    finite numbers in full (a truncated ``.nii.gz`` is found here, not half way through a
    stage's outputs).

    Parameters
    ----------
    path : path-like
        A ``.nii`` or ``.nii.gz`` file.
    what : str
        What the stage expects, for the messages.

    Returns
    -------
    dict | None
        ``None`` for an artifact of ours; for an external volume, its description for
        ``extra.external_inputs`` (:func:`external_inputs`).

    Raises
    ------
    ArtifactError, ProvenanceError
        The volume has a record it does not match.
    DataError
        An external volume that does not open, is not 3D or 4D, or holds NaN or Inf.
    """
    import nibabel as nib

    from neuroai.io.store import check_artifact

    path = Path(path)
    if provenance_path(path).exists():
        check_artifact(path)
        return None
    if has_record(path):  # its record is in its BIDS sidecar
        return None
    if not path.is_file():
        raise DataError(f"Input {path} does not exist.")
    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj)
    except Exception as exc:  # nibabel, gzip and zlib each raise their own kind
        raise DataError(
            f"{path} has no provenance record, so it was read as an external input, but it "
            f"cannot be read as a NIfTI image ({type(exc).__name__}: {exc}). It may be "
            "truncated or not a NIfTI file: write it again (nibabel.save) and check that it "
            "opens."
        ) from exc
    if data.ndim not in (3, 4):
        raise DataError(
            f"{path} holds an image of shape {data.shape}; {what} has 3 or 4 dimensions."
        )
    if data.dtype.kind not in "iuf":
        raise DataError(f"{path} holds {data.dtype} values; {what} holds real numbers.")
    _check_finite(path, data)
    return external_inputs([path])[0]


def check_inputs(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Check input files by the rule before a stage reads them its own way.

    NIfTI volumes by :func:`check_input_volume`, ``.npy`` arrays by
    :func:`read_input_array`, other files only described when external.

    Returns
    -------
    list of dict
        The external ones' descriptions, in order (:func:`external_inputs`).
    """
    found = []
    for path in map(Path, paths):
        if path.name.endswith((".nii", ".nii.gz")):
            item = check_input_volume(path)
        elif path.suffix == ".npy":
            item = read_input_array(path)[1]
        else:
            item = next(iter(external_inputs([path])), None)
        if item is not None:
            found.append(item)
    return found


class InputArrays(Sequence):
    """Input arrays read one at a time, each by :func:`load_input_array`.

    Like :class:`~neuroai.io.ArrayArtifacts` (item ``i`` is read, and memory-mapped by
    default, only when it is indexed), but a file without a provenance record is read as
    an external input instead of refused.

    Parameters
    ----------
    paths : sequence of path-like
        The ``.npy`` files.
    stage, params, verify, mmap, ndim, square, what
        As for :func:`load_input_array`.

    Attributes
    ----------
    external : list of dict
        :func:`external_inputs` of ``paths``, computed when the sequence is made (each
        external file is hashed once, however often it is read).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        stage: str | None = None,
        params: Mapping[str, Any] | None = None,
        verify: str = "size",
        mmap: bool = True,
        ndim: int | Sequence[int] | None = None,
        square: bool = False,
        what: str = "the input",
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.external = external_inputs(self.paths)
        self._options = {
            "stage": stage,
            "params": params,
            "verify": verify,
            "mmap": mmap,
            "ndim": ndim,
            "square": square,
            "what": what,
        }

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return load_input_array(self.paths[index], **self._options)
