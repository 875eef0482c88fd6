"""participants.tsv of a dataset with its labels table over it (fMRI datasets).

The graph dataset, the token index and the group FC take their labels from
participants.tsv; for a dataset with ``labels:`` they read this merged table
instead, in which the labels table wins for the columns it has (see
:func:`neuroai.datasets.labels.merge_participants`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai import get_logger
from neuroai.datasets.labels import merge_participants, read_labels
from neuroai.io import save_table
from neuroai.io.bids import participants_table
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.dataset_labels")


def run(
    labels: str | Path,
    output: str | Path,
    *,
    participants: str | Path | None = None,
    layout: str | None = None,
    dataset: str | None = None,
) -> Path:
    """Write ``output``: ``participants`` (if any) with the labels table merged in.

    Parameters
    ----------
    labels : path-like
        The dataset's labels table, keyed by ``subject``.
    output : path-like
        Destination TSV (written atomically, with provenance).
    participants : path-like | None
        The dataset's own participants.tsv.
    layout, dataset : str | None
        The dataset's layout (which identity columns it accepts) and name.

    Returns
    -------
    Path
        ``output``.
    """
    table = read_labels(labels, layout=layout, dataset=dataset)
    base = participants_table(participants) if participants else None
    merged = merge_participants(base, table)
    inputs = [Path(labels)] + ([Path(participants)] if participants else [])
    params = {"dataset": dataset, "layout": layout}
    save_table(output, merged, stage="dataset_labels", params=params, inputs=inputs)
    logger.info(
        "%s: %d subjects, label columns %s", dataset or output, len(merged), list(table.columns)
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dataset_labels")
    parser.add_argument("--labels", required=True, help="the dataset's labels table (TSV)")
    parser.add_argument("--output", required=True, help="destination participants.tsv")
    parser.add_argument("--participants", default=None, help="the dataset's participants.tsv")
    parser.add_argument("--layout", default=None, help="the dataset's layout")
    parser.add_argument("--dataset", default=None, help="dataset name")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.labels,
        args.output,
        participants=args.participants,
        layout=args.layout,
        dataset=args.dataset,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
