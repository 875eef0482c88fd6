"""Evaluate the dFC-GNN: label-efficiency curves, downstream metrics, subject fingerprinting.

Reads the out-of-fold predictions of every fine-tuning task and summarises them:
per method and label fraction, each metric on the pooled out-of-fold predictions of
each repeat (mean and standard deviation over repeats), and at the largest fraction
the metrics of the repeat-averaged predictions with bootstrap intervals over subjects.

Subject fingerprinting (no label, no training): each subject has two segments of scan
(neuroai.training.graph_fingerprint: two sessions or two runs where the dataset has
them, as Finn et al. 2015, else the two halves of one run; ``fingerprint_design``
chooses, and metrics.json says which was used), each segment gets a profile, and each
subject's second segment is identified among the first segments of all subjects by the
highest Pearson correlation (and the other way round): top-1 identification accuracy,
averaged over both directions, with differential identifiability (Amico & Goni 2018).
Only the family's held-out subjects take part (the pretrained encoder never read them;
all subjects when it was pretrained transductively). Profiles: the static-FC upper
triangle of the segment (Finn's baseline, from the region time series), the pretrained
dFC-GNN's mean crop embedding of the segment, and that of a randomly initialised
encoder (a control). Each is scored raw and centred (the mean profile over all segments
removed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.dfc_gnn_evaluate")
STAGE = "dfc_gnn_evaluate"
TS_SUFFIX = "_timeseries.tsv"
CLASSIFICATION_METRICS = ("auroc", "balanced_accuracy", "accuracy", "auprc")
REGRESSION_METRICS = ("mae", "rmse", "r2", "pearson_r")
FULL_METRICS = {"classification": ("auroc", "balanced_accuracy"), "regression": ("mae", "r2")}
_COMMON = (
    "Inside the training subjects, label fractions keep max(1, round(f * n_class)) subjects "
    "per class, nested across fractions; all methods see the same subjects. Fine-tuning runs "
    "train for a fixed number of steps (no validation, no early stopping). Run-level "
    "predictions average class probabilities over evenly spread non-overlapping crops. "
)
PROTOCOLS = {
    "holdout": (
        "Held-out test subjects: a seeded draw of the subjects, stratified by the "
        "classification labels, fixed before anything is trained and shared by every task "
        "and by fingerprinting. Self-supervised pretraining never read their windows; each "
        "task trains on labelled subjects of the rest and tests on the held-out subjects that "
        "have its label. "
        + _COMMON
        + "Repeats differ in the label subsets and training seeds. Curves: each metric on the "
        "held-out predictions of a repeat, mean and SD over repeats."
    ),
    "cross_validation": (
        "Transductive (opt-in): subject-level repeated stratified k-fold cross-validation "
        "(plain k-fold for regression); every subject is tested once per repeat by models "
        "that never saw its label. "
        + _COMMON
        + "Curves: each metric on the pooled out-of-fold predictions of a repeat, mean and SD "
        "over repeats. Self-supervised pretraining used every run of the dataset without "
        "labels: test subjects' windows were seen unlabelled."
    ),
}


def _task_summary(path: Path, *, n_bootstrap: int, confidence: float, seed: int):
    from neuroai.evaluation.label_efficiency import (
        full_label_metrics,
        label_efficiency_curves,
        scores_of,
    )
    from neuroai.io import load_table, read_provenance

    table = load_table(path, stage="dfc_gnn_finetune")
    params = read_provenance(path)["params"]
    task = params["task"]
    names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    curves = label_efficiency_curves(table, task=task, metrics=names)
    curves.insert(0, "task", params["name"])
    full = {}
    top = table[table["fraction"] == table["fraction"].max()]
    for method, part in top.groupby("method", sort=False):
        score_columns = [c for c in part.columns if c.startswith("p_") or c == "y_pred"]
        mean = part.groupby("id", sort=True)[["y_true", *score_columns]].mean()
        y = mean["y_true"].to_numpy()
        full[method] = full_label_metrics(
            y.astype(int) if task == "classification" else y,
            scores_of(mean, task),
            task=task,
            metrics=[m for m in FULL_METRICS[task] if not (m == "auroc" and len(set(y)) < 2)],
            n_resamples=n_bootstrap,
            confidence=confidence,
            seed=seed,
        )
    protocol = read_provenance(path).get("extra", {}).get("protocol", {})
    summary = {
        "name": params["name"],
        "protocol": protocol,
        "label": params["label"],
        "task": task,
        "methods": params["methods"],
        "fractions": sorted(float(f) for f in table["fraction"].unique()),
        "split": params["split"],
        "training": params["training"],
        "n_subjects": int(table["id"].nunique()),
        "class_counts": {
            str(k): int(v) for k, v in table.drop_duplicates("id")["y_true"].value_counts().items()
        }
        if task == "classification"
        else {},
        "full_labels": full,
        "predictions": str(path),
    }
    return summary, curves


def _segment_fc(timeseries: Path, timepoints: tuple[int, int]) -> np.ndarray:
    from neuroai.io import read_region_timeseries

    data = read_region_timeseries(timeseries).data
    t0, t1 = timepoints
    if data.shape[0] < t1:
        raise DataError(
            f"{timeseries} has {data.shape[0]} time points, but its windows cover {t1}: the "
            "time series and the graph dataset are not of the same run."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        fc = np.corrcoef(data[t0:t1].T)
    return np.nan_to_num(fc, nan=0.0)


def run(
    graphs: str | Path,
    pretrained: str | Path,
    predictions: list[str | Path],
    metrics_output: str | Path,
    curves_output: str | Path,
    similarity_output: str | Path,
    fc_output: str | Path,
    *,
    timeseries: list[str | Path] | None = None,
    history: str | Path | None = None,
    dataset_name: str | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    data: dict[str, Any] | None = None,
    fingerprint: bool = True,
    fingerprint_design: str = "auto",
    task_models: list[str | Path] | None = None,
    splits: list[str | Path] | None = None,
    evaluated_output: str | Path | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Summarise the fine-tuning tasks and run subject fingerprinting.

    Parameters
    ----------
    graphs : path-like
        The graph dataset.
    pretrained : path-like
        The pretrained encoder folder.
    predictions : list of path-like
        Out-of-fold prediction tables of the tasks (``dfc_gnn_finetune``).
    metrics_output : path-like
        ``metrics.json``.
    curves_output : path-like
        Label-efficiency curves of every task (.tsv).
    similarity_output : path-like
        Fingerprinting similarity matrices (.npy), shape (n_profiles, 2, n, n): per
        profile, raw and centred, second segments (rows) x first segments (columns).
    fc_output : path-like
        Static FC of both segments of two example subjects (.npy), shape (2, 2, R, R).
    timeseries : list of path-like | None
        ``<run>_timeseries.tsv`` of every run (Finn's static-FC profiles).
    history : path-like | None
        The pretraining history (summarised in metrics.json).
    dataset_name : str | None
        Dataset name in the workflow config.
    n_bootstrap, confidence, seed
        Bootstrap over subjects.
    data : dict | None
        :class:`~neuroai.training.graph_data.GraphDataConfig` fields (as pretraining).
    fingerprint : bool
        Run subject fingerprinting.
    fingerprint_design : {"auto", "sessions", "runs", "halves"}
        Which two segments of each subject are compared (see
        :func:`~neuroai.training.graph_fingerprint.fingerprint_pairs`).
    task_models, splits : list of path-like | None
        Each task's final model folder and ``splits.tsv`` (``dfc_gnn_finetune``), in the
        order of ``predictions``.
    evaluated_output : path-like | None
        Folder of evaluated copies of the task models (needs ``task_models``), their
        held-out metrics in their cards (:mod:`neuroai.models.evaluated`).
    datasets : list of str | None
        ``NAME=CARD`` pairs: the dataset and its data card, for the cards.
    """
    # Imported here so that `--help` answers without loading torch.
    import pandas as pd

    from neuroai.evaluation.fingerprint import identification, upper_triangle
    from neuroai.fmri import GraphArrays
    from neuroai.io import load_table, save_array, save_json, save_table
    from neuroai.models import build_model, load_pretrained
    from neuroai.training import seed_everything
    from neuroai.training.graph_data import GraphDataConfig
    from neuroai.training.graph_finetune import embed_runs
    from neuroai.training.graph_fingerprint import fingerprint_pairs

    settings = GraphDataConfig.from_dict(data or {}, source="dfc_gnn data")
    arrays = GraphArrays(graphs)
    meta = arrays.meta
    params = {
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
        "data": settings.to_dict(),
        "fingerprint": fingerprint,
        "fingerprint_design": fingerprint_design,
    }
    tasks, curves = {}, []
    for path in predictions:
        summary, table = _task_summary(
            Path(path), n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
        )
        tasks[summary["name"]] = summary
        curves.append(table)
    curves_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    inputs = [graphs, pretrained, *predictions, *(timeseries or [])] + (
        [history] if history else []
    )
    save_table(curves_output, curves_table, stage=STAGE, params=params, inputs=inputs)

    model = load_pretrained(pretrained)
    record = model.pretrained_info.get("split") or {}
    warnings = []
    if "transductive" in model.pretrained_info:
        transductive = bool(model.pretrained_info["transductive"])
    else:  # an encoder from elsewhere (dfc_gnn.pretrained): the fine-tuning's design
        transductive = any(t["protocol"].get("transductive", False) for t in tasks.values())
    if "pretrain_subjects" not in record:
        warnings.append(
            f"{pretrained} records no pretraining split: whether its encoder saw the test "
            "subjects is unknown, so the held-out metrics may be optimistic."
        )
        logger.warning(warnings[-1])
    document: dict[str, Any] = {
        "task": "dfc_gnn",
        "dataset": dataset_name or Path(graphs).parent.name,
        "protocol": PROTOCOLS["cross_validation" if transductive else "holdout"],
        "transductive": transductive,
        "holdout": {
            "settings": record.get("holdout"),
            "test_subjects": record.get("test_subjects"),
        },
        "model": {
            "config": model.config.to_dict(),
            "n_parameters": model.parameter_count(),
            "objective": model.pretrained_info.get("objective", {}),
            "pretraining": {
                k: model.pretrained_info.get("training", {}).get(k)
                for k in ("max_steps", "batch_size", "lr", "seed")
            },
        },
        "data": settings.to_dict(),
        "windowing": meta.get("windowing", {}),
        "sparsity": meta.get("sparsity", {}),
        "tasks": tasks,
        "artifacts": {"curves": str(curves_output), "history": str(history) if history else None},
        "warnings": warnings,
    }
    if history:
        frame = load_table(history, stage="dfc_gnn_pretrain")
        losses = frame.dropna(subset=["train/loss"]) if "train/loss" in frame else frame.iloc[:0]
        if len(losses):
            document["model"]["pretraining"]["loss_first"] = float(losses["train/loss"].iloc[0])
            document["model"]["pretraining"]["loss_last"] = float(losses["train/loss"].iloc[-1])
            document["model"]["pretraining"]["steps"] = int(losses["step"].iloc[-1])

    keys = [r["key"] for r in meta["runs"]]
    similarity = np.zeros((0, 2, 0, 0), dtype=np.float32)
    examples = np.zeros((0, 2, meta["n_regions"], meta["n_regions"]), dtype=np.float32)
    if fingerprint:
        if transductive or "test_subjects" not in record:
            if not transductive:
                logger.warning(
                    "%s records no held-out subjects: fingerprinting every subject", pretrained
                )
            allowed, who = None, "every subject (the encoder was pretrained on all of them)"
        else:
            allowed = set(record["test_subjects"])
            who = "the held-out subjects (the encoder never read their windows)"
        design, pairs = fingerprint_pairs(meta, subjects=allowed, design=fingerprint_design)
        subjects = list(pairs)
        segments = {
            part: [pairs[s][i] for s in subjects] for i, part in enumerate(("first", "second"))
        }
        profiles: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if timeseries:
            by_key = {Path(p).name[: -len(TS_SUFFIX)]: Path(p) for p in timeseries}
            needed = sorted({keys[g.run] for part in segments.values() for g in part})
            missing = [k for k in needed if k not in by_key]
            if missing:
                raise DataError(f"No region time series given for runs {missing[:3]}.")
            fcs = [
                [_segment_fc(by_key[keys[g.run]], g.timepoints) for g in (first, second)]
                for first, second in zip(segments["first"], segments["second"], strict=True)
            ]
            profiles["static_fc"] = (
                np.stack([upper_triangle(f[0]) for f in fcs]),
                np.stack([upper_triangle(f[1]) for f in fcs]),
            )
            sites = (
                np.asarray(arrays.label("site"))
                if "site" in meta["labels"]
                else np.zeros(arrays.n_runs)
            )
            site_of = [sites[g.run] for g in segments["first"]]
            picks = [site_of.index(s) for s in dict.fromkeys(site_of)][:2]
            examples = np.stack([np.stack(fcs[i]) for i in picks]).astype(np.float32)
            document["fc_examples"] = {
                "subjects": [subjects[i] for i in picks],
                "halves": ["first", "second"],
            }
        crops = {
            "length": settings.crop_windows,
            "max_crops": settings.eval_crops,
            "density": settings.density,
        }
        seed_everything(seed)
        random_encoder = build_model("dfc_gnn", model.config)
        for name, encoder in (("dfc_gnn", model), ("dfc_gnn_random", random_encoder)):
            parts = []
            for part in ("first", "second"):
                chosen = segments[part]
                ranges = {g.run: g.windows for g in chosen}
                parts.append(
                    embed_runs(encoder, graphs, [g.run for g in chosen], ranges=ranges, **crops)
                )
            profiles[name] = (parts[0], parts[1])
        results, matrices = {}, []
        for name, (first, second) in profiles.items():
            entry = {}
            pair = []
            for variant, center in (("raw", False), ("centered", True)):
                scored = identification(first, second, subjects=subjects, center=center)
                pair.append(np.asarray(scored.pop("similarity"), dtype=np.float32))
                entry[variant] = scored
                logger.info(
                    "Fingerprinting %s (%s, %s): top-1 accuracy %.3f (chance %.3f), I_diff %.1f",
                    name,
                    design,
                    variant,
                    scored["accuracy"],
                    scored["chance"],
                    scored["differential_identifiability"],
                )
            results[name] = entry
            matrices.append(np.stack(pair))
        similarity = np.stack(matrices)
        window, step = int(meta["windowing"]["window"]), int(meta["windowing"]["step"])
        described = {
            "halves": (
                f"first and second half of each subject's run: windows of {window} TRs (step "
                f"{step}) lying entirely in the half; no time point shared"
            ),
            "runs": "two different runs of each subject (the first two by name), whole runs",
            "sessions": (
                "the first run of two different sessions of each subject (Finn et al.'s design)"
            ),
        }
        document["fingerprint"] = {
            "design": design,
            "subjects": who,
            "segments": described[design],
            "pairs": {
                s: {p: g.to_dict(meta) for p, g in zip(("first", "second"), pairs[s], strict=True)}
                for s in subjects
            },
            "metric": (
                "top-1 identification accuracy: a target segment is assigned the subject whose "
                "other segment correlates best with it (Pearson); mean of both directions; "
                "chance 1/n"
            ),
            "profiles": list(profiles),
            "methods": results,
        }
    save_array(similarity_output, similarity, stage=STAGE, params=params, inputs=inputs)
    save_array(fc_output, examples, stage=STAGE, params=params, inputs=inputs)
    document["artifacts"].update(
        {"similarity": str(similarity_output), "fc_examples": str(fc_output)}
    )
    save_json(metrics_output, document, stage=STAGE, params=params, inputs=inputs)
    if evaluated_output is not None:
        _write_evaluated(
            evaluated_output,
            document,
            task_models or [],
            splits or [],
            metrics_output,
            datasets,
            params,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
        )
    return Path(metrics_output)


def _write_evaluated(
    output, document, task_models, splits, metrics_output, datasets, params, **bootstrap
):
    """An evaluated copy of each task's final model, its held-out metrics in its card.

    The final model is the pretrained encoder fine-tuned on every training subject; the
    held-out metrics are those of the same recipe at 100% of the training labels in the
    label-efficiency protocol (mean prediction over its seeds), which the card says.
    """
    from neuroai.errors import ArtifactError
    from neuroai.models.evaluated import write_evaluations

    tasks = document["tasks"]
    if len(task_models) != len(tasks) or (splits and len(splits) != len(tasks)):
        raise ArtifactError(
            f"Cannot write {output}: {len(tasks)} tasks but {len(task_models)} task models "
            f"and {len(splits)} split files. Pass one of each per task, in the order of "
            "--predictions."
        )
    scored = []
    for k, (name, task) in enumerate(tasks.items()):
        full = task["full_labels"].get("finetune", {})
        transductive = bool(task["protocol"].get("transductive"))
        if transductive:
            note = (
                "Transductive protocol: these are cross-validated metrics, and this model was "
                "fine-tuned on every labelled subject, the tested ones included."
            )
        else:
            note = (
                "The metrics are those of the same recipe (the pretrained encoder fine-tuned "
                "on the labels of every training subject) in the label-efficiency protocol at "
                "100% of the training labels, predictions averaged over its "
                f"{task['split'].get('repeats', 1)} seeds; this folder is that recipe trained "
                "once more, on the same subjects."
            )
        evaluation = {
            "task": name,
            "n_test": task["protocol"].get("n_test_subjects", task["n_subjects"]),
            "unit": "subjects",
            "bootstrap": {**bootstrap, "unit": "subjects", "method": "percentile"},
            "note": note,
        }
        scored.append((name, task_models[k], full, evaluation))
    write_evaluations(
        output,
        scored,
        stage=STAGE,
        metrics_file=metrics_output,
        params=params,
        splits=splits or None,
        datasets=datasets,
        default_datasets=[document["dataset"]],
    )


def main(argv: list[str] | None = None) -> None:
    from neuroai.models.evaluated import add_evaluated_options

    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dfc_gnn_evaluate", threads=True)
    parser.add_argument("--graphs", required=True, help="graph dataset folder (neuroai.graphs/1)")
    parser.add_argument("--pretrained", required=True, help="pretrained encoder folder")
    parser.add_argument(
        "--predictions", nargs="*", default=[], help="out-of-fold prediction tables"
    )
    parser.add_argument(
        "--timeseries",
        nargs="*",
        action=PathList,
        default=None,
        help="@list.txt or <run>_timeseries.tsv files",
    )
    parser.add_argument("--history", default=None, help="pretraining history .tsv")
    parser.add_argument("--metrics-output", required=True, help="metrics.json to write")
    parser.add_argument("--curves-output", required=True, help="label-efficiency curves .tsv")
    parser.add_argument("--similarity-output", required=True, help="fingerprint similarity .npy")
    parser.add_argument("--fc-output", required=True, help="example half-run FC matrices .npy")
    parser.add_argument("--dataset-name", default=None, help="dataset name in the workflow config")
    parser.add_argument(
        "--task-models", nargs="*", default=None, help="each task's final model folder"
    )
    add_evaluated_options(parser)
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.graphs,
        args.pretrained,
        args.predictions,
        args.metrics_output,
        args.curves_output,
        args.similarity_output,
        args.fc_output,
        timeseries=args.timeseries,
        history=args.history,
        dataset_name=args.dataset_name,
        task_models=args.task_models,
        splits=args.splits,
        evaluated_output=args.evaluated_output,
        datasets=args.datasets,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
