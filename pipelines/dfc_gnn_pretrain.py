"""Pretrain the dFC-GNN encoder on a graph dataset with masked dynamic-FC modelling.

Streams random crops of consecutive window graphs of every run from the on-disk graph
dataset (memory-mapped; memory does not grow with the cohort), wraps the dfc_gnn
encoder in the masked_dfc objective (nodes, edges and spans of windows hidden and
reconstructed), trains with the neuroai engine (resuming an interrupted run; DDP when
launched on several processes or under srun) and writes the pretrained encoder as a
pretrained folder (model.safetensors + config.json, with provenance) and the learning
history as a table. No label is read.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from pipelines._stage import execute, stage_parser

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
    run_dir: str | Path | None = None,
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
    run_dir : path-like | None
        The run folder (checkpoints, logs); ``<model_output>/../run`` by default.

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

    model = dict(model or {})
    settings = GraphDataConfig.from_dict(data or {}, source="dfc_gnn data")
    train_config = TrainConfig.from_dict(
        gpu_policy(training, model.get("preset", "demo")), source="dfc_gnn pretraining"
    )
    dataset = GraphCropDataset.random_crops(
        graphs,
        range(GraphArrays(graphs).n_runs),
        length=settings.crop_windows,
        samples_per_run=settings.samples_per_run,
        density=settings.density,
    )
    config = model_config(
        "dfc_gnn",
        model.get("preset", "demo"),
        **{**dict(model.get("options", {})), **dataset.model_overrides()},
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
        "n_runs": dataset.arrays.n_runs,
        "windowing": dataset.meta.get("windowing", {}),
        "sparsity": dataset.meta.get("sparsity", {}),
    }
    logger.info(
        "Pretraining dfc_gnn (%d parameters, objective %d) on %d runs: crops of %d windows, "
        "%d steps of %d crops",
        encoder.parameter_count(),
        sum(p.numel() for p in wrapped.parameters()),
        dataset.arrays.n_runs,
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
    logger.info(
        "Pretrained for %d steps on %d process(es); wrote %s",
        result.steps,
        result.world_size,
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.dfc_gnn_pretrain", threads=True)
    parser.add_argument("--graphs", required=True, help="graph dataset folder (neuroai.graphs/1)")
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.graphs,
        args.model_output,
        args.history_output,
        run_dir=args.run_dir,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
