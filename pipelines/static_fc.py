"""Static functional connectivity of one run of region time series.

Reads a *_timeseries.tsv (with its JSON sidecar), computes the connectivity
matrix and writes it as .npy with a provenance record beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai import get_logger
from neuroai.fmri.connectivity import connectivity, zero_variance_regions
from neuroai.io import read_region_timeseries, save_array
from pipelines._stage import execute, stage_parser

logger = get_logger("stage.static_fc")


def run(
    timeseries: str | Path,
    output: str | Path,
    *,
    kind: str = "correlation",
    fisher_z: bool = False,
) -> Path:
    """Compute the static FC of one run and save it with provenance.

    Parameters
    ----------
    timeseries : path-like
        Region time series ``*_timeseries.tsv`` (n_timepoints x n_regions).
    output : path-like
        Destination ``.npy`` (n_regions x n_regions, float64).
    kind : str
        See :func:`neuroai.fmri.connectivity`.
    fisher_z : bool
        Fisher z-transform correlations.

    Returns
    -------
    Path
        ``output``.
    """
    run_data = read_region_timeseries(timeseries)
    flat = zero_variance_regions(run_data.data)
    if flat.size:
        names = [run_data.regions[i] for i in flat]
        logger.warning(
            "%s: %d regions have zero variance (%s); their connectivity is undefined "
            "and is set to 0.",
            timeseries,
            flat.size,
            ", ".join(names[:5]),
        )
    matrix = connectivity(run_data.data, kind=kind, fisher_z=fisher_z)
    if flat.size:
        matrix[flat, :] = 0.0
        matrix[:, flat] = 0.0
    params = {"kind": kind, "fisher_z": fisher_z}
    save_array(
        output,
        matrix,
        stage="static_fc",
        params=params,
        inputs=[timeseries],
        extra={
            "n_timepoints": run_data.n_timepoints,
            "n_regions": run_data.n_regions,
            "tr": run_data.tr,
            "regions": run_data.regions,
            "zero_variance_regions": [run_data.regions[i] for i in flat],
        },
    )
    logger.info("Wrote %s (%d x %d, %s)", output, *matrix.shape, kind)
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.static_fc")
    parser.add_argument("--timeseries", required=True, help="*_timeseries.tsv of one run")
    parser.add_argument("--output", required=True, help="destination .npy")
    args = parser.parse_args(argv)
    execute(args, run, args.timeseries, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
