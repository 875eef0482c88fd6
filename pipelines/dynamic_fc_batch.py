"""Dynamic functional connectivity of a batch of runs, in one process.

Writes a folder holding, for every run, the <run>_dfc.npy and provenance record that
the per-run stage (neuroai.pipelines.dynamic_fc) writes, byte for byte: each run goes
through that stage's own run(). The folder appears whole or not at all (see
neuroai.pipelines._batch); with on_error "skip" a run whose input is unreadable is
listed in the folder's failures.tsv instead of failing the batch.
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
    on_error : {"fail", "skip"}
        See :mod:`neuroai.pipelines._batch`.

    Returns
    -------
    Path
        ``output``.
    """
    from neuroai.io.regions import run_key
    from neuroai.pipelines import dynamic_fc
    from neuroai.pipelines._batch import require_input, unique_keys, write_batch

    params = {
        "window": window,
        "step": step,
        "kind": kind,
        "fisher_z": fisher_z,
        "dtype": dtype,
        "short_runs": short_runs,
    }

    def write_run(key: str, path, folder: Path) -> None:
        require_input(path, "_timeseries.tsv")
        dynamic_fc.run(path, folder / f"{key}{SUFFIX}", **params)

    return write_batch(
        output,
        unique_keys(timeseries, run_key),
        write_run,
        lambda key, folder: [folder / f"{key}{SUFFIX}"],
        stage="dynamic_fc",
        params=params,
        on_error=on_error,
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
    args = parser.parse_args(argv)
    execute(args, run, args.timeseries, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
