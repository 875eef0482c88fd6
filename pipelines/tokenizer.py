"""The 2D autoencoder of the volume tokenizer: train it on photographs, fine-tune it, or check weights.

Default: train a DC-AE-family AutoencoderDC (preset "demo", "medium" or "paper") on the
photographs scikit-image ships, offline; the checkpoint is a folder holding
config.json and diffusion_pytorch_model.safetensors (the diffusers layout) and
training.json, and axis_fusion.safetensors (the autoencoder's distortion map
measured on the photographs, with which decoding merges the three axes; see
neuroai.tokenizers.fusion). --finetune continues training a checkpoint on slices
of fMRI frames. --calibrate measures the distortion map of a checkpoint that
lacks one (published weights) and writes it into that folder. --check validates a local folder of published weights
(dc-ae-f32c32-in-1.0-diffusers) once, so that a bad folder fails before any
subject is encoded. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.io import save_json, write_artifact
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.tokenizer")


FUSION_CROPS = 256


def _save_checkpoint(
    model, output_dir, report: dict, *, frame_size: int = 96, **provenance: Any
) -> Path:
    from neuroai.tokenizers.autoencoder import save_autoencoder
    from neuroai.tokenizers.fusion import measure_distortion, save_distortion

    def _write(tmp: Path) -> None:
        save_autoencoder(model, tmp)
        (tmp / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        distortion = measure_distortion(model, size=frame_size, n_crops=FUSION_CROPS)
        save_distortion(tmp, distortion, n_crops=FUSION_CROPS, seed=0, frame_size=frame_size)

    summary = {k: v for k, v in report.items() if k != "history"}
    return write_artifact(output_dir, _write, directory=True, extra=summary, **provenance)


def _earlier_training(folder: str | Path) -> dict[str, Any]:
    """The training record of the checkpoint a run continues (its history left out)."""
    record = Path(folder) / "training.json"
    if not record.is_file():
        return {"folder": str(folder)}
    earlier = json.loads(record.read_text(encoding="utf-8"))
    return {"folder": str(folder), **{k: v for k, v in earlier.items() if k != "history"}}


def run(
    output_dir: str | Path,
    *,
    preset: str = "demo",
    architecture: dict[str, Any] | None = None,
    steps: int = 300,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    warmup_steps: int | None = None,
    loader_workers: int = 0,
    crop_size: int = 96,
    max_crop: int = 256,
    grayscale_prob: float = 0.5,
    contrast: tuple[float, float] | list[float] = (0.7, 1.3),
    brightness: float = 0.15,
    blur_prob: float = 0.0,
    aperture_prob: float = 0.0,
    init_from: str | Path | None = None,
    frame_size: int = 96,
    seed: int = 0,
    device: str = "auto",
) -> Path:
    """Train the autoencoder on scikit-image's photographs and save the checkpoint folder.

    Parameters
    ----------
    output_dir : path-like
        Destination folder (written atomically, with a provenance record).
    preset : {"demo", "medium", "paper"}
        Architecture (see ``neuroai.tokenizers.autoencoder.PRESETS``).
    architecture : dict | None
        ``AutoencoderDC`` arguments that override the preset.
    steps, batch_size, learning_rate, warmup_steps, loader_workers
        Optimisation (AdamW, warm-up then cosine decay) and crop-cutting processes; see
        ``neuroai.tokenizers.training.fit_autoencoder``.
    crop_size, max_crop, grayscale_prob, contrast, brightness, blur_prob, aperture_prob
        Crops and their augmentations (see ``neuroai.tokenizers.natural_images.PhotoCrops``).
    init_from : path-like | None
        A checkpoint folder to continue training from (its architecture is kept;
        ``preset`` and ``architecture`` must then be left at their defaults).
        None: start from random weights.
    frame_size : int
        Frame voxels per side the distortion map is measured for (96).
    seed : int
        Seeds the initial weights and the crops.
    device : {"auto", "cpu", "cuda"}
        Where to train (CUDA when present with "auto").
    """
    import torch

    from neuroai.errors import ConfigError
    from neuroai.tokenizers.autoencoder import build_autoencoder, load_autoencoder, preset_config
    from neuroai.tokenizers.natural_images import PhotoCrops, photograph_paths
    from neuroai.tokenizers.training import fit_autoencoder

    params = {
        "preset": preset,
        "architecture": architecture,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_steps,
        "loader_workers": loader_workers,  # workers draw from their own seeds: other batches
        "crop_size": crop_size,
        "max_crop": max_crop,
        "grayscale_prob": grayscale_prob,
        "contrast": list(contrast),
        "brightness": brightness,
        "blur_prob": blur_prob,
        "aperture_prob": aperture_prob,
        "init_from": None if init_from is None else str(init_from),
        "frame_size": frame_size,
        "seed": seed,
    }
    torch.manual_seed(seed)
    if init_from is None:
        model = build_autoencoder(preset_config(preset, **(architecture or {})))
    elif preset != "demo" or architecture:
        raise ConfigError(
            f"init_from={init_from} continues that checkpoint with its own architecture; "
            "leave preset and architecture unset."
        )
    else:
        model = load_autoencoder(init_from)
    crops = PhotoCrops(
        crop_size=crop_size,
        max_crop=max_crop,
        grayscale_prob=grayscale_prob,
        contrast=tuple(contrast),
        brightness=brightness,
        blur_prob=blur_prob,
        aperture_prob=aperture_prob,
        seed=seed,
    )
    report = fit_autoencoder(
        model,
        crops,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        loader_workers=loader_workers,
        device=device,
        seed=seed,
    )
    report.update(data="scikit-image photographs", photographs=list(crops.names), preset=preset)
    if init_from is not None:
        earlier = _earlier_training(init_from)
        report.update(init_from=earlier, preset=earlier.get("preset"))
        report["total_steps"] = steps + int(earlier.get("total_steps", earlier.get("steps", 0)))
    inputs = [*photograph_paths(), *([] if init_from is None else [init_from])]
    path = _save_checkpoint(
        model,
        output_dir,
        report,
        frame_size=frame_size,
        stage="tokenizer",
        params=params,
        inputs=inputs,
    )
    logger.info(
        "Trained the autoencoder (%d steps, loss %.4f): %s", steps, report["final_loss"], path
    )
    return path


def run_finetune(
    base_dir: str | Path,
    frames: list[str | Path],
    output_dir: str | Path,
    *,
    steps: int = 100,
    batch_size: int = 16,
    learning_rate: float = 5e-4,
    seed: int = 0,
    device: str = "auto",
) -> Path:
    """Fine-tune a checkpoint on random slices of fMRI frames stores.

    Parameters
    ----------
    base_dir : path-like
        The checkpoint to start from.
    frames : list of path-like
        Frames stores (``*_frames.npy``) whose slices are the training data.
    output_dir : path-like
        Destination checkpoint folder.
    steps, batch_size, learning_rate, seed, device
        As in :func:`run`.
    """
    from neuroai.tokenizers.autoencoder import load_autoencoder
    from neuroai.tokenizers.training import FrameSlices, fit_autoencoder

    params = {
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    model = load_autoencoder(base_dir)
    report = fit_autoencoder(
        model,
        FrameSlices(frames, seed=seed),
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        device=device,
        seed=seed,
    )
    report.update(data="fMRI frame slices", frames=[str(p) for p in frames], base=str(base_dir))
    return _save_checkpoint(
        model,
        output_dir,
        report,
        stage="tokenizer_finetune",
        params=params,
        inputs=[base_dir, *frames],
    )


def run_calibrate(
    weights_dir: str | Path, *, frame_size: int = 96, n_crops: int = FUSION_CROPS, seed: int = 0
) -> Path:
    """Measure a checkpoint's distortion map on the photographs and write it into the folder.

    Parameters
    ----------
    weights_dir : path-like
        Checkpoint folder (config.json and diffusion_pytorch_model.safetensors);
        ``axis_fusion.safetensors`` is written there (atomically, replacing one).
    frame_size : int
        Frame voxels per side the tokens are made of.
    n_crops, seed : int
        Grey photograph crops averaged, and their seed.
    """
    from neuroai.tokenizers.autoencoder import load_autoencoder
    from neuroai.tokenizers.fusion import measure_distortion, save_distortion

    model = load_autoencoder(weights_dir)
    distortion = measure_distortion(model, size=frame_size, n_crops=n_crops, seed=seed)
    path = save_distortion(
        weights_dir, distortion, n_crops=n_crops, seed=seed, frame_size=frame_size
    )
    logger.info("Wrote the distortion map of %s: %s", weights_dir, path)
    return path


def run_check(weights_dir: str | Path, output: str | Path, *, frame_size: int = 96) -> Path:
    """Validate a local folder of autoencoder weights and describe it in a JSON file.

    Parameters
    ----------
    weights_dir : path-like
        Folder with config.json and diffusion_pytorch_model.safetensors.
    output : path-like
        Destination JSON: configuration, parameters, token layout.
    frame_size : int
        Frame voxels per side the tokens will be made of.
    """
    from neuroai.tokenizers.autoencoder import autoencoder_config, load_autoencoder
    from neuroai.tokenizers.tokenizer import VolumeTokenizer

    model = load_autoencoder(weights_dir)
    tokenizer = VolumeTokenizer(model, frame_size=frame_size, device="cpu")
    summary = {
        "weights_dir": str(weights_dir),
        "config": autoencoder_config(model),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "layout": tokenizer.layout(),
    }
    return save_json(
        output,
        summary,
        stage="tokenizer_check",
        params={"frame_size": frame_size},
        inputs=[weights_dir],
    )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tokenizer")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--finetune", metavar="BASE_DIR", help="fine-tune this checkpoint")
    mode.add_argument("--check", metavar="WEIGHTS_DIR", help="validate a folder of weights")
    mode.add_argument(
        "--calibrate", metavar="WEIGHTS_DIR", help="write the distortion map into this folder"
    )
    parser.add_argument("--frames", nargs="+", default=[], help="frames stores (--finetune)")
    parser.add_argument("--output", help="checkpoint folder, or JSON (--check)")
    parser.add_argument("--frame-size", type=int, default=96, help="frame side (--calibrate)")
    args = parser.parse_args(argv)
    if not args.calibrate and not args.output:
        parser.error("--output is required (except with --calibrate)")
    if args.calibrate:
        execute(args, run_calibrate, args.calibrate, frame_size=args.frame_size)
    elif args.check:
        execute(args, run_check, args.check, args.output)
    elif args.finetune:
        execute(args, run_finetune, args.finetune, args.frames, args.output)
    else:
        execute(args, run, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
