"""Evaluate EEGFormer's fine-tuned models on one task: window and recording metrics.

Reads the test-window predictions of every mode (probe, finetune, scratch, baselines) written by
eegformer_finetune, aggregates them per recording (mean or max of the window
probabilities, as the task defines), and writes metrics.json: AUROC, AUPRC and
balanced accuracy at window and recording level with percentile-bootstrap intervals
(patients resampled; their recordings and windows travel with them), per class for
multi-label tasks, and paired differences between the modes on the same recordings
(pretrained against from scratch with the same budget and seed). Also writes the
recording-level predictions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.errors import ArtifactError
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.eegformer_evaluate")
STAGE = "eegformer_evaluate"
#: Paired comparisons (a - b): what pretraining buys against the same network from random
#: weights; each published baseline on the same split adds its own (see ``pairs``).
PAIRS = (
    ("finetune", "scratch"),
    ("probe", "scratch"),
    ("finetune", "probe"),
)
#: Modes that start from the pretrained encoder; the others are trained from random weights.
PRETRAINED_MODES = ("probe", "finetune")


def pairs(modes) -> list[tuple[str, str]]:
    """Paired comparisons among ``modes``: :data:`PAIRS`, then fine-tune and probe against
    every published baseline (``eegnet``, ``braindecode.<ClassName>``), in mode order."""
    baselines = [m for m in modes if m == "eegnet" or m.startswith("braindecode.")]
    chosen = [*PAIRS, *((a, b) for b in baselines for a in ("finetune", "probe"))]
    return [(a, b) for a, b in chosen if a in modes and b in modes]


def _columns(frame, multilabel: bool, classes: list[str]):
    if multilabel:
        y = frame[[f"target_{c}" for c in classes]].to_numpy(int)
        s = frame[[f"score_{c}" for c in classes]].to_numpy(float)
        return y, s
    return frame["target"].to_numpy(int), frame["score"].to_numpy(float)


def _pretrained_summary(entries: dict) -> dict | None:
    """The pretrained encoder the modes started from (its folder's JSON config)."""
    for mode, entry in entries.items():
        if mode not in PRETRAINED_MODES or "checkpoint" not in entry:
            continue
        path = json.loads((Path(entry["checkpoint"]) / "config.json").read_text()).get("pretrained")
        if path and (Path(path) / "config.json").is_file():
            info = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
            return {
                "path": path,
                "config": info.get("config"),
                "n_parameters": info.get("n_parameters"),
                "steps": info.get("step"),
                "labels": info.get("labels"),
                "stores": info.get("stores"),
                "objective": info.get("objective"),
                "training": {
                    k: info.get("training", {}).get(k)
                    for k in ("max_steps", "batch_size", "lr", "seed", "schedule")
                },
            }
    return None


def _write_evaluated(output, entries, document, metrics_output, splits, datasets, params):
    """An evaluated copy of each mode's model, its test metrics in its card."""
    from neuroai.models.evaluated import write_evaluations

    scored = []
    for mode, entry in entries.items():
        if "checkpoint" not in entry:
            raise ArtifactError(
                f"Cannot write {output}: the models folder has no {mode}/ model. Pass the "
                "task's models folder (--models) as eegformer_finetune wrote it."
            )
        metrics = {
            f"{level} {name}": value
            for level in ("window", "recording")
            for name, value in entry["metrics"][level].items()
        }
        evaluation = {
            "task": document["task"],
            "n_test": document["n_subjects"],
            "unit": "subjects",
            "n_windows": document["n_windows"],
            "n_recordings": document["n_recordings"],
            "bootstrap": document["bootstrap"],
        }
        scored.append((mode, entry["checkpoint"], metrics, evaluation))
    write_evaluations(
        output,
        scored,
        stage=STAGE,
        metrics_file=metrics_output,
        params=params,
        splits=splits,
        datasets=datasets,
    )


def run(
    predictions: str | Path,
    metrics_output: str | Path,
    recordings_output: str | Path,
    *,
    models: str | Path | None = None,
    history: str | Path | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    evaluated_output: str | Path | None = None,
    splits: str | Path | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Write ``metrics.json`` and the recording-level predictions of one task.

    Parameters
    ----------
    predictions : path-like
        Window predictions of the task (``eegformer_finetune``).
    metrics_output : path-like
        ``metrics.json`` to write.
    recordings_output : path-like
        Recording-level predictions (``mode``, ``recording``, targets, scores).
    models : path-like | None
        The task's models folder (recorded with its training settings).
    history : path-like | None
        Learning histories (referenced for the report).
    n_bootstrap, confidence, seed
        Bootstrap resamples, interval coverage, random seed.
    evaluated_output : path-like | None
        Folder of evaluated copies of the modes' models (needs ``models``): each carries
        its held-out metrics in its card (:mod:`neuroai.models.evaluated`).
    splits : path-like | None
        The task's ``splits.tsv`` (copied into each evaluated folder).
    datasets : list of str | None
        ``NAME=CARD`` pairs: the task's datasets and their data cards, for the cards.
    """
    import pandas as pd

    from neuroai.evaluation.windows import (
        METRICS,
        aggregate_recordings,
        paired_difference,
        recording_subjects,
        weighted_metric,
        window_task_metrics,
    )
    from neuroai.io import load_table, read_provenance, save_json, save_table

    table = load_table(predictions, stage="eegformer_finetune")
    record = read_provenance(predictions)
    extra = record.get("extra", {})
    task = extra["task"]
    multilabel = task["kind"] == "multilabel_events"
    classes = list(extra["classes"])
    how = task["aggregate"]
    common = {"n_resamples": n_bootstrap, "confidence": confidence, "seed": seed}
    modes = list(dict.fromkeys(table["mode"]))
    entries, recording_frames, scored = {}, [], {}
    for mode in modes:
        frame = table[table["mode"] == mode].sort_values("row")
        y, s = _columns(frame, multilabel, classes)
        recordings = frame["recording"].astype(str).to_numpy()
        subjects = frame["subject"].astype(str).to_numpy()
        scored[mode] = (y, s, recordings, subjects)
        metrics = window_task_metrics(
            y, s, recordings, subjects=subjects, multilabel=multilabel, aggregate=how, **common
        )
        entry = {"metrics": metrics}
        if multilabel:
            entry["per_class"] = {
                name: window_task_metrics(
                    y[:, k],
                    s[:, k],
                    recordings,
                    subjects=subjects,
                    aggregate=how,
                    metrics=("auroc", "auprc"),
                    **common,
                )
                for k, name in enumerate(classes)
            }
        ids, y_rec, s_rec = aggregate_recordings(recordings, y, s, how=how)
        rec = pd.DataFrame({"mode": mode, "recording": ids})
        if multilabel:
            for k, name in enumerate(classes):
                rec[f"target_{name}"], rec[f"score_{name}"] = y_rec[:, k], s_rec[:, k]
        else:
            rec["target"], rec["score"] = y_rec, s_rec
        recording_frames.append(rec)
        if models is not None and (Path(models) / mode / "config.json").is_file():
            # The folder's JSON config, read without loading torch (it is not a weights file).
            info = json.loads((Path(models) / mode / "config.json").read_text(encoding="utf-8"))
            entry.update(
                {
                    "checkpoint": str(Path(models) / mode),
                    "n_parameters": info.get("n_parameters"),
                    "trainable": not info["config"].get("freeze", False),
                    "best_step": info.get("monitor", {}).get("best_step"),
                    "training": {
                        k: info.get("training", {}).get(k)
                        for k in ("max_steps", "batch_size", "lr", "seed", "schedule")
                    },
                }
            )
        entries[mode] = entry
    pretrained = _pretrained_summary(entries)
    comparisons = []
    for a, b in pairs(list(scored)):
        (y, sa, rec_a, subjects), (_, sb, rec_b, _) = scored[a], scored[b]
        if not np.array_equal(rec_a, rec_b):
            continue  # not the same windows: no paired comparison
        ids, y_rec, sa_rec = aggregate_recordings(rec_a, y, sa, how=how)
        _, _, sb_rec = aggregate_recordings(rec_b, y, sb, how=how)
        for name in METRICS:
            metric = weighted_metric(name, multilabel=multilabel)
            for level, args in (
                ("window", (y, sa, sb, subjects)),
                ("recording", (y_rec, sa_rec, sb_rec, recording_subjects(rec_a, subjects, ids))),
            ):
                diff = paired_difference(*args, metric, **common)
                comparisons.append({"a": a, "b": b, "metric": name, "level": level, **diff})
    document = {
        "task": task["name"],
        "definition": task,
        "classes": classes,
        "positives": extra.get("positives", {}),
        "stores": sorted({str(s) for s in table["store"]}),
        "bootstrap": {
            "n_resamples": n_bootstrap,
            "confidence": confidence,
            "seed": seed,
            "method": "percentile",
            "unit": "subject",
        },
        "n_windows": int(len(table) // max(len(modes), 1)),
        "n_recordings": int(table["recording"].nunique()),
        "n_subjects": int(table["subject"].nunique()),
        "test_subjects_pretrained_on": extra.get("test_subjects_pretrained_on"),
        "transfer": extra.get("transfer"),
        "pretrained": pretrained,
        "models": entries,
        "comparisons": comparisons,
        "artifacts": {
            "predictions": str(predictions),
            "recordings": str(recordings_output),
            "history": str(history) if history else None,
        },
    }
    inputs = [p for p in (predictions, history) if p]
    params = {"n_bootstrap": n_bootstrap, "confidence": confidence, "seed": seed}
    save_table(
        recordings_output,
        pd.concat(recording_frames, ignore_index=True),
        stage=STAGE,
        params=params,
        inputs=inputs,
    )
    save_json(metrics_output, document, stage=STAGE, params=params, inputs=inputs)
    if evaluated_output is not None:
        _write_evaluated(
            evaluated_output, entries, document, metrics_output, splits, datasets, params
        )
    for mode, entry in entries.items():
        auroc = entry["metrics"]["recording"]["auroc"]
        logger.info(
            "%s / %s: recording AUROC %.3f [%.3f, %.3f]",
            task["name"],
            mode,
            auroc["estimate"],
            auroc["ci_low"],
            auroc["ci_high"],
        )
    return Path(metrics_output)


def main(argv: list[str] | None = None) -> None:
    from neuroai.models.evaluated import add_evaluated_options

    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eegformer_evaluate")
    parser.add_argument("--predictions", required=True, help="window predictions .tsv")
    parser.add_argument("--metrics-output", required=True, help="metrics.json to write")
    parser.add_argument("--recordings-output", required=True, help="recording predictions .tsv")
    parser.add_argument("--models", default=None, help="the task's models folder")
    parser.add_argument("--history", default=None, help="learning histories .tsv")
    add_evaluated_options(parser)
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.predictions,
        args.metrics_output,
        args.recordings_output,
        models=args.models,
        history=args.history,
        evaluated_output=args.evaluated_output,
        splits=args.splits[0] if args.splits else None,
        datasets=args.datasets,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
