"""DSD training throughput and peak memory against the plain backbone; sliding-window time.

Each variant (plain, deep_supervision, dsd) trains for a few steps on random patches
in its own subprocess, so that peak memory is measured cleanly: CUDA's peak allocated
memory on a GPU, the process's peak resident set size on CPU. Results are reported as
ratios to the plain backbone measured in the same run (the issue's goal: DSD at most
10 % slower). Sliding-window inference time per volume is measured on one whole
volume of ``--volume`` voxels.

    python benchmarks/dsd_throughput.py                      # demo preset, CPU or GPU
    python benchmarks/dsd_throughput.py --preset paper --backbone dynunet --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

VARIANTS = ("plain", "deep_supervision", "dsd")


def worker(args: argparse.Namespace) -> dict:
    import torch

    from neuroai.models import create_model

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = create_model(
        "dsd",
        preset=args.preset,
        backbone=args.backbone,
        out_channels=args.classes,
        mode=args.variant,
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = model.example_input(args.batch).to(device)
    y = torch.randint(0, args.classes, (args.batch, 1, *model.config.roi_size), device=device)
    times = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.warmup + args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model.training_loss({"inputs": x, "target": y})["loss"]
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "variant": args.variant,
        "device": device,
        "parameters": model.parameter_count(),
        "head_parameters": model.head_parameter_count(),
        "step_s": sorted(times)[len(times) // 2],
        "peak_memory_mb": peak,
    }
    if args.variant == "plain":
        model.eval()
        volume = torch.randn(1, 1, *args.volume, device=device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            model.predict(volume)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.predict(volume)
            if device == "cuda":
                torch.cuda.synchronize()
        result["sliding_window_s_per_volume"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="demo", choices=["demo", "paper"])
    parser.add_argument(
        "--backbone", default="unet", choices=["unet", "dynunet", "unetr", "swinunetr", "vnet"]
    )
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--volume", type=int, nargs=3, default=[99, 117, 95], help="whole-volume size (voxels)"
    )
    parser.add_argument("--output", default=None, help="also write the results as JSON")
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(worker(args)))
        return
    results = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = results[0]
    print(
        f"DSD benchmark: preset {args.preset}, backbone {args.backbone}, batch {args.batch}, "
        f"{base['device']}, {args.threads} thread(s)"
    )
    print(
        f"{'variant':18s} {'params':>10s} {'heads':>7s} {'s/step':>8s} {'x plain':>8s} {'peak MB':>8s} {'x plain':>8s}"
    )
    for r in results:
        print(
            f"{r['variant']:18s} {r['parameters']:10d} {r['head_parameters']:7d} "
            f"{r['step_s']:8.3f} {r['step_s'] / base['step_s']:8.2f} "
            f"{r['peak_memory_mb']:8.0f} {r['peak_memory_mb'] / base['peak_memory_mb']:8.2f}"
        )
    seconds = base["sliding_window_s_per_volume"]
    print(f"sliding-window inference: {seconds:.2f} s per {tuple(args.volume)} volume")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump({"settings": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
