"""Build the tissue-segmentation demo dataset derived from nilearn's MNI152 template.

Writes a Medical Segmentation Decathlon task folder (imagesTr, labelsTr, imagesTs,
labelsTs, dataset.json with a provenance record) of seeded random deformations of the
2 mm template with CSF / grey / white matter labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets.mni152_tissue import build_mni152_tissue
from neuroai.pipelines._stage import execute, stage_parser


def run(out_dir: str | Path, *, n_train: int = 22, n_test: int = 5, seed: int = 0) -> Path:
    """Write the demo dataset into ``out_dir``; return its ``dataset.json``.

    Parameters
    ----------
    out_dir : path-like
        Task folder.
    n_train, n_test : int
        Training and held-out cases.
    seed : int
        Base seed of the deformations.
    """
    return build_mni152_tissue(out_dir, n_train=n_train, n_test=n_test, seed=seed)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.demo_tissue")
    parser.add_argument("--out-dir", required=True, help="task folder to write")
    args = parser.parse_args(argv)
    execute(args, run, args.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
