"""Static functional connectivity of a batch of runs, in one process.

Writes a folder holding, for every run, the <run>_connectivity.npy and provenance
record that the per-run stage (neuroai.pipelines.static_fc) writes, byte for byte the same
array. The folder appears whole or not at all: it is written as a hidden temporary
folder and renamed when every run is written, so a failed batch leaves nothing that
looks complete. Runs are computed one after the other here, or on a Dask scheduler
(--scheduler tcp://host:8786, else DASK_SCHEDULER_ADDRESS) with the same results.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from neuroai import get_logger
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

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    DataError
        A run that cannot be read or computed (the message names its file); no batch
        folder is left behind.
    """
    from neuroai.errors import DataError
    from neuroai.fmri.cohort import map_runs, region_static_fc
    from neuroai.io import write_artifact
    from neuroai.io.regions import run_key
    from neuroai.pipelines.static_fc import save_run

    paths = {}
    for path in timeseries:
        key = run_key(path)
        if key in paths:
            raise DataError(
                f"Two runs of the batch are named {key}: {paths[key]} and {path}. Each run "
                "writes <run>_connectivity.npy, so the run keys of a batch must differ."
            )
        paths[key] = path
    if not paths:
        raise DataError(f"The batch {output} has no run to compute.")
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or "sequential"
    where = "in this process" if scheduler == "sequential" else f"on the Dask scheduler {scheduler}"
    logger.info("Computing %d runs %s", len(paths), where)
    # Workers may run elsewhere: they get absolute paths; the records keep the paths as given.
    absolute = {key: Path(path).absolute() for key, path in paths.items()}
    params = {"kind": kind, "fisher_z": fisher_z}

    def write_batch(folder: Path) -> None:
        results = map_runs(
            region_static_fc, absolute, scheduler=scheduler, desc="static FC", **params
        )
        with closing(results):
            for key, result in results:
                save_run(result, folder / f"{key}{SUFFIX}", paths[key], **params)

    write_artifact(
        output,
        write_batch,
        stage="static_fc_batch",
        params=params,
        extra={"runs": list(paths), "scheduler": scheduler},
        directory=True,
    )
    logger.info("Wrote %s (%d runs)", output, len(paths))
    return Path(output)


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
