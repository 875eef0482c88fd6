"""dFC-GNN report section: pretraining, label efficiency, downstream metrics, fingerprinting.

Drawn from the evaluation's ``metrics.json`` and the artifacts it lists (label-efficiency
curves, the pretraining history, fingerprint similarity matrices, example half-run FC
matrices); nothing is recomputed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_array, load_json, load_table
from neuroai.reports.html import Section, figure, table, text
from neuroai.reports.sections._fidelity import fidelity_table
from neuroai.reports.sections._format import interval
from neuroai.reports.sections._format import number as _num

COLOURS = {
    "finetune": "#4c72b0",
    "scratch": "#dd8452",
    "probe": "#55a868",
    "random_probe": "#8c8c8c",
    "static_fc": "#c44e52",
}
LABELS = {
    "finetune": "pretrained + fine-tuned",
    "scratch": "same network from scratch",
    "probe": "frozen pretrained, linear probe",
    "random_probe": "frozen random encoder, linear probe",
    "static_fc": "static FC, linear model",
}
PROFILES = {
    "static_fc": "static FC (Finn et al. 2015)",
    "dfc_gnn": "dFC-GNN embedding (pretrained)",
    "dfc_gnn_random": "dFC-GNN embedding (random weights)",
}
METRIC_NAMES = {
    "auroc": "AUROC",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "auprc": "AUPRC",
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
    "pearson_r": "Pearson r",
}


def _fmt(summary: dict | None, digits: int = 2) -> str:
    return interval(summary, digits, spec="f")


def _curve_figure(curves, task: str, metrics: Sequence[str]) -> Figure:
    fig = Figure(figsize=(4.6 * len(metrics), 3.4))
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        part = curves[(curves["task"] == task) & (curves["metric"] == metric)]
        for method, rows in part.groupby("method", sort=False):
            rows = rows.sort_values("fraction")
            x = rows["fraction"].to_numpy() * 100
            mean = rows["mean"].to_numpy(dtype=float)
            sd = np.nan_to_num(rows["sd"].to_numpy(dtype=float))
            colour = COLOURS.get(method, None)
            ax.plot(x, mean, "o-", color=colour, label=LABELS.get(method, method))
            ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.12)
        if metric in ("auroc", "balanced_accuracy", "accuracy"):
            ax.axhline(0.5, color="black", lw=0.8, ls=":")
            ax.set_ylim(0, 1.02)
        ax.set_xscale("log")
        ticks = sorted(set(part["fraction"] * 100))
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("training labels used")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        if k == 0:
            ax.legend(fontsize=7, loc="lower right")
    return fig


def _curve_table(curves, task: str, metric: str) -> str:
    part = curves[(curves["task"] == task) & (curves["metric"] == metric)]
    fractions = sorted(part["fraction"].unique())
    rows = []
    for method, rows_m in part.groupby("method", sort=False):
        by = {float(r["fraction"]): r for _, r in rows_m.iterrows()}
        cells = []
        for f in fractions:
            r = by.get(float(f))
            if r is None or not math.isfinite(_num(r["mean"])):
                cells.append("n/a")
            else:
                sd = _num(r["sd"])
                cells.append(f"{r['mean']:.2f}" + (f" ± {sd:.2f}" if math.isfinite(sd) else ""))
        rows.append((LABELS.get(method, method), *cells))
    subjects = [
        f"{f * 100:g}% ({part[part['fraction'] == f]['n_train'].mean():g} subj.)" for f in fractions
    ]
    return table(rows, ["method", *subjects])


def _history_figure(path: Path) -> Figure | None:
    if not Path(path).is_file():
        return None
    frame = load_table(path, stage="dfc_gnn_pretrain")
    parts = [c for c in ("train/feature_mse", "train/fc_mse", "train/existence_bce") if c in frame]
    if "train/loss" not in frame:
        return None
    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot()
    rows = frame.dropna(subset=["train/loss"])
    ax.plot(rows["step"], rows["train/loss"], color="black", label="total")
    for name, colour in zip(parts, ("#4c72b0", "#55a868", "#c44e52"), strict=False):
        ax.plot(rows["step"], rows[name], color=colour, label=name.split("/")[1])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    return fig


def _similarity_figure(
    matrices: np.ndarray, names: Sequence[str], subjects: Sequence[str]
) -> Figure:
    """``matrices``: (n_profiles, 2 (raw, centred), n, n)."""
    fig = Figure(figsize=(4.4 * len(names), 8.2))
    for v, variant in enumerate(("raw", "centred")):
        for k, name in enumerate(names):
            ax = fig.add_subplot(2, len(names), v * len(names) + k + 1)
            image = ax.imshow(matrices[k, v], cmap="viridis", interpolation="nearest")
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(f"{PROFILES.get(name, name)}, {variant}", fontsize=9)
            ax.set_xticks(range(len(subjects)), subjects, rotation=90, fontsize=6)
            ax.set_yticks(range(len(subjects)), subjects if k == 0 else [], fontsize=6)
            if v == 1:
                ax.set_xlabel("first segment (database)")
            if k == 0:
                ax.set_ylabel("second segment (target)")
    fig.tight_layout()
    return fig


def _fc_figure(fcs: np.ndarray, subjects: Sequence[str]) -> Figure:
    fig = Figure(figsize=(7.6, 3.6 * len(subjects)))
    for i, subject in enumerate(subjects):
        for j, half in enumerate(("first", "second")):
            ax = fig.add_subplot(len(subjects), 2, 2 * i + j + 1)
            image = ax.imshow(fcs[i, j], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(f"{subject}: {half} segment", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 1:
                fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


def _task_part(task: dict, curves) -> list[str]:
    name = task["name"]
    metrics = ["auroc", "balanced_accuracy"] if task["task"] == "classification" else ["mae", "r2"]
    split = task["split"]
    training = task.get("training", {})
    counts = ", ".join(f"{k}: {v}" for k, v in task.get("class_counts", {}).items())
    protocol = task.get("protocol") or {}
    steps = (
        f"fine-tuning and training from scratch for {training.get('max_steps')} steps of "
        f"{training.get('batch_size')} crops at learning rate {training.get('lr')}."
    )
    if protocol.get("design", "cross_validation") == "holdout":
        design = (
            f"{split.get('repeats')} repeats on held-out test subjects "
            f"({protocol.get('n_test_subjects')} with this label; pretraining read "
            f"{protocol.get('test_subjects_pretrained_on', 0)} of them); {steps}"
        )
        scored = "held-out subjects' predictions"
    else:
        design = (
            f"transductive: {split.get('repeats')} repeats of stratified "
            f"{split.get('n_folds')}-fold cross-validation by subject (seeds from "
            f"{split.get('seed')}), pretraining having read every subject; {steps}"
        )
        scored = "pooled out-of-fold predictions"
    parts = [
        f"<h3>Task: {html.escape(name)} ({html.escape(task['task'])} of "
        f"'{html.escape(task['label'])}')</h3>",
        text(f"{task['n_subjects']} subjects ({counts or 'numeric label'}); {design}"),
        figure(
            _curve_figure(curves, name, metrics),
            caption=(
                f"Label efficiency: each metric on the {scored} of a repeat, mean ± SD over "
                "repeats, against the share of the training subjects whose labels were used "
                "(dotted: chance)."
            ),
        ),
    ]
    for metric in metrics:
        parts += [
            f"<h4>{METRIC_NAMES.get(metric, metric)} (mean ± SD over repeats)</h4>",
            _curve_table(curves, name, metric),
        ]
    full = task.get("full_labels", {})
    if full:
        rows = [(LABELS.get(m, m), *(_fmt(v.get(k, {})) for k in metrics)) for m, v in full.items()]
        parts += [
            "<h4>All training labels: repeat-averaged predictions, 95% bootstrap interval over subjects</h4>",
            table(rows, ["method", *(METRIC_NAMES.get(k, k) for k in metrics)]),
        ]
    return parts


def _fingerprint_part(document: dict) -> list[str]:
    finger = document.get("fingerprint")
    if not finger:
        return []
    rows = []
    for name, entry in finger["methods"].items():
        raw, centred = entry["raw"], entry["centered"]
        rows.append(
            (
                PROFILES.get(name, name),
                f"{raw['accuracy']:.3f}",
                f"{centred['accuracy']:.3f}",
                f"{raw['differential_identifiability']:.1f}",
                f"{centred['differential_identifiability']:.1f}",
                f"{raw['mean_rank']:.2f}",
            )
        )
    first = next(iter(finger["methods"].values()))["raw"]
    parts = [
        "<h3>Subject fingerprinting</h3>",
        text(
            f"Design: {finger.get('design', 'halves')}, {finger['segments']}. {finger['metric']} "
            f"({first['n_subjects']} subjects, chance {first['chance']:.3f}). "
            "Static FC: the upper triangle of each segment's correlation matrix, as Finn et al. "
            "(2015). dFC-GNN: the mean subject embedding of evenly spread crops of the segment. "
            "Centred: the mean profile over all segments removed first (no identity used)."
        ),
        table(
            rows,
            [
                "profile",
                "top-1 accuracy (raw)",
                "top-1 accuracy (centred)",
                "I_diff (raw)",
                "I_diff (centred)",
                "mean rank of the true subject (raw)",
            ],
        ),
    ]
    artifacts = document.get("artifacts", {})
    subjects = first.get("subjects") or list(finger.get("halves", {}))
    if artifacts.get("similarity") and Path(artifacts["similarity"]).is_file():
        matrices = load_array(artifacts["similarity"], stage="dfc_gnn_evaluate")
        if matrices.size:
            parts.append(
                figure(
                    _similarity_figure(matrices, finger["profiles"], subjects),
                    caption="Similarity (Pearson r) of every second segment to every first segment, raw "
                    "and centred; a subject is identified when its diagonal entry is the largest "
                    "of its row.",
                    dpi=80,
                )
            )
    examples = document.get("fc_examples")
    if examples and artifacts.get("fc_examples") and Path(artifacts["fc_examples"]).is_file():
        fcs = load_array(artifacts["fc_examples"], stage="dfc_gnn_evaluate")
        if fcs.size:
            parts.append(
                figure(
                    _fc_figure(fcs, examples["subjects"]),
                    caption="Static FC (Pearson r) of the two segments of one subject per site: "
                    "the profiles Finn's identification compares.",
                    dpi=70,
                )
            )
    return parts


def render_dfc_gnn(paths: Sequence[Path]) -> list[Section]:
    """One section per dataset (``metrics.json`` of ``dfc_gnn_evaluate``)."""
    sections = []
    for path in (Path(p) for p in paths if Path(p).name == "metrics.json"):  # not evaluated/
        document = load_json(path, stage="dfc_gnn_evaluate")
        dataset = document["dataset"]
        model = document["model"]
        config = model["config"]
        pre = model.get("pretraining", {})
        objective = model.get("objective", {}).get("settings", {})
        section = Section(f"dfc-gnn-{dataset}", f"dFC-GNN: {dataset}")
        windowing = document.get("windowing", {})
        sparsity = document.get("sparsity", {})
        section.add(
            text(
                f"A graph network over sequences of dynamic-FC window graphs (windows of "
                f"{windowing.get('window')} TRs, step {windowing.get('step')}; top "
                f"{sparsity.get('density')} of the edges by |FC|): {config['gin_layers']} GIN "
                f"layers of {config['hidden']} units per window, {config['readout']} readout, a "
                f"{config['temporal_layers']}-layer temporal Transformer and a subject embedding "
                f"({model['n_parameters']:,} parameters), pretrained for {pre.get('steps')} steps "
                f"by masked reconstruction of node features "
                f"({objective.get('node_mask_ratio', 0.5)} of the nodes), edges "
                f"({objective.get('edge_mask_ratio', 0.3)}: FC value by MSE, existence by BCE) and "
                f"spans of {objective.get('window_span', 4)} windows "
                f"({objective.get('window_mask_ratio', 0.25)} of each crop). Training loss "
                f"{_num(pre.get('loss_first')):.3f} -> {_num(pre.get('loss_last')):.3f}."
            ),
            text(document.get("protocol", ""), cls="note"),
        )
        history = document.get("artifacts", {}).get("history")
        fig = _history_figure(Path(history)) if history else None
        if fig is not None:
            section.add(
                figure(
                    fig,
                    caption="Pretraining loss and its parts (standardised targets: a trivial "
                    "predictor scores 1 on each MSE and log 2 = 0.69 on the BCE).",
                    dpi=80,
                )
            )
        curves_path = document.get("artifacts", {}).get("curves")
        curves = load_table(curves_path, stage="dfc_gnn_evaluate") if curves_path else None
        for task in document.get("tasks", {}).values():
            if curves is not None and len(curves):
                section.add(*_task_part(task, curves))
        section.add(*_fingerprint_part(document))
        sizes = [t["n_subjects"] for t in document.get("tasks", {}).values()]
        if sizes and min(sizes) < 50:
            section.add(
                text(
                    f"With {min(sizes)} subjects the intervals are wide: differences inside them "
                    "are not evidence. Read the data card for confounds of the labels.",
                    cls="note",
                )
            )
        section.add(*fidelity_table("dfc_gnn"))
        section.add(text(f"Source: {html.escape(str(path))}", cls="note"))
        sections.append(section)
    return sections
