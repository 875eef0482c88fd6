"""Benchmark: indexing a generated 1,000-subject BIDS tree (raw and fMRIPrep).

Writes empty files with real BIDS names (indexing reads names, not contents):
raw BIDS with 2 sessions x 2 runs of rest BOLD per subject (plus sbref, anat and
events files that must be skipped) and a root sidecar, and fMRIPrep derivatives
with 2 runs x 2 spaces of preproc BOLD, masks, confounds and JSON. Times
``neuroai.io.index_bold_runs`` on each (best of ``--repeats``, first call
reported too: it lists folders the operating system may not have cached yet).
PyBIDS is reported at about 631 s for 963 subjects (issue 3); it is not
installed here, so it is not run.

    python benchmarks/bids_index.py [--subjects 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from neuroai.io import index_bold_runs

OUT = Path(__file__).resolve().parent / "out"


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def make_tree(root: Path, n_subjects: int) -> int:
    """Raw BIDS (root/raw) and fMRIPrep derivatives (root/fmriprep); returns files written."""
    count = 0
    (root / "raw").mkdir(parents=True, exist_ok=True)
    (root / "raw" / "task-rest_bold.json").write_text('{"RepetitionTime": 2.0}')
    for i in range(n_subjects):
        sub = f"sub-{i:04d}"
        touch(root / "raw" / sub / "anat" / f"{sub}_T1w.nii.gz")
        count += 1
        for ses in ("1", "2"):
            func = root / "raw" / sub / f"ses-{ses}" / "func"
            for run in (1, 2):
                stem = f"{sub}_ses-{ses}_task-rest_run-{run}"
                for name in (f"{stem}_bold.nii.gz", f"{stem}_sbref.nii.gz", f"{stem}_events.tsv"):
                    touch(func / name)
                    count += 1
        func = root / "fmriprep" / sub / "func"
        for run in (1, 2):
            stem = f"{sub}_task-rest_run-{run}"
            names = [
                f"{stem}_desc-confounds_timeseries.tsv",
                f"{stem}_desc-confounds_timeseries.json",
            ]
            for space in ("MNI152NLin2009cAsym", "T1w"):
                names += [
                    f"{stem}_space-{space}_desc-preproc_bold.nii.gz",
                    f"{stem}_space-{space}_desc-preproc_bold.json",
                    f"{stem}_space-{space}_desc-brain_mask.nii.gz",
                    f"{stem}_space-{space}_boldref.nii.gz",
                ]
            for name in names:
                touch(func / name)
                count += 1
    return count


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated tree")
    args = parser.parse_args(argv)
    root = OUT / f"bids_{args.subjects}"
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    n_files = make_tree(root, args.subjects)
    made = time.perf_counter() - start
    summary: dict = {"subjects": args.subjects, "files": n_files, "tree_written_s": made}
    for layout, folder, expected in (
        ("bids", root / "raw", 4 * args.subjects),
        ("fmriprep", root / "fmriprep", 4 * args.subjects),
    ):
        times = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            runs = index_bold_runs(folder, layout)
            times.append(time.perf_counter() - begin)
        if len(runs) != expected:
            raise RuntimeError(f"{layout}: found {len(runs)} runs, expected {expected}")
        filtered = time.perf_counter()
        some = index_bold_runs(
            folder, layout, subjects=[f"{i:04d}" for i in range(0, args.subjects, 10)]
        )
        summary[layout] = {
            "runs": len(runs),
            "first_s": times[0],
            "best_s": min(times),
            "filtered_tenth_s": time.perf_counter() - filtered,
            "filtered_runs": len(some),
        }
        print(
            f"{layout:8s}: {len(runs)} runs of {args.subjects} subjects indexed in {min(times):.2f} s "
            f"(first call {times[0]:.2f} s); a 10% subject filter {summary[layout]['filtered_tenth_s']:.2f} s"
        )
    summary["cpu_count"] = os.cpu_count()
    summary["load_average_1min"] = os.getloadavg()[0]
    (OUT / "bids_index.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(root)
    return summary


if __name__ == "__main__":
    main()
