"""Provenance records: every artifact remembers how it was made.

A record is a JSON sidecar ``<artifact>.prov.json`` written after the artifact
itself. It holds the stage name, the neuroai version, the stage's parameters,
each input with its size and SHA-256 (or modification time when the file is
larger than ``checksum_limit``), the artifact's own size and checksum, library
versions and the creation time. Readers use it to refuse artifacts that are
incomplete, changed afterwards, or made with other parameters than asked.

Inputs at cohort scale: an input that is itself a neuroai artifact (it has a record whose
output size equals the file's or folder's size now) is described by the checksum in its own record,
read from that small JSON file, instead of hashed again; the size check is the same one
every reader makes (``check_artifact(verify="size")``). Other inputs (raw data, a user's
files) are hashed in full, or described by size and mtime above ``checksum_limit``. So a
cohort step that writes several artifacts from 10,000 stored matrices reads 10,000 records,
not 10,000 files per artifact written. ``input_digest`` is that rule.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import os
import platform
import socket
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from neuroai.errors import ProvenanceError

SCHEMA = "neuroai.provenance/1"
SUFFIX = ".prov.json"
#: Files larger than this are identified by size and mtime instead of a checksum.
CHECKSUM_LIMIT = 256 * 1024**2
TRACKED_LIBRARIES = (
    "numpy",
    "scipy",
    "pandas",
    "nibabel",
    "nilearn",
    "mne",
    "torch",
    "torch_geometric",
    "monai",
    "lightning",
    "dask",
    "scikit-learn",
    "snakemake",
)


def provenance_path(artifact: str | os.PathLike) -> Path:
    """Path of the provenance sidecar of ``artifact``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + SUFFIX)


@functools.cache
def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results (not imported)."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _sha256_file(path: Path, chunk: int = 4 * 1024**2) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike, *, checksum_limit: int = CHECKSUM_LIMIT) -> dict:
    """Describe a file or folder by size and checksum (or mtime when large).

    Parameters
    ----------
    path : path-like
        A file, or a folder (then the checksum covers every file in it, by
        relative path, in sorted order).
    checksum_limit : int
        Size in bytes above which ``mtime`` replaces ``sha256``.

    Returns
    -------
    dict
        ``{"path", "size", "sha256"}`` or ``{"path", "size", "mtime"}``; folders
        add ``"n_files"``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Cannot describe {path}: it does not exist.")
    record: dict[str, Any] = {"path": os.fspath(path)}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        record.update(size=size, n_files=len(files))
        if size <= checksum_limit:
            digest = hashlib.sha256()
            for file in files:
                digest.update(os.fspath(file.relative_to(path)).encode())
                digest.update(_sha256_file(file).encode())
            record["sha256"] = digest.hexdigest()
        else:
            record["mtime"] = max((p.stat().st_mtime for p in files), default=0.0)
        return record
    stat = path.stat()
    record["size"] = stat.st_size
    if stat.st_size <= checksum_limit:
        record["sha256"] = _sha256_file(path)
    else:
        record["mtime"] = stat.st_mtime
    return record


def input_digest(path: str | os.PathLike, *, checksum_limit: int = CHECKSUM_LIMIT) -> dict:
    """Describe an input as :func:`file_digest` does, reusing its own record's checksum.

    When ``path`` is a file or folder with a provenance record whose ``output`` has a
    ``sha256`` and the same size as it has now (a folder: its files' sizes summed), that
    checksum is taken as its own; otherwise it is hashed (see :func:`file_digest`). The
    returned dictionary has the same keys either way.
    """
    path = Path(path)
    sidecar = provenance_path(path)
    if path.exists() and sidecar.is_file():
        try:
            output = json.loads(sidecar.read_text(encoding="utf-8")).get("output", {})
        except (OSError, ValueError, AttributeError):
            output = {}
        if path.is_dir():  # a folder artifact: its files' sizes, summed (no hashing)
            size = file_digest(path, checksum_limit=-1)["size"]
        else:
            size = path.stat().st_size
        if isinstance(output, dict) and output.get("size") == size and "sha256" in output:
            record = {"path": os.fspath(path), "size": size, "sha256": output["sha256"]}
            if path.is_dir():
                record["n_files"] = output.get("n_files")
            return record
    return file_digest(path, checksum_limit=checksum_limit)


def jsonable(value: Any) -> Any:
    """Convert parameters to plain JSON types (paths, tuples, numpy scalars)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return jsonable(value.item())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    return repr(value)


def make_record(
    *,
    artifact: str | os.PathLike,
    stage: str,
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    extra: Mapping[str, Any] | None = None,
    checksum_limit: int = CHECKSUM_LIMIT,
) -> dict:
    """Build the provenance record of a finished artifact.

    Parameters
    ----------
    artifact : path-like
        The artifact (already in its final place).
    stage : str
        Name of the stage that made it (``"static_fc"``).
    params : mapping | None
        The stage's parameters: exactly what a reader will compare against.
    inputs : iterable of path-like
        Files or folders the artifact was computed from (described by
        :func:`input_digest`).
    extra : mapping | None
        Stage-specific facts worth keeping (shapes, dropped items, warnings).
    """
    from neuroai import __version__

    return {
        "schema": SCHEMA,
        "artifact": Path(artifact).name,
        "stage": stage,
        "neuroai_version": __version__,
        "params": jsonable(dict(params or {})),
        "inputs": [input_digest(p, checksum_limit=checksum_limit) for p in inputs],
        "output": {
            k: v
            for k, v in file_digest(artifact, checksum_limit=checksum_limit).items()
            if k != "path"
        },
        "libraries": library_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cwd": os.getcwd(),
        "extra": jsonable(dict(extra or {})),
    }


def read_provenance(artifact: str | os.PathLike) -> dict:
    """Read the provenance record of ``artifact``.

    Raises
    ------
    ProvenanceError
        When the sidecar is missing or is not a provenance record.
    """
    artifact = Path(artifact)
    sidecar = provenance_path(artifact)
    if not sidecar.is_file():
        raise ProvenanceError(
            f"{artifact} has no provenance record ({sidecar.name} is missing), so neuroai cannot "
            "tell how or whether it was completed. If a neuroai stage wrote it, delete it and "
            "rerun that stage. If it is your own file, this input must be made by neuroai (its "
            "record holds facts the stage needs); files of your own are accepted as external "
            "inputs where the stage reads user data (connectivity matrices, dynamic FC, region "
            "time series, EEG windows, token arrays, volumes: docs/howto/python.md, 'Files you "
            "made yourself'), which record their checksum instead."
        )
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProvenanceError(
            f"The provenance record {sidecar} is not valid JSON ({exc}). "
            "Delete the artifact and its record and rerun the stage."
        ) from exc
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ProvenanceError(
            f"{sidecar} is not a neuroai provenance record (expected schema {SCHEMA!r})."
        )
    return record


def params_mismatch(recorded: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """List the differences between recorded and expected parameters.

    Only keys present in ``expected`` are compared; a key absent from the record
    counts as a difference.
    """
    recorded = jsonable(dict(recorded))
    expected = jsonable(dict(expected))
    problems = []
    for key, want in expected.items():
        if key not in recorded:
            problems.append(f"{key}: not recorded, asked {want!r}")
        elif recorded[key] != want:
            problems.append(f"{key}: made with {recorded[key]!r}, asked {want!r}")
    return problems


def find_record(path: str | os.PathLike) -> dict | None:
    """The provenance record of ``path`` if it has one, else ``None``.

    Looks for the ``.prov.json`` sidecar, then for a ``"Provenance"`` entry in a
    BIDS JSON sidecar (region time series written by neuroai).
    """
    path = Path(path)
    sidecar = provenance_path(path)
    if sidecar.is_file():
        try:
            return read_provenance(path)
        except ProvenanceError:
            return None
    for suffix in (".tsv", ".tsv.gz", ".nii", ".nii.gz"):
        if path.name.endswith(suffix):
            bids = path.with_name(path.name[: -len(suffix)] + ".json")
            if bids.is_file():
                try:
                    record = json.loads(bids.read_text(encoding="utf-8")).get("Provenance")
                except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                    return None
                return record if isinstance(record, dict) else None
    return None


def resolve_input(path: str, record: dict) -> Path:
    """An input path of ``record``: as written, or relative to where it was made (``cwd``)."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists() or "cwd" not in record:
        return candidate
    return Path(record["cwd"]) / candidate


def lineage(artifacts: Iterable[str | os.PathLike]) -> list[tuple[Path, dict]]:
    """Every artifact upstream of ``artifacts`` that has a provenance record.

    Walks the ``inputs`` of each record breadth-first and returns
    ``(path, record)`` pairs, each path once, starting with ``artifacts``.
    """
    queue = [Path(p) for p in artifacts]
    seen: set[Path] = set()
    found: list[tuple[Path, dict]] = []
    while queue:
        path = queue.pop(0)
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        record = find_record(path)
        if record is None:
            continue
        found.append((path, record))
        queue.extend(resolve_input(item["path"], record) for item in record.get("inputs", []))
    return found
