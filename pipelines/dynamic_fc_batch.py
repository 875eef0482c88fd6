"""Dynamic functional connectivity of a batch of runs, in one process.

Writes a folder holding, for every run, the <run>_dfc.npy and provenance record that
the per-run stage (neuroai.pipelines.dynamic_fc) writes, byte for byte: each run goes
through that stage's own compute_run() and save_run(). The folder appears whole or not
at all (see neuroai.pipelines._batch); with on_error "skip" a run whose input is
unreadable is listed in the folder's failures.tsv instead of failing the batch. Runs
are computed one after the other here, or on a Dask scheduler (--scheduler
tcp://host:8786, else DASK_SCHEDULER_ADDRESS) with the same results.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from neuroai import get_logger
from neuroai.pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.dynamic_fc_batch")
SUFFIX = "_dfc.npy"


def run(
    timeseries: Sequence[str | Path],
    output: str | Path,
    *,
    window: int = 50,
    step: int = 3,
    kind: str = "correlation",
    fisher_z: bool = False,
    dtype: str = "float32",
    short_runs: str = "error",
    scheduler: str | None = None,
    on_error: str = "fail",
) -> Path:
    """Compute the dynamic FC of every run of a batch and write the batch folder.

    Parameters
    ----------
    timeseries : sequence of path-like
        Region time series ``<run>_timeseries.tsv`` (n_timepoints x n_regions), one
        per run; the run keys (file names) must differ.
    output : path-like
        The batch folder: ``<run>_dfc.npy`` (n_windows x n_regions x n_regions) with its
        ``.prov.json`` record for every run written, and ``failures.tsv``.
    window, step, kind, fisher_z, dtype, short_runs
        See :func:`neuroai.pipelines.dynamic_fc.run`.
    scheduler : str | None
        Where the runs are computed: a Dask scheduler address (``tcp://host:8786``);
        ``None`` or ``""``: the address in ``DASK_SCHEDULER_ADDRESS`` if set, else this
        process, one run after the other. It does not change the results.
    on_error : {"fail", "skip"}
        See :mod:`neuroai.pipelines._batch`.

    Returns
    -------
    Path
        ``output``.
    """
    from neuroai.io.regions import run_key
    from neuroai.pipelines import dynamic_fc
    from neuroai.pipelines._batch import (
        INPUT_ERRORS,
        RunResults,
        require_input,
        unique_keys,
        where_runs,
        write_batch,
    )

    params = {
        "window": window,
        "step": step,
        "kind": kind,
        "fisher_z": fisher_z,
        "dtype": dtype,
        "short_runs": short_runs,
    }
    paths = unique_keys(timeseries, run_key)
    scheduler = where_runs(scheduler)
    absolute = {key: Path(path).absolute() for key, path in paths.items()}
    results = RunResults(
        dynamic_fc.compute_run,
        absolute,
        scheduler=scheduler,
        given=paths,
        desc="dynamic FC",
        **params,
    )

    def write_run(key: str, path, folder: Path) -> None:
        try:
            matrices, extra = results.take(key)
        except INPUT_ERRORS:
            require_input(path, "_timeseries.tsv")  # left out by fmri_timeseries_batch?
            raise
        dynamic_fc.save_run(matrices, extra, folder / f"{key}{SUFFIX}", path, **params)

    with results:
        return write_batch(
            output,
            paths,
            write_run,
            lambda key, folder: [folder / f"{key}{SUFFIX}"],
            stage="dynamic_fc",
            params=params,
            on_error=on_error,
            extra={"scheduler": scheduler},
        )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dynamic_fc_batch")
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
