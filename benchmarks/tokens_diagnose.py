"""Volume tokens: is a poor round trip the autoencoder's or the token path's?

Run from the repository root after the workflow has built the demo cohort's frames
(results go to benchmarks/out/tokens_diagnose.json; the default autoencoder is the
bundled one, ``--tokenizer results/tokenizer/natural_images`` scores one trained by
the workflow with ``tokenizer.source: train``):

    PYTHONPATH=. python benchmarks/tokens_diagnose.py [--tokenizer FOLDER] \
        [--frames results/tokens/demo_volumes/frames/sub-gwNAP001_frames.npy]

Scores the 2D autoencoder alone, slice by slice (no token regrouping), against a fixed
blockwise DCT that keeps the same number of values per 96 x 96 slice (288 = 3 x 3 x 32,
as DC-AE f32c32), on:

- grey crops of the photographs it was trained on (96 pixels, seeded);
- the three central slices of the first frame of a subject (one per axis).

Mean squared error (values in [-1, 1]) and the variance of the images; the latent
magnitude (float16 holds up to 65504). The token path itself is tested to be lossless
(tests/test_tokenizer.py, test_round_trip_is_lossless_with_a_lossless_autoencoder), so
the gap between the autoencoder and the DCT here is the gap in the round trip.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def autoencoder_codec(model, images: np.ndarray) -> tuple[np.ndarray, float]:
    """Round trip of (n, H, W) grey images through the autoencoder; mean |latent|."""
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(images.astype(np.float32))[:, None].expand(-1, 3, -1, -1)
        latents = model.encode(x.contiguous()).latent
        rebuilt = model.decode(latents).sample.mean(dim=1)
    return rebuilt.numpy(), float(latents.abs().mean())


def scores(model, images: np.ndarray) -> dict:
    from neuroai.tokenizers import qc

    rebuilt, latent = autoencoder_codec(model, images)
    return {
        "n_images": len(images),
        "variance": float(images.var()),
        "mse_autoencoder": float(((rebuilt - images) ** 2).mean()),
        "mse_dct_same_size": float(((qc.dct_slices(images) - images) ** 2).mean()),
        "mean_abs_latent": latent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokenizer", default=None, help="checkpoint folder (default: the bundled autoencoder)"
    )
    parser.add_argument(
        "--frames", default="results/tokens/demo_volumes/frames/sub-gwNAP001_frames.npy"
    )
    parser.add_argument("--crops", type=int, default=64)
    args = parser.parse_args()
    import torch

    from neuroai.tokenizers.autoencoder import bundled_autoencoder_dir, load_autoencoder
    from neuroai.tokenizers.natural_images import PhotoCrops

    torch.set_num_threads(1)
    args.tokenizer = args.tokenizer or str(bundled_autoencoder_dir())
    model = load_autoencoder(args.tokenizer)
    crops = PhotoCrops(crop_size=96, grayscale_prob=1.0, seed=5).sample(args.crops)[:, 0]
    frame = np.asarray(np.load(args.frames, mmap_mode="r")[0], dtype=np.float32)
    centre = frame.shape[0] // 2
    slices = np.stack([np.take(frame, centre, axis=a) for a in range(3)])
    results = {
        "tokenizer": args.tokenizer,
        "photo_crops": scores(model, crops.numpy()),
        "fmri_slices": scores(model, slices),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "tokens_diagnose.json").write_text(json.dumps(results, indent=2))
    print(f"{'images':12s} {'variance':>9s} {'MSE AE':>8s} {'MSE DCT':>8s} {'|latent|':>9s}")
    for name in ("photo_crops", "fmri_slices"):
        r = results[name]
        print(
            f"{name:12s} {r['variance']:9.3f} {r['mse_autoencoder']:8.3f} "
            f"{r['mse_dct_same_size']:8.3f} {r['mean_abs_latent']:9.1f}"
        )


if __name__ == "__main__":
    main()
