"""Static functional connectivity of one run of region time series.

Reads a *_timeseries.tsv (with its JSON sidecar), computes the connectivity
matrix and writes it as .npy with a provenance record beside it. A time series the
pipeline did not write (its sidecar has no "Provenance") is an external input: its
checksum is recorded in extra.external_inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai import get_logger
from neuroai.pipelines._stage import execute, stage_parser

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
    from neuroai.fmri.cohort import region_static_fc

    result = region_static_fc(timeseries, kind=kind, fisher_z=fisher_z)
    return save_run(result, output, timeseries, kind=kind, fisher_z=fisher_z)


def save_run(
    result, output: str | Path, timeseries: str | Path, *, kind: str, fisher_z: bool
) -> Path:
    """Write one run's :class:`~neuroai.fmri.cohort.RegionFC` with its provenance record
    (the same record whether the run was computed alone or in a batch)."""
    from neuroai.io import external_inputs, save_array

    if result.zero_variance_regions:
        names = result.zero_variance_regions
        logger.warning(
            "%s: %d regions have zero variance (%s); their connectivity is undefined "
            "and is set to 0.",
            timeseries,
            len(names),
            ", ".join(names[:5]),
        )
    save_array(
        output,
        result.matrix,
        stage="static_fc",
        params={"kind": kind, "fisher_z": fisher_z},
        inputs=[timeseries],
        extra={**result.record(), "external_inputs": external_inputs([timeseries])},
    )
    logger.info("Wrote %s (%d x %d, %s)", output, *result.matrix.shape, kind)
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.static_fc")
    parser.add_argument("--timeseries", required=True, help="*_timeseries.tsv of one run")
    parser.add_argument("--output", required=True, help="destination .npy")
    args = parser.parse_args(argv)
    execute(args, run, args.timeseries, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
