"""Benchmark: streaming time-series extraction vs nilearn's NiftiLabelsMasker.

Generates a 4D float32 NIfTI of at least 1 GB (MNI 2 mm grid, 91 x 109 x 91 x 300
volumes by default) and a 400-region label atlas on the same grid, then times
``neuroai.fmri.extract_timeseries`` and ``NiftiLabelsMasker().fit_transform`` on
them, each in a fresh Python process, and reports wall time, peak resident memory
(``VmHWM``, whole process) and the ratios, measured in the same run; neuroai also
runs on a shorter image (``--short-volumes``) to show that its peak memory does not
grow with the number of volumes. The file
is read once before timing so that both read it from the page cache. Each tool
runs ``--repeats`` times, alternating; the best time and the largest peak are kept.

    python benchmarks/extraction.py [--volumes 300] [--repeats 2] [--keep]

Goal (issue 3): at least 2x faster with at most half the peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SHAPE = (91, 109, 91)

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np

def high_water_mb():
    # VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's
    # peak across fork and exec).
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

tool, bold, atlas, out = sys.argv[1:5]
if tool == "neuroai":
    from neuroai.fmri import extract_timeseries
else:
    from nilearn.maskers import NiftiLabelsMasker
base = high_water_mb()
start = time.perf_counter()
if tool == "neuroai":
    ts = extract_timeseries(bold, atlas)
else:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = NiftiLabelsMasker(atlas).fit_transform(bold)
seconds = time.perf_counter() - start
peak = high_water_mb()
np.save(out, np.asarray(ts, dtype=np.float32))
print(json.dumps({"seconds": seconds, "peak_mb": peak, "after_import_mb": base}))
"""


def make_data(n_volumes: int, n_regions: int, seed: int = 0) -> tuple[Path, Path]:
    """Write the 4D image (volume by volume, never whole in memory) and the atlas."""
    import nibabel as nib

    OUT.mkdir(parents=True, exist_ok=True)
    bold = OUT / f"bench_bold_{n_volumes}.nii"
    atlas = OUT / f"bench_atlas_{n_regions}.nii.gz"
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in SHAPE], indexing="ij"), -1)
    brain = (grid**2 / np.array([0.8, 0.85, 0.75]) ** 2).sum(-1) < 1
    if not atlas.exists():
        centres = rng.uniform(-0.7, 0.7, (n_regions, 3))
        coords = grid[brain]
        nearest = np.empty(len(coords), dtype=np.int16)
        for start in range(0, len(coords), 50000):  # bounded memory
            block = coords[start : start + 50000]
            nearest[start : start + 50000] = ((block[:, None] - centres) ** 2).sum(-1).argmin(1) + 1
        labels = np.zeros(SHAPE, dtype=np.int16)
        labels[brain] = nearest
        nib.save(nib.Nifti1Image(labels, affine), atlas)
    expected = np.prod(SHAPE) * n_volumes * 4
    if not bold.exists() or bold.stat().st_size < expected:
        header = nib.Nifti1Header()
        header.set_data_shape((*SHAPE, n_volumes))
        header.set_data_dtype(np.float32)
        header.set_qform(affine, 1)
        header.set_sform(affine, 1)
        header.set_xyzt_units("mm", "sec")
        header.set_zooms((2.0, 2.0, 2.0, 0.8))
        base = (1000 + 100 * rng.standard_normal(SHAPE)).astype(np.float32) * brain
        with open(bold, "wb") as handle:
            header.write_to(handle)
            handle.write(b"\0" * (int(header["vox_offset"]) - handle.tell()))
            for _ in range(n_volumes):
                noise = rng.standard_normal(SHAPE, dtype=np.float32) * 10
                handle.write(np.asfortranarray(base + noise * brain).tobytes(order="F"))
    return bold, atlas


def run_child(tool: str, bold: Path, atlas: Path) -> dict:
    out = OUT / f"ts_{tool}.npy"
    env = dict(
        os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, tool, str(bold), str(atlas), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=300, help="volumes of the 4D image")
    parser.add_argument("--regions", type=int, default=400, help="regions of the atlas")
    parser.add_argument("--repeats", type=int, default=2, help="runs per tool (best kept)")
    parser.add_argument(
        "--short-volumes",
        type=int,
        default=100,
        help="also run neuroai on an image this long: peak memory must not depend on the length",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated image")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    bold, atlas = make_data(args.volumes, args.regions)
    size_gb = bold.stat().st_size / 1e9
    print(
        f"image {bold.name}: {size_gb:.2f} GB ({SHAPE} x {args.volumes}, float32), "
        f"made in {time.perf_counter() - start:.1f} s"
    )
    with open(bold, "rb") as handle:  # page cache: both tools read from memory
        while handle.read(64 * 2**20):
            pass
    results: dict[str, list[dict]] = {"neuroai": [], "nilearn": []}
    for _ in range(args.repeats):
        for tool in ("neuroai", "nilearn"):
            results[tool].append(run_child(tool, bold, atlas))
            print(f"  {tool:8s} {results[tool][-1]}")
    ours = np.load(OUT / "ts_neuroai.npy")
    theirs = np.load(OUT / "ts_nilearn.npy")
    short, _ = make_data(args.short_volumes, args.regions)
    flat = run_child("neuroai", short, atlas)
    print(f"  neuroai on {args.short_volumes} volumes {flat}")
    best = {tool: min(r["seconds"] for r in runs) for tool, runs in results.items()}
    peak = {tool: max(r["peak_mb"] for r in runs) for tool, runs in results.items()}
    summary = {
        "image_gb": round(size_gb, 3),
        "shape": [*SHAPE, args.volumes],
        "regions": args.regions,
        "seconds": best,
        "peak_mb": peak,
        "speedup": best["nilearn"] / best["neuroai"],
        "memory_ratio": peak["neuroai"] / peak["nilearn"],
        "max_abs_difference_float32": float(np.abs(ours - theirs).max()),
        "neuroai_peak_mb_by_volumes": {
            args.short_volumes: flat["peak_mb"],
            args.volumes: peak["neuroai"],
        },
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }
    print(
        f"neuroai {best['neuroai']:.2f} s, {peak['neuroai']:.0f} MB | nilearn {best['nilearn']:.2f} s, "
        f"{peak['nilearn']:.0f} MB | {summary['speedup']:.1f}x faster, "
        f"{summary['memory_ratio']:.2f}x the peak memory | max |diff| "
        f"{summary['max_abs_difference_float32']:.2g} | neuroai peak {flat['peak_mb']:.0f} MB at "
        f"{args.short_volumes} volumes, {peak['neuroai']:.0f} MB at {args.volumes}"
    )
    (OUT / "extraction.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.keep:
        bold.unlink()
        short.unlink()
    return summary


if __name__ == "__main__":
    main()
