"""Static functional connectivity of a batch of runs, in one process.

Writes a folder holding, for every run, the <run>_connectivity.npy and provenance
record that the per-run stage (neuroai.pipelines.static_fc) writes, byte for byte the same
array. The folder appears whole or not at all: it is written as a hidden temporary
folder and renamed when every run is written, so a failed batch leaves nothing that
looks complete (see neuroai.pipelines._batch, also for on_error "skip"). Runs are computed one after the other here, or on a Dask scheduler
(--scheduler tcp://host:8786, else DASK_SCHEDULER_ADDRESS) with the same results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from neuroai import get_logger
from neuroai.pipelines._batch import INPUT_ERRORS
from neuroai.pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.static_fc_batch")
SUFFIX = "_connectivity.npy"


def run(
    timeseries: Sequence[str | Path],
    output: str | Path,
    *,
    kind: str = "correlation",
    fisher_z: bool = False,
    scheduler: str | None = None,
    on_error: str = "fail",
) -> Path:
    """Compute the static FC of every run of a batch and write the batch folder.

    Parameters
    ----------
    timeseries : sequence of path-like
        Region time series ``<run>_timeseries.tsv`` (n_timepoints x n_regions), one
        per run; the run keys (file names) must differ.
    output : path-like
        The batch folder; it will hold ``<run>_connectivity.npy`` (n_regions x
        n_regions, float64) with its ``.prov.json`` record for every run, and gets a
        record of its own beside it (``<output>.prov.json``, listing the runs).
    kind, fisher_z
        See :func:`neuroai.pipelines.static_fc.run`.
    scheduler : str | None
        Where the runs are computed: a Dask scheduler address (``tcp://host:8786``);
        ``None`` or ``""``: the address in ``DASK_SCHEDULER_ADDRESS`` if set, else this
        process, one run after the other. It does not change the results.
    on_error : {"fail", "skip"}
        A run whose input is unreadable fails the batch, or is listed in the folder's
        ``failures.tsv`` and left out (see :mod:`neuroai.pipelines._batch`).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    DataError
        A run that cannot be read or computed (the message names its file; under
        ``on_error="skip"``, only when every run fails); no batch folder is left behind.
    """
    from neuroai.fmri.cohort import region_static_fc
    from neuroai.io.regions import run_key
    from neuroai.pipelines._batch import (
        RunResults,
        require_input,
        unique_keys,
        where_runs,
        write_batch,
    )
    from neuroai.pipelines.static_fc import save_run

    paths = unique_keys(timeseries, run_key)
    scheduler = where_runs(scheduler)
    params = {"kind": kind, "fisher_z": fisher_z}
    # Workers may run elsewhere: they get absolute paths; the records keep the paths as given.
    absolute = {key: Path(path).absolute() for key, path in paths.items()}
    results = RunResults(
        region_static_fc, absolute, scheduler=scheduler, given=paths, desc="static FC", **params
    )

    def write_run(key: str, path, folder: Path) -> None:
        try:
            result = results.take(key)
        except INPUT_ERRORS:
            require_input(path, "_timeseries.tsv")  # left out by fmri_timeseries_batch?
            raise
        save_run(result, folder / f"{key}{SUFFIX}", path, **params)

    with results:
        return write_batch(
            output,
            paths,
            write_run,
            lambda key, folder: [folder / f"{key}{SUFFIX}"],
            stage="static_fc",
            params=params,
            on_error=on_error,
            extra={"scheduler": scheduler},
        )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.static_fc_batch")
    parser.add_argument(
        "--timeseries",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or *_timeseries.tsv files, one per run",
    )
    parser.add_argument("--output", required=True, help="the batch folder")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default DASK_SCHEDULER_ADDRESS, "
        "else one run after the other in this process",
    )
    args = parser.parse_args(argv)
    execute(args, run, args.timeseries, args.output, scheduler=args.scheduler)


if __name__ == "__main__":
    main(sys.argv[1:])
