"""Benchmark: samples per second the training loader delivers, per worker, for every model family.

A GPU trains only as fast as its loader feeds it (issue 23). For each family a small
synthetic on-disk dataset of realistic per-sample size is written with the project's
own writers (``neuroai.testing``), and the family's real training loader
(``datamodule.train_dataloader()``: a ``ResumableLoader`` with the options of
``neuroai.training.loading.loader_options``) is read with 0, 1 and 2 workers:

- **eegformer**: a patch store of 22-channel windows of 12 s at 250 Hz (patches of 50
  samples), as the EEG stages write them; ``EEGWindowDataModule``, batches of 32 windows.
- **tablet**: token stores of 27 x 3072 float16 tokens per frame (one per subject);
  ``TokenWindowDataModule`` with pretraining masks, random windows of 256 frames, batches of 2.
- **dfc_gnn**: a graph dataset of runs of 300 TRs over 200 regions (windows of 50 TRs,
  step 3, 30 % of the edges); ``GraphDataModule``, crops of 12 windows, batches of 8.
- **dsd**: Decathlon-layout volumes of 91 x 109 x 91 voxels at 2 mm (MNI152's grid);
  ``SegmentationDataModule`` (MONAI preprocessing cached in memory, then random patches of
  64^3, 2 per volume, flips, rotations, intensity shifts), batches of 2 volumes.

Each measurement starts a fresh pass over the loader (workers persist between passes, as
in training), skips ``--warmup`` batches (worker start-up, first reads), then times
``--batches`` batches; ``--repeats`` passes, with the worker counts interleaved so that a
change of load on a shared machine slows all of them alike; medians are reported. A
sample is one item of a batch (an EEG window, a token window, a crop, a 3D patch).
Reported per worker count: samples/s, samples/s per worker, and the ratio to 0 workers
measured in the same run. ``--threads`` sets the training process's torch threads
(workers use one each, as torch sets them).

    PYTHONPATH=. .venv/bin/python benchmarks/loader_throughput.py            # ~5 min on 2 cores
    PYTHONPATH=. .venv/bin/python benchmarks/loader_throughput.py --quick    # tiny, seconds
    PYTHONPATH=. .venv/bin/python benchmarks/loader_throughput.py --families dsd --workers 0 4 8

Results go to ``benchmarks/out/loader_throughput.json`` (or ``--output``) and a Markdown
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
FAMILIES = ("eegformer", "tablet", "dfc_gnn", "dsd")

#: Per-sample sizes of a real run (see the module docstring), and tiny ones for --quick.
SIZES = {
    "eegformer": {"batch": 32, "channels": 22, "sfreq": 250.0, "window_samples": 3000, "patch": 50},
    "tablet": {"batch": 2, "window": 256, "tokens": 27, "token_dim": 3072},
    "dfc_gnn": {"batch": 8, "regions": 200, "timepoints": 300, "window": 50, "crop": 12},
    "dsd": {"batch": 2, "shape": (91, 109, 91), "spacing": 2.0, "roi": 64, "patches": 2},
}
QUICK_SIZES = {
    "eegformer": {"batch": 4, "channels": 5, "sfreq": 100.0, "window_samples": 400, "patch": 20},
    "tablet": {"batch": 2, "window": 8, "tokens": 5, "token_dim": 12},
    "dfc_gnn": {"batch": 4, "regions": 7, "timepoints": 40, "window": 10, "crop": 3},
    "dsd": {"batch": 2, "shape": (19, 23, 17), "spacing": 1.0, "roi": 8, "patches": 2},
}


# -- one synthetic dataset per family; each returns make(num_workers) -> data module --------


def eegformer(root: Path, size: dict, n_items: int, seed: int) -> Callable:
    import numpy as np

    from neuroai.testing import tiny_patch_store
    from neuroai.training.eeg_data import EEGWindowDataModule

    per_recording = 10
    store = tiny_patch_store(
        root / "store",
        n_recordings=math.ceil(n_items / per_recording),
        windows_per_recording=per_recording,
        sfreq=size["sfreq"],
        window_samples=size["window_samples"],
        patch_len=size["patch"],
        channels=[f"E{k}" for k in range(size["channels"])],
        seed=seed,
    )
    rows = np.arange(math.ceil(n_items / per_recording) * per_recording)
    return lambda workers: EEGWindowDataModule(
        [store], rows, batch_size=size["batch"], seed=seed, num_workers=workers
    )


def tablet(root: Path, size: dict, n_items: int, seed: int) -> Callable:
    from neuroai.testing import write_token_store
    from neuroai.training import TokenWindowDataModule

    stores = [
        write_token_store(
            root / f"sub-{i:03d}_tokens.npy",
            n_frames=size["window"] + 7 * (i % 5),  # random windows start anywhere
            n_tokens=size["tokens"],
            token_dim=size["token_dim"],
            tr=0.72,
            seed=seed + i,
        )
        for i in range(n_items)  # one random window per subject and epoch
    ]
    return lambda workers: TokenWindowDataModule(
        stores,
        window=size["window"],
        mask_ratio=0.5,
        batch_size=size["batch"],
        seed=seed,
        num_workers=workers,
    )


def dfc_gnn(root: Path, size: dict, n_items: int, seed: int) -> Callable:
    from neuroai.fmri import GraphArrays
    from neuroai.testing import graph_dataset
    from neuroai.training import GraphCropDataset, GraphDataModule

    n_runs = 6
    path = graph_dataset(
        root / "graphs",
        n_timepoints=[size["timepoints"] + 9 * k for k in range(n_runs)],
        n_regions=size["regions"],
        window=size["window"],
        step=3,
        density=0.3,
        seed=seed,
    )
    runs = range(GraphArrays(path).n_runs)

    def make(workers: int):
        crops = GraphCropDataset.random_crops(
            path, runs, length=size["crop"], samples_per_run=math.ceil(n_items / n_runs)
        )
        return GraphDataModule(crops, batch_size=size["batch"], seed=seed, num_workers=workers)

    return make


def dsd(root: Path, size: dict, n_items: int, seed: int) -> Callable:
    from neuroai.io import read_decathlon
    from neuroai.testing import hippocampus_like_dataset
    from neuroai.training import SegmentationDataConfig, SegmentationDataModule

    shape = size["shape"]
    hippocampus_like_dataset(
        root / "task",
        n_train=n_items,
        n_test=0,
        shapes=[shape, (shape[0] - 4, shape[1] + 3, shape[2] - 2)],
        spacing=(size["spacing"],) * 3,
        seed=seed,
    )
    cases = read_decathlon(root / "task").training
    config = SegmentationDataConfig(spacing=(size["spacing"],) * 3, num_samples=size["patches"])
    return lambda workers: SegmentationDataModule(
        cases,
        [],
        roi_size=(size["roi"],) * 3,
        config=config,
        batch_size=size["batch"],
        seed=seed,
        num_workers=workers,
    )


BUILDERS = {"eegformer": eegformer, "tablet": tablet, "dfc_gnn": dfc_gnn, "dsd": dsd}


# -- measuring -------------------------------------------------------------------------------


def _samples(batch: dict) -> int:
    """Items of a batch: the leading size of its inputs (graphs of a PyG batch)."""
    inputs = batch["inputs"]
    return int(inputs.num_graphs) if hasattr(inputs, "num_graphs") else int(inputs.shape[0])


def _megabytes(batch: dict) -> float:
    """Bytes of the batch's tensors (PyG batch included), in MB."""
    import torch

    values = batch["inputs"].to_dict().values() if hasattr(batch["inputs"], "to_dict") else []
    tensors = [v for v in [*batch.values(), *values] if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def _stream(loader, first_epoch: int) -> Iterator:
    """Batches of consecutive epochs, as training reads them."""
    epoch = first_epoch
    while True:
        loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def timed_pass(loader, *, warmup: int, batches: int, epoch: int) -> dict:
    """Samples/s over ``batches`` batches of a fresh pass, after ``warmup`` untimed ones."""
    stream = _stream(loader, epoch)
    first = None
    for _ in range(warmup):
        first = next(stream)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(stream)
        first = first or batch
        n += _samples(batch)
    seconds = time.perf_counter() - start
    stream.close()
    return {
        "samples_per_s": n / seconds,
        "samples": n,
        "mb_per_sample": _megabytes(first) / _samples(first),
    }


def measure(make: Callable, args: argparse.Namespace) -> list[dict]:
    """One row per worker count: median samples/s over the repeats, interleaved."""
    loaders = {w: make(w).train_dataloader() for w in args.workers}
    passes: dict[int, list[dict]] = {w: [] for w in args.workers}
    for repeat in range(args.repeats):
        order = args.workers if repeat % 2 == 0 else args.workers[::-1]
        for workers in order:
            passes[workers].append(
                timed_pass(loaders[workers], warmup=args.warmup, batches=args.batches, epoch=repeat)
            )
    del loaders  # stops the workers
    rows = []
    for workers in args.workers:
        rates = [p["samples_per_s"] for p in passes[workers]]
        rows.append(
            {
                "workers": workers,
                "samples_per_s": statistics.median(rates),
                "all_samples_per_s": rates,
                "per_worker_samples_per_s": statistics.median(rates) / workers if workers else None,
                "batches": args.batches,
                "samples_per_pass": passes[workers][0]["samples"],
                "mb_per_sample": passes[workers][0]["mb_per_sample"],
            }
        )
    base = next((r["samples_per_s"] for r in rows if r["workers"] == 0), None)
    for row in rows:
        row["ratio_to_0"] = row["samples_per_s"] / base if base else None
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| family | MB/sample | workers | samples/s | per worker | x 0 workers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per = f"{r['per_worker_samples_per_s']:.1f}" if r["per_worker_samples_per_s"] else "-"
        ratio = f"{r['ratio_to_0']:.2f}" if r["ratio_to_0"] is not None else "-"
        lines.append(
            f"| {r['family']} | {r['mb_per_sample']:.3g} | {r['workers']} | "
            f"{r['samples_per_s']:.1f} | {per} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches of each pass")
    parser.add_argument("--batches", type=int, default=10, help="timed batches of each pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes of each worker count")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny samples and few batches")
    parser.add_argument("--output", default=None, help="JSON results (default benchmarks/out/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.batches, args.repeats = 1, 3, 1
    if 0 not in args.workers:
        args.workers = [0, *args.workers]  # the baseline of the ratios
    import torch

    torch.set_num_threads(args.threads)
    sizes = QUICK_SIZES if args.quick else SIZES
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="loader_throughput_") as tmp:
        for family in args.families:
            size = sizes[family]
            # One epoch holds every pass, so that no epoch boundary falls inside the timing.
            n_items = (args.warmup + args.batches) * size["batch"]
            started = time.perf_counter()
            make = BUILDERS[family](Path(tmp) / family, size, n_items, args.seed)
            built = time.perf_counter() - started
            for row in measure(make, args):
                rows.append({"family": family, **row, "dataset_s": built, "size": size})
            print(f"{family}: done ({built:.0f} s to write its dataset)", file=sys.stderr)
    result = {
        "settings": vars(args),
        "cpus": len(os.sched_getaffinity(0)),
        # Other work on a shared machine slows the workers more than the main process.
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "torch": torch.__version__,
        "results": rows,
    }
    output = Path(args.output) if args.output else OUT / "loader_throughput.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str))
    print(
        f"Loader throughput, {result['cpus']} CPU(s), torch {result['torch']}, {args.threads} "
        f"thread(s); median of {args.repeats} pass(es) of {args.batches} batches after "
        f"{args.warmup} warm-up batches; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(table(rows))
    return result


if __name__ == "__main__":
    main()
