"""Copy the real 4D BOLD run of neuropycon-data (with its atlas and brain mask) into a BIDS layout."""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets.neuropycon_bold import build_neuropycon_bold
from pipelines._stage import execute, stage_parser


def run(out_dir: str | Path) -> Path:
    """Write the neuropycon-data run, atlas and participants.tsv under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Root of the dataset.

    Returns
    -------
    Path
        ``participants.tsv`` (written last).
    """
    return build_neuropycon_bold(out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.demo_neuropycon")
    parser.add_argument("--out-dir", required=True, help="root of the dataset to write")
    args = parser.parse_args(argv)
    execute(args, run, args.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
