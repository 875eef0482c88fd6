"""The artifact store: atomic writes with provenance, and safe, checked reads.

Writers (``save_*``) write the artifact atomically, then its provenance record.
Readers (``load_*``) refuse, with a message that says how to fix it, an artifact
that has no record, whose size or checksum no longer matches the record, or that
was made by another stage or with other parameters than asked. Nothing is ever
unpickled: arrays are read with ``allow_pickle=False``, configs with
``yaml.safe_load``, weights with safetensors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neuroai.errors import ArtifactError, ProvenanceError
from neuroai.io.atomic import atomic_open, atomic_path
from neuroai.io.provenance import (
    _sha256_file,
    file_digest,
    jsonable,
    make_record,
    params_mismatch,
    provenance_path,
    read_provenance,
)

Verify = Literal["size", "checksum", "none"]


def write_artifact(
    path: str | os.PathLike,
    writer: Callable[[Path], None],
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    extra: Mapping[str, Any] | None = None,
    directory: bool = False,
) -> Path:
    """Write an artifact atomically with ``writer`` and record its provenance.

    Parameters
    ----------
    path : path-like
        Final location of the artifact.
    writer : callable
        ``writer(tmp_path)`` writes the artifact to ``tmp_path`` (a file path
        with the same suffixes as ``path``, or an empty folder when
        ``directory=True``).
    stage, params, inputs, extra
        See :func:`neuroai.io.provenance.make_record`.
    directory : bool
        The artifact is a folder.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    inputs = [Path(p) for p in inputs]
    missing = [p for p in inputs if not p.exists()]
    if missing:
        raise ArtifactError(
            f"Cannot make {path}: input {missing[0]} does not exist. Run the stage that makes it first."
        )
    sidecar = provenance_path(path)
    # A stale record must never describe the new artifact, not even for a moment.
    sidecar.unlink(missing_ok=True)
    with atomic_path(path, directory=directory) as tmp:
        writer(tmp)
    record = make_record(artifact=path, stage=stage, params=params, inputs=inputs, extra=extra)
    with atomic_open(sidecar, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return path


def check_artifact(
    path: str | os.PathLike,
    *,
    stage: str | None = None,
    params: Mapping[str, Any] | None = None,
    verify: Verify = "size",
) -> dict:
    """Check that ``path`` is a complete artifact made as asked; return its record.

    Parameters
    ----------
    path : path-like
        The artifact.
    stage : str | None
        When given, the stage that must have made it.
    params : mapping | None
        When given, parameters the artifact must have been made with (only
        these keys are compared).
    verify : {"size", "checksum", "none"}
        How hard to check that the artifact is the one its record describes:
        compare sizes (cheap, default), recompute the checksum, or neither.

    Raises
    ------
    ArtifactError
        Missing artifact, or size/checksum differ from the record.
    ProvenanceError
        No record, another stage, or other parameters.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"Artifact {path} does not exist. Run the stage that makes it first.")
    record = read_provenance(path)
    if stage is not None and record.get("stage") != stage:
        raise ProvenanceError(
            f"{path} was made by stage {record.get('stage')!r}, but stage {stage!r} was expected."
        )
    output = record.get("output", {})
    if verify != "none":
        actual = file_digest(path, checksum_limit=0) if verify == "size" else None
        size = actual["size"] if actual else None
        if verify == "size" and output.get("size") != size:
            raise ArtifactError(
                f"{path} is {size} bytes but its provenance record says {output.get('size')}: "
                "it was changed or not completely written. Delete it and rerun its stage."
            )
        if verify == "checksum":
            if path.is_dir():
                recomputed = file_digest(path).get("sha256")
            else:
                recomputed = _sha256_file(path)
            if "sha256" in output and recomputed != output["sha256"]:
                raise ArtifactError(
                    f"{path} does not match the checksum in its provenance record: it was changed "
                    "after it was written. Delete it and rerun its stage."
                )
    if params is not None:
        problems = params_mismatch(record.get("params", {}), params)
        if problems:
            raise ProvenanceError(
                f"{path} was made with other parameters than asked ("
                + "; ".join(problems)
                + "). Rerun its stage with the parameters you want (Snakemake re-runs a rule "
                "whose params changed), or ask for the parameters it was made with."
            )
    return record


def save_array(path: str | os.PathLike, array: np.ndarray, **provenance: Any) -> Path:
    """Save an array as ``.npy`` atomically with provenance (see :func:`write_artifact`)."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError(f"Refusing to save an object array to {path}: it would need pickling.")

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    return write_artifact(path, _write, **provenance)


def load_array(
    path: str | os.PathLike,
    *,
    stage: str | None = None,
    params: Mapping[str, Any] | None = None,
    mmap: bool = False,
    verify: Verify = "size",
) -> np.ndarray:
    """Load a checked ``.npy`` artifact (never unpickles).

    Parameters
    ----------
    path : path-like
        The array artifact.
    stage, params, verify
        See :func:`check_artifact`.
    mmap : bool
        Memory-map the array read-only instead of reading it into memory.
    """
    check_artifact(path, stage=stage, params=params, verify=verify)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise ArtifactError(f"{path} is not a plain numeric array ({exc}).") from exc


class ArrayArtifacts(Sequence):
    """Array artifacts read one at a time: item ``i`` is ``load_array(paths[i], ...)``.

    Cohort steps iterate over thousands of stored arrays; this sequence checks and
    memory-maps (by default) each one only when it is indexed, so nothing but the
    current array is held, and no file stays open between items.

    Parameters
    ----------
    paths : sequence of path-like
        The ``.npy`` artifacts.
    stage, params, verify, mmap
        As for :func:`load_array`.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        stage: str | None = None,
        params: Mapping[str, Any] | None = None,
        verify: Verify = "size",
        mmap: bool = True,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self._options = {"stage": stage, "params": params, "verify": verify, "mmap": mmap}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return load_array(self.paths[index], **self._options)


def save_json(path: str | os.PathLike, obj: Any, **provenance: Any) -> Path:
    """Save a JSON document atomically with provenance."""
    text = json.dumps(jsonable(obj), indent=2) + "\n"

    def _write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write_artifact(path, _write, **provenance)


def load_json(
    path: str | os.PathLike,
    *,
    stage: str | None = None,
    params: Mapping[str, Any] | None = None,
    verify: Verify = "size",
) -> Any:
    """Load a checked JSON artifact."""
    check_artifact(path, stage=stage, params=params, verify=verify)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_table(path: str | os.PathLike, table, **provenance: Any) -> Path:
    """Save a :class:`pandas.DataFrame` as a tab-separated file with provenance."""

    def _write(tmp: Path) -> None:
        table.to_csv(tmp, sep="\t", index=False, na_rep="n/a")

    return write_artifact(path, _write, **provenance)


def load_table(
    path: str | os.PathLike,
    *,
    stage: str | None = None,
    params: Mapping[str, Any] | None = None,
    verify: Verify = "size",
):
    """Load a checked TSV artifact as a :class:`pandas.DataFrame`."""
    import pandas as pd

    check_artifact(path, stage=stage, params=params, verify=verify)
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)
