"""EEGFormer pretraining throughput (windows per second) against the same network without VQ.

One optimizer step of the VQ-VAE objective (encoder, codebook with straight-through
gradient, decoder, reconstruction + codebook + beta * commitment) is timed against a
baseline measured in the same run on the same model and batch: the same encoder and
decoder with the quantiser bypassed (a plain autoencoder step, MSE only). The ratio
(VQ-VAE windows/s over baseline windows/s) is the cost of vector quantisation. Steps of
the two alternate, so a machine whose load changes slows both alike; medians are
reported. Also reported: windows per second that the patch-store loader delivers
(EEGWindowDataModule over a temporary store), to show whether data loading keeps up.

    python benchmarks/eegformer_throughput.py                    # demo preset, CPU or GPU
    python benchmarks/eegformer_throughput.py --preset base --batch 32 --steps 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _step_times(args: argparse.Namespace) -> dict:
    import torch
    import torch.nn.functional as F

    from neuroai.models import create_model
    from neuroai.models.objectives import create_objective

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = create_model("eegformer", preset=args.preset).to(device).train()
    objective = create_objective("vqvae", model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = model.example_input(args.batch).to(device)

    def vqvae() -> None:
        objective({"inputs": x})["loss"].backward()

    def baseline() -> None:
        restored = model.decode(model.to_code(model.encode(x)))
        F.mse_loss(restored.float(), x).backward()

    def timed(step) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            step()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times = {"vqvae": [], "baseline": []}
    for k in range(args.warmup + args.steps):
        for name, step in (("vqvae", vqvae), ("baseline", baseline))[:: 1 if k % 2 else -1]:
            elapsed = timed(step)
            if k >= args.warmup:
                times[name].append(elapsed)
    median = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
    return {
        "device": device,
        "preset": args.preset,
        "batch": args.batch,
        "parameters": model.parameter_count(),
        "step_s": median,
        "windows_per_s": {name: args.batch / s for name, s in median.items()},
        "ratio_vqvae_to_baseline": median["baseline"] / median["vqvae"],
    }


def _loader_rate(args: argparse.Namespace) -> float:
    import numpy as np

    from neuroai.testing import tiny_patch_store
    from neuroai.training.eeg_data import EEGWindowDataModule

    with tempfile.TemporaryDirectory() as tmp:
        store = tiny_patch_store(
            Path(tmp) / "bench" / "store",
            n_recordings=20,
            windows_per_recording=10,
            window_samples=3000,
            sfreq=250.0,
            patch_len=50,
            channels=[f"E{k}" for k in range(22)],
        )
        module = EEGWindowDataModule([store], np.arange(200), batch_size=args.batch, seed=0)
        loader = module.train_dataloader()
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += batch["inputs"].shape[0]
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", help="demo, small, base, large, paper")
    parser.add_argument("--batch", type=int, default=8, help="windows per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result = _step_times(args)
    result["loader_windows_per_s"] = _loader_rate(args)
    rates = result["windows_per_s"]
    print(json.dumps(result, indent=2))
    print(
        f"EEGFormer {args.preset} on {result['device']} ({result['parameters']:,} parameters, "
        f"batch {args.batch}): VQ-VAE step {rates['vqvae']:.1f} windows/s, same network without "
        f"the quantiser {rates['baseline']:.1f} windows/s: ratio "
        f"{result['ratio_vqvae_to_baseline']:.2f}; the patch-store loader delivers "
        f"{result['loader_windows_per_s']:.0f} windows/s."
    )


if __name__ == "__main__":
    main()
