"""Benchmark: vectorised dynamic FC vs a per-window ``np.corrcoef`` loop.

1200 TRs x 400 regions, window 50, step 3 (384 windows), float64 output for both;
the float32 output (what the workflow stores) is timed too. A second baseline runs
the same loop with BLAS limited to one thread (on a busy machine, multi-threaded
BLAS on small matrices can be much slower than one thread). The compiled kernel is
warmed up (compiled or loaded from the cache) before timing and its first-call time
is reported apart. Each variant runs ``--repeats`` times, interleaved, and the best
time is kept, so a busy machine penalises both sides alike.

    python benchmarks/dynamic_fc.py [--repeats 5]

Goal (issue 3): at least 10x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from neuroai.fmri import dynamic as dynamic_module
from neuroai.fmri import dynamic_connectivity, window_starts

OUT = Path(__file__).resolve().parent / "out"


def corrcoef_loop(ts: np.ndarray, window: int, step: int) -> np.ndarray:
    """The baseline: one np.corrcoef per window."""
    starts = window_starts(ts.shape[0], window, step)
    out = np.empty((starts.size, ts.shape[1], ts.shape[1]))
    for k, start in enumerate(starts):
        out[k] = np.corrcoef(ts[start : start + window].T)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timepoints", type=int, default=1200)
    parser.add_argument("--regions", type=int, default=400)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--step", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    ts = 100 + np.cumsum(rng.standard_normal((args.timepoints, args.regions)), axis=0) * 0.1
    ts += rng.standard_normal(ts.shape) * rng.uniform(0.5, 5, args.regions)
    start = time.perf_counter()
    dynamic_connectivity(ts[:60, :3], 50, 3)  # compile (or load) the kernel
    warmup = time.perf_counter() - start
    from threadpoolctl import threadpool_limits

    def single_thread_loop():
        with threadpool_limits(limits=1):
            return corrcoef_loop(ts, args.window, args.step)

    variants = {
        "corrcoef_loop": lambda: corrcoef_loop(ts, args.window, args.step),
        "corrcoef_loop_1_blas_thread": single_thread_loop,
        "neuroai_float64": lambda: dynamic_connectivity(ts, args.window, args.step),
        "neuroai_float32": lambda: dynamic_connectivity(
            ts, args.window, args.step, dtype=np.float32
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    results = {}
    for _ in range(args.repeats):
        for name, function in variants.items():
            begin = time.perf_counter()
            results[name] = function()
            times[name].append(time.perf_counter() - begin)
    best = {name: min(values) for name, values in times.items()}
    reference = results["corrcoef_loop"]
    summary = {
        "shape": [args.timepoints, args.regions],
        "window": args.window,
        "step": args.step,
        "n_windows": int(reference.shape[0]),
        "compiled_kernel": dynamic_module.HAS_NUMBA,
        "kernel_first_call_s": warmup,
        "best_seconds": best,
        "median_seconds": {name: float(np.median(v)) for name, v in times.items()},
        "speedup_float64": best["corrcoef_loop"] / best["neuroai_float64"],
        "speedup_float32": best["corrcoef_loop"] / best["neuroai_float32"],
        "speedup_float64_vs_1_blas_thread": best["corrcoef_loop_1_blas_thread"]
        / best["neuroai_float64"],
        "max_abs_difference": float(np.abs(results["neuroai_float64"] - reference).max()),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }
    print(
        f"{summary['n_windows']} windows of {args.window} TRs x {args.regions} regions: "
        f"np.corrcoef loop {best['corrcoef_loop']:.3f} s | neuroai float64 "
        f"{best['neuroai_float64']:.3f} s ({summary['speedup_float64']:.1f}x) | float32 "
        f"{best['neuroai_float32']:.3f} s ({summary['speedup_float32']:.1f}x) | max |diff| "
        f"{summary['max_abs_difference']:.1e} | kernel first call {warmup:.2f} s\n"
        f"baseline with 1 BLAS thread {best['corrcoef_loop_1_blas_thread']:.3f} s "
        f"({summary['speedup_float64_vs_1_blas_thread']:.1f}x); load average "
        f"{summary['load_average_1min']:.1f} on {summary['cpu_count']} cores"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dynamic_fc.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
