"""TABLeT's training step against a voxel-patch 4D Transformer on the same fMRI input.

Both models see the same clip of ``--frames`` fMRI frames of 96^3 voxels: TABLeT as the
27 x 3072 volume tokens per frame the tokenizer makes of it, the baseline as the voxels
themselves, cut in SwiFT's manner into 6^3-voxel patches per frame (16^3 = 4096 tokens
per frame) that attend within 4D windows of 4 x 4 x 4 patches x 4 frames (SwiFT's first
stage, without its shifted windows and patch merging: a deliberately small baseline).
Each model does ``--steps`` training steps (forward, backward, AdamW; bf16 autocast on a
GPU) in its own subprocess; the peak memory is CUDA's peak allocation on a GPU and the
process's peak resident set on CPU. The ratio baseline / TABLeT is measured in the same
run. A model that runs out of memory is reported as such (that is the point: voxel
models fit tens of frames where TABLeT fits hundreds).

The tokenizer's cost (encoding each frame once, before training) is not part of the
step; benchmarks/tokens_speed.py measures it.

    python benchmarks/tablet_efficiency.py                         # GPU: paper preset, 256 frames
    python benchmarks/tablet_efficiency.py --preset demo --frames 8 --baseline-dim 12   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PATCH = 6  # voxels per patch edge (SwiFT)
WINDOW = (4, 4, 4, 4)  # patches x, y, z, frames per attention window


def voxel_baseline(dim: int, depth: int, heads: int):
    """A small SwiFT-like 4D Transformer: 6^3 patch embedding, 4D window attention."""
    from torch import nn

    class WindowBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):  # x: (windows, tokens per window, dim)
            h = self.norm1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.norm2(x))

    class VoxelPatchTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv3d(1, dim, kernel_size=PATCH, stride=PATCH)
            self.blocks = nn.ModuleList(WindowBlock() for _ in range(depth))
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, 1)

        def forward(self, volumes):  # volumes: (B, T, 96, 96, 96)
            b, t = volumes.shape[:2]
            x = self.embed(volumes.reshape(b * t, 1, *volumes.shape[2:]))  # (B*T, C, 16, 16, 16)
            g = x.shape[-1]
            wx, wy, wz, wt = WINDOW
            x = x.reshape(b, t // wt, wt, dim, g // wx, wx, g // wy, wy, g // wz, wz)
            # -> (B, nT, nX, nY, nZ, wt, wx, wy, wz, C): one row per 4D window
            x = x.permute(0, 1, 4, 6, 8, 2, 5, 7, 9, 3).reshape(-1, wt * wx * wy * wz, dim)
            for block in self.blocks:
                x = block(x)
            pooled = self.norm(x).reshape(b, -1, dim).mean(1)
            return self.head(pooled)

    return VoxelPatchTransformer()


def worker(args: argparse.Namespace) -> dict:
    import torch

    # Built without the registry, which imports every family (MONAI for DSD).
    from neuroai.models.tablet import PRESETS, TABLeT, TABLeTConfig

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    if args.model == "tablet":
        model = TABLeT(TABLeTConfig(**{**PRESETS[args.preset], "positional": args.positional}))
        x = torch.randn(args.batch, args.frames, 27, 3072)
    else:
        model = voxel_baseline(args.baseline_dim, args.baseline_depth, args.baseline_heads)
        x = torch.randn(args.batch, args.frames, 96, 96, 96)
    model = model.to(device)
    x = x.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    target = torch.ones(args.batch, 1, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), target)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        name = torch.cuda.get_device_name()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        name = "cpu"
    times.sort()
    return {
        "model": args.model,
        "device": name,
        "frames": args.frames,
        "batch": args.batch,
        "tokens_per_clip": args.frames * 27 + 1
        if args.model == "tablet"
        else args.frames * (96 // PATCH) ** 3,
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_s_median": times[len(times) // 2],
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda max allocated" if device == "cuda" else "process max RSS",
    }


def run_child(args: argparse.Namespace, model: str) -> dict:
    command = [sys.executable, __file__, "--worker", model, *args.forward]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        oom = any("out of memory" in line.lower() for line in tail)
        return {"model": model, "error": "out of memory" if oom else " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=256, help="frames per clip (multiple of 4)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--preset",
        default="paper",
        help="TABLeT preset: demo, paper (the released network) or recommended",
    )
    parser.add_argument("--positional", default="rope")
    parser.add_argument("--baseline-dim", type=int, default=36, help="SwiFT's first-stage width")
    parser.add_argument("--baseline-depth", type=int, default=2)
    parser.add_argument("--baseline-heads", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames % WINDOW[3]:
        parser.error(f"--frames must be a multiple of {WINDOW[3]} (the baseline's window).")
    if args.worker:
        args.model = args.worker
        print(json.dumps(worker(args)))
        return
    skip = {"--output"}
    raw = list(argv if argv is not None else sys.argv[1:])
    args.forward = [
        a for i, a in enumerate(raw) if a not in skip and (i == 0 or raw[i - 1] not in skip)
    ]
    results = {m: run_child(args, m) for m in ("tablet", "voxel_patch")}
    tablet, voxel = results["tablet"], results["voxel_patch"]
    if "error" not in tablet and "error" not in voxel:
        results["ratio_voxel_over_tablet"] = {
            "step_time": voxel["step_s_median"] / tablet["step_s_median"],
            "peak_memory": voxel["peak_memory_mib"] / tablet["peak_memory_mib"],
        }
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
