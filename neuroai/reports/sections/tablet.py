"""TABLeT report section: pretraining, fine-tuning, pretrained vs scratch, positions.

Drawn from the artifacts of the ``tablet_pretrain``, ``tablet_finetune`` and
``tablet_evaluate`` stages (told apart by their provenance): learning curves, subject-level
metrics with bootstrap intervals, the paired pretrained-vs-scratch comparison, example
token reconstructions, and the positional-information ablation. With several random
splits (``tablet.splits``) each metric is shown as its mean +- sd over the splits, then
split by split with its bootstrap interval. Nothing is recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_json, load_table, read_provenance
from neuroai.reports.html import Section, figure, table, text
from neuroai.reports.sections._fidelity import fidelity_table
from neuroai.reports.sections._format import interval
from neuroai.reports.sections._format import number as _num

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
ORDER = {
    "classification": ("accuracy", "auroc", "f1", "sensitivity", "specificity"),
    "regression": ("pearson_r", "mae", "mse"),
}


def _fmt(summary: dict | None, digits: int = 3) -> str:
    return interval(summary, digits, spec="g")


def _by_stage(paths: Sequence[Path]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in paths:
        path = Path(path)
        if path.suffix in (".json", ".tsv", ".npy"):
            stage = read_provenance(path).get("stage", "")
            found.setdefault(f"{stage}{path.suffix}", []).append(path)
    return found


def _curves(histories: list, title: str, keys=("train/loss", "val/loss")) -> str:
    fig = Figure(figsize=(7.5, 3.0))
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys, strict=True):
        for i, (label, frame) in enumerate(histories):
            if key in frame.columns:
                part = frame.dropna(subset=[key])
                ax.plot(
                    part["step"],
                    part[key],
                    color=COLOURS[i % len(COLOURS)],
                    label=label,
                    marker="o" if key.startswith("val") else None,
                    markersize=3,
                )
        ax.set_xlabel("optimizer step")
        ax.set_title(key)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return figure(fig, caption=title, alt=title)


def _reconstruction(example: np.ndarray) -> str:
    target, prediction, mask = (np.asarray(a, dtype=float) for a in example)
    width = min(target.shape[1], 384)
    fig = Figure(figsize=(8.0, 3.6))
    axes = fig.subplots(3, 1)
    limit = float(np.nanpercentile(np.abs(target[:, :width]), 99)) or 1.0
    for ax, values, title in zip(
        axes,
        (target[:, :width], prediction[:, :width], mask[:, :width]),
        ("normalised tokens", "reconstruction", "hidden (1) / visible (0)"),
        strict=True,
    ):
        vmin, vmax = (0, 1) if title.startswith("hidden") else (-limit, limit)
        ax.imshow(values, aspect="auto", cmap="RdBu_r" if vmin else "Greys", vmin=vmin, vmax=vmax)
        ax.set_ylabel("token", fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[-1].set_xlabel(f"feature (first {width} of {target.shape[1]})", fontsize=7)
    fig.tight_layout()
    return figure(
        fig,
        caption="One validation frame: its 27 normalised tokens, the masked-token model's "
        "reconstruction and the tokens it had to predict (hidden ones).",
        alt="token reconstruction",
    )


def _mean_sd(summary: dict | None, digits: int = 3) -> str:
    """``"0.812 +- 0.040 (4)"``: a mean over splits, its sd and the number of splits."""
    summary = summary or {}
    mean, sd = _num(summary.get("estimate")), _num(summary.get("sd"))
    if not math.isfinite(mean):
        return "n/a"
    spread = f" +- {sd:.{digits}g}" if math.isfinite(sd) else ""
    return f"{mean:.{digits}g}{spread} ({summary.get('n_splits', '?')})"


def _split_tables(metrics: dict) -> list[str]:
    """Per split: every variant's metrics with their bootstrap intervals."""
    parts = []
    for split in metrics.get("splits", []):
        for name, entry in split["tasks"].items():
            names = ORDER[entry["kind"]]
            rows = [
                (variant, *(_fmt(scores.get(m, {})) for m in names))
                for variant, scores in sorted(entry["variants"].items())
            ]
            parts.append(
                text(
                    f"Split {split['index']} (seed {split.get('seed')}), {name}: "
                    f"{entry['n_test']} test subjects",
                    tag="h4",
                )
            )
            parts.append(table(rows, ["variant", *names]))
    return parts


def _metrics_tables(metrics: dict) -> list[str]:
    parts = []
    several = metrics.get("n_splits", 1) > 1
    show = _mean_sd if several else _fmt
    for name, entry in metrics["tasks"].items():
        kind = entry["kind"]
        names = ORDER[kind]
        rows = []
        for variant, scores in sorted(entry["variants"].items()):
            rows.append((variant, *(show(scores.get(m, {})) for m in names)))
        what = (
            f"binary, positive class {entry.get('positive')}"
            if kind == "classification"
            else "regression"
        )
        if not entry.get("use_tr", True):
            what += "; TR hidden from the model (confounded with the label)"
        n_test = entry["n_test"]
        if several:
            tested = "/".join(map(str, n_test))
            heading = f"{name} ({entry['column']}, {what}); {tested} test subjects in "
            heading += f"{len(n_test)} splits: mean +- sd over splits (splits)"
        else:
            heading = f"{name} ({entry['column']}, {what}); {n_test} test subjects"
        parts.append(text(heading, tag="h4"))
        parts.append(table(rows, ["variant", *names]))
        spread = "; mean +- sd of the per-split differences" if several else ""
        for label, comparison in entry.get("comparisons", {}).items():
            parts.append(
                text(
                    f"{label}: mean paired difference in {comparison['measure']} "
                    f"{show(comparison)} (negative favours pretraining{spread})."
                )
            )
    return parts


def _ablation(metrics: dict) -> list[str]:
    parts = []
    for name, entry in metrics["tasks"].items():
        scratch = {v: s for v, s in entry["variants"].items() if v.startswith("scratch-")}
        if len(scratch) < 2:
            continue
        metric = "auroc" if entry["kind"] == "classification" else "mae"
        labels = sorted(scratch)
        estimates = [_num(scratch[v][metric]["estimate"]) for v in labels]
        several = metrics.get("n_splits", 1) > 1
        if several:  # mean +- sd over the splits
            sds = [_num(scratch[v][metric].get("sd")) for v in labels]
            lows = [e - s for e, s in zip(estimates, sds, strict=True)]
            highs = [e + s for e, s in zip(estimates, sds, strict=True)]
        else:
            lows = [_num(scratch[v][metric].get("ci_low")) for v in labels]
            highs = [_num(scratch[v][metric].get("ci_high")) for v in labels]
        fig = Figure(figsize=(4.5, 2.8))
        ax = fig.subplots()
        x = np.arange(len(labels))
        err = np.array(
            [
                [e - lo if math.isfinite(lo) else 0 for e, lo in zip(estimates, lows, strict=True)],
                [
                    hi - e if math.isfinite(hi) else 0
                    for e, hi in zip(estimates, highs, strict=True)
                ],
            ]
        )
        ax.bar(x, np.nan_to_num(estimates), color=COLOURS[: len(labels)], yerr=err, capsize=3)
        ax.set_xticks(x, [v.split("-", 1)[1] for v in labels])
        ax.set_ylabel(metric)
        ax.set_title(f"{name}: positional information (from scratch)", fontsize=9)
        fig.tight_layout()
        parts.append(
            figure(
                fig,
                caption=f"Positional ablation on {name} ({metric}, "
                + ("mean +- sd over splits)." if several else "95% bootstrap CI)."),
                alt="positional ablation",
            )
        )
    return parts


POSITIONAL_ORDER = {"none": 0, "rope": 1, "spacetime": 2}


def _pretraining_table(summaries: list[dict]) -> str:
    first = summaries[0]
    header = ["", *(f"positional {d['positional']}" for d in summaries)]
    rows = [
        ("encoder parameters", *(f"{d['n_parameters']:,}" for d in summaries)),
        (
            "subjects: train / val (test left out)",
            *(f"{d['n_train']} / {d['n_val']} ({len(d['test_left_out'])})" for d in summaries),
        ),
        ("steps (best)", *(f"{d['steps']} ({d['best_step']})" for d in summaries)),
        (
            "train loss, first -> last",
            *(
                f"{_num(d['first_train_loss']):.3f} -> {_num(d['last_train_loss']):.3f}"
                for d in summaries
            ),
        ),
        ("val MSE, hidden tokens", *(f"{_num(d['val_hidden_mse']):.3f}" for d in summaries)),
        ("val MSE, visible tokens", *(f"{_num(d['val_visible_mse']):.3f}" for d in summaries)),
        ("predicting the mean token", *(f"{d['mean_prediction_mse']:.3f}" for d in summaries)),
    ]
    note = text(
        f"Windows of {first['window_frames']} frames, mask ratio {first['mask_ratio']}; "
        "visible tokens are not trained on (the loss is on hidden tokens only)."
    )
    return table(rows, header) + note


def _pretraining_ablation(summaries: list[dict]) -> str:
    labels = [d["positional"] for d in summaries]
    values = [_num(d["val_hidden_mse"]) for d in summaries]
    fig = Figure(figsize=(4.5, 2.8))
    ax = fig.subplots()
    ax.bar(np.arange(len(labels)), values, color=COLOURS[: len(labels)])
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="mean token")
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_ylabel("val MSE, hidden tokens")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return figure(
        fig,
        caption="Masked token pretraining by positional flag: validation MSE on the hidden "
        "(normalised) tokens; lower is better, 1 is predicting the mean token.",
        alt="positional ablation of pretraining",
    )


def render_tablet(paths: Sequence[Path]) -> list[Section]:
    """The TABLeT section from the pretraining, fine-tuning and evaluation artifacts."""
    found = _by_stage(paths)
    section = Section("tablet", "TABLeT: Transformer over fMRI volume tokens")
    section.add(
        text(
            "TABLeT reads each fMRI frame as 27 tokens of a 2D natural-image autoencoder and "
            "models windows of frames with a plain Transformer (grouped-query attention). It is "
            "pretrained by masked token modelling (half of the tokens hidden behind a learned mask "
            "token, linear decoder, MSE on normalised tokens, hidden tokens only), then fine-tuned "
            "on one random window per subject per epoch; evaluation averages the logits of all "
            "non-overlapping windows of a subject. On the demo every number comes from a handful "
            "of semi-synthetic subjects: it shows the pipeline works, not what TABLeT can do."
        )
    )
    summaries = sorted(
        (load_json(p) for p in found.get("tablet_pretrain.json", [])),
        key=lambda d: POSITIONAL_ORDER.get(d["positional"], 9),
    )
    if summaries:
        section.add(text("Masked token pretraining", tag="h3"), _pretraining_table(summaries))
    pre_histories = [
        (f"positional {str(t['positional'].iloc[0])}" if "positional" in t else "pretraining", t)
        for t in (load_table(p) for p in found.get("tablet_pretrain.tsv", []))
    ]
    if pre_histories:
        section.add(
            _curves(
                sorted(pre_histories, key=lambda h: h[0]),
                "Masked token modelling: training and validation loss (MSE on normalised "
                "tokens, hidden tokens only).",
            )
        )
    for path in found.get("tablet_pretrain.npy", []):
        section.add(_reconstruction(np.load(path, allow_pickle=False)))
    tuned = [load_table(p) for p in found.get("tablet_finetune.tsv", [])]
    tasks = sorted({str(t["task"].iloc[0]) for t in tuned if len(t)})
    for task in tasks:
        histories = [
            (str(t["variant"].iloc[0]), t)
            for t in tuned
            if len(t) and str(t["task"].iloc[0]) == task
        ]
        section.add(_curves(sorted(histories, key=lambda h: h[0]), f"Fine-tuning on {task}."))
    for path in found.get("tablet_evaluate.json", []):
        metrics = load_json(path)
        n_splits = metrics.get("n_splits", 1)
        if n_splits > 1:
            section.add(
                text(
                    f"Held-out subjects of {n_splits} random splits: mean +- sd over the splits "
                    "(the TABLeT paper reports the mean over 4 splits)",
                    tag="h3",
                ),
                *_metrics_tables(metrics),
                text("Split by split (95% bootstrap intervals over subjects)", tag="h3"),
                *_split_tables(metrics),
            )
        else:
            section.add(
                text("Held-out subjects (95% bootstrap intervals over subjects)", tag="h3"),
                *_metrics_tables(metrics),
            )
        fine_tuned = _ablation(metrics)
        if fine_tuned:
            section.add(
                text("Positional information: fine-tuning from scratch", tag="h3"), *fine_tuned
            )
    if len(summaries) > 1:
        section.add(
            text("Positional information: masked token pretraining", tag="h3"),
            text(
                "none: no positions (the released code, where an argument slip disables RoPE: "
                "every hidden token is the same mask token with nothing to say which cube or "
                "frame it stands for); rope: 1-D rotary positions over the flattened sequence "
                "(the default, the authors' intent); spacetime: separate frame and cube "
                "positions (ours). Same data, budget and seed."
            ),
            _pretraining_ablation(summaries),
        )
    section.add(*fidelity_table("tablet"))
    return [section]
