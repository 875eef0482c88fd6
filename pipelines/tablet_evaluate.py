"""Evaluate fine-tuned TABLeT models on the held-out subjects of a token cohort.

Every test subject is cut into non-overlapping windows of ``window_frames`` frames (the
last one padded and masked); each model's window logits (or outputs) are averaged per
subject; classification is scored at logit 0 (accuracy, AUROC, F1, sensitivity,
specificity) and regression in the label's units after undoing the training z-scoring
(Pearson r, MAE, MSE), each with a bootstrap interval over subjects. Pretrained and
scratch variants of a task are compared on the same subjects (paired bootstrap of the
per-subject absolute error or of the correctness). With several random splits
(``tablet.splits``, the models of each recording its split index) every split is scored
on its own test subjects and metrics.json adds each metric's mean and standard deviation
over the splits (the TABLeT paper reports the mean over 4 splits). For context, a linear read-out of
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
    splits: list[str | Path] | None = None,
    evaluated_output: str | Path | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Score every fine-tuned model on its test subjects.

    Parameters
    ----------
    index : path-like
        The cohort's token-store index.tsv.
    models : list of path-like
        Folders from ``tablet_finetune`` (their config.json names task, variant, split and
        the split's index: the models of every split of ``tablet.splits`` go together).
    metrics_output : path-like
        metrics.json: ``tasks -> task -> variants -> variant -> metric -> estimate, ci_low,
        ci_high, ...``, plus paired pretrained-vs-scratch differences; ``splits``: the same
        per split (``index``, ``seed``, ``tasks``), ``n_splits``. With one split ``tasks``
        is that split's; with several, each metric is its mean over the splits with ``sd``
        and ``per_split`` (:func:`across_splits`).
    predictions_output : path-like
        Table: split, task, variant, participant_id, target, output (averaged logit or value in
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
    splits : list of path-like | None
        Each model's ``splits.tsv``, in the order of ``models``.
    evaluated_output : path-like | None
        Folder of evaluated copies of the models, each with its held-out metrics in its
        card (:mod:`neuroai.models.evaluated`), named ``split-K_<task>_<variant>``.
    datasets : list of str | None
        ``NAME=CARD`` pairs: the dataset and its data card, for the cards.
    """
    import numpy as np
    import pandas as pd

    from neuroai.evaluation import (
        average_by_subject,
        predict_windows,
        subject_metrics,
    )
    from neuroai.io import save_json, save_table
    from neuroai.models import load_pretrained
    from neuroai.training import TokenWindows, read_token_index

    table = read_token_index(index).set_index("participant_id")
    rows: list[dict] = []
    per_split: dict[int, dict] = {}
    seen: dict[tuple[int, str], tuple] = {}
    scored: list[tuple] = []
    for folder in models:
        model = load_pretrained(folder)
        info = model.pretrained_info.get("tablet")
        if not info or info.get("stage") != "tablet_finetune":
            raise ConfigError(f"{folder} is not a model written by the tablet_finetune stage.")
        task, variant = info["task"], info["variant"]
        k = int(info["split"].get("index", 0))
        split_metrics = per_split.setdefault(
            k, {"index": k, "seed": info["split"].get("params", {}).get("seed"), "tasks": {}}
        )
        seen.setdefault((k, task["name"]), (task, info["split"]))
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
        entry = split_metrics["tasks"].setdefault(
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
        scored.append((folder, k, task["name"], variant, scores, len(ids)))
        for subject, y, o, p in zip(ids, truth, output, probability, strict=True):
            rows.append(
                {
                    "split": k,
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
            "split %d, %s / %s: %s",
            k,
            task["name"],
            variant,
            ", ".join(f"{m} {v['estimate']:.3f}" for m, v in scores.items()),
        )
    if reference:
        rows += _reference_rows(table, seen, per_split, n_bootstrap=n_bootstrap, seed=seed)
    predictions = pd.DataFrame(rows)
    for k, split_metrics in per_split.items():
        _comparisons(
            split_metrics,
            predictions[predictions["split"] == k],
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    by_split = [per_split[k] for k in sorted(per_split)]
    metrics = {
        "tasks": by_split[0]["tasks"] if len(by_split) == 1 else across_splits(by_split),
        "n_splits": len(by_split),
        "splits": by_split,
    }
    params = {"window_frames": window_frames, "n_bootstrap": n_bootstrap, "seed": seed}
    inputs = [index, *models]
    metrics.update(
        window_frames=window_frames,
        aggregation="logits averaged over non-overlapping windows per subject",
        n_bootstrap=n_bootstrap,
    )
    if len(by_split) > 1:
        metrics["across_splits"] = (
            "tasks: the mean of each metric over the splits and its standard deviation "
            "(sd, n - 1 in the denominator); per_split: the estimate of every split in "
            "order; each split's bootstrap intervals are under splits"
        )
    save_json(metrics_output, metrics, stage=STAGE, params=params, inputs=inputs)
    save_table(predictions_output, predictions, stage=STAGE, params=params, inputs=inputs)
    if evaluated_output is not None:
        _write_evaluated(
            evaluated_output, scored, splits, metrics_output, datasets, params, n_bootstrap
        )
    return Path(metrics_output)


def _write_evaluated(output, scored, splits, metrics_output, datasets, params, n_bootstrap):
    """An evaluated copy of every fine-tuned model, its held-out metrics in its card."""
    from neuroai.models.evaluated import write_evaluations

    bootstrap = {"n_resamples": n_bootstrap, "confidence": 0.95, "unit": "subjects"}
    models = [
        (
            f"split-{k}_{task}_{variant}",
            folder,
            scores,
            {"task": task, "n_test": n_test, "unit": "subjects", "bootstrap": bootstrap},
        )
        for folder, k, task, variant, scores, n_test in scored
    ]
    write_evaluations(
        output,
        models,
        stage=STAGE,
        metrics_file=metrics_output,
        params=params,
        splits=splits or None,
        datasets=datasets,
    )


def _comparisons(split_metrics: dict, predictions, *, n_bootstrap: int, seed: int) -> None:
    """Pretrained vs scratch with the same positions, on the same subjects (one split)."""
    from neuroai.evaluation import paired_bootstrap

    for name, entry in split_metrics["tasks"].items():
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


def _mean_sd(values: list) -> dict:
    """``{"estimate": mean, "sd": sd (n - 1), "per_split": values, "n_splits": n}``; NaN
    estimates (an undefined metric on one split) are left out of the mean and sd."""
    import numpy as np

    numbers = np.array([np.nan if v is None else float(v) for v in values])
    finite = numbers[np.isfinite(numbers)]
    return {
        "estimate": float(finite.mean()) if finite.size else float("nan"),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        "per_split": [float(v) for v in numbers],
        "n_splits": int(finite.size),
    }


def across_splits(splits: list[dict]) -> dict:
    """The ``tasks`` entry of several splits: every metric as its mean and sd over splits.

    Parameters
    ----------
    splits : list of dict
        One ``{"index", "tasks"}`` per split, in order (the per-split layout of
        metrics.json: ``tasks -> task -> variants -> variant -> metric -> estimate, ...``).

    Returns
    -------
    dict
        The same layout, each metric (and each comparison) being
        ``{"estimate": mean, "sd", "per_split", "n_splits"}``; ``n_test`` is the list of
        test-set sizes. A task or variant missing from a split counts as NaN there.
    """
    summary: dict = {}
    names = list(dict.fromkeys(n for s in splits for n in s["tasks"]))
    for name in names:
        entries = [s["tasks"].get(name) for s in splits]
        first = next(e for e in entries if e)
        entry = {k: v for k, v in first.items() if k not in ("variants", "comparisons", "n_test")}
        entry["n_test"] = [e["n_test"] if e else 0 for e in entries]
        entry["variants"] = {}
        variants = list(dict.fromkeys(v for e in entries if e for v in e["variants"]))
        for variant in variants:
            per = [e["variants"].get(variant) if e else None for e in entries]
            known = next(v for v in per if v)
            scored = {}
            for key, value in known.items():
                if isinstance(value, dict) and "estimate" in value:
                    scored[key] = _mean_sd([(v or {}).get(key, {}).get("estimate") for v in per])
                else:
                    scored[key] = value
            scored["weights_step"] = [(v or {}).get("weights_step") for v in per]
            entry["variants"][variant] = scored
        labels = list(dict.fromkeys(c for e in entries if e for c in e.get("comparisons", {})))
        for label in labels:
            per = [(e or {}).get("comparisons", {}).get(label) for e in entries]
            measure = next(c for c in per if c)["measure"]
            entry.setdefault("comparisons", {})[label] = {
                "measure": measure,
                **_mean_sd([(c or {}).get("estimate") for c in per]),
            }
        summary[name] = entry
    return summary


def _truth(table, task: dict, ids: list[str]):
    """Targets of ``ids``: 0/1 for the positive class, or the label's values."""
    import numpy as np

    column = task["column"]
    if task["kind"] == "classification":
        return np.array([float(str(table.loc[i, column]) == task["positive"]) for i in ids])
    return np.array([float(table.loc[i, column]) for i in ids])


def _reference_rows(table, seen, per_split, *, n_bootstrap, seed) -> list[dict]:
    """Fit and score the linear reference of every (split, task); its prediction rows."""
    import numpy as np

    from neuroai.evaluation import linear_readout, subject_metrics
    from neuroai.io import load_array

    cache: dict[str, np.ndarray] = {}

    def features(ids):
        for i in ids:
            if i not in cache:
                tokens = load_array(table.loc[i, "tokens"], mmap=True)  # ours: record checked
                cache[i] = np.asarray(tokens, dtype=np.float32).mean(0).ravel()
        return np.stack([cache[i] for i in ids])

    rows = []
    for (k, name), (task, split) in seen.items():
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
        per_split[k]["tasks"][name]["variants"]["reference-linear"] = {
            **scores,
            "pretrained": False,
            "positional": None,
            "n_windows": 0,
        }
        for subject, y, o in zip(test, _truth(table, task, test), output, strict=True):
            rows.append(
                {
                    "split": k,
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
    from neuroai.models.evaluated import add_evaluated_options

    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tablet_evaluate")
    parser.add_argument("--index", required=True, help="token-store index.tsv")
    parser.add_argument("--models", nargs="+", required=True, help="fine-tuned model folders")
    parser.add_argument("--metrics-output", required=True, help="metrics.json")
    parser.add_argument("--predictions-output", required=True, help="predictions .tsv")
    add_evaluated_options(parser)
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.index,
        args.models,
        args.metrics_output,
        args.predictions_output,
        splits=args.splits,
        evaluated_output=args.evaluated_output,
        datasets=args.datasets,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
