"""Volume tokens: encoding speed, peak memory of the frames stage, compression.

Run from the repository root (results go to benchmarks/out/tokens_speed.json):

    PYTHONPATH=. python benchmarks/tokens_speed.py [--threads 1] [--paper]

1. Frames per second encoded (96 slices x 3 axes per frame) by the demo-preset
   AutoencoderDC on the CPU, and on CUDA when present; with ``--paper`` also by
   the published-size architecture (dc-ae-f32c32-in-1.0, random weights: speed
   does not depend on the values; on the CPU timed on 4 slices and scaled to the
   288 slices of a frame). Ratio: paper / demo time per frame.
2. Peak memory of the frames stage (a child process per measurement) on runs of
   T and 4T frames: the ratio shows that streaming keeps memory flat in the run
   length.
3. Compression: values per frame as tokens against voxels, and token counts per
   20 frames against a voxel-patch model (SwiFT's first stage: 6^3 patches).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def encode_rate(
    preset: str, device: str, n_frames: int, batch_size: int, slices: int = 0, *, model=None
) -> dict:
    """Time encoding ``n_frames`` whole frames, or only ``slices`` slices (then extrapolated).

    The autoencoder is the ``preset`` architecture with random weights, or ``model``
    when given (``preset`` then only labels the result).
    """
    import torch

    from neuroai.tokenizers.autoencoder import build_autoencoder, preset_config
    from neuroai.tokenizers.tokenizer import VolumeTokenizer

    torch.manual_seed(0)
    if model is None:
        model = build_autoencoder(preset_config(preset))
    tokenizer = VolumeTokenizer(model, batch_size=batch_size, device=device)
    rng = np.random.default_rng(0)
    result = {
        "preset": preset,
        "device": device,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    if slices:  # a few 96 x 96 slices through the autoencoder, scaled to 3 x 96 per frame
        batch = torch.from_numpy(rng.uniform(-1, 1, (slices, 3, 96, 96)).astype(np.float32))
        batch = batch.to(tokenizer.device_)
        with torch.inference_mode():
            start = time.perf_counter()
            latents = model.encode(batch).latent
            encode = time.perf_counter() - start
            start = time.perf_counter()
            model.decode(latents)
            decode = time.perf_counter() - start
        per_frame = 3 * 96 / slices
        return {
            **result,
            "frames": f"{slices} slices, extrapolated",
            "seconds_per_frame": encode * per_frame,
            "frames_per_second": 1.0 / (encode * per_frame),
            "decode_seconds_per_frame": decode * per_frame,
        }
    frames = rng.uniform(-1, 1, (n_frames, 96, 96, 96)).astype(np.float32)
    tokenizer.encode(frames[:1])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    tokens = tokenizer.encode(frames)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    tokenizer.decode(tokens[:1])
    decode_seconds = time.perf_counter() - start
    return {
        **result,
        "frames": n_frames,
        "seconds_per_frame": seconds / n_frames,
        "frames_per_second": n_frames / seconds,
        "decode_seconds_per_frame": decode_seconds,
    }


# Peak resident memory of the child itself: VmHWM (ru_maxrss would include the parent's
# memory at fork time, which Linux carries across exec).
_FRAMES_CHILD = """
import sys
from neuroai.tokenizers.frames import write_frames
write_frames([sys.argv[1]], sys.argv[2], chunk_frames=8)
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]))
"""


def frames_peak_memory(n_frames: int, folder: Path) -> dict:
    from neuroai.testing.volumes import write_bold_run

    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = (-78.0, -112.0, -70.0)
    run = write_bold_run(
        folder / f"r{n_frames}_bold.nii", shape=(53, 63, 52, n_frames), affine=affine
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _FRAMES_CHILD, str(run), str(folder / f"f{n_frames}.npy")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NEUROAI_PROGRESS": "0"},
    )
    return {
        "n_frames": n_frames,
        "input_mb": run.stat().st_size / 1e6,
        "output_mb": (folder / f"f{n_frames}.npy").stat().st_size / 1e6,
        "peak_rss_mb": int(done.stdout.strip().splitlines()[-1]) / 1024,
        "seconds": time.perf_counter() - start,
    }


def compression() -> dict:
    from neuroai.tokenizers.layout import token_shape

    n_tokens, dim = token_shape(96, 32, 32)
    swift_tokens_per_frame = (96 // 6) ** 3
    return {
        "voxels_per_frame": 96**3,
        "values_per_frame": n_tokens * dim,
        "value_ratio": 96**3 / (n_tokens * dim),
        "tablet_tokens_per_20_frames": 20 * n_tokens,
        "swift_tokens_per_20_frames": 20 * swift_tokens_per_frame,
        "token_ratio": swift_tokens_per_frame / n_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=4, help="frames encoded per measurement")
    parser.add_argument("--paper", action="store_true", help="also time the published size")
    parser.add_argument("--run-frames", type=int, default=40, help="T of the memory benchmark")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: dict = {"speed": [], "memory": [], "compression": compression()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        results["speed"].append(encode_rate("demo", device, args.frames, 96))
        if args.paper:  # on the CPU, 4 slices (a whole frame takes many minutes)
            slices = 0 if device == "cuda" else 4
            results["speed"].append(encode_rate("paper", device, args.frames, 288, slices))
    by = {(r["preset"], r["device"]): r for r in results["speed"]}
    if ("paper", "cpu") in by:
        results["paper_over_demo_cpu"] = (
            by[("paper", "cpu")]["seconds_per_frame"] / by[("demo", "cpu")]["seconds_per_frame"]
        )
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.run_frames, 4 * args.run_frames):
            results["memory"].append(frames_peak_memory(n, Path(tmp)))
    small, large = results["memory"]
    results["memory_ratio_4x_frames"] = large["peak_rss_mb"] / small["peak_rss_mb"]
    OUT.mkdir(exist_ok=True)
    (OUT / "tokens_speed.json").write_text(json.dumps(results, indent=2))
    for r in results["speed"]:
        print(
            f"encode {r['preset']:5s} on {r['device']} ({r['threads']} thread(s), batch "
            f"{r['batch_size']}, {r['n_parameters'] / 1e6:.2f} M parameters): "
            f"{r['frames_per_second']:.3f} frames/s, {r['seconds_per_frame']:.2f} s/frame; "
            f"decode {r['decode_seconds_per_frame']:.2f} s/frame"
        )
    if "paper_over_demo_cpu" in results:
        print(f"paper / demo time per frame on CPU: {results['paper_over_demo_cpu']:.1f}x")
    for m in results["memory"]:
        print(
            f"frames stage, {m['n_frames']} frames ({m['input_mb']:.0f} MB in, "
            f"{m['output_mb']:.0f} MB out): peak RSS {m['peak_rss_mb']:.0f} MB, {m['seconds']:.1f} s"
        )
    print(f"peak memory ratio for 4x the frames: {results['memory_ratio_4x_frames']:.2f}")
    c = results["compression"]
    print(
        f"compression: {c['values_per_frame']:,} values vs {c['voxels_per_frame']:,} voxels per "
        f"frame ({c['value_ratio']:.2f}x); tokens per 20 frames: TABLeT "
        f"{c['tablet_tokens_per_20_frames']} vs SwiFT {c['swift_tokens_per_20_frames']:,} "
        f"({c['token_ratio']:.1f}x fewer)"
    )


if __name__ == "__main__":
    main()
