"""Region time series of a batch of 4D runs of one dataset, in one process.

Writes a folder holding, for every run, what the per-run stage
(neuroai.pipelines.fmri_timeseries) writes, in the same sub-folders
(<sub>[/<ses>]/func/<run>_timeseries.tsv with its JSON sidecar, _qc.json and
_carpet.npy, each with its provenance record), byte for byte: each run goes through
that stage's own extract_run() and save_run(). The runs are written in place (their
QC records name the time-series file) and the folder is removed if the batch fails;
its record, written last, marks it complete. With on_error "skip" a run whose image
is unreadable is listed in the folder's failures.tsv instead of failing the batch.
Runs are extracted one after the other here, or on a Dask scheduler (--scheduler
tcp://host:8786, else DASK_SCHEDULER_ADDRESS; the atlas is sent to each worker once)
with the same results; this process writes them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.pipelines import fmri_timeseries
from neuroai.pipelines._batch import (
    INPUT_ERRORS,
    RunResults,
    takes_params_of,
    unique_keys,
    where_runs,
    write_batch,
)
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
    scheduler: str | None = None,
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
    scheduler : str | None
        Where the runs are extracted: a Dask scheduler address (``tcp://host:8786``);
        ``None`` or ``""``: the address in ``DASK_SCHEDULER_ADDRESS`` if set, else this
        process, one run after the other. It does not change the results.
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
    from neuroai.fmri.atlas import load_atlas

    keys = unique_keys(run_keys, str)
    options = fmri_timeseries.stage_params(**params)
    scheduler = where_runs(scheduler)
    absolute = Path(root).absolute()  # for the workers; the records name the files as given
    started: dict[str, Any] = {}

    def start() -> RunResults:
        """The atlas, loaded once for the batch (its error is every run's, as when each
        run loads it), and the runs sent to be extracted with it."""
        if not started:
            try:
                started["atlas"] = load_atlas(options["atlas"], root=root)
                shared = load_atlas(options["atlas"], root=absolute)
            except INPUT_ERRORS as exc:
                started["error"] = exc
            else:
                started["results"] = RunResults(
                    fmri_timeseries.extract_run,
                    {key: key for key in keys},
                    scheduler=scheduler,
                    given=dict.fromkeys(keys, root),
                    desc="region time series",
                    shared={"atlas": shared},
                    root=absolute,
                    params=options,
                )
        if "error" in started:
            raise started["error"]
        return started["results"]

    def write_run(key: str, _, folder: Path) -> None:
        result = start().take(key)
        tsv, _sidecar, qc, carpet = run_files(key, folder)
        bold = fmri_timeseries.find_run(root, key, layout=options["layout"], desc=options["desc"])
        fmri_timeseries.save_run(
            result, tsv, qc, carpet, root=root, bold=bold, atlas=started["atlas"], params=options
        )

    try:
        return write_batch(
            output,
            keys,
            write_run,
            run_files,
            stage="fmri_timeseries",
            params=params,
            on_error=on_error,
            in_place=True,
            extra={"scheduler": scheduler},
        )
    finally:
        if "results" in started:
            started["results"].close()


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.fmri_timeseries_batch")
    parser.add_argument("--root", required=True, help="dataset folder (BIDS or fMRIPrep)")
    parser.add_argument(
        "--run-keys", nargs="+", action=PathList, required=True, help="@list.txt or run keys"
    )
    parser.add_argument("--output", required=True, help="the batch folder")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default DASK_SCHEDULER_ADDRESS, "
        "else one run after the other in this process",
    )
    args = parser.parse_args(argv)
    execute(args, run, args.root, args.run_keys, args.output, scheduler=args.scheduler)


if __name__ == "__main__":
    main(sys.argv[1:])
