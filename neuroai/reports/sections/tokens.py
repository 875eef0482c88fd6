"""fMRI volume tokens report section: the tokenizer, the token layout and the round-trip QC."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_array, load_json
from neuroai.reports.html import Section, figure, table, text

#: The goal TABLeT's tokenizer should reach on the spatial correlation in the brain mask.
SPATIAL_GOAL = 0.9
_KINDS = ("input", "reconstruction", "difference")
_AXES = ("sagittal (x)", "coronal (y)", "axial (z)")


def example_slices_figure(slices: np.ndarray, *, title: str = "") -> Figure:
    """Input, reconstruction and difference through the centre of each axis.

    Parameters
    ----------
    slices : ndarray, shape (3 axes, 3 kinds, S, S)
        As written by :func:`neuroai.tokenizers.qc.example_slices`, values in
        [-1, 1] (the difference in [-2, 2]).
    title : str
        Figure title.
    """
    slices = np.asarray(slices, dtype=np.float32)
    fig = Figure(figsize=(6.6, 6.6))
    axes = fig.subplots(3, 3)
    limit = float(max(np.abs(slices[:, 2]).max(), 1e-3))
    for row in range(3):
        for col in range(3):
            ax = axes[row, col]
            picture = np.rot90(slices[row, col])
            if col < 2:
                ax.imshow(picture, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            else:
                shown = ax.imshow(
                    picture, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(_KINDS[col], fontsize=9)
            if col == 0:
                ax.set_ylabel(_AXES[row], fontsize=8)
    fig.colorbar(shown, ax=axes[:, 2], fraction=0.08, pad=0.04, label="reconstruction - input")
    fig.suptitle(title, fontsize=10)
    return fig


_MERGE = {
    "spectral": "Decoding merges the three axes' reconstructions frequency by frequency, each "
    "weighted by the inverse of the autoencoder's in-plane distortion measured on photographs "
    "(axis_fusion.safetensors in the checkpoint).",
    "mean": "Decoding averages the three axes' reconstructions (the checkpoint has no "
    "distortion map; `python -m neuroai.pipelines.tokenizer --calibrate FOLDER` measures one).",
}
_MERGE_SHORT = {"spectral": "merged frequency by frequency", "mean": "averaged"}


def _number(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _tokenizer_text(info: dict) -> str:
    source = info.get("source")
    if source in ("tokenizer", "tokenizer_finetune"):
        params = info.get("params", {})
        what = (
            f"preset {params.get('preset')}, trained on {info.get('data')}"
            if source == "tokenizer"
            else f"fine-tuned on {info.get('data')}"
        )
        if info.get("bundled"):
            what += " (the checkpoint shipped with neuroai)"
        parameters = info.get("n_parameters") or 0
        steps = "n/a" if info.get("steps") is None else f"{info['steps']:,}"
        if info.get("earlier_steps") is not None:
            seconds = (info.get("earlier_seconds") or 0) + (info.get("seconds") or 0)
            steps = (
                f"{info['earlier_steps']:,} steps, then {steps} more from that checkpoint "
                f"({info['earlier_steps'] + (info.get('steps') or 0):,}) in {seconds:,.0f} s"
            )
        else:
            steps = f"{steps} steps in {_number(info.get('seconds'), 0)} s"
        return (
            f"Autoencoder: AutoencoderDC, {what}: {steps}, {parameters / 1e6:.2f} M parameters, "
            f"final loss (L1 + MSE) {_number(info.get('final_loss'), 4)}."
        )
    return f"Autoencoder: weights from {info.get('path')} ({info.get('source', 'unknown')})."


def _dataset_parts(summary_path: Path) -> list[str]:
    summary = load_json(summary_path, stage="tokens_summary")
    examples = load_array(summary_path.with_name("examples.npy"), stage="tokens_summary")
    layout, compression, cohort = summary["layout"], summary["compression"], summary["cohort"]
    dataset = summary["dataset"]
    merge = summary.get("axis_merge", "mean")
    spatial = cohort["qc_spatial_r"]["mean"]
    verdict = "meets" if spatial is not None and spatial >= SPATIAL_GOAL else "does not meet"
    parts = [
        f"<h3>{html.escape(dataset)}</h3>",
        text(
            f"{summary['n_subjects']} subjects. Each frame of 96^3 voxels (2 mm, MNI) becomes "
            f"{layout['n_tokens']} tokens of {layout['token_dim']} values (f = {layout['factor']}, "
            f"C = {layout['latent_channels']}): {compression['values_per_frame']:,} values "
            f"against {compression['voxels_per_frame']:,} voxels, {compression['ratio']:.1f}x "
            f"fewer. Token stores are (n_frames, {layout['n_tokens']}, {layout['token_dim']}) "
            f"float16; index.tsv beside the summary lists them with TR and labels."
        ),
        text(_tokenizer_text(summary["tokenizer"]) + " " + _MERGE[merge]),
        text(
            f"Mean spatial correlation in the brain mask: {_number(spatial)}; this "
            f"{verdict} the goal of {SPATIAL_GOAL}.",
            cls="note",
        ),
    ]
    rows = [
        (
            "spatial correlation (brain mask)",
            *(_number(cohort["qc_spatial_r"][k]) for k in ("mean", "min", "max")),
        ),
        (
            "PSNR in the mask, dB",
            *(_number(cohort["qc_psnr_db"][k], 1) for k in ("mean", "min", "max")),
        ),
        (
            "temporal correlation (median voxel)",
            *(_number(cohort["qc_temporal_r"][k]) for k in ("mean", "min", "max")),
        ),
        (
            "region time-series correlation (median region)",
            *(_number(cohort["qc_region_r"][k]) for k in ("mean", "min", "max")),
        ),
    ]
    parts.append(table(rows, ["round trip, over subjects", "mean", "min", "max"]))
    group = summary.get("group_by") or "group"
    for example, slices in zip(summary["examples"], examples, strict=True):
        label = example["subject"] + (f" ({group} {example['group']})" if example["group"] else "")
        parts.append(
            figure(
                example_slices_figure(slices, title=f"{dataset}: {label}"),
                caption=f"{label}: central slices of one frame, input, reconstruction from its "
                f"tokens (the three axes' decodings {_MERGE_SHORT[merge]}) and difference.",
            )
        )
    subject_rows = [
        (
            s["subject"],
            s["qc"]["n_frames"],
            _number(s["qc_spatial_r"]),
            _number(s["qc_psnr_db"], 1),
            _number(s["qc_temporal_r"]),
            _number(s["qc_region_r"]),
        )
        for s in summary["subjects"]
    ]
    parts.append(
        table(
            subject_rows,
            ["subject", "frames scored", "spatial r", "PSNR dB", "temporal r", "region r"],
        )
    )
    return parts


def render_tokens(paths: Sequence[Path]) -> list[Section]:
    """Token layout, tokenizer and round-trip QC per dataset.

    Parameters
    ----------
    paths : sequence of Path
        ``tokens/<dataset>/summary.json`` artifacts (the ``examples.npy`` beside
        each is read too), and optionally the data card of the tokenizer's
        training images (a ``.yaml`` file).
    """
    from neuroai.datasets import load_card

    section = Section("tokens", "fMRI volume tokens")
    section.add(
        text(
            "TABLeT tokenization: every frame is sliced along its three axes, each 96 x 96 "
            "slice (replicated to 3 channels) is encoded by a 2D natural-image autoencoder "
            "(diffusers AutoencoderDC), and the latents are regrouped into one token per "
            "32^3 cube. Frames are decoded back from the stored float16 tokens to score the "
            "round trip.",
            cls="note",
        )
    )
    for path in paths:
        if path.suffix in (".yaml", ".yml"):
            card = load_card(path)
            section.add(
                text(
                    f"Tokenizer training images: {card['title']} ({card.nature}; "
                    f"{card.get('counts', {}).get('images', '?')} images). Licence: "
                    f"{card['license'].strip()}"
                )
            )
        else:
            section.add(*_dataset_parts(path))
    return [section]
