"""Dynamic functional connectivity of one run: connectivity in sliding windows.

Reads a *_timeseries.tsv (with its JSON sidecar) and writes an
(n_windows x n_regions x n_regions) .npy with a provenance record giving the
window starts, the regions and the repetition time. A time series the pipeline did
not write (its sidecar has no "Provenance") is an external input: its checksum is
recorded in extra.external_inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.errors import check_option
from neuroai.fmri.connectivity import zero_variance_regions
from neuroai.fmri.dynamic import dynamic_connectivity, window_starts
from neuroai.io import external_inputs, read_region_timeseries, save_array
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.dynamic_fc")


def run(
    timeseries: str | Path,
    output: str | Path,
    *,
    window: int = 50,
    step: int = 3,
    kind: str = "correlation",
    fisher_z: bool = False,
    dtype: str = "float32",
    short_runs: str = "error",
) -> Path:
    """Compute the dynamic FC of one run and save it with provenance.

    Parameters
    ----------
    timeseries : path-like
        Region time series ``*_timeseries.tsv`` (n_timepoints x n_regions).
    output : path-like
        Destination ``.npy`` (n_windows x n_regions x n_regions).
    window, step : int
        Window length and step in TRs (STAGIN: 50 and 3).
    kind : str
        See :func:`neuroai.fmri.dynamic_connectivity`.
    fisher_z : bool
        Fisher z-transform correlations.
    dtype : {"float32", "float64"}
        Storage type.
    short_runs : {"error", "skip"}
        A run shorter than the window is an error, or is written as an empty
        (0 x n_regions x n_regions) array with a logged warning (the graph
        dataset then leaves it out and says why).

    Returns
    -------
    Path
        ``output``.
    """
    params = {
        "window": window,
        "step": step,
        "kind": kind,
        "fisher_z": fisher_z,
        "dtype": dtype,
        "short_runs": short_runs,
    }
    matrices, extra = compute_run(timeseries, **params)
    return save_run(matrices, extra, output, timeseries, **params)


def compute_run(
    timeseries: str | Path,
    *,
    window: int,
    step: int,
    kind: str,
    fisher_z: bool,
    dtype: str,
    short_runs: str,
) -> tuple[np.ndarray, dict]:
    """One run's dynamic FC and the facts its record keeps (the batch stage's task).

    Parameters
    ----------
    timeseries : path-like
        Region time series ``*_timeseries.tsv`` (n_timepoints x n_regions).
    window, step, kind, fisher_z, dtype, short_runs
        See :func:`run`.

    Returns
    -------
    matrices : ndarray, shape (n_windows, n_regions, n_regions)
        Of ``dtype``; no window (n_windows 0) for a run shorter than the window under
        ``short_runs="skip"`` (``extra["skipped"]`` says why).
    extra : dict
        The record's ``extra``: shape, TR (s), regions, zero-variance regions, window starts.
    """
    check_option("dtype", dtype, ("float32", "float64"))
    check_option("short_runs", short_runs, ("error", "skip"))
    run_data = read_region_timeseries(timeseries)
    ts = run_data.data
    extra = {
        "n_timepoints": run_data.n_timepoints,
        "n_regions": run_data.n_regions,
        "tr": run_data.tr,
        "regions": run_data.regions,
        "zero_variance_regions": [run_data.regions[i] for i in zero_variance_regions(ts)],
    }
    if ts.shape[0] < window and short_runs == "skip":
        matrices = np.zeros((0, ts.shape[1], ts.shape[1]), dtype=dtype)
        extra.update(window_starts=[], skipped=f"{ts.shape[0]} time points < window {window}")
    else:
        matrices = dynamic_connectivity(
            ts, window, step, kind, fisher_z=fisher_z, dtype=np.dtype(dtype)
        )
        extra["window_starts"] = window_starts(ts.shape[0], window, step).tolist()
    return matrices, extra


def save_run(
    matrices: np.ndarray, extra: dict, output: str | Path, timeseries: str | Path, **params
) -> Path:
    """Write one run's dynamic FC (:func:`compute_run`) with its provenance record (the
    same record whether the run was computed alone or in a batch)."""
    if "skipped" in extra:
        logger.warning(
            "%s has %d time points, fewer than the window of %d: written as an empty array "
            "(short_runs='skip').",
            timeseries,
            extra["n_timepoints"],
            params["window"],
        )
    save_array(
        output,
        matrices,
        stage="dynamic_fc",
        params=params,
        inputs=[timeseries],
        extra={**extra, "external_inputs": external_inputs([timeseries])},
    )
    logger.info("Wrote %s (%d windows x %d x %d, %s)", output, *matrices.shape, params["kind"])
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dynamic_fc")
    parser.add_argument("--timeseries", required=True, help="*_timeseries.tsv of one run")
    parser.add_argument("--output", required=True, help="destination .npy")
    args = parser.parse_args(argv)
    execute(args, run, args.timeseries, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
