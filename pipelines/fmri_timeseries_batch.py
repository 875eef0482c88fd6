"""Region time series of a batch of 4D runs of one dataset, in one process.

Writes a folder holding, for every run, what the per-run stage
(neuroai.pipelines.fmri_timeseries) writes, in the same sub-folders
(<sub>[/<ses>]/func/<run>_timeseries.tsv with its JSON sidecar, _qc.json and
_carpet.npy, each with its provenance record), byte for byte: each run goes through
that stage's own run(). The runs are written in place (their QC records name the
time-series file) and the folder is removed if the batch fails; its record,
written last, marks it complete. With on_error "skip" a run whose image is
unreadable is listed in the folder's failures.tsv instead of failing the batch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.pipelines import fmri_timeseries
from neuroai.pipelines._batch import takes_params_of, unique_keys, write_batch
from neuroai.pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.fmri_timeseries_batch")
#: The files the per-run stage writes for a run, by suffix.
RUN_FILES = ("_timeseries.tsv", "_timeseries.json", "_qc.json", "_carpet.npy")


def run_subdir(key: str) -> Path:
    """The run's folder in a dataset: ``sub-<label>[/ses-<label>]/func``."""
    folders = [part for part in key.split("_")[:2] if part.startswith(("sub-", "ses-"))]
    return Path(*folders, "func")


def run_files(key: str, folder: str | Path) -> list[Path]:
    """Where a batch folder holds a run's files (those of :data:`RUN_FILES`)."""
    return [Path(folder) / run_subdir(key) / f"{key}{suffix}" for suffix in RUN_FILES]


@takes_params_of(fmri_timeseries.run)
def run(
    root: str | Path,
    run_keys: Sequence[str],
    output: str | Path,
    *,
    on_error: str = "fail",
    **params: Any,
) -> Path:
    """Extract the region time series of every run of a batch and write the batch folder.

    Parameters
    ----------
    root : path-like
        The dataset folder (raw BIDS or fMRIPrep derivatives).
    run_keys : sequence of str
        The runs (``sub-01_task-rest_run-1[_space-...]``), unique.
    output : path-like
        The batch folder: ``<sub>[/<ses>]/func/<run>_timeseries.tsv`` (with its sidecar),
        ``_qc.json`` and ``_carpet.npy`` for every run written, and ``failures.tsv``.
    on_error : {"fail", "skip"}
        See :mod:`neuroai.pipelines._batch`.
    **params
        The per-run stage's parameters (``layout``, ``atlas``, the confound and
        cleaning options): see :func:`neuroai.pipelines.fmri_timeseries.run`.

    Returns
    -------
    Path
        ``output``.
    """

    def write_run(key: str, _, folder: Path) -> None:
        tsv, _sidecar, qc, carpet = run_files(key, folder)
        fmri_timeseries.run(root, key, tsv, qc, carpet, **params)

    return write_batch(
        output,
        unique_keys(run_keys, str),
        write_run,
        run_files,
        stage="fmri_timeseries",
        params=params,
        on_error=on_error,
        in_place=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.fmri_timeseries_batch")
    parser.add_argument("--root", required=True, help="dataset folder (BIDS or fMRIPrep)")
    parser.add_argument(
        "--run-keys", nargs="+", action=PathList, required=True, help="@list.txt or run keys"
    )
    parser.add_argument("--output", required=True, help="the batch folder")
    args = parser.parse_args(argv)
    execute(args, run, args.root, args.run_keys, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
