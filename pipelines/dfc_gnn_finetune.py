"""Fine-tune the pretrained dFC-GNN on a downstream label, with baselines and label fractions.

For one task (a label column of the graph dataset: classification or regression), runs
the label-efficiency protocol of neuroai.evaluation.label_efficiency: repeated
stratified k-fold splits of the subjects (a subject's windows never on both sides),
label fractions inside each fold's training subjects, and in every fold and fraction
the same subjects for every method:

  finetune      the pretrained encoder and a head, all trained (the engine's FineTuneModule)
  scratch       the same network from random weights, same steps and learning rate
  probe         frozen pretrained encoder: a linear read-out of its run embeddings
  random_probe  the same read-out of a randomly initialised encoder (a control)
  static_fc     logistic / ridge regression on the static-FC upper triangle

Writes the out-of-fold predictions (one row per repeat, fold, fraction, method and test
subject) and a final fine-tuned model (pretrained encoder + head, trained on every
labelled subject) as a pretrained folder.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError
from pipelines._stage import PathList, execute, stage_parser

logger = get_logger("stage.dfc_gnn_finetune")
STAGE = "dfc_gnn_finetune"
METHODS = ("finetune", "scratch", "probe", "random_probe", "static_fc")
SUFFIX = "_connectivity.npy"


def _static_fc_by_run(paths: list[str | Path], keys: list[str]) -> dict[str, Path]:
    by_key = {}
    for path in paths:
        name = Path(path).name
        if not name.endswith(SUFFIX):
            raise DataError(f"{path} is not a static-FC artifact (*{SUFFIX}).")
        by_key[name[: -len(SUFFIX)]] = Path(path)
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DataError(
            f"No static FC for runs {missing[:3]} of the graph dataset; give the static_fc "
            f"outputs of every run (<run>{SUFFIX})."
        )
    return by_key


def run(
    graphs: str | Path,
    pretrained: str | Path,
    predictions_output: str | Path,
    model_output: str | Path,
    *,
    static_fc: list[str | Path] | None = None,
    name: str = "site",
    label: str = "site",
    task: str = "classification",
    methods: list[str] | tuple[str, ...] = METHODS,
    fractions: list[float] | tuple[float, ...] = (0.1, 0.25, 0.5, 1.0),
    split: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    head: dict[str, Any] | None = None,
    encoder_lr_scale: float = 1.0,
    data: dict[str, Any] | None = None,
    readout: dict[str, Any] | None = None,
    work_dir: str | Path | None = None,
) -> Path:
    """Run the label-efficiency protocol for one task and fine-tune a final model.

    Parameters
    ----------
    graphs : path-like
        The graph dataset (its label column ``label`` is the target).
    pretrained : path-like
        The pretrained encoder folder (``dfc_gnn_pretrain``).
    predictions_output : path-like
        Out-of-fold predictions table (.tsv).
    model_output : path-like
        Pretrained folder of the final fine-tuned probe (encoder + head).
    static_fc : list of path-like | None
        ``<run>_connectivity.npy`` of every run (the static-FC baseline); needed when
        ``static_fc`` is among the methods.
    name : str
        Task name (recorded).
    label : str
        Label column of the graph dataset.
    task : {"classification", "regression"}
    methods : sequence of str
        Among finetune, scratch, probe, random_probe, static_fc.
    fractions : sequence of float
        Label fractions in (0, 1].
    split : dict | None
        ``n_folds`` (3), ``repeats`` (2), ``seed`` (0).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields of every fine-tuning run
        (finetune, scratch and the final model).
    head : dict | None
        ``hidden`` (0: linear head) and ``dropout``.
    encoder_lr_scale : float
        Encoder learning rate relative to the head's when fine-tuning.
    data : dict | None
        :class:`~neuroai.training.graph_data.GraphDataConfig` fields (as pretraining).
    readout : dict | None
        ``C`` (logistic regression) and ``alpha`` (ridge) of the linear read-outs.
    work_dir : path-like | None
        Scratch folder of the fine-tuning runs (``<predictions>/../runs`` by default;
        each run folder is removed when its run ends).
    """
    # Imported here so that `--help` answers without loading torch and Lightning.
    from neuroai.errors import check_option
    from neuroai.evaluation.fingerprint import upper_triangle
    from neuroai.evaluation.label_efficiency import cross_validated_predictions
    from neuroai.evaluation.linear import linear_readout
    from neuroai.fmri import GraphArrays
    from neuroai.io import load_array, save_table, write_artifact
    from neuroai.models import build_model, load_pretrained
    from neuroai.models.checkpoint import write_pretrained
    from neuroai.training import TrainConfig, seed_everything
    from neuroai.training.graph_data import GraphDataConfig
    from neuroai.training.graph_finetune import embed_runs, finetune_probe, predict_runs

    check_option("task", task, ("classification", "regression"))
    for method in methods:
        check_option("method", method, METHODS)
    settings = GraphDataConfig.from_dict(data or {}, source="dfc_gnn data")
    split = {"n_folds": 3, "repeats": 2, "seed": 0, **(split or {})}
    head = {"hidden": 0, "dropout": 0.0, **(head or {})}
    readout = {"C": 1.0, "alpha": 1.0, **(readout or {})}
    train_config = TrainConfig.from_dict(
        {"val_every_steps": 0, **(training or {})}, source="dfc_gnn fine-tuning"
    )
    arrays = GraphArrays(graphs)
    meta = arrays.meta
    values = np.asarray(arrays.label(label))
    kind = meta["labels"][label]["type"]
    if (kind == "categorical") != (task == "classification"):
        raise ConfigError(
            f"Task {name!r}: label {label!r} is {kind}, which does not fit a {task} task."
        )
    known = values >= 0 if kind == "categorical" else np.isfinite(values)
    runs = np.nonzero(known)[0]
    if runs.size < 4:
        raise DataError(f"Task {name!r}: only {runs.size} runs have a {label!r} label.")
    keys = [meta["runs"][r]["key"] for r in runs]
    subjects = [meta["runs"][r]["subject"] for r in runs]
    y = values[runs]
    classes = meta["labels"][label].get("categories", [])
    n_outputs = len(classes) if task == "classification" else 1

    def target_scale(fit_runs: np.ndarray) -> tuple[float, float]:
        """Networks train on standardised regression targets: the mean and SD of the runs
        they are fitted on, never of the runs they are tested on."""
        if task != "regression":
            return 0.0, 1.0
        return float(np.mean(y[fit_runs])), float(np.std(y[fit_runs])) or 1.0

    pretrained_model = load_pretrained(pretrained)
    encoder_config = pretrained_model.config
    work = Path(work_dir) if work_dir else Path(predictions_output).parent / "runs"
    fit_options = {
        "task": task,
        "n_outputs": n_outputs,
        "hidden": head["hidden"],
        "dropout": head["dropout"],
        "encoder_lr_scale": encoder_lr_scale,
        "length": settings.crop_windows,
        "density": settings.density,
    }
    crops = {"length": settings.crop_windows, "max_crops": settings.eval_crops}

    features: dict[str, np.ndarray] = {}
    if "static_fc" in methods:
        if not static_fc:
            raise ConfigError("The static_fc baseline needs the static_fc artifacts (static_fc=).")
        files = _static_fc_by_run(static_fc, keys)
        features["static_fc"] = np.stack([upper_triangle(load_array(files[k])) for k in keys])
    if "probe" in methods:
        features["probe"] = embed_runs(pretrained_model, graphs, runs, **crops)
    if "random_probe" in methods:
        seed_everything(split["seed"])
        features["random_probe"] = embed_runs(
            build_model("dfc_gnn", encoder_config), graphs, runs, **crops
        )

    def readout_method(feature: str):
        def method(train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
            x = features[feature]
            return linear_readout(
                x[train], y[train], x[test], task=task, n_classes=n_outputs, seed=seed, **readout
            )

        return method

    def network_method(pretrained_weights: bool):
        def method(train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
            seed_everything(seed)
            encoder = (
                copy.deepcopy(pretrained_model)
                if pretrained_weights
                else build_model("dfc_gnn", encoder_config)
            )
            encoder.train()
            targets = np.zeros(arrays.n_runs, dtype=values.dtype)
            targets[runs] = y
            shift, scale = target_scale(train)
            probe, _ = finetune_probe(
                encoder,
                graphs,
                runs[train],
                targets,
                train_config=train_config.replace(seed=seed),
                run_dir=work / f"fit-{seed}",
                target_scale=(shift, scale),
                **fit_options,
            )
            out = predict_runs(probe, graphs, runs[test], **crops)
            return out if task == "classification" else out * scale + shift

        return method

    table = {}
    for method in methods:
        if method in ("finetune", "scratch"):
            table[method] = network_method(method == "finetune")
        else:
            table[method] = readout_method(method)
    logger.info(
        "Task %s (%s, label %r): %d subjects, %d repeats x %d folds x %d fractions x %d methods",
        name,
        task,
        label,
        len(set(subjects)),
        split["repeats"],
        split["n_folds"],
        len(fractions),
        len(methods),
    )
    predictions = cross_validated_predictions(
        keys,
        y,
        table,
        task=task,
        fractions=fractions,
        n_folds=split["n_folds"],
        repeats=split["repeats"],
        seed=split["seed"],
        groups=subjects if len(set(subjects)) < len(subjects) else None,
    )
    predictions.insert(0, "task", name)
    params = {
        "name": name,
        "label": label,
        "task": task,
        "methods": list(methods),
        "fractions": list(fractions),
        "split": split,
        "training": training or {},
        "head": head,
        "encoder_lr_scale": encoder_lr_scale,
        "data": settings.to_dict(),
        "readout": readout,
    }
    inputs = [graphs, pretrained, *(static_fc or [])]
    save_table(predictions_output, predictions, stage=STAGE, params=params, inputs=inputs)

    # The final model: the pretrained encoder fine-tuned on every labelled subject (all of
    # them are its training set, so its targets are standardised with all of them).
    seed_everything(train_config.seed)
    shift, scale = target_scale(np.arange(runs.size))
    targets = np.zeros(arrays.n_runs, dtype=values.dtype)
    targets[runs] = y
    probe, result = finetune_probe(
        copy.deepcopy(pretrained_model).train(),
        graphs,
        runs,
        targets,
        train_config=train_config,
        run_dir=work / "final",
        target_scale=(shift, scale),
        **fit_options,
    )
    metadata = {
        "task": name,
        "label": label,
        "target": task,
        "classes": classes,
        "target_shift": shift,
        "target_scale": scale,
        "data": settings.to_dict(),
        "pretrained": str(pretrained),
        "training": train_config.to_dict(),
        "steps": result.steps,
    }
    write_artifact(
        model_output,
        lambda tmp: write_pretrained(tmp, probe, metadata=metadata),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={"steps": result.steps, "n_subjects": len(set(subjects))},
        directory=True,
    )
    shutil.rmtree(work, ignore_errors=True)
    logger.info("Wrote %s (%d rows) and %s", predictions_output, len(predictions), model_output)
    return Path(predictions_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.dfc_gnn_finetune", threads=True)
    parser.add_argument("--graphs", required=True, help="graph dataset folder (neuroai.graphs/1)")
    parser.add_argument("--pretrained", required=True, help="pretrained encoder folder")
    parser.add_argument(
        "--static-fc",
        nargs="*",
        action=PathList,
        default=None,
        help="@list.txt or <run>_connectivity.npy files",
    )
    parser.add_argument("--predictions-output", required=True, help="out-of-fold predictions .tsv")
    parser.add_argument("--model-output", required=True, help="fine-tuned model folder to write")
    parser.add_argument("--work-dir", default=None, help="scratch folder of the fine-tuning runs")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.graphs,
        args.pretrained,
        args.predictions_output,
        args.model_output,
        static_fc=args.static_fc,
        work_dir=args.work_dir,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
