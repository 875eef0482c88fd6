"""Region-level time series in the BIDS-derivatives layout.

A run's parcellated BOLD signal is a tab-separated file with one column per
region (the header holds the region names) and one row per volume, plus a JSON
sidecar of the same name holding at least ``RepetitionTime`` (seconds)::

    sub-01/func/sub-01_task-rest_atlas-AAL2_timeseries.tsv
    sub-01/func/sub-01_task-rest_atlas-AAL2_timeseries.json

Files that neuroai writes carry their provenance record inside the sidecar
(key ``"Provenance"``); the sidecar is written last, so a run whose sidecar is
missing was never completed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroai.errors import DataError
from neuroai.io.atomic import atomic_open
from neuroai.io.bids import subject_func_files
from neuroai.io.provenance import jsonable, make_record


@dataclass(frozen=True)
class RegionTimeseries:
    """One run of region time series.

    Attributes
    ----------
    data : ndarray, shape (n_timepoints, n_regions)
        BOLD signal per region, in the units of the source (float64).
    tr : float
        Repetition time in seconds.
    regions : list of str
        Region names, one per column.
    path : Path
        The TSV file it was read from.
    sidecar : dict
        The whole JSON sidecar.
    """

    data: np.ndarray
    tr: float
    regions: list[str]
    path: Path
    sidecar: dict = field(default_factory=dict)

    @property
    def n_timepoints(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_regions(self) -> int:
        return int(self.data.shape[1])


def sidecar_path(tsv: str | os.PathLike) -> Path:
    """The JSON sidecar that belongs to a ``*_timeseries.tsv`` file."""
    tsv = Path(tsv)
    name = tsv.name
    if name.endswith(".tsv.gz"):
        return tsv.with_name(name[: -len(".tsv.gz")] + ".json")
    return tsv.with_suffix(".json")


def write_region_timeseries(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    tr: float,
    regions: Sequence[str],
    sidecar: Mapping[str, Any] | None = None,
    stage: str = "region_timeseries",
    params: Mapping[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
) -> Path:
    """Write a run of region time series and its sidecar, atomically.

    Parameters
    ----------
    path : path-like
        Destination ``*_timeseries.tsv``.
    data : ndarray, shape (n_timepoints, n_regions)
        The signal.
    tr : float
        Repetition time in seconds.
    regions : sequence of str
        Column names, one per region.
    sidecar : mapping | None
        Extra BIDS sidecar fields (``Atlas``, ``Space``, ``Sources`` ...).
    stage, params, inputs
        Provenance of the run, stored in the sidecar under ``"Provenance"``.
    """
    path = Path(path)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(regions):
        raise DataError(
            f"Cannot write {path}: data must be (n_timepoints, n_regions) with one name per "
            f"region; got data of shape {data.shape} and {len(regions)} region names."
        )
    if not np.isfinite(data).all():
        raise DataError(f"Cannot write {path}: the data contain NaN or Inf values.")
    if not tr > 0:
        raise DataError(f"Cannot write {path}: the repetition time must be positive, got {tr!r}.")
    meta_path = sidecar_path(path)
    meta_path.unlink(missing_ok=True)
    with atomic_open(path, "w") as handle:
        handle.write("\t".join(regions) + "\n")
        np.savetxt(handle, data, delimiter="\t", fmt="%.8g")
    meta = {
        "RepetitionTime": float(tr),
        "SamplingFrequency": 1.0 / float(tr),
        "Columns": list(regions),
        **jsonable(dict(sidecar or {})),
    }
    meta["Provenance"] = make_record(artifact=path, stage=stage, params=params, inputs=inputs)
    with atomic_open(meta_path, "w") as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")
    return path


def read_region_timeseries(path: str | os.PathLike) -> RegionTimeseries:
    """Read a run of region time series and check it.

    Parameters
    ----------
    path : path-like
        A ``*_timeseries.tsv`` file with a JSON sidecar beside it.

    Returns
    -------
    RegionTimeseries

    Raises
    ------
    DataError
        Missing file or sidecar, missing or invalid ``RepetitionTime``, a
        header that does not match the columns, non-numeric values, NaN or Inf,
        or fewer than 2 time points.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Region time series {path} does not exist.")
    meta_path = sidecar_path(path)
    if not meta_path.is_file():
        raise DataError(
            f"{path} has no JSON sidecar ({meta_path.name}); it must give RepetitionTime in "
            "seconds. Add the sidecar (a run without one may also be an interrupted write)."
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"The sidecar {meta_path} is not valid JSON: {exc}.") from exc
    tr = meta.get("RepetitionTime")
    if not isinstance(tr, (int, float)) or isinstance(tr, bool) or not tr > 0:
        raise DataError(
            f"{meta_path} must give RepetitionTime as a positive number of seconds; got {tr!r}."
        )
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        try:
            data = np.loadtxt(handle, delimiter="\t", ndmin=2, dtype=np.float64)
        except ValueError as exc:
            raise DataError(
                f"{path} holds values that are not numbers ({exc}). Each row after the header "
                "must be one volume's values, one per region, separated by tabs."
            ) from exc
    if data.size == 0:
        raise DataError(f"{path} has a header but no time points.")
    if data.shape[1] != len(header):
        raise DataError(
            f"{path} has {len(header)} region names in its header but {data.shape[1]} columns of data."
        )
    bad = ~np.isfinite(data)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(
            f"{path} contains {int(bad.sum())} NaN or Inf values (first at time point {rows[0]}, "
            f"region {header[cols[0]]!r}). Clean or interpolate them before computing connectivity."
        )
    if data.shape[0] < 2:
        raise DataError(f"{path} has {data.shape[0]} time point; at least 2 are needed.")
    return RegionTimeseries(data=data, tr=float(tr), regions=header, path=path, sidecar=meta)


TIMESERIES_SUFFIX = "_timeseries.tsv"


def run_key(path: str | os.PathLike) -> str:
    """The run's BIDS entities, the file name without ``_timeseries.tsv``."""
    name = Path(path).name
    if not name.endswith(TIMESERIES_SUFFIX):
        raise DataError(f"{path} is not a region time-series file (*{TIMESERIES_SUFFIX}).")
    return name[: -len(TIMESERIES_SUFFIX)]


def index_region_runs(
    root: str | os.PathLike, *, subjects: Sequence[str] | None = None
) -> dict[str, Path]:
    """Find the region time-series runs of a BIDS-derivatives dataset.

    Looks for ``sub-<label>/[ses-<label>/]func/*_timeseries.tsv``. Subject and
    session labels must be alphanumeric (BIDS), so no label can point outside
    ``root``.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    subjects : sequence of str | None
        Keep only these subject labels (without ``sub-``).

    Returns
    -------
    dict
        Run key (``sub-01_ses-1_task-rest_atlas-X``) to file path, sorted by key.
    """
    files = subject_func_files(root, f"*{TIMESERIES_SUFFIX}", subjects=subjects)
    runs = {run_key(tsv): tsv for paths in files.values() for tsv in paths}
    if subjects is not None:
        missing = sorted({str(s) for s in subjects} - set(files))
        if missing:
            raise DataError(f"Subjects {missing} have no region time series under {root}.")
    return dict(sorted(runs.items()))
