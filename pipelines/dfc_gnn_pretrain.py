"""Pretrain the dFC-GNN encoder on a graph dataset with masked dynamic-FC modelling.

Streams random crops of consecutive window graphs of every run from the on-disk graph
dataset (memory-mapped; memory does not grow with the cohort), wraps the dfc_gnn
encoder in the masked_dfc objective (nodes, edges and spans of windows hidden and
reconstructed), trains with the neuroai engine (resuming an interrupted run; DDP when
launched on several processes or under srun) and writes the pretrained encoder as a
pretrained folder (model.safetensors + config.json, with provenance) and the learning
history as a table, and ``splits.tsv`` (which subjects it read, which it held out).

No label is trained on. The family's held-out test subjects (a seeded, stratified draw,
neuroai.training.graph_splits) are left out: pretraining never reads a window of a
subject that a downstream task tests on or that fingerprinting compares. The draw is
the one dfc_gnn_finetune makes from the same ``holdout`` settings (stratifying may read
label columns, only to draw it). ``transductive=True`` (named, off by default)
pretrains on every run instead.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.dfc_gnn_pretrain")
STAGE = "dfc_gnn_pretrain"


def run(
    graphs: str | Path,
    model_output: str | Path,
    history_output: str | Path,
    *,
    model: dict[str, Any] | None = None,
    objective: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    holdout: dict[str, Any] | None = None,
    transductive: bool = False,
    run_dir: str | Path | None = None,
    splits_output: str | Path | None = None,
) -> Path | None:
    """Pretrain the encoder and write its weights and learning history.

    Parameters
    ----------
    graphs : path-like
        A graph dataset folder (format ``neuroai.graphs/1``).
    model_output : path-like
        Pretrained folder of the encoder to write.
    history_output : path-like
        Learning history table (step, loss and its parts).
    model : dict | None
        ``preset`` ("demo" or "paper") and ``options`` (further
        :class:`~neuroai.models.dfc_gnn.DFCGNNConfig` fields); the feature count and the
        regions come from the dataset.
    objective : dict | None
        Settings of :class:`~neuroai.models.objectives.masked_dfc.MaskedDFCModeling`
        (masking ratios, window span, decoder shape, loss weights).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields.
    data : dict | None
        :class:`~neuroai.training.graph_data.GraphDataConfig` fields (``crop_windows``,
        ``samples_per_run``, ``density``, ``eval_crops``).
    holdout : dict | None
        :class:`~neuroai.training.graph_splits.HoldoutConfig` fields (``test_fraction``,
        ``seed``, ``stratify``): the family's held-out test subjects, whose runs are not
        read. Give every dfc_gnn_finetune task of this dataset the same.
    transductive : bool
        Pretrain on every run, held-out subjects included (their windows seen without
        labels); recorded in the model and in ``splits.tsv``.
    run_dir : path-like | None
        The run folder (checkpoints, logs); ``<model_output>/../run`` by default.
    splits_output : path-like | None
        ``splits.tsv`` to write (``pretrain`` and ``test`` rows);
        ``<model_output>/../splits.tsv`` by default.

    Returns
    -------
    Path | None
        ``model_output`` (None on the other processes of a distributed run).
    """
    # Imported here so that `--help` answers without loading torch and Lightning.
    import pandas as pd

    from neuroai.fmri import GraphArrays
    from neuroai.io import save_table, write_artifact
    from neuroai.models import build_model, model_config
    from neuroai.models.objectives import create_objective
    from neuroai.training import PretrainModule, TrainConfig, fit, gpu_policy, seed_everything
    from neuroai.training.graph_data import GraphCropDataset, GraphDataConfig, GraphDataModule
    from neuroai.training.graph_splits import HoldoutConfig, dataset_holdout, splits_frame

    model = dict(model or {})
    settings = GraphDataConfig.from_dict(data or {}, source="dfc_gnn data")
    train_config = TrainConfig.from_dict(
        gpu_policy(training, model.get("preset", "demo")), source="dfc_gnn pretraining"
    )
    arrays = GraphArrays(graphs)
    holdout_config = HoldoutConfig.from_dict(holdout or {}, source="dfc_gnn holdout")
    # Transductive: no subject is held out (the draw is not even made).
    test_subjects = [] if transductive else dataset_holdout(arrays, holdout_config)
    held_out = set(test_subjects)
    subject_of = [str(r["subject"]) for r in arrays.meta["runs"]]
    runs = [r for r in range(arrays.n_runs) if subject_of[r] not in held_out]
    if not runs:
        raise DataError(
            f"{graphs}: every run belongs to a held-out subject; nothing to pretrain on."
        )
    dataset = GraphCropDataset.random_crops(
        graphs,
        runs,
        length=settings.crop_windows,
        samples_per_run=settings.samples_per_run,
        density=settings.density,
    )
    config = model_config(
        "dfc_gnn",
        model.get("preset", "demo"),
        **{**dict(model.get("options", {})), **dataset.model_overrides()},
    )
    if config.edge_weight == "binary" and dataset.meta.get("sparsity", {}).get("absolute", True):
        logger.warning(
            "Binary edges on a graph dataset ranked by |FC|: STAGIN keeps the top edges by "
            "signed FC (build the graph dataset with graph_dataset.absolute: false)"
        )
    seed_everything(train_config.seed)
    encoder = build_model("dfc_gnn", config)
    objective_settings = dict(objective or {})
    wrapped = create_objective("masked_dfc", encoder, **objective_settings)
    datamodule = GraphDataModule(
        dataset,
        batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
    )
    run_dir = Path(run_dir) if run_dir else Path(model_output).parent / "run"
    metadata = {
        "task": "pretraining",
        "dataset": str(graphs),
        "data": settings.to_dict(),
        "n_runs": len(runs),
        "split": {
            "holdout": holdout_config.to_dict(),
            "test_subjects": test_subjects,
            "pretrain_subjects": sorted({subject_of[r] for r in runs}),
        },
        "transductive": bool(transductive),
        "windowing": dataset.meta.get("windowing", {}),
        "sparsity": dataset.meta.get("sparsity", {}),
    }
    logger.info(
        "Pretraining dfc_gnn (%d parameters, objective %d) on %d runs (%s): crops of %d "
        "windows, %d steps of %d crops",
        encoder.parameter_count(),
        sum(p.numel() for p in wrapped.parameters()),
        len(runs),
        "transductive: every subject"
        if transductive
        else f"{len(test_subjects)} held-out subjects left out",
        settings.crop_windows,
        train_config.max_steps,
        train_config.batch_size,
    )
    result = fit(
        PretrainModule(wrapped, train_config), datamodule, train_config, run_dir, metadata=metadata
    )
    if not result.is_global_zero:
        return None
    params = {
        "model": model,
        "objective": objective_settings,
        "training": training or {},
        "data": data or {},
        "holdout": holdout_config.to_dict(),
        "transductive": bool(transductive),
    }
    extra = {
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "world_size": result.world_size,
        "n_parameters": encoder.parameter_count(),
        "objective": wrapped.describe(),
    }
    write_artifact(
        model_output,
        lambda tmp: shutil.copytree(result.best, tmp, dirs_exist_ok=True),
        stage=STAGE,
        params=params,
        inputs=[graphs],
        extra=extra,
        directory=True,
    )
    save_table(
        history_output, pd.DataFrame(result.history), stage=STAGE, params=params, inputs=[graphs]
    )
    used = set(runs)
    parts = ["pretrain" if r in used else "test" for r in range(arrays.n_runs)]
    save_table(
        splits_output or Path(model_output).parent / "splits.tsv",
        splits_frame(arrays.meta, range(arrays.n_runs), parts),
        stage=STAGE,
        params=params,
        inputs=[graphs],
    )
    logger.info(
        "Pretrained for %d steps on %d process(es); wrote %s",
        result.steps,
        result.world_size,
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.dfc_gnn_pretrain", threads=True)
    parser.add_argument("--graphs", required=True, help="graph dataset folder (neuroai.graphs/1)")
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.graphs,
        args.model_output,
        args.history_output,
        run_dir=args.run_dir,
        splits_output=args.splits_output,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
