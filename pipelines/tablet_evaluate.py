"""Evaluate fine-tuned TABLeT models on the held-out subjects of a token cohort.

Every test subject is cut into non-overlapping windows of ``window_frames`` frames (the
last one padded and masked); each model's window logits (or outputs) are averaged per
subject; classification is scored at logit 0 (accuracy, AUROC, F1, sensitivity,
specificity) and regression in the label's units after undoing the training z-scoring
(Pearson r, MAE, MSE), each with a bootstrap interval over subjects. Pretrained and
scratch variants of a task are compared on the same subjects (paired bootstrap of the
per-subject absolute error or of the correctness). For context, a linear read-out of
the tokens (each subject's tokens averaged over frames; logistic or ridge regression on
the training and validation subjects) is scored as ``reference-linear``. Writes
metrics.json and one prediction per (task, variant, subject).
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai import get_logger
from neuroai.errors import ConfigError
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.tablet_evaluate")
STAGE = "tablet_evaluate"


def run(
    index: str | Path,
    models: list[str | Path],
    metrics_output: str | Path,
    predictions_output: str | Path,
    *,
    window_frames: int = 256,
    batch_size: int = 8,
    n_bootstrap: int = 1000,
    seed: int = 0,
    reference: bool = True,
) -> Path:
    """Score every fine-tuned model on its test subjects.

    Parameters
    ----------
    index : path-like
        The cohort's token-store index.tsv.
    models : list of path-like
        Folders from ``tablet_finetune`` (their config.json names task, variant, split).
    metrics_output : path-like
        metrics.json: ``tasks -> task -> variants -> variant -> metric -> estimate, ci_low,
        ci_high, ...``, plus paired pretrained-vs-scratch differences.
    predictions_output : path-like
        Table: task, variant, participant_id, target, output (averaged logit or value in
        the label's units), probability (classification), n_windows.
    window_frames : int
        Frames per evaluation window.
    batch_size : int
        Windows per forward pass.
    n_bootstrap : int
        Bootstrap resamples of subjects.
    seed : int
        Bootstrap seed.
    reference : bool
        Add ``reference-linear``: :func:`neuroai.evaluation.linear_readout` (logistic or
        ridge regression) on each subject's tokens averaged over frames, fitted on the
        training and validation subjects (what a linear read-out of the tokens gets).
    """
    import numpy as np
    import pandas as pd

    from neuroai.evaluation import (
        average_by_subject,
        paired_bootstrap,
        predict_windows,
        subject_metrics,
    )
    from neuroai.io import save_json, save_table
    from neuroai.models import load_pretrained
    from neuroai.training import TokenWindows, read_token_index

    table = read_token_index(index).set_index("participant_id")
    rows, metrics, seen = [], {"tasks": {}}, {}
    for folder in models:
        model = load_pretrained(folder)
        info = model.pretrained_info.get("tablet")
        if not info or info.get("stage") != "tablet_finetune":
            raise ConfigError(f"{folder} is not a model written by the tablet_finetune stage.")
        task, variant = info["task"], info["variant"]
        seen.setdefault(task["name"], (task, info["split"]))
        test = list(info["split"]["test"])
        column = task["column"]
        windows = TokenWindows(
            list(table.loc[test, "tokens"]),
            window=window_frames,
            mode="all",
            trs=[
                float(t) if task.get("use_tr", True) else model.config.default_tr
                for t in table.loc[test, "tr"]
            ],
        )
        out = predict_windows(model, windows, batch_size=batch_size)
        ids, means = average_by_subject(out["outputs"][:, 0], out["ids"])
        counts = pd.Series(out["ids"]).value_counts()
        if task["kind"] == "classification":
            truth = np.array([float(str(table.loc[i, column]) == task["positive"]) for i in ids])
            output = means
            probability = 1 / (1 + np.exp(-means))
        else:
            truth = np.array([float(table.loc[i, column]) for i in ids])
            output = means * task["std"] + task["mean"]
            probability = np.full(len(ids), np.nan)
        scores = subject_metrics(
            truth, output, task=task["kind"], n_resamples=n_bootstrap, seed=seed
        )
        entry = metrics["tasks"].setdefault(
            task["name"], {"kind": task["kind"], "column": column, "variants": {}}
        )
        if task["kind"] == "classification":
            entry["positive"] = task["positive"]
        entry["use_tr"] = bool(task.get("use_tr", True))
        entry["n_test"] = len(ids)
        entry["variants"][variant] = {
            **scores,
            "pretrained": info.get("pretrained") is not None,
            "positional": model.config.positional,
            "n_windows": int(len(out["ids"])),
            "weights": model.pretrained_info.get("export"),  # "best" or "last" (select)
            "weights_step": model.pretrained_info.get("step"),
        }
        for subject, y, o, p in zip(ids, truth, output, probability, strict=True):
            rows.append(
                {
                    "task": task["name"],
                    "variant": variant,
                    "participant_id": subject,
                    "target": y,
                    "output": float(o),
                    "probability": float(p),
                    "n_windows": int(counts[subject]),
                }
            )
        logger.info(
            "%s / %s: %s",
            task["name"],
            variant,
            ", ".join(f"{k} {v['estimate']:.3f}" for k, v in scores.items()),
        )
    if reference:
        rows += _reference_rows(table, seen, metrics, n_bootstrap=n_bootstrap, seed=seed)
    predictions = pd.DataFrame(rows)
    # Pretrained vs scratch with the same positions, on the same subjects.
    for name, entry in metrics["tasks"].items():
        part = predictions[predictions["task"] == name]
        for variant in entry["variants"]:
            if not variant.startswith("pretrained-"):
                continue
            other = "scratch-" + variant.split("-", 1)[1]
            if other not in entry["variants"]:
                continue
            a = part[part["variant"] == variant].set_index("participant_id")
            b = part[part["variant"] == other].set_index("participant_id").loc[a.index]
            if entry["kind"] == "classification":
                loss_a = ((a["output"] > 0) != (a["target"] > 0.5)).astype(float)
                loss_b = ((b["output"] > 0) != (b["target"] > 0.5)).astype(float)
                what = "error rate (pretrained - scratch)"
            else:
                loss_a = (a["output"] - a["target"]).abs()
                loss_b = (b["output"] - b["target"]).abs()
                what = "absolute error (pretrained - scratch)"
            entry.setdefault("comparisons", {})[f"{variant} vs {other}"] = {
                "measure": what,
                **paired_bootstrap(
                    loss_a.to_numpy(), loss_b.to_numpy(), n_resamples=n_bootstrap, seed=seed
                ),
            }
    params = {"window_frames": window_frames, "n_bootstrap": n_bootstrap, "seed": seed}
    inputs = [index, *models]
    metrics.update(
        window_frames=window_frames,
        aggregation="logits averaged over non-overlapping windows per subject",
        n_bootstrap=n_bootstrap,
    )
    save_json(metrics_output, metrics, stage=STAGE, params=params, inputs=inputs)
    save_table(predictions_output, predictions, stage=STAGE, params=params, inputs=inputs)
    return Path(metrics_output)


def _truth(table, task: dict, ids: list[str]):
    """Targets of ``ids``: 0/1 for the positive class, or the label's values."""
    import numpy as np

    column = task["column"]
    if task["kind"] == "classification":
        return np.array([float(str(table.loc[i, column]) == task["positive"]) for i in ids])
    return np.array([float(table.loc[i, column]) for i in ids])


def _reference_rows(table, seen, metrics, *, n_bootstrap, seed) -> list[dict]:
    """Fit and score the linear reference of every task; its prediction rows."""
    import numpy as np

    from neuroai.evaluation import linear_readout, subject_metrics

    cache: dict[str, np.ndarray] = {}

    def features(ids):
        for i in ids:
            if i not in cache:
                tokens = np.load(table.loc[i, "tokens"], mmap_mode="r", allow_pickle=False)
                cache[i] = np.asarray(tokens, dtype=np.float32).mean(0).ravel()
        return np.stack([cache[i] for i in ids])

    rows = []
    for name, (task, split) in seen.items():
        fit_ids, test = [*split["train"], *split["val"]], list(split["test"])
        output = linear_readout(
            features(fit_ids),
            _truth(table, task, fit_ids),
            features(test),
            task=task["kind"],
            n_classes=2 if task["kind"] == "classification" else None,
        )
        if task["kind"] == "classification":  # probabilities -> logits of the positive class
            p = np.clip(output[:, 1], 1e-6, 1 - 1e-6)
            output = np.log(p / (1 - p))
        scores = subject_metrics(
            _truth(table, task, test), output, task=task["kind"], n_resamples=n_bootstrap, seed=seed
        )
        metrics["tasks"][name]["variants"]["reference-linear"] = {
            **scores,
            "pretrained": False,
            "positional": None,
            "n_windows": 0,
        }
        for subject, y, o in zip(test, _truth(table, task, test), output, strict=True):
            rows.append(
                {
                    "task": name,
                    "variant": "reference-linear",
                    "participant_id": subject,
                    "target": y,
                    "output": float(o),
                    "probability": float(1 / (1 + np.exp(-o)))
                    if task["kind"] == "classification"
                    else float("nan"),
                    "n_windows": 0,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tablet_evaluate")
    parser.add_argument("--index", required=True, help="token-store index.tsv")
    parser.add_argument("--models", nargs="+", required=True, help="fine-tuned model folders")
    parser.add_argument("--metrics-output", required=True, help="metrics.json")
    parser.add_argument("--predictions-output", required=True, help="predictions .tsv")
    args = parser.parse_args(argv)
    execute(args, run, args.index, args.models, args.metrics_output, args.predictions_output)


if __name__ == "__main__":
    main(sys.argv[1:])
