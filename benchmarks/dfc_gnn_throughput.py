"""dFC-GNN pretraining throughput (window graphs per second) and memory against cohort size.

Writes two synthetic graph datasets of AAL2-sized runs (94 regions, windows of 50 TRs,
step 3, top 30% of the edges, as the demo's graph dataset stage writes them) that differ
only in the number of runs, then trains the dfc_gnn encoder in the masked_dfc objective
for a few steps on random crops, in a fresh subprocess per (loader, cohort) so that
peak memory is measured cleanly (CUDA's peak allocated memory on a GPU, the process's
peak resident set size on CPU). Two loaders, same steps, same model:

  stream   :class:`~neuroai.training.graph_data.GraphCropDataset`: each crop is read
           from the memory-mapped arrays when it is drawn (what pretraining does)
  memory   the baseline: every run copied into memory first, crops sliced from there

Reported (medians over the timed steps): window graphs per second of whole training
steps (read, batch, forward, backward, update) as a ratio to the in-memory baseline of
the same run, of the loader alone (one process) and of the model alone (the step on one
batch already on the device: what enough loader workers could feed); and the anonymous
memory of the larger cohort as a ratio to the smaller one (streaming: about 1, flat in
cohort size; in memory: it grows with it).

    python benchmarks/dfc_gnn_throughput.py                      # demo preset, CPU or GPU
    python benchmarks/dfc_gnn_throughput.py --preset paper --batch 64 --bf16 --loaders stream
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOADERS = ("stream", "memory")


def make_dataset(path: Path, n_runs: int, args: argparse.Namespace) -> Path:
    """A graph dataset of ``n_runs`` runs of ``args.windows`` windows (seeded)."""
    from neuroai.testing import graph_dataset

    n_timepoints = (args.windows - 1) * 3 + 50
    return graph_dataset(
        path,
        n_timepoints=[n_timepoints] * n_runs,
        n_regions=args.regions,
        window=50,
        step=3,
        density=0.3,
    )


class InMemoryCrops:
    """The baseline loader: every run copied into memory, crops sliced from there."""

    def __init__(self, dataset) -> None:
        import numpy as np

        from neuroai.fmri.graphs import WindowGraphs

        self.dataset = dataset
        self.runs = {}
        for r in sorted({crop.run for crop in dataset.crops}):
            g = dataset.arrays.run(r)
            self.runs[r] = WindowGraphs(
                x=np.array(g.x),
                edge_index=np.array(g.edge_index),
                edge_weight=np.array(g.edge_weight),
                window_ptr=np.array(g.window_ptr),
                feature_names=g.feature_names,
                identity=g.identity,
            )

    def get_item(self, index: int, seed: int) -> dict:
        from neuroai.fmri.graphs import WindowGraphs

        crop = self.dataset.crops[index]
        start, stop = self.dataset.window_range(index, seed)
        g = self.runs[crop.run]
        e0, e1 = int(g.window_ptr[start]), int(g.window_ptr[stop])
        part = WindowGraphs(
            x=g.x[start:stop],
            edge_index=g.edge_index[:, e0:e1],
            edge_weight=g.edge_weight[e0:e1],
            window_ptr=g.window_ptr[start : stop + 1] - e0,
            feature_names=g.feature_names,
            identity=g.identity,
        )
        return {"inputs": part.to_data(), "id": str(crop.run), "run": crop.run, "start": start}


def _anonymous_memory_mb() -> float | None:
    """The process's anonymous resident memory (Linux ``RssAnon``), MB; None elsewhere.

    Pages of a memory-mapped file that a process has read count in its resident set
    size but are page cache the kernel can drop; anonymous memory is what the process
    itself holds (the in-memory copies of runs, tensors, the model).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from neuroai.models import create_model
    from neuroai.models.objectives import create_objective
    from neuroai.training.graph_data import GraphCropDataset, collate_graphs

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dataset = GraphCropDataset.random_crops(
        args.dataset, range(args.cohort), length=args.crop, samples_per_run=4
    )
    loader = dataset if args.loader == "stream" else InMemoryCrops(dataset)
    rng = np.random.default_rng(0)

    def batch(step: int) -> dict:
        indices = rng.integers(0, len(dataset), args.batch)
        return collate_graphs(
            [loader.get_item(int(i), step * args.batch + k) for k, i in enumerate(indices)]
        )

    # The loader alone (no model): window graphs per second it can feed.
    loads = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        batch(step)
        if step >= args.warmup:
            loads.append(time.perf_counter() - start)
    load_s = sorted(loads)[len(loads) // 2]

    torch.manual_seed(0)
    model = create_model("dfc_gnn", preset=args.preset, **dataset.model_overrides())
    objective = create_objective("masked_dfc", model).to(device)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-3)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        items = batch(step)
        items["inputs"] = items["inputs"].to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=args.bf16):
            loss = objective(items)["loss"]
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    # The model alone: the same step on one batch already on the device (no reading).
    compute = []
    fixed = batch(0)
    fixed["inputs"] = fixed["inputs"].to(device)
    for step in range(args.warmup + args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=args.bf16):
            loss = objective(fixed)["loss"]
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            compute.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    anonymous = _anonymous_memory_mb()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    graphs_per_step = args.batch * args.crop
    step_s = sorted(times)[len(times) // 2]
    return {
        "loader": args.loader,
        "cohort": args.cohort,
        "device": device,
        "parameters": model.parameter_count(),
        "step_s": step_s,
        "graphs_per_s": graphs_per_step / step_s,
        "loader_graphs_per_s": args.batch * args.crop / load_s,
        "compute_graphs_per_s": graphs_per_step / sorted(compute)[len(compute) // 2],
        "peak_memory_mb": peak,
        "anonymous_memory_mb": anonymous,
        "gpu_peak_memory_mb": gpu_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="demo", choices=["demo", "paper"])
    parser.add_argument("--regions", type=int, default=94)
    parser.add_argument("--windows", type=int, default=60, help="windows per run")
    parser.add_argument("--runs", type=int, nargs=2, default=[16, 128], help="two cohort sizes")
    parser.add_argument("--crop", type=int, default=12, help="windows per crop")
    parser.add_argument("--batch", type=int, default=8, help="crops per step")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument(
        "--loaders", nargs="+", default=list(LOADERS), choices=LOADERS, help="loaders to compare"
    )
    parser.add_argument("--output", default=None, help="also write the results as JSON")
    parser.add_argument("--loader", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cohort", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loader:
        print(json.dumps(worker(args)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        big = make_dataset(Path(tmp) / "graphs", max(args.runs), args)
        made_s = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in big.rglob("*") if p.is_file()) / 2**20
        for loader in args.loaders:
            for cohort in sorted(args.runs):
                command = [
                    sys.executable, __file__, *sys.argv[1:],
                    "--loaders", loader, "--loader", loader, "--dataset", str(big), "--cohort", str(cohort),
                ]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    sys.exit(done.stderr[-3000:])
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    small, large = sorted(args.runs)
    by = {(r["loader"], r["cohort"]): r for r in results}
    first = results[0]
    per_run_mb = size_mb / large
    print(
        f"dFC-GNN pretraining benchmark: preset {args.preset} ({first['parameters']:,} parameters), "
        f"{args.regions} regions, crops of {args.crop} windows, batch {args.batch}, "
        f"{first['device']}, {args.threads} thread(s)"
    )
    print(
        f"graph dataset: {large} runs of {args.windows} windows, {size_mb:.0f} MB on disk "
        f"({per_run_mb:.2f} MB per run, {size_mb / (large * args.windows) * 1024:.1f} kB per "
        f"window graph), written in {made_s:.1f} s"
    )
    print(
        f"{'loader':8s} {'runs':>5s} {'graphs/s':>9s} {'x memory':>9s} {'load g/s':>9s} "
        f"{'model g/s':>9s} "
        f"{'anon MB':>8s} {'x ' + str(small) + ' runs':>11s} {'peak RSS':>9s}"
    )
    for r in results:
        base = by.get(("memory", r["cohort"]), r)
        smaller = by[(r["loader"], small)]
        print(
            f"{r['loader']:8s} {r['cohort']:5d} {r['graphs_per_s']:9.0f} "
            f"{r['graphs_per_s'] / base['graphs_per_s']:9.2f} {r['loader_graphs_per_s']:9.0f} "
            f"{r['compute_graphs_per_s']:9.0f} "
            f"{r['anonymous_memory_mb'] or 0:8.0f} "
            f"{(r['anonymous_memory_mb'] or 0) / (smaller['anonymous_memory_mb'] or 1):11.2f} "
            f"{r['peak_memory_mb']:9.0f}"
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(
                {"settings": vars(args), "dataset_mb": size_mb, "results": results},
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
