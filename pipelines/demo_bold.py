"""Build a demo dataset of real 4D BOLD from an installed package (offline).

neuropycon_bold: neuropycon-data's resting-state run as fMRIPrep-style
derivatives with its 184-region atlas; nitime_bold: nitime's two runs as raw
BIDS with a sphere atlas. See neuroai.datasets.bold_demos.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets.bold_demos import build_bold_demo
from neuroai.pipelines._stage import execute, stage_parser


def run(out_dir: str | Path, *, builder: str) -> Path:
    """Write the demo dataset ``builder`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Root of the dataset to write.
    builder : {"neuropycon_bold", "nitime_bold"}
        Which demo.

    Returns
    -------
    Path
        Its ``participants.tsv`` (written last).
    """
    return build_bold_demo(builder, out_dir)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.demo_bold")
    parser.add_argument("--out-dir", required=True, help="root of the dataset to write")
    args = parser.parse_args(argv)
    execute(args, run, args.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
