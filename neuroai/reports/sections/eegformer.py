"""EEGFormer report section: pretraining, downstream tasks, anomaly detection, codebook.

Drawn from the EEGFormer rules' artifacts only (nothing is recomputed): the
pretraining histories (``pretrain/<corpus>/history.tsv``), each task's
``metrics.json`` (``eegformer_evaluate``), ``anomaly.json`` (``eegformer_anomaly``)
and ``codes.json`` (``eegformer_interpret``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_json, load_table
from neuroai.reports.classification import confusion_figure, learning_curves, roc_pr_figure
from neuroai.reports.html import Section, figure, pre, table, text
from neuroai.reports.sections._fidelity import fidelity_table
from neuroai.reports.sections._format import interval
from neuroai.reports.sections._format import number as _num

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
METRIC_NAMES = {"auroc": "AUROC", "auprc": "AUPRC", "balanced_accuracy": "balanced accuracy"}
MODE_NAMES = {
    "probe": "linear probe (frozen pretrained encoder)",
    "finetune": "fine-tuned (pretrained encoder trained too)",
    "scratch": "from scratch (same network, random weights)",
    "eegnet": "EEGNet-8,2 baseline (published compact CNN, from scratch)",
}


def mode_name(mode: str) -> str:
    """How the report names a fine-tuning mode (``braindecode.<ClassName>`` included)."""
    if mode.startswith("braindecode."):
        return f"{mode.split('.', 1)[1]} baseline (braindecode's network, from scratch)"
    return MODE_NAMES.get(mode, mode)


REPRODUCE = (
    "snakemake --cores 2 results/report   # or only EEGFormer:\n"
    "snakemake --cores 2 results/eegformer/abnormal/metrics.json "
    "results/eegformer/anomaly/anomaly.json results/eegformer/interpret/codes.json"
)


# Pretraining -------------------------------------------------------------------------------
def _fmt(summary: dict | None, digits: int = 3) -> str:
    return interval(summary, digits, spec="f")


def pretraining_curves(histories: dict[str, object]) -> Figure:
    """Loss, codebook perplexity and usage against the optimizer step, per corpus."""
    fig = Figure(figsize=(10.0, 3.0))
    axes = [fig.add_subplot(1, 3, k + 1) for k in range(3)]
    panels = (
        ("loss", "VQ-VAE loss"),
        ("perplexity", "codebook perplexity"),
        ("usage", "codes used per batch (share)"),
    )
    for i, (corpus, frame) in enumerate(histories.items()):
        colour = COLOURS[i % len(COLOURS)]
        for ax, (key, label) in zip(axes, panels, strict=True):
            for split, style in (("train", "-"), ("val", "o--")):
                column = f"{split}/{key}"
                if column in frame:
                    rows = frame.dropna(subset=[column])
                    ax.plot(
                        rows["step"],
                        rows[column],
                        style,
                        color=colour,
                        lw=1,
                        ms=3,
                        label=f"{corpus} ({split})",
                    )
            ax.set_xlabel("optimizer step")
            ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _pretraining(section: Section, histories: dict[str, object], pretrained: dict | None) -> None:
    section.add("<h3>Pretraining</h3>")
    if pretrained:
        config = pretrained.get("config") or {}
        training = pretrained.get("training") or {}
        section.add(
            text(
                f"VQ-VAE pretraining (reconstruction + codebook + beta x commitment, beta "
                f"{(pretrained.get('objective') or {}).get('settings', {}).get('beta')}) on "
                f"{', '.join(Path(s).parent.name for s in pretrained.get('stores') or [])}: "
                f"d_model {config.get('d_model')}, {config.get('depth')} encoder and "
                f"{config.get('decoder_depth')} decoder layers, {config.get('n_heads')} heads, "
                f"{config.get('codebook_size')} codes, {config.get('n_chans')} channels x "
                f"{config.get('n_times')} samples, spectral patches of {config.get('patch_len')} "
                f"bins; {pretrained.get('n_parameters') or 0:,} parameters; "
                f"{training.get('max_steps')} steps of batch {training.get('batch_size')} "
                f"(best weights at step {pretrained.get('steps')})."
            )
        )
    if histories:
        section.add(
            figure(
                pretraining_curves(histories),
                caption=(
                    "Pretraining: VQ-VAE loss, perplexity of the code distribution in a batch "
                    "(exp of its entropy) and the share of codes used. 'compound' is every "
                    "configured store, 'normal' the normal recordings of the anomaly datasets."
                ),
            )
        )


# Downstream tasks --------------------------------------------------------------------------
def _task(section: Section, document: dict, path: Path) -> None:
    task = document["task"]
    definition = document["definition"]
    positives = ", ".join(f"{k}: {v}" for k, v in document.get("positives", {}).items())
    section.add(
        f"<h3>Task: {html.escape(task)}</h3>",
        text(
            f"{definition['kind'].replace('_', ' ')}; classes {', '.join(document['classes'])}"
            f" (positive training-set windows {positives or 'n/a'}); tested on "
            f"{document['n_windows']} windows of {document['n_recordings']} held-out "
            f"recordings; recording scores are the {definition['aggregate']} of the windows'."
        ),
    )
    transfer = document.get("transfer")
    if transfer:
        section.add(
            text(
                "Transfer protocol: the encoder was pretrained on "
                f"{', '.join(transfer['pretrained_on'])} only and is fine-tuned and tested on "
                f"{', '.join(transfer['tested_on'])}, which the pretraining never read (no "
                "recording or patient shared). The datasets' cards (Data section) say what "
                "they are: two simulated cohorts show that the protocol runs, not that a "
                "model transfers between real datasets.",
                cls="note",
            )
        )
    rows = []
    for mode, entry in document["models"].items():
        for level in ("window", "recording"):
            metrics = entry["metrics"][level]
            rows.append(
                (
                    mode_name(mode),
                    level,
                    *(_fmt(metrics.get(m)) for m in METRIC_NAMES),
                    entry.get("best_step"),
                )
            )
    section.add(table(rows, ["model", "level", *METRIC_NAMES.values(), "best step"]))
    per_class = [
        (mode, name, _fmt(m["window"]["auroc"]), _fmt(m["recording"]["auroc"]))
        for mode, entry in document["models"].items()
        for name, m in (entry.get("per_class") or {}).items()
    ]
    if per_class:
        section.add(
            "<p><b>Per class</b> (AUROC)</p>",
            table(per_class, ["model", "class", "window", "recording"]),
        )
    comparisons = [
        (
            f"{c['a']} - {c['b']}",
            METRIC_NAMES.get(c["metric"], c["metric"]),
            c["level"],
            _fmt(c),
            f"{_num(c.get('p_greater')):.2f}",
        )
        for c in document.get("comparisons", [])
        if c["metric"] in ("auroc", "balanced_accuracy")
    ]
    if comparisons:
        section.add(
            "<p><b>Paired differences</b> (same test recordings, same resamples)</p>",
            table(
                comparisons,
                ["difference", "metric", "level", "estimate [CI]", "share of resamples > 0"],
            ),
        )
    dropped = definition.get("classes") or []
    missing = [c for c in dropped if c not in document["classes"]]
    if missing:
        section.add(
            text(f"Classes with no annotated window, left out: {', '.join(missing)}.", cls="note")
        )
    section.add(text(f"Source: {path}", cls="note"))


def _task_figures(section: Section, document: dict, history, recordings) -> None:
    """Fine-tuning curves, and for binary tasks ROC, PR and confusion at the recording level."""
    task = document["task"]
    if history is not None and "mode" in history:
        runs = {mode_name(m).split(" (")[0]: f for m, f in history.groupby("mode")}
        curves = learning_curves(runs, ["loss", "auroc", "balanced_accuracy"])
        if curves is not None:
            section.add(
                figure(curves, caption=f"{task}: fine-tuning curves per mode (same step budget).")
            )
    if recordings is None or "score" not in recordings:
        return  # multi-label tasks keep one score column per class: see the tables
    by_mode = {
        mode_name(m).split(" (")[0]: (f["target"].to_numpy(), f["score"].to_numpy())
        for m, f in recordings.groupby("mode", sort=False)
    }
    curves = roc_pr_figure(by_mode, title=f"{task}: held-out recordings")
    if curves is not None:
        section.add(
            figure(
                curves,
                caption="ROC and precision-recall curves of the recording scores (dotted: "
                "chance, and the share of positive recordings).",
            )
        )
    from sklearn.metrics import confusion_matrix

    classes = list(document["classes"])
    labels = classes if len(classes) == 2 else [f"not {classes[0]}", classes[0]]
    matrices = {
        name: confusion_matrix(y.astype(int), (s >= 0.5).astype(int), labels=[0, 1])
        for name, (y, s) in by_mode.items()
    }
    section.add(
        figure(
            confusion_figure(matrices, labels, title=f"{task}: recordings at probability 0.5"),
            caption="Confusion matrices of the recording predictions (rows: true class).",
        )
    )


# Anomaly detection -------------------------------------------------------------------------
def anomaly_scores_figure(document: dict) -> Figure:
    """Recording anomaly scores of normal and abnormal test recordings, one panel per score."""
    scores = document["recording_scores"]
    fig = Figure(figsize=(3.2 * len(scores), 3.0))
    for k, (name, entry) in enumerate(scores.items()):
        ax = fig.add_subplot(1, len(scores), k + 1)
        values = np.asarray(entry["score"], float)
        groups = np.asarray(entry["abnormal"], int)
        for g, colour in enumerate((COLOURS[0], COLOURS[3])):
            chosen = values[groups == g]
            jitter = np.linspace(-0.12, 0.12, chosen.size) if chosen.size > 1 else np.zeros(1)
            ax.plot(g + jitter[: chosen.size], chosen, "o", color=colour, ms=5, alpha=0.8)
        ax.set_xticks([0, 1], ["normal", "abnormal"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_title(name.replace("_", " "), fontsize=9)
    fig.axes[0].set_ylabel("recording score (mean over windows)")
    fig.tight_layout()
    return fig


def _anomaly(section: Section, document: dict, path: Path) -> None:
    counts = document["n_recordings"]
    section.add(
        "<h3>Anomaly detection</h3>",
        text(
            f"A second EEGFormer pretrained on normal training recordings only "
            f"({document['n_reference_windows']} windows, also the reference code frequencies) "
            f"scores {document['n_windows']} windows of {counts['normal']} normal and "
            f"{counts['abnormal']} abnormal held-out recordings; higher = more anomalous."
        ),
    )
    rows = []
    for name, levels in document["metrics"].items():
        for level, metrics in levels.items():
            rows.append(
                (
                    name,
                    document["scores"].get(name, ""),
                    level,
                    _fmt(metrics.get("auroc")),
                    _fmt(metrics.get("auprc")),
                )
            )
    section.add(table(rows, ["score", "what it is", "level", "AUROC", "AUPRC"]))
    section.add(
        figure(anomaly_scores_figure(document), caption="Recording anomaly scores by group."),
        text(f"Source: {path}", cls="note"),
    )


# Interpretation -----------------------------------------------------------------------------
def usage_histograms(document: dict, max_codes: int = 64) -> Figure:
    """Code-usage frequency per class, codes ordered by overall use (the most used first)."""
    total = np.asarray(document["usage"], float)
    order = np.argsort(-total)[:max_codes]
    fig = Figure(figsize=(9.0, 2.8))
    ax = fig.add_subplot()
    classes = document["classes"]
    width = 0.8 / max(len(classes), 1)
    for i, (name, entry) in enumerate(classes.items()):
        usage = np.asarray(entry["usage"], float)
        share = usage[order] / max(usage.sum(), 1)
        x = np.arange(order.size) + (i - (len(classes) - 1) / 2) * width
        ax.bar(
            x,
            share,
            width,
            label=f"{name} ({entry['n_windows']} windows)",
            color=COLOURS[i % len(COLOURS)],
        )
    step = max(1, order.size // 32)
    ax.set_xticks(
        np.arange(order.size)[::step], [str(c) for c in order[::step]], fontsize=6, rotation=90
    )
    ax.set_xlabel("code (ordered by overall use)")
    ax.set_ylabel("share of patches")
    ax.legend(fontsize=8)
    return fig


def topomaps(document: dict, key: str = "classes") -> Figure | None:
    """MNE topomaps of each class's enriched-code activity per channel."""
    import mne

    positions = document.get("positions")
    groups = {n: e for n, e in document[key].items() if e.get("channel_activity") is not None}
    if not positions or not groups:
        return None
    channels = document["channels"]
    info = mne.create_info(channels, 250.0, "eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos=dict(zip(channels, np.asarray(positions, float), strict=True)), coord_frame="head"
    )
    info.set_montage(montage)
    fig = Figure(figsize=(2.6 * len(groups), 2.8))
    for k, (name, entry) in enumerate(groups.items()):
        ax = fig.add_subplot(1, len(groups), k + 1)
        values = np.asarray(entry["channel_activity"], float)
        codes = ", ".join(str(t["code"]) for t in entry["top_codes"]) or "none"
        image, _ = mne.viz.plot_topomap(
            values,
            info,
            axes=ax,
            show=False,
            vlim=(0, max(float(np.nanmax(values)), 1e-6)),
            cmap="viridis",
            contours=0,
        )
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        ax.set_title(f"{name}\ncodes {codes}", fontsize=8)
    return fig


def event_maps(document: dict) -> Figure | None:
    """Per annotation label: channel x time share of its enriched codes in one recording."""
    events = {n: e for n, e in document["events"].items() if e["example"]["activity"] is not None}
    if not events:
        return None
    channels = document["channels"]
    fig = Figure(figsize=(4.2 * min(len(events), 3), 3.4 * math.ceil(len(events) / 3)))
    for k, (name, entry) in enumerate(events.items()):
        example = entry["example"]
        ax = fig.add_subplot(math.ceil(len(events) / 3), min(len(events), 3), k + 1)
        activity = np.asarray(example["activity"], float)
        starts = np.asarray(example["start_s"], float)
        top = max(float(activity.max()), 1e-6)
        image = ax.imshow(
            activity, aspect="auto", cmap="magma", vmin=0, vmax=top, interpolation="nearest"
        )
        for w, labelled in enumerate(example["labelled"]):
            if labelled:
                ax.axvspan(w - 0.5, w + 0.5, ymin=1.0, ymax=1.04, color="#2ca02c", clip_on=False)
        ax.set_yticks(range(len(channels)), channels, fontsize=5)
        ax.set_xticks(range(len(starts)), [f"{s:g}" for s in starts], fontsize=6, rotation=90)
        ax.set_xlabel("window start (s)", fontsize=7)
        codes = ", ".join(str(t["code"]) for t in entry["top_codes"])
        ax.set_title(f"{name}: codes {codes}\n{example['recording'].split('/')[-1]}", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


def _interpretation(section: Section, document: dict, path: Path) -> None:
    section.add(
        "<h3>Codebook interpretation</h3>",
        text(
            f"The compound-pretrained model's codes for every patch of {document['n_windows']} "
            f"windows: {document['used_codes']} of {document['codebook_size']} codes used, "
            f"perplexity {document['perplexity']:.1f}. A code is enriched in a group when its "
            "share of the group's patches exceeds its share elsewhere (log2 ratio of smoothed "
            "frequencies); the maps show the share of each channel's patches that fall in the "
            "group's most enriched codes."
        ),
        figure(usage_histograms(document), caption="Code usage per recording label."),
    )
    rows = [
        (
            kind,
            name,
            entry["n_windows"],
            ", ".join(f"{t['code']} (x{2 ** t['log2_enrichment']:.1f})" for t in entry["top_codes"])
            or "none",
        )
        for kind, key in (("class", "classes"), ("annotation", "events"))
        for name, entry in document[key].items()
    ]
    section.add(table(rows, ["group", "label", "windows", "most enriched codes (ratio)"]))
    maps = topomaps(document, "classes")
    if maps is not None:
        section.add(
            figure(
                maps,
                caption=(
                    "Scalp maps (MNE topomap; bipolar channels at their electrodes' midpoint) of the "
                    "share of each channel's patches in the codes most enriched in each class, over "
                    "that class's windows (each map on its own colour scale)."
                ),
            )
        )
    maps = topomaps(document, "events")
    if maps is not None:
        section.add(figure(maps, caption="The same for windows with each annotation label."))
    events = event_maps(document)
    if events is not None:
        section.add(
            figure(
                events,
                caption=(
                    "Where and when each annotation label's enriched codes fire: share of each "
                    "channel's patches in those codes per 12 s window of the recording with the most "
                    "labelled windows; green marks windows overlapping the label."
                ),
            )
        )
    section.add(text(f"Source: {path}", cls="note"))


def render_eegformer(paths: Sequence[Path]) -> list[Section]:
    """The EEGFormer section from its artifacts (see the module docstring).

    Parameters
    ----------
    paths : sequence of Path
        ``history.tsv`` of pretraining runs, task ``metrics.json`` files,
        ``anomaly.json`` and ``codes.json``, in any order.
    """
    histories, tasks, anomaly, codes = {}, [], None, None
    task_histories, task_recordings = {}, {}
    for path in map(Path, paths):
        if path.name == "history.tsv" and path.parent.parent.name == "pretrain":
            histories[path.parent.name] = load_table(path, stage="eegformer_pretrain")
        elif path.name == "history.tsv":
            task_histories[path.parent] = load_table(path, stage="eegformer_finetune")
        elif path.name == "recordings.tsv":
            task_recordings[path.parent] = load_table(path, stage="eegformer_evaluate")
        elif path.name == "metrics.json":
            tasks.append((load_json(path, stage="eegformer_evaluate"), path))
        elif path.name == "anomaly.json":
            anomaly = (load_json(path, stage="eegformer_anomaly"), path)
        elif path.name == "codes.json":
            codes = (load_json(path, stage="eegformer_interpret"), path)
    section = Section("eegformer", "EEGFormer")
    section.add(
        text(
            "EEGFormer (Chen et al. 2024): channel-independent FFT-amplitude patches, a "
            "Transformer encoder, a vector-quantised codebook and a Transformer decoder, "
            "pretrained as a VQ-VAE; fine-tuned per task as the TUH subsets define them. All "
            "modes of a task use the same seed, data and step budget. Intervals are 95 % "
            "percentile-bootstrap intervals over test patients (their recordings and windows "
            "travel with them); no test patient is pretrained on. On the simulated demo "
            "cohort the test set is small: read the intervals, not the point estimates."
        ),
        "<p><b>Reproduce</b></p>",
        pre(REPRODUCE),
    )
    pretrained = next((d.get("pretrained") for d, _ in tasks if d.get("pretrained")), None)
    _pretraining(section, histories, pretrained)
    for document, path in tasks:
        _task(section, document, path)
        _task_figures(
            section,
            document,
            task_histories.get(path.parent),
            task_recordings.get(path.parent),
        )
    if anomaly is not None:
        _anomaly(section, *anomaly)
    if codes is not None:
        _interpretation(section, *codes)
    section.add(*fidelity_table("eegformer"))
    return [section]
