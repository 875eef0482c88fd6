"""Group summary of a dataset's static FC: group-mean matrix and edge statistics.

Writes <out>_mean.npy (n_regions x n_regions) and <out>_summary.json, each with a
provenance record. Groups (for example the site) come from participants.tsv.
The matrices are the static_fc stage's, or your own (.npy files saved with numpy.save,
square and finite): a file without a provenance record is read as an external input,
and its checksum is recorded (extra.external_inputs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.fmri.group import summarize_connectivity
from neuroai.io import InputArrays, has_record, save_array, save_json
from neuroai.pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.group_fc")
SUFFIX = "_connectivity.npy"


def _run_key(path: Path) -> str:
    name = Path(path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(path).stem


def run(
    connectivity: list[str | Path],
    mean_output: str | Path,
    summary_output: str | Path,
    *,
    dataset: str,
    participants: str | Path | None = None,
    group_by: str | None = "site",
) -> tuple[Path, Path]:
    """Summarise the per-run connectivity matrices of one dataset.

    Parameters
    ----------
    connectivity : list of path-like
        ``*_connectivity.npy`` artifacts of the static FC stage, or connectivity matrices
        of your own (n_regions x n_regions ``.npy``, no provenance record): read as
        external inputs, their checksums recorded in ``extra.external_inputs``. A file
        that has a record must match it.
    mean_output, summary_output : path-like
        Destinations of the group-mean matrix (.npy) and the summary (.json).
    dataset : str
        Dataset name, recorded in the summary.
    participants : path-like | None
        ``participants.tsv`` giving each subject's group.
    group_by : str | None
        Column of ``participants.tsv`` that defines the groups.
    """
    paths = [Path(p) for p in connectivity]
    # Memory-mapped one at a time: memory and open files do not grow with the cohort.
    matrices = InputArrays(
        paths, stage="static_fc", ndim=2, square=True, what="a connectivity matrix"
    )
    runs = [_run_key(p) for p in paths]
    groups = {}
    if participants is not None and group_by:
        table = pd.read_csv(participants, sep="\t", dtype=str)
        if group_by not in table.columns:
            raise DataError(
                f"{participants} has no column {group_by!r} to group by; columns: "
                f"{', '.join(table.columns)}."
            )
        by_subject = dict(zip(table["participant_id"], table[group_by], strict=True))
        groups = {run: by_subject.get(run.split("_", 1)[0], "unknown") for run in runs}
    mean, summary = summarize_connectivity(matrices, runs=runs, groups=groups)
    summary["dataset"] = dataset
    summary["group_by"] = group_by if groups else None
    kinds = {load_kind(p) for p in paths}  # reads each run's record (a small JSON file)
    summary["kind"] = kinds.pop() if len(kinds) == 1 else "mixed"
    inputs = [*paths] + ([Path(participants)] if participants else [])
    params = {"dataset": dataset, "group_by": group_by}
    provenance = {
        "stage": "group_fc",
        "params": params,
        "inputs": inputs,
        "extra": {"external_inputs": matrices.external},
    }
    save_array(mean_output, mean, **provenance)
    save_json(summary_output, summary, **provenance)
    logger.info(
        "Summarised %d runs of %s (%d external inputs)",
        len(paths),
        dataset,
        len(matrices.external),
    )
    return Path(mean_output), Path(summary_output)


def load_kind(path: Path) -> str:
    """The connectivity kind a run was made with (``"unknown"`` for an external input)."""
    from neuroai.io import read_provenance

    if not has_record(path):
        return "unknown"
    return read_provenance(path)["params"].get("kind", "unknown")


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.group_fc")
    parser.add_argument(
        "--connectivity",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or *_connectivity.npy files (the static_fc stage's or your own)",
    )
    parser.add_argument("--mean-output", required=True)
    parser.add_argument("--summary-output", required=True)
    parser.add_argument("--participants", default=None, help="participants.tsv with the groups")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.connectivity,
        args.mean_output,
        args.summary_output,
        participants=args.participants,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
