"""Fine-tune the pretrained dFC-GNN on a downstream label, with baselines and label fractions.

For one task (a label column of the graph dataset: classification or regression), runs
a label-efficiency protocol in which every method sees the same subjects:

- by default (inductive), the family's held-out subjects (neuroai.training.graph_splits,
  drawn from the same ``holdout`` settings as pretraining, which never read them) that
  have the label are the test set; ``repeats`` times, nested stratified label fractions
  of the other labelled subjects train each method, which scores the held-out subjects;
- with ``transductive=True`` (named, off by default), repeated stratified k-fold
  splits of all subjects (neuroai.evaluation.label_efficiency): every subject is tested,
  by models whose encoder was pretrained on its windows (without labels).

A subject's windows are never on both sides. The methods:

  finetune      the pretrained encoder and a head, all trained (the engine's FineTuneModule)
  scratch       the same network from random weights, same steps and learning rate
  probe         frozen pretrained encoder: a linear read-out of its run embeddings
  random_probe  the same read-out of a randomly initialised encoder (a control)
  static_fc     logistic / ridge regression on the static-FC upper triangle

Writes the test predictions (one row per repeat, fold, fraction, method and test
subject), a final fine-tuned model (pretrained encoder + head, trained on every labelled
training subject: all labelled subjects when transductive) as a pretrained folder, and
``splits.tsv`` (train and test subjects; with cross-validation, per repeat and fold).
A pretrained model that read a test subject is refused unless ``transductive``.
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
from neuroai.pipelines._stage import PathList, execute, stage_parser

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


def _seen_in_pretraining(document: dict, tested: list[str], pretrained, task: str) -> list[str]:
    """Test subjects of the task that the pretrained encoder read (from its recorded split)."""
    record = document.get("split")
    if not record or "pretrain_subjects" not in record:
        logger.warning(
            "%s records no pretraining split: whether it saw task %s's test subjects is unknown",
            pretrained,
            task,
        )
        return []
    return sorted(set(tested) & set(record["pretrain_subjects"]))


def _splits_table(meta, runs, keys, is_test, predictions, transductive, splits_frame):
    """splits.tsv rows: train and test runs (per repeat and fold when cross-validated)."""
    import pandas as pd

    if not transductive:
        return splits_frame(meta, runs, ["test" if t else "train" for t in is_test])
    index = {k: i for i, k in enumerate(keys)}
    parts = []
    for (repeat, fold), rows in predictions.groupby(["repeat", "fold"], sort=True):
        test = {index[k] for k in rows["id"]}
        parts.append(
            splits_frame(
                meta,
                runs,
                ["test" if i in test else "train" for i in range(len(runs))],
                repeat=int(repeat),
                fold=int(fold),
            )
        )
    return pd.concat(parts, ignore_index=True)


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
    holdout: dict[str, Any] | None = None,
    transductive: bool = False,
    work_dir: str | Path | None = None,
    splits_output: str | Path | None = None,
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
        ``static_fc`` is among the methods. The static_fc stage's, or your own (square,
        finite ``.npy`` without a provenance record: external inputs, their checksums
        recorded in ``extra.external_inputs``).
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
        ``repeats`` (2) and ``seed`` (0) of the label subsets and training seeds;
        ``n_folds`` (3) of the cross-validation when ``transductive``.
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
    holdout : dict | None
        :class:`~neuroai.training.graph_splits.HoldoutConfig` fields: the family's
        held-out test subjects (as given to dfc_gnn_pretrain).
    transductive : bool
        Cross-validate over all subjects instead, and accept a pretrained model that saw
        them (test subjects' windows seen without labels).
    work_dir : path-like | None
        Scratch folder of the fine-tuning runs (``<predictions>/../runs`` by default;
        each run folder is removed when its run ends).
    splits_output : path-like | None
        ``splits.tsv`` to write; ``<model_output>/../splits.tsv`` by default.
    """
    # Imported here so that `--help` answers without loading torch and Lightning.
    from neuroai.errors import check_option
    from neuroai.evaluation.fingerprint import upper_triangle
    from neuroai.evaluation.label_efficiency import cross_validated_predictions
    from neuroai.evaluation.linear import linear_readout
    from neuroai.fmri import GraphArrays
    from neuroai.io import InputArrays, save_table, write_artifact
    from neuroai.models import build_model, load_pretrained
    from neuroai.models.checkpoint import write_pretrained
    from neuroai.training import TrainConfig, seed_everything
    from neuroai.training.graph_data import GraphDataConfig
    from neuroai.training.graph_finetune import embed_runs, finetune_probe, predict_runs
    from neuroai.training.graph_splits import (
        HoldoutConfig,
        dataset_holdout,
        holdout_predictions,
        splits_frame,
    )

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

    holdout_config = HoldoutConfig.from_dict(holdout or {}, source="dfc_gnn holdout")
    heldout = set() if transductive else set(dataset_holdout(arrays, holdout_config))
    is_test = np.array([s in heldout for s in subjects])
    if transductive:
        tested = sorted(set(subjects))
    else:
        tested = sorted({s for s, t in zip(subjects, is_test, strict=True) if t})
        if is_test.all() or not is_test.any():
            raise DataError(
                f"Task {name!r}: {int(is_test.sum())} of the {runs.size} runs with a {label!r} "
                "label belong to held-out subjects; both sides are needed (check "
                "holdout.stratify and holdout.test_fraction)."
            )
    pretrained_model = load_pretrained(pretrained)
    seen = _seen_in_pretraining(pretrained_model.pretrained_info, tested, pretrained, name)
    if seen and not transductive:
        raise ConfigError(
            f"Task {name!r}: {len(seen)} test subjects ({', '.join(seen[:5])}) were pretrained on "
            f"by {pretrained}. Pretrain with the same holdout settings ({holdout_config.to_dict()}) "
            "and transductive: false, or set transductive: true to allow it on purpose."
        )
    if seen:
        logger.warning(
            "Task %s: %d of %d test subjects were pretrained on (transductive)",
            name,
            len(seen),
            len(tested),
        )
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
    external: list[dict] = []  # static FC of the user's (no provenance record)
    if "static_fc" in methods:
        if not static_fc:
            raise ConfigError("The static_fc baseline needs the static_fc artifacts (static_fc=).")
        files = _static_fc_by_run(static_fc, keys)
        matrices = InputArrays(
            [files[k] for k in keys], ndim=2, square=True, what="a connectivity matrix"
        )
        features["static_fc"] = np.stack([upper_triangle(m) for m in matrices])
        external = matrices.external
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
    if transductive:
        logger.info(
            "Task %s (%s, label %r), transductive: %d subjects, %d repeats x %d folds x %d "
            "fractions x %d methods",
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
    else:
        logger.info(
            "Task %s (%s, label %r): %d training and %d held-out test subjects, %d repeats x "
            "%d fractions x %d methods",
            name,
            task,
            label,
            len(set(subjects)) - len(tested),
            len(tested),
            split["repeats"],
            len(fractions),
            len(methods),
        )
        predictions = holdout_predictions(
            keys,
            y,
            table,
            np.nonzero(~is_test)[0],
            np.nonzero(is_test)[0],
            task=task,
            fractions=fractions,
            repeats=split["repeats"],
            seed=split["seed"],
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
        "holdout": holdout_config.to_dict(),
        "transductive": bool(transductive),
    }
    inputs = [graphs, pretrained, *(static_fc or [])]
    protocol = {
        "design": "cross_validation" if transductive else "holdout",
        "transductive": bool(transductive),
        "n_test_subjects": len(tested),
        "test_subjects_pretrained_on": len(seen),
        # False for an encoder from elsewhere that records no split: its overlap with
        # the test subjects is unknown (dfc_gnn_evaluate repeats this in metrics.json).
        "pretraining_split_recorded": "pretrain_subjects"
        in (pretrained_model.pretrained_info.get("split") or {}),
    }
    save_table(
        predictions_output,
        predictions,
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={"protocol": protocol, "external_inputs": external},
    )

    # The final model: the pretrained encoder fine-tuned on every labelled training subject
    # (all labelled subjects when transductive); its targets are standardised with them.
    final = np.arange(runs.size) if transductive else np.nonzero(~is_test)[0]
    seed_everything(train_config.seed)
    shift, scale = target_scale(final)
    targets = np.zeros(arrays.n_runs, dtype=values.dtype)
    targets[runs] = y
    probe, result = finetune_probe(
        copy.deepcopy(pretrained_model).train(),
        graphs,
        runs[final],
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
        "protocol": protocol,
        "train_subjects": sorted({subjects[i] for i in final}),
    }
    write_artifact(
        model_output,
        lambda tmp: write_pretrained(tmp, probe, metadata=metadata),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={
            "steps": result.steps,
            "n_subjects": len(set(subjects)),
            "protocol": protocol,
            "external_inputs": external,
        },
        directory=True,
    )
    save_table(
        splits_output or Path(model_output).parent / "splits.tsv",
        _splits_table(meta, runs, keys, is_test, predictions, transductive, splits_frame),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={"external_inputs": external},
    )
    shutil.rmtree(work, ignore_errors=True)
    logger.info("Wrote %s (%d rows) and %s", predictions_output, len(predictions), model_output)
    return Path(predictions_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dfc_gnn_finetune", threads=True)
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
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
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
        splits_output=args.splits_output,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
