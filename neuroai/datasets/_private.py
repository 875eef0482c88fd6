"""Helpers of the dataset builders (not public API)."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open


def package_folder(package: str, *, needed_for: str, install: str) -> Path:
    """The folder of an installed package, found without importing it.

    Parameters
    ----------
    package : str
        Import name (``"neuropycon_data"``).
    needed_for : str
        What needs it, for the error message.
    install : str
        How to install it, for the error message.

    Raises
    ------
    DataError
        When the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{needed_for} needs the {package!r} package: {install}.")
    return Path(next(iter(spec.submodule_search_locations)))


def write_participants(
    out_dir: str | os.PathLike,
    *,
    description: Mapping[str, Any],
    columns: Mapping[str, Mapping[str, Any]],
    rows: Iterable[Sequence[Any]],
) -> Path:
    """Write a BIDS dataset's description and participants table, atomically.

    ``dataset_description.json`` and ``participants.json`` (the column
    descriptions) come first and ``participants.tsv`` last, so its presence marks
    a complete dataset.

    Parameters
    ----------
    out_dir : path-like
        Root of the dataset.
    description : mapping
        The contents of ``dataset_description.json``.
    columns : mapping
        Column name -> BIDS description; their order is the table's.
    rows : iterable of sequences
        One value per column for each participant.

    Returns
    -------
    Path
        ``participants.tsv``.
    """
    out_dir = Path(out_dir)
    with atomic_open(out_dir / "dataset_description.json") as handle:
        json.dump(dict(description), handle, indent=2)
    with atomic_open(out_dir / "participants.json") as handle:
        json.dump({k: dict(v) for k, v in columns.items()}, handle, indent=2)
    path = out_dir / "participants.tsv"
    with atomic_open(path) as handle:
        handle.write("\t".join(columns) + "\n")
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"Row {row!r} has {len(row)} values for {len(columns)} columns.")
            handle.write("\t".join(str(v) for v in row) + "\n")
    return path
