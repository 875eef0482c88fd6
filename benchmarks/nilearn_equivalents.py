"""Benchmark: neuroai's nilearn equivalents against nilearn itself, on the same inputs.

Three re-implementations are compared with the nilearn function they follow:

- ``neuroai.fmri.clean`` vs ``nilearn.signal.clean``: region series of 1200 frames x
  400 regions (TR 0.72 s) and 200 x 100 (TR 2 s), a voxel-like 200 x 20,000 in float64
  and float32, each band-passed 0.01-0.1 Hz against 36 confounds; and the 1200 x 400
  series scrubbed (5% of the volumes censored, scattered), where the censored volumes
  are filled by a spline before filtering. For that case the benchmark also measures
  how much the output moves when the censored volumes' values are replaced by motion
  spikes (``leak``): a correct scrubbing is blind to them (0).
- ``neuroai.fmri.load_confounds`` vs ``nilearn.interfaces.fmriprep.load_confounds``:
  a synthetic fMRIPrep confounds TSV + JSON (1200 volumes, 349 columns: motion and
  tissue expansions, cosines, 250 CompCor components, FD, DVARS, outlier flags) under
  nilearn's ``simple``, ``scrubbing`` and ``compcor`` presets. nilearn takes the path
  of the BOLD image and finds the table beside it; the image need not exist.
- ``neuroai.fmri.connectivity`` (one run, what the ``static_fc`` stage calls) and
  ``GroupConnectivity`` vs ``nilearn.connectome.ConnectivityMeasure``: 50 runs of
  200 x 100 and of 1200 x 400, kinds correlation, partial correlation, tangent
  (group only) and covariance.

Every variant runs ``--repeats`` times, interleaved with its nilearn counterpart, and
the best time is kept; times are CPU seconds of this process (the best wall times are
in the JSON too), so that other work on a shared machine does not count; ``ratio`` is
nilearn's time over ours (above 1: ours is faster). BLAS runs on ``--blas-threads``
threads (1 by default: on a shared machine, multi-threaded BLAS on small matrices
times the load, not the code), numpy's and scipy's own OpenBLAS alike. Peak memory is
the ``tracemalloc`` peak of one extra call (numpy reports its buffers to it), input
excluded. ``max abs diff`` is the largest absolute difference between the two outputs.

    PYTHONPATH=. .venv/bin/python benchmarks/nilearn_equivalents.py [--repeats 3]

It decided issue 21's "ours or nilearn's": measured against the re-implementations,
no ratio reached 1.3, so ``clean``, ``connectivity`` and ``GroupConnectivity`` now call
nilearn (their ratios here are about 1; the figures of the replaced code are in
``docs/ecosystem.md``) and ``load_confounds`` stays ours for the tables nilearn's
cannot read (both recorded below the table).

Prints a markdown table and writes ``benchmarks/out/nilearn_equivalents.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out"
BAND = {"low_pass": 0.1, "high_pass": 0.01}


def _quiet(function: Callable) -> Callable:
    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function()

    return call


def _peak_mb(function: Callable) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _difference(ours, theirs) -> float:
    if isinstance(ours, tuple):  # load_confounds: (table, sample mask)
        same_mask = (ours[1] is None and theirs[1] is None) or np.array_equal(ours[1], theirs[1])
        if list(ours[0].columns) != list(theirs[0].columns) or not same_mask:
            return float("inf")
        ours, theirs = ours[0].to_numpy(), theirs[0].to_numpy()
    return float(np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)).max())


def compare(name: str, ours: Callable, theirs: Callable, repeats: int, **extra) -> dict:
    """Time both (interleaved, best of ``repeats``), their peak memory and difference."""
    ours, theirs = _quiet(ours), _quiet(theirs)
    times: dict[str, list[float]] = {"ours": [], "nilearn": []}
    cpu: dict[str, list[float]] = {"ours": [], "nilearn": []}
    results = {}
    for _ in range(repeats):
        for side, function in (("ours", ours), ("nilearn", theirs)):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            results[side] = function()
            cpu[side].append(time.process_time() - begin_cpu)
            times[side].append(time.perf_counter() - begin)
    row = {
        "case": name,
        "ours_s": min(cpu["ours"]),
        "nilearn_s": min(cpu["nilearn"]),
        "ours_wall_s": min(times["ours"]),
        "nilearn_wall_s": min(times["nilearn"]),
        "ours_peak_mb": _peak_mb(ours),
        "nilearn_peak_mb": _peak_mb(theirs),
        "max_abs_diff": _difference(results["ours"], results["nilearn"]),
        **extra,
    }
    row["ratio"] = row["nilearn_s"] / row["ours_s"]
    row["memory_ratio"] = row["nilearn_peak_mb"] / max(row["ours_peak_mb"], 1e-9)
    return row


def _series(n_time: int, n_signals: int, seed: int, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_time, 5)) @ rng.standard_normal((5, n_signals))
    drift = np.linspace(0, 1, n_time)[:, None] * rng.uniform(-20, 20, n_signals)
    noise = rng.standard_normal((n_time, n_signals)) * rng.uniform(0.5, 3, n_signals)
    return (1000 + drift + 5 * latent + noise).astype(dtype)


def _confounds(n_time: int, seed: int, n: int = 36) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((n_time, n)), axis=0) * 0.05


def clean_rows(repeats: int) -> list[dict]:
    from nilearn.signal import clean as nilearn_clean

    from neuroai.fmri import clean

    rows = []
    cases = [
        ("regions 1200 x 400, TR 0.72", 1200, 400, 0.72, np.float64),
        ("regions 200 x 100, TR 2", 200, 100, 2.0, np.float64),
        ("voxels 200 x 20,000, TR 2", 200, 20_000, 2.0, np.float64),
        ("voxels 200 x 20,000 float32", 200, 20_000, 2.0, np.float32),
    ]
    for label, n_time, n_signals, t_r, dtype in cases:
        signals = _series(n_time, n_signals, seed=n_signals, dtype=dtype)
        options = {"confounds": _confounds(n_time, seed=1), "t_r": t_r, **BAND}
        row = compare(
            f"clean: {label}",
            lambda s=signals, o=options: clean(s, **o),
            lambda s=signals, o=options: nilearn_clean(s, **o),
            repeats,
        )
        row["ours_dtype"] = str(_quiet(lambda s=signals, o=options: clean(s, **o))().dtype)
        row["nilearn_dtype"] = str(
            _quiet(lambda s=signals, o=options: nilearn_clean(s, **o))().dtype
        )
        rows.append(row)
    # Scrubbing: 5% of the volumes censored, scattered (in runs of 1-3, as FD flags them).
    n_time, t_r = 1200, 0.72
    signals = _series(n_time, 400, seed=7)
    rng = np.random.default_rng(3)
    censored = np.unique(
        np.concatenate([s + np.arange(rng.integers(1, 4)) for s in rng.integers(5, 1190, 25)])
    )
    mask = np.setdiff1d(np.arange(n_time), censored)
    spiked = signals.copy()
    spiked[censored] += 200 * rng.standard_normal((censored.size, 400))
    options = {"confounds": _confounds(n_time, seed=1), "t_r": t_r, "sample_mask": mask, **BAND}
    leak = {}
    for side, function in (("ours", clean), ("nilearn", nilearn_clean)):
        before = _quiet(lambda f=function: f(signals, **options))()
        after = _quiet(lambda f=function: f(spiked, **options))()
        leak[side] = float(np.abs(after - before).max())
    rows.append(
        compare(
            f"clean: regions 1200 x 400 scrubbed ({censored.size} of {n_time} censored)",
            lambda: clean(signals, **options),
            lambda: nilearn_clean(signals, **options),
            repeats,
            ours_leak=leak["ours"],
            nilearn_leak=leak["nilearn"],
        )
    )
    return rows


def write_fmriprep_confounds(folder: Path, n_volumes: int = 1200, seed: int = 0) -> Path:
    """A fMRIPrep-like confounds TSV and JSON; returns the TSV path."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    meta: dict[str, dict] = {}

    def expand(base: str, values: np.ndarray) -> None:
        derivative = np.r_[np.nan, np.diff(values)]
        columns.update(
            {
                base: values,
                f"{base}_derivative1": derivative,
                f"{base}_power2": values**2,
                f"{base}_derivative1_power2": derivative**2,
            }
        )

    for name in ("global_signal", "csf", "white_matter", "csf_wm"):
        expand(name, 600 + np.cumsum(rng.standard_normal(n_volumes)))
    for name in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
        expand(name, np.cumsum(rng.standard_normal(n_volumes)) * 0.02)
    fd = np.abs(rng.standard_normal(n_volumes)) * 0.15
    fd[rng.integers(2, n_volumes, 40)] = 0.8
    columns["framewise_displacement"] = np.r_[np.nan, fd[1:]]
    columns["rmsd"] = np.r_[np.nan, fd[1:] * 0.3]
    columns["dvars"] = np.r_[np.nan, 20 + rng.standard_normal(n_volumes - 1)]
    columns["std_dvars"] = np.r_[np.nan, 1 + 0.15 * rng.standard_normal(n_volumes - 1)]
    n_cosines = 13  # fMRIPrep's 128 s high-pass at TR 0.72 s
    for i in range(n_cosines):
        columns[f"cosine{i:02d}"] = np.sqrt(2 / n_volumes) * np.cos(
            np.pi * (np.arange(n_volumes) + 0.5) * (i + 1) / n_volumes
        )
    compcor = [("a", "combined", 100), ("a", "CSF", 50), ("a", "WM", 50), ("t", None, 50)]
    counts = {"a": 0, "t": 0}
    for prefix, mask, count in compcor:
        for _ in range(count):
            name = f"{prefix}_comp_cor_{counts[prefix]:02d}"
            counts[prefix] += 1
            columns[name] = rng.standard_normal(n_volumes) / np.sqrt(n_volumes)
            meta[name] = {
                "Method": "aCompCor" if prefix == "a" else "tCompCor",
                "Retained": True,
                "SingularValue": float(rng.uniform(1, 100)),
                "VarianceExplained": float(rng.uniform(0, 0.05)),
                **({"Mask": mask} if mask else {}),
            }
    for i in range(2):
        flags = np.zeros(n_volumes)
        flags[i] = 1
        columns[f"non_steady_state_outlier{i:02d}"] = flags
    for i, volume in enumerate(np.flatnonzero(fd > 0.5)):
        flags = np.zeros(n_volumes)
        flags[volume] = 1
        columns[f"motion_outlier{i:02d}"] = flags
    stem = "sub-01_task-rest_run-1"
    tsv = folder / f"{stem}_desc-confounds_timeseries.tsv"
    pd.DataFrame(columns).to_csv(tsv, sep="\t", index=False, na_rep="n/a", float_format="%.8g")
    tsv.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    return tsv


def confounds_rows(repeats: int) -> list[dict]:
    from nilearn.interfaces.fmriprep import load_confounds as nilearn_load_confounds

    from neuroai.fmri import load_confounds
    from neuroai.fmri.confounds import resolve_preset

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tsv = write_fmriprep_confounds(Path(folder))
        n_columns = len(tsv.read_text().splitlines()[0].split("\t"))
        # nilearn needs the image path; it finds the table beside it (the image may be absent).
        image = str(tsv.with_name("sub-01_task-rest_run-1_space-MNI_desc-preproc_bold.nii.gz"))
        for preset in ("simple", "scrubbing", "compcor"):
            params = resolve_preset(preset)
            rows.append(
                compare(
                    f"load_confounds: {preset} preset, 1200 volumes x {n_columns} columns",
                    lambda p=params: load_confounds(tsv, **p),
                    lambda p=params: nilearn_load_confounds(image, **p),
                    repeats,
                )
            )
        # What ours reads and nilearn does not: the table by its own path, and the table
        # of an uncompressed image (the neuropycon demo's BOLD is a .nii).
        for label, path in (("tsv_path", tsv), ("nii_image", Path(image[: -len(".gz")]))):
            try:
                _quiet(lambda p=path: nilearn_load_confounds(str(p)))()
                rows[-1][f"nilearn_with_{label}"] = "read"
            except ValueError as exc:
                rows[-1][f"nilearn_with_{label}"] = f"{type(exc).__name__}: {exc}"
    return rows


def connectivity_rows(repeats: int, n_runs: int, shapes: list[tuple[int, int]]) -> list[dict]:
    from nilearn.connectome import ConnectivityMeasure

    from neuroai.fmri import GroupConnectivity, connectivity

    rows = []
    for n_time, n_regions in shapes:
        runs = [_series(n_time, n_regions, seed=100 + i) for i in range(n_runs)]
        size = f"{n_runs} runs of {n_time} x {n_regions}"
        for kind in ("correlation", "partial correlation"):
            rows.append(
                compare(
                    f"connectivity (per run): {kind}, {size}",
                    lambda k=kind, g=runs: np.stack([connectivity(r, k) for r in g]),
                    lambda k=kind, g=runs: np.stack(
                        [ConnectivityMeasure(kind=k).fit_transform([r])[0] for r in g]
                    ),
                    repeats,
                )
            )
        for kind in ("correlation", "partial correlation", "tangent", "covariance"):
            rows.append(
                compare(
                    f"GroupConnectivity: {kind}, {size}",
                    lambda k=kind, g=runs: GroupConnectivity(k).fit_transform(g),
                    lambda k=kind, g=runs: ConnectivityMeasure(kind=k).fit_transform(g),
                    repeats,
                )
            )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| case | ours CPU s | nilearn CPU s | ratio | ours peak MB | nilearn peak MB "
        "| max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['ours_s']:.4f} | {row['nilearn_s']:.4f} | "
            f"{row['ratio']:.2f} | {row['ours_peak_mb']:.1f} | {row['nilearn_peak_mb']:.1f} | "
            f"{row['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50, help="runs per connectivity group")
    parser.add_argument(
        "--fc-shapes",
        default="200x100,1200x400",
        help="comma-separated TIMExREGIONS shapes of the connectivity runs",
    )
    parser.add_argument(
        "--sections", default="clean,confounds,connectivity", help="comma-separated"
    )
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)
    # Load every BLAS before limiting them: scipy ships its own OpenBLAS (what nilearn's
    # scipy.linalg calls use), and threadpoolctl limits only the libraries already loaded.
    import nilearn.connectome  # noqa: F401
    import nilearn.interfaces.fmriprep  # noqa: F401
    import nilearn.signal  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.covariance  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    import neuroai.fmri  # noqa: F401

    with threadpool_limits(limits=args.blas_threads):
        args.threadpools = [
            (pool["internal_api"], Path(pool["filepath"]).name, pool["num_threads"])
            for pool in threadpool_info()
        ]
        return _run(args)


def _run(args) -> dict:
    sections = args.sections.split(",")
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.fc_shapes.split(",")]
    rows: list[dict] = []
    if "clean" in sections:
        rows += clean_rows(args.repeats)
    if "confounds" in sections:
        rows += confounds_rows(args.repeats)
    if "connectivity" in sections:
        rows += connectivity_rows(args.repeats, args.runs, shapes)
    import nilearn

    summary = {
        "rows": rows,
        "repeats": args.repeats,
        "blas_threads": args.blas_threads,
        "threadpools": args.threadpools,
        "nilearn": nilearn.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }
    print(markdown(rows))
    for row in rows:
        if "ours_leak" in row:
            print(
                f"{row['case']}: output change when the censored volumes hold motion spikes: "
                f"ours {row['ours_leak']:.1e}, nilearn {row['nilearn_leak']:.1e}"
            )
        if "nilearn_with_tsv_path" in row:
            print(
                f"nilearn's load_confounds given the TSV path: {row['nilearn_with_tsv_path']}; "
                f"given a .nii image beside it: {row['nilearn_with_nii_image']} "
                "(ours reads both tables)"
            )
        if "ours_dtype" in row and row["ours_dtype"] != row["nilearn_dtype"]:
            print(
                f"{row['case']}: output dtype ours {row['ours_dtype']}, "
                f"nilearn {row['nilearn_dtype']}"
            )
    print(
        f"nilearn {nilearn.__version__}; best of {args.repeats}; {args.blas_threads} BLAS "
        f"thread(s); load average "
        f"{summary['load_average_1min']:.1f} on {summary['cpu_count']} cores"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "nilearn_equivalents.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
