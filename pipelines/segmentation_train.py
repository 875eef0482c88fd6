"""Train one 3D segmentation model (DSD, deep supervision only, or plain) on a Decathlon task.

Reads dataset.json, checks every training and validation case (declared labels,
matching shapes and affines, voxel spacing), splits the cases (shared with the
evaluation stage), trains with the neuroai engine (resuming from the run folder's last
checkpoint when the same run was interrupted) and writes the best model as a
pretrained folder (model.safetensors + config.json, with provenance), the learning
history as a table, and ``splits.tsv`` (the split of every case; a Decathlon case has no
subject identity, so its case id stands for the subject).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import check_option
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.segmentation_train")
STAGE = "segmentation_train"
MODES = ("plain", "deep_supervision", "dsd")


def run(
    dataset: str | Path,
    model_output: str | Path,
    history_output: str | Path,
    *,
    variant: str = "dsd",
    model: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    splits_output: str | Path | None = None,
) -> Path | None:
    """Train one variant and write its best weights, learning history and splits.

    Parameters
    ----------
    dataset : path-like
        ``dataset.json`` of a Decathlon task folder.
    model_output : path-like
        Pretrained folder to write (the best weights by the monitored metric).
    history_output : path-like
        Learning history table (step, train and validation metrics).
    variant : {"dsd", "deep_supervision", "plain"}
        Which loss and heads (the DSD ``mode``).
    model : dict | None
        ``preset`` ("demo" or "paper"), ``backbone`` and ``options`` (further
        :class:`~neuroai.models.dsd.DSDConfig` fields, e.g. ``alpha``, ``roi_size``,
        ``backbone_options``).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields.
    data : dict | None
        :class:`~neuroai.training.SegmentationDataConfig` fields.
    split : dict | None
        ``kind`` ("fixed", "kfold"), ``n_folds``, ``fold``, ``test_fraction``,
        ``n_val``, ``seed`` (see :func:`neuroai.evaluation.splits.decathlon_split`).
    run_dir : path-like | None
        The run folder (checkpoints, logs); ``<model_output>/../run`` by default.
    splits_output : path-like | None
        ``splits.tsv`` to write: ``dataset`` (the task's name), ``subject`` (the case id:
        Decathlon cases name no subject, so each case is taken as its own subject),
        ``split`` (``train``, ``val``, ``test``); one row per labelled case.
        ``<model_output>/../splits.tsv`` by default.

    Returns
    -------
    Path | None
        ``model_output`` (None on the other processes of a distributed run).
    """
    # Imported here so that `--help` answers without loading torch, MONAI and Lightning.
    import pandas as pd

    from neuroai.evaluation.splits import decathlon_split, splits_table
    from neuroai.io import check_case, read_decathlon, save_table, write_artifact
    from neuroai.models import build_model, model_config
    from neuroai.training import (
        SegmentationDataConfig,
        SegmentationDataModule,
        SupervisedModule,
        TrainConfig,
        fit,
        gpu_policy,
        seed_everything,
    )

    check_option("variant", variant, MODES)
    model = dict(model or {})
    task = read_decathlon(dataset)
    split_params = dict(split or {})
    chosen = decathlon_split(task, **split_params)
    by_id = {c.id: c for c in task.cases("all")}
    for case_id in [*chosen.train, *chosen.val]:
        check_case(by_id[case_id], task.labels)
    config = model_config(
        "dsd",
        model.get("preset", "demo"),
        backbone=model.get("backbone", "unet"),
        in_channels=task.in_channels,
        out_channels=task.n_classes,
        mode=variant,
        **dict(model.get("options", {})),
    )
    train_config = TrainConfig.from_dict(
        gpu_policy(training, model.get("preset", "demo")), source="segmentation training"
    )
    data_config = SegmentationDataConfig.from_dict(data or {}, source="segmentation data")
    run_dir = Path(run_dir) if run_dir else Path(model_output).parent / "run"
    seed_everything(train_config.seed)
    network = build_model("dsd", config)
    datamodule = SegmentationDataModule(
        [by_id[i] for i in chosen.train],
        [by_id[i] for i in chosen.val],
        roi_size=config.roi_size,
        config=data_config,
        batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
    )
    metadata = {
        "task": "segmentation",
        "dataset": task.name,
        "variant": variant,
        "class_names": task.class_names,
        "data": data_config.to_dict(),
        "split": {"params": split_params, **chosen.to_dict()},
    }
    logger.info(
        "%s: %s on %d training / %d validation cases (%d test cases held out)",
        task.name,
        variant,
        len(chosen.train),
        len(chosen.val),
        len(chosen.test),
    )
    result = fit(
        SupervisedModule(network, train_config),
        datamodule,
        train_config,
        run_dir,
        metadata=metadata,
    )
    if not result.is_global_zero:
        return None
    params = {
        "variant": variant,
        "model": model,
        "training": training or {},
        "data": data or {},
        "split": split_params,
    }
    extra = {
        "best_score": result.best_score,
        "best_step": result.best_step,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "world_size": result.world_size,
        "monitor": train_config.monitor,
        "n_parameters": network.parameter_count(),
        "n_head_parameters": network.head_parameter_count(),
    }
    write_artifact(
        model_output,
        lambda tmp: shutil.copytree(result.best, tmp, dirs_exist_ok=True),
        stage=STAGE,
        params=params,
        inputs=[dataset],
        extra=extra,
        directory=True,
    )
    history = pd.DataFrame(result.history)
    history.insert(0, "variant", variant)
    save_table(history_output, history, stage=STAGE, params=params, inputs=[dataset])
    save_table(
        splits_output or Path(model_output).parent / "splits.tsv",
        splits_table(
            {"train": chosen.train, "val": chosen.val, "test": chosen.test}, dataset=task.name
        ),
        stage=STAGE,
        params=params,
        inputs=[dataset],
    )
    logger.info(
        "Best %s %.4f at step %d; wrote %s",
        train_config.monitor,
        result.best_score or float("nan"),
        result.best_step,
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.segmentation_train", threads=True)
    parser.add_argument("--dataset", required=True, help="dataset.json of a Decathlon task folder")
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--variant", default="dsd", help="dsd, deep_supervision or plain")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.dataset,
        args.model_output,
        args.history_output,
        variant=args.variant,
        run_dir=args.run_dir,
        splits_output=args.splits_output,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
