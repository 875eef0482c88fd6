"""Evaluate trained segmentation models on the held-out cases of a Decathlon task.

Every model is applied with sliding-window inference to the test cases of the split
it was trained with (recorded in its config.json; all models must share it), in the
preprocessing it was trained with. Per case and class: Dice, HD95 and mean surface
distance (MONAI). Writes metrics.json (means with bootstrap confidence intervals per
model, class and metric, and paired comparisons between the models), a per-case
table, the predicted label maps (NIfTI) and the example volumes the report draws.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger, progress
from neuroai.errors import ConfigError
from neuroai.io import read_decathlon, save_json, save_table, write_artifact
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.segmentation_evaluate")
STAGE = "segmentation_evaluate"


def _save_label_map(
    path: Path, array: np.ndarray, affine: np.ndarray, *, params: dict, inputs: list
) -> None:
    import nibabel as nib

    def write(tmp: Path) -> None:
        image = nib.Nifti1Image(np.asarray(array), affine)
        image.header.set_xyzt_units("mm")
        nib.save(image, tmp)

    write_artifact(path, write, stage=STAGE, params=params, inputs=inputs)


def _detection(rows, classes: list[str]) -> dict:
    """Per class: cases with the structure, cases where it was missed entirely (scored the
    worst case), the miss rate, and cases where it was predicted but is absent."""
    result = {}
    for cls in classes:
        of_class = rows[rows["class"] == cls]
        present = int((of_class["reference_voxels"] > 0).sum())
        missed = int(of_class["missed"].sum())
        result[cls] = {
            "cases_with_reference": present,
            "missed": missed,
            "miss_rate": missed / present if present else None,
            "spurious": int(of_class["spurious"].sum()),
        }
    return result


def run(
    dataset: str | Path,
    models: list[str | Path],
    metrics_output: str | Path,
    per_case_output: str | Path,
    *,
    names: list[str] | None = None,
    histories: list[str | Path] | None = None,
    dataset_name: str | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    examples: int = 1,
    device: str = "auto",
    splits: list[str | Path] | None = None,
    evaluated_output: str | Path | None = None,
    datasets: list[str] | None = None,
) -> Path:
    """Evaluate ``models`` and write ``metrics.json`` and the per-case table.

    Parameters
    ----------
    dataset : path-like
        ``dataset.json`` of the task.
    models : list of path-like
        Pretrained folders (from ``segmentation_train``).
    metrics_output, per_case_output : path-like
        ``metrics.json`` and the per-case ``.tsv``.
    names : list of str | None
        Model names in the outputs (the training variants by default).
    histories : list of path-like | None
        Learning histories of the models, referenced in ``metrics.json`` for the report.
    dataset_name : str | None
        Name of the dataset in the workflow config (recorded).
    n_bootstrap, confidence, seed
        Bootstrap resamples, interval coverage, random seed.
    examples : int
        Test cases whose image, reference and predictions are kept for the report.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    splits : list of path-like | None
        Each model's ``splits.tsv``, in the order of ``models``.
    evaluated_output : path-like | None
        Folder of evaluated copies of the models, each with its held-out metrics in its
        card (:mod:`neuroai.models.evaluated`), named as in ``names``.
    datasets : list of str | None
        ``NAME=CARD`` pairs: the dataset and its data card, for the cards.
    """
    # Imported here so that `--help` answers without loading torch and MONAI.
    import pandas as pd
    import torch

    from neuroai.evaluation.results import pairwise_comparisons, summarize_per_case
    from neuroai.evaluation.segmentation import METRICS, predict_case, segmentation_metrics
    from neuroai.models import load_pretrained
    from neuroai.training import SegmentationDataConfig

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    task = read_decathlon(dataset)
    loaded = [load_pretrained(p, map_location=device) for p in models]
    infos = [m.pretrained_info for m in loaded]
    names = list(names or [info.get("variant", f"model{i}") for i, info in enumerate(infos)])
    if len(names) != len(loaded) or len(set(names)) != len(names):
        raise ConfigError(
            f"Give one distinct name per model; got {names} for {len(loaded)} models."
        )
    tests = [tuple(info.get("split", {}).get("test", [])) for info in infos]
    if len(set(tests)) != 1 or not tests[0]:
        raise ConfigError(
            f"The models in {[str(p) for p in models]} were trained with different or empty test "
            "splits; train them with the same split settings to compare them."
        )
    by_id = {c.id: c for c in task.cases("all")}
    cases = [by_id[i] for i in tests[0]]
    unlabelled = [c.id for c in cases if c.label is None]
    if unlabelled:
        raise ConfigError(f"Test cases {unlabelled} have no labels; they cannot be evaluated.")
    out_dir = Path(metrics_output).parent
    params = {
        "names": names,
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
        "examples": examples,
    }
    model_inputs = [Path(p) for p in models]
    rows: list[dict[str, Any]] = []
    predictions: dict[str, dict[str, str]] = {n: {} for n in names}
    example_files: list[dict[str, Any]] = []
    class_names = task.class_names
    for k, case in enumerate(progress(cases, desc="cases")):
        reference = None
        for name, model, info in zip(names, loaded, infos, strict=True):
            data_config = SegmentationDataConfig.from_dict(
                info.get("data", {}), source=f"the data config of {name}"
            )
            result = predict_case(model, case, data_config, device=device)
            reference = result.reference
            for row in segmentation_metrics(
                result.prediction,
                result.reference,
                n_classes=task.n_classes,
                spacing=result.spacing,
            ):
                rows.append(
                    {
                        "model": name,
                        "case": case.id,
                        "class": class_names[row["class_index"]],
                        **row,
                    }
                )
            path = out_dir / "predictions" / name / f"{case.id}.nii.gz"
            _save_label_map(
                path,
                result.prediction,
                result.affine,
                params=params,
                inputs=[case.image, *model_inputs],
            )
            predictions[name][case.id] = str(path)
            if k < examples and name == names[0]:
                image_path = out_dir / "examples" / f"{case.id}_image.nii.gz"
                reference_path = out_dir / "examples" / f"{case.id}_reference.nii.gz"
                _save_label_map(
                    image_path,
                    result.image[0].astype(np.float32),
                    result.affine,
                    params=params,
                    inputs=[case.image],
                )
                _save_label_map(
                    reference_path, reference, result.affine, params=params, inputs=[case.label]
                )
                example_files.append(
                    {"case": case.id, "image": str(image_path), "reference": str(reference_path)}
                )
    table = pd.DataFrame(rows)
    save_table(per_case_output, table, stage=STAGE, params=params, inputs=[dataset, *model_inputs])
    summary = summarize_per_case(
        table, metrics=METRICS, n_resamples=n_bootstrap, confidence=confidence, seed=seed
    )
    comparisons = pairwise_comparisons(
        table, metrics=METRICS, n_resamples=n_bootstrap, confidence=confidence, seed=seed
    )
    document = {
        "task": "segmentation",
        "dataset": dataset_name or task.name,
        "task_name": task.name,
        "classes": class_names[1:],
        "split": {
            "test": list(tests[0]),
            **{
                k: v
                for k, v in infos[0].get("split", {}).items()
                if k in ("params", "train", "val")
            },
        },
        "bootstrap": {
            "n_resamples": n_bootstrap,
            "confidence": confidence,
            "seed": seed,
            "method": "percentile",
            "unit": "case",
        },
        "models": {
            name: {
                "checkpoint": str(path),
                "model": info["model"],
                "variant": info.get("variant"),
                "config": info["config"],
                "n_parameters": info.get("n_parameters"),
                "training": {
                    k: info.get("training", {}).get(k)
                    for k in ("max_steps", "batch_size", "lr", "seed", "schedule")
                },
                "best_step": info.get("monitor", {}).get("best_step"),
                "metrics": summary[name],
                "detection": _detection(table[table["model"] == name], class_names[1:]),
            }
            for name, path, info in zip(names, models, infos, strict=True)
        },
        "comparisons": comparisons,
        "artifacts": {
            "per_case": str(per_case_output),
            "predictions": predictions,
            "examples": example_files,
            "histories": [str(h) for h in histories or []],
        },
    }
    save_json(
        metrics_output,
        document,
        stage=STAGE,
        params=params,
        inputs=[dataset, *model_inputs, *(histories or [])],
    )
    if evaluated_output is not None:
        _write_evaluated(evaluated_output, document, splits, metrics_output, datasets, params)
    for name in names:
        dice = summary[name]["dice"]["mean"]
        logger.info(
            "%s: mean Dice %.3f [%.3f, %.3f]",
            name,
            dice["estimate"],
            dice["ci_low"],
            dice["ci_high"],
        )
    return Path(metrics_output)


def _write_evaluated(output, document, splits, metrics_output, datasets, params):
    """An evaluated copy of every model, its test metrics per class in its card."""
    from neuroai.models.evaluated import write_evaluations

    evaluation = {
        "task": document["task_name"],
        "n_test": len(document["split"]["test"]),
        "unit": "cases",
        "bootstrap": document["bootstrap"],
        "note": "HD95 and MSD in mm; a structure missed entirely scores the diagonal of the "
        "volume (the worst case), counted in every mean.",
    }
    scored = []
    for name, entry in document["models"].items():
        metrics = {
            f"{metric} {label}": value
            for metric, per_class in entry["metrics"].items()
            for label, value in sorted(per_class.items(), key=lambda item: item[0] != "mean")
        }
        for label, detection in entry["detection"].items():
            metrics[f"miss rate {label}"] = {"estimate": detection["miss_rate"]}
        scored.append((name, entry["checkpoint"], metrics, evaluation))
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

    parser = stage_parser(
        __doc__, "python -m neuroai.pipelines.segmentation_evaluate", threads=True
    )
    parser.add_argument("--dataset", required=True, help="dataset.json of the task")
    parser.add_argument("--models", nargs="+", required=True, help="pretrained model folders")
    parser.add_argument("--names", nargs="+", default=None, help="a name per model")
    parser.add_argument("--histories", nargs="*", default=None, help="learning histories (.tsv)")
    parser.add_argument("--metrics-output", required=True, help="metrics.json to write")
    parser.add_argument("--per-case-output", required=True, help="per-case .tsv to write")
    parser.add_argument("--dataset-name", default=None, help="dataset name in the workflow config")
    add_evaluated_options(parser)
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.dataset,
        args.models,
        args.metrics_output,
        args.per_case_output,
        names=args.names,
        histories=args.histories,
        dataset_name=args.dataset_name,
        splits=args.splits,
        evaluated_output=args.evaluated_output,
        datasets=args.datasets,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
