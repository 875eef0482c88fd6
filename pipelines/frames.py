"""Put a subject's 4D BOLD runs on the 96^3 MNI grid of 2 mm and scale them to [-1, 1].

Writes one .npy of shape (n_frames, 96, 96, 96), float16, with a provenance record
holding the grid, each run's placement (pad/crop or nilearn resampling), the TR and
the subject's maximum. Frames are streamed in chunks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.pipelines._stage import execute, stage_parser
from neuroai.tokenizers.frames import write_frames


def run(
    runs: list[str | Path],
    output: str | Path,
    *,
    max_frames: int | None = None,
    chunk_frames: int = 8,
    interpolation: str = "linear",
) -> Path:
    """Write the frames of one subject.

    Parameters
    ----------
    runs : list of path-like
        The subject's 4D BOLD runs (``*_bold.nii[.gz]``), in storage order.
    output : path-like
        Destination ``.npy``: (n_frames, 96, 96, 96) float16 in [-1, 1].
    max_frames : int | None
        Keep only the first frames (the demo preset encodes a few per subject).
    chunk_frames : int
        Frames processed at a time (bounds the memory).
    interpolation : {"linear", "continuous", "nearest"}
        nilearn interpolation for runs that are not on the grid's lattice.

    Returns
    -------
    Path
        ``output``.
    """
    params = {
        "max_frames": max_frames,
        "chunk_frames": chunk_frames,
        "interpolation": interpolation,
    }
    write_frames(
        runs,
        output,
        max_frames=max_frames,
        chunk_frames=chunk_frames,
        interpolation=interpolation,
        params=params,
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.frames")
    parser.add_argument("--runs", nargs="+", required=True, help="the subject's *_bold.nii[.gz]")
    parser.add_argument("--output", required=True, help="destination .npy")
    args = parser.parse_args(argv)
    execute(args, run, args.runs, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
