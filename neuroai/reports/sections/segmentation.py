"""Segmentation report section: DSD against deep supervision only and the plain backbone.

Drawn from the evaluation's ``metrics.json`` and the artifacts it lists (learning
histories, example volumes and predicted label maps); nothing is recomputed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import check_artifact, load_json, load_table
from neuroai.reports.html import Section, figure, table, text
from neuroai.reports.sections._fidelity import fidelity_table
from neuroai.reports.sections._format import interval
from neuroai.reports.sections._format import number as _num

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3")
LABEL_COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
UNITS = {"dice": "", "hd95": " mm", "msd": " mm"}


def _fmt(summary: dict | None, digits: int = 3) -> str:
    return interval(summary, digits, spec="f")


def _overview(document: dict) -> str:
    rows = []
    for name, entry in document["models"].items():
        metrics = entry["metrics"]
        rows.append(
            (
                name,
                _fmt(metrics["dice"]["mean"]),
                _fmt(metrics["hd95"]["mean"], 2),
                _fmt(metrics["msd"]["mean"], 2),
                f"{entry.get('n_parameters') or 0:,}",
                entry.get("best_step"),
            )
        )
    return table(rows, ["model", "Dice", "HD95 (mm)", "MSD (mm)", "parameters", "best step"])


def _miss(entry: dict, cls: str) -> str:
    """'missed k of n' (scored the worst case, the volume's diagonal), from detection."""
    found = entry.get("detection", {}).get(cls)
    if not found:
        return "n/a"
    text = f"{found['missed']} of {found['cases_with_reference']}"
    return text + (f", {found['spurious']} spurious" if found["spurious"] else "")


def _per_class(document: dict) -> str:
    rows = []
    for cls in document["classes"]:
        for name, entry in document["models"].items():
            m = entry["metrics"]
            rows.append(
                (
                    cls,
                    name,
                    _fmt(m["dice"].get(cls, {})),
                    _fmt(m["hd95"].get(cls, {}), 2),
                    _fmt(m["msd"].get(cls, {}), 2),
                    _miss(entry, cls),
                )
            )
    return table(rows, ["class", "model", "Dice", "HD95 (mm)", "MSD (mm)", "missed (worst case)"])


def _comparisons(document: dict) -> str:
    rows = []
    for c in document.get("comparisons", []):
        if c["group"] != "mean":
            continue
        unit = UNITS.get(c["metric"], "")
        rows.append(
            (
                f"{c['a']} - {c['b']}",
                c["metric"],
                _fmt(c) + unit,
                f"{_num(c.get('p_greater')):.2f}",
                c.get("n"),
            )
        )
    return table(rows, ["difference", "metric", "mean [CI]", "share of resamples > 0", "cases"])


def _dice_bars(document: dict) -> Figure:
    classes = list(document["classes"])
    models = list(document["models"])
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot()
    width = 0.8 / max(len(models), 1)
    for i, name in enumerate(models):
        dice = document["models"][name]["metrics"]["dice"]
        est = np.array([_num(dice.get(c, {}).get("estimate")) for c in classes])
        low = np.array([_num(dice.get(c, {}).get("ci_low")) for c in classes])
        high = np.array([_num(dice.get(c, {}).get("ci_high")) for c in classes])
        x = np.arange(len(classes)) + (i - (len(models) - 1) / 2) * width
        err = np.vstack([np.nan_to_num(est - low), np.nan_to_num(high - est)])
        ax.bar(x, est, width, yerr=err, capsize=3, label=name, color=COLOURS[i % len(COLOURS)])
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _learning_curves(histories: Sequence[Path]) -> Figure | None:
    frames = []
    for path in histories:
        if Path(path).is_file():
            frames.append(load_table(path))
    if not frames:
        return None
    fig = Figure(figsize=(9.0, 3.2))
    loss_ax, dice_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, frame in enumerate(frames):
        colour = COLOURS[i % len(COLOURS)]
        name = str(frame["variant"].iloc[0]) if "variant" in frame and len(frame) else f"run {i}"
        if "train/loss" in frame:
            rows = frame.dropna(subset=["train/loss"])
            loss_ax.plot(rows["step"], rows["train/loss"], color=colour, label=name)
        if "val/dice" in frame:
            rows = frame.dropna(subset=["val/dice"])
            dice_ax.plot(rows["step"], rows["val/dice"], "o-", color=colour, label=name)
    loss_ax.set_xlabel("optimizer step")
    loss_ax.set_ylabel("training loss (own objective)")
    dice_ax.set_xlabel("optimizer step")
    dice_ax.set_ylabel("validation Dice (foreground mean)")
    loss_ax.legend(fontsize=8)
    dice_ax.legend(fontsize=8)
    return fig


def _examples(document: dict) -> list[str]:
    import nibabel as nib
    from matplotlib.colors import ListedColormap
    from nilearn import plotting

    parts = []
    n_classes = len(document["classes"])
    cmap = ListedColormap(list(LABEL_COLOURS[:n_classes]))
    for example in document["artifacts"].get("examples", []):
        case = example["case"]
        check_artifact(example["image"], stage="segmentation_evaluate")
        image = nib.load(example["image"])
        maps = [("reference", example["reference"])]
        maps += [
            (name, preds[case])
            for name, preds in document["artifacts"]["predictions"].items()
            if case in preds
        ]
        # The same slices in every row: cut through the reference labels.
        cuts = plotting.find_cut_slices(nib.load(example["reference"]), direction="z", n_cuts=5)
        fig = Figure(figsize=(9.0, 1.9 * len(maps)))
        for row, (title, path) in enumerate(maps):
            check_artifact(path, stage="segmentation_evaluate")
            ax = fig.add_subplot(len(maps), 1, row + 1)
            plotting.plot_roi(
                nib.load(path),
                bg_img=image,
                display_mode="z",
                cut_coords=cuts,
                figure=fig,
                axes=ax,
                title=title,
                cmap=cmap,
                vmin=1,
                vmax=n_classes,
                colorbar=False,
                alpha=0.55,
                annotate=False,
                draw_cross=False,
                black_bg=True,
            )
        legend = ", ".join(
            f"{c} ({col})"
            for c, col in zip(document["classes"], ("blue", "green", "red", "purple"), strict=False)
        )
        parts.append(
            figure(
                fig,
                caption=f"Case {case}: reference and predicted labels over the preprocessed image, axial slices. Colours: {legend}.",
                dpi=80,
            )
        )
    return parts


def _distributions(per_case) -> Figure:
    """Per-case Dice and HD95 of every class and model: boxes with the cases as points."""
    metrics = [m for m in ("dice", "hd95") if m in per_case]
    classes = list(dict.fromkeys(per_case["class"]))
    models = list(dict.fromkeys(per_case["model"]))
    fig = Figure(figsize=(4.2 * len(metrics) + 0.4, 3.4))
    width = 0.8 / len(models)
    for k, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for j, model in enumerate(models):
            colour = COLOURS[j % len(COLOURS)]
            rows = per_case[per_case["model"] == model]
            positions = np.arange(len(classes)) + (j - (len(models) - 1) / 2) * width
            values = [
                rows.loc[rows["class"] == c, metric].dropna().to_numpy(float) for c in classes
            ]
            ax.boxplot(
                values,
                positions=positions,
                widths=width * 0.8,
                showfliers=False,
                patch_artist=True,
                boxprops={"facecolor": colour, "alpha": 0.35},
                medianprops={"color": colour},
            )
            for x, v in zip(positions, values, strict=True):
                jitter = np.linspace(-width / 4, width / 4, len(v)) if len(v) > 1 else [0.0]
                ax.plot(x + np.asarray(jitter), v, "o", ms=3, color=colour)
            ax.plot([], [], "s", color=colour, label=model)
        ax.set_xticks(range(len(classes)), classes, fontsize=8)
        ax.set_ylabel(metric.upper() if metric == "hd95" else "Dice")
        if metric == "hd95":
            ax.set_ylabel("HD95 (mm)")
        ax.grid(alpha=0.3, axis="y")
        if k == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def render_segmentation(paths: Sequence[Path]) -> list[Section]:
    """One section per evaluated dataset.

    Parameters
    ----------
    paths : sequence of Path
        ``metrics.json`` and ``per_case.tsv`` of each ``segmentation_evaluate`` run.
    """
    sections = []
    for path in (p for p in paths if p.name == "metrics.json"):  # per_case.tsv sits beside
        document = load_json(path, stage="segmentation_evaluate")
        dataset = document["dataset"]
        boot = document["bootstrap"]
        split = document.get("split", {})
        models = document["models"]
        first = next(iter(models.values()))
        training = first.get("training", {})
        section = Section(f"segmentation-{dataset}", f"Segmentation: {dataset}")
        section.add(
            text(
                f"{len(models)} variants of the DSD model ({first['config'].get('backbone')} backbone) "
                f"trained with the same seed ({training.get('seed')}) and budget "
                f"({training.get('max_steps')} optimizer steps, batch {training.get('batch_size')}) on "
                f"{len(split.get('train', []))} cases, selected on {len(split.get('val', []))} validation "
                f"cases, and evaluated on {len(split.get('test', []))} held-out cases with sliding-window "
                "inference. Means over cases with "
                f"{int(boot['confidence'] * 100)} % percentile-bootstrap intervals ({boot['n_resamples']} "
                "resamples of cases)."
            ),
            "<h3>DSD vs deep supervision only vs plain</h3>",
            _overview(document),
            _comparisons(document),
            text(
                "Dice, 95th-percentile Hausdorff distance and symmetric mean surface distance per "
                "class (background excluded), from MONAI; 'mean' averages the classes per case first. "
                "With few held-out cases the intervals are wide: differences inside them are not evidence.",
                cls="note",
            ),
            "<h3>Per class</h3>",
            _per_class(document),
            figure(_dice_bars(document), caption="Dice per class with bootstrap intervals."),
        )
        per_case_path = path.with_name("per_case.tsv")
        if per_case_path.is_file():
            per_case = load_table(per_case_path, stage="segmentation_evaluate")
            section.add(
                figure(
                    _distributions(per_case[per_case["class"] != "mean"]),
                    caption="Distribution over held-out cases of Dice and HD95 per class and "
                    "model (boxes: quartiles and median; points: cases). A case where a "
                    "class is missing from the prediction has no HD95.",
                )
            )
        curves = _learning_curves([Path(p) for p in document["artifacts"].get("histories", [])])
        if curves is not None:
            section.add(
                "<h3>Learning curves</h3>",
                figure(
                    curves,
                    caption="Training loss (each variant's own objective, so levels differ) and validation Dice.",
                ),
            )
        examples = _examples(document)
        if examples:
            section.add("<h3>Example slices</h3>", *examples)
        section.add(*fidelity_table("segmentation"))
        section.add(text(f"Source: {html.escape(str(path))}", cls="note"))
        sections.append(section)
    return sections
