"""Encode a subject's frames into TABLeT tokens, then decode them and score the round trip.

Writes the token store (n_frames, n_tokens, token_dim) float16 .npy, memory-mappable,
with the layout and TR in its provenance record; a QC JSON (spatial correlation and
PSNR in the brain mask, temporal and region time-series correlation, compression);
and example slices (input, reconstruction, difference) for the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.io import save_array, save_json
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.tokens")


def run(
    frames: str | Path,
    tokenizer: str | Path,
    tokens_output: str | Path,
    qc_output: str | Path,
    examples_output: str | Path,
    *,
    labels: str | Path | None = None,
    brain_mask: str | Path | None = None,
    batch_size: int = 96,
    device: str = "auto",
    chunk_frames: int = 4,
    qc_max_frames: int | None = 32,
    example_frame: int = 0,
) -> tuple[Path, Path, Path]:
    """Tokenize one subject and check the reconstruction.

    Parameters
    ----------
    frames : path-like
        The subject's frames store (``*_frames.npy``).
    tokenizer : path-like
        Autoencoder checkpoint folder (trained here or the published weights).
    tokens_output, qc_output, examples_output : path-like
        Token store (.npy), QC metrics (.json), example slices (.npy,
        (3 axes, 3 kinds, S, S) float16).
    labels : path-like | None
        Region labels image for the region time-series QC (skipped when None).
    brain_mask : path-like | None
        Brain mask image; nilearn's MNI152 brain mask when None.
    batch_size : int
        Slices per autoencoder call.
    device : {"auto", "cpu", "cuda"}
        CUDA when present with "auto".
    chunk_frames : int
        Frames encoded or decoded at a time.
    qc_max_frames : int | None
        Decode and score only the first frames (None: all).
    example_frame : int
        Frame shown in the example slices.
    """
    from neuroai.tokenizers import qc
    from neuroai.tokenizers.frames import load_frames, mni_grid
    from neuroai.tokenizers.tokenizer import VolumeTokenizer, read_token_store

    inputs, _ = load_frames(frames)
    size = inputs.shape[1]
    grid = mni_grid(size)
    # The QC's inputs are read first, so that a bad one fails before the tokens are written.
    brain = qc.image_on_grid(brain_mask or qc.default_brain_mask(), grid, size) > 0
    regions = qc.image_on_grid(labels, grid, size) if labels else None
    model = VolumeTokenizer.from_folder(tokenizer, batch_size=batch_size, device=device)
    params = {"batch_size": batch_size, "chunk_frames": chunk_frames, "device": device}
    model.encode_store(
        frames,
        tokens_output,
        chunk_frames=chunk_frames,
        params=params,
        inputs=[tokenizer],
        extra={"tokenizer": str(tokenizer)},
    )
    store = read_token_store(tokens_output)
    n = len(inputs) if qc_max_frames is None else min(qc_max_frames, len(inputs))
    decoded = np.concatenate(
        [model.decode(store.tokens[i : i + chunk_frames]) for i in range(0, n, chunk_frames)]
    )
    original = np.asarray(inputs[:n], dtype=np.float32)
    metrics = qc.round_trip_qc(
        original,
        decoded,
        qc.qc_mask(original, brain),
        n_tokens=model.n_tokens_,
        token_dim=model.token_dim_,
        labels=regions,
    )
    metrics.update(
        tr=store.tr,
        n_frames_stored=int(len(store.tokens)),
        mask="given brain mask" if brain_mask else "MNI152 brain mask",
        example_frame=example_frame,
        axis_merge=model.axis_merge_,
    )
    qc_params = {"qc_max_frames": qc_max_frames, "example_frame": example_frame, **params}
    qc_inputs = [p for p in (tokens_output, frames, labels, brain_mask) if p]
    save_json(qc_output, metrics, stage="tokens_qc", params=qc_params, inputs=qc_inputs)
    examples = qc.example_slices(original, decoded, frame=example_frame).astype(np.float16)
    save_array(examples_output, examples, stage="tokens_qc", params=qc_params, inputs=qc_inputs)
    logger.info(
        "%s: spatial r %.3f, PSNR %.1f dB, region r %s",
        Path(frames).name,
        metrics["spatial_correlation"]["mean"],
        metrics["psnr_db"]["mean"],
        metrics.get("region_correlation", {}).get("median"),
    )
    return Path(tokens_output), Path(qc_output), Path(examples_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tokens")
    parser.add_argument("--frames", required=True, help="the subject's *_frames.npy")
    parser.add_argument("--tokenizer", required=True, help="autoencoder checkpoint folder")
    parser.add_argument("--tokens-output", required=True, help="destination token store .npy")
    parser.add_argument("--qc-output", required=True, help="destination QC .json")
    parser.add_argument("--examples-output", required=True, help="destination example slices .npy")
    parser.add_argument("--labels", default=None, help="region labels image (region QC)")
    parser.add_argument("--brain-mask", default=None, help="brain mask image")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.frames,
        args.tokenizer,
        args.tokens_output,
        args.qc_output,
        args.examples_output,
        labels=args.labels,
        brain_mask=args.brain_mask,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
