"""Run a training: one function for every module, model family and machine.

:func:`fit` builds the Lightning ``Trainer`` from a :class:`TrainConfig` (devices and
nodes from SLURM when launched by ``srun``, bf16 on GPUs, gradient accumulation and
clipping, validation every N steps, early stopping, CSV and - when installed -
TensorBoard logs, an optional progress bar), resumes from the run folder's last
checkpoint when one exists for the same settings, and returns where the ``best`` and
``last`` exports are. The same call runs on a laptop CPU, on N processes with DDP
(gloo on CPU, NCCL on GPU), and on several SLURM nodes.

The run folder::

    run_dir/
      fingerprint.json         what the run was started with; resume only if equal
      checkpoints/last.ckpt    resumable state (loads with weights_only=True)
      last/  best/             pretrained folders (model.safetensors + config.json)
      logs/version_<n>/        CSV log of each attempt (metrics.csv, hparams.yaml)
      tensorboard/             when tensorboard is installed
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L

from neuroai._logging import _progress_default, get_logger
from neuroai.errors import ConfigError
from neuroai.io.atomic import atomic_open
from neuroai.models.checkpoint import load_weights_into
from neuroai.training.callbacks import ProgressLog, RunCheckpoints
from neuroai.training.config import TrainConfig
from neuroai.training.launch import (
    check_accelerator,
    resolve_devices,
    resolve_precision,
    seed_everything,
)
from neuroai.training.modules import EngineModule

logger = get_logger(__name__)


@dataclass
class FitResult:
    """What a finished run left behind.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    best, last : Path
        Pretrained folders of the best and the last weights.
    best_score : float | None
        Best value of the monitored metric (None without validation).
    best_step, steps : int
        Step of the best weights; optimizer steps done in total.
    history : list of dict
        Training and validation metrics by step (learning curves).
    resumed_from : int | None
        Step the run resumed from, if it did.
    is_global_zero : bool
        Whether this process is rank 0 (only rank 0 should write stage outputs).
    stopped_early : bool
        Whether early stopping ended the run.
    world_size : int
        Processes that trained together (DDP).
    """

    run_dir: Path
    best: Path
    last: Path
    best_score: float | None
    best_step: int
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None
    is_global_zero: bool = True
    stopped_early: bool = False
    world_size: int = 1


def _is_rank_zero_process() -> bool:
    return (
        os.environ.get("LOCAL_RANK", "0") == "0"
        and os.environ.get("NODE_RANK", "0") == "0"
        and os.environ.get("SLURM_PROCID", "0") == "0"
    )


def _fingerprint(
    module: EngineModule, config: TrainConfig, extra: dict[str, Any]
) -> dict[str, Any]:
    model = module.export_model()
    return {
        "model": model.family,
        "model_config": model.config.to_dict(),
        # Settings that leave the batches and the arithmetic alone do not block a resume
        # (a requeued job may get other CPUs or lose its terminal).
        "training": {
            k: v
            for k, v in config.to_dict().items()
            if k not in ("num_workers", "progress_bar", "without_gpu")
        },
        **extra,
    }


def _prepare_resume(
    run_dir: Path, fingerprint: dict, resume: bool | Literal["auto"]
) -> Path | None:
    """The checkpoint to resume from, or None; clears a stale run folder."""
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    stored = run_dir / "fingerprint.json"
    wanted = json.loads(json.dumps(fingerprint, default=str))
    if resume and checkpoint.is_file():
        previous = json.loads(stored.read_text()) if stored.is_file() else None
        if previous == wanted:
            return checkpoint
        if resume is True:
            raise ConfigError(
                f"Cannot resume {run_dir}: its checkpoint was made with other settings than "
                "asked (fingerprint.json differs). Use another run folder or resume='auto' to start over."
            )
        logger.warning("%s holds a run with other settings; starting over.", run_dir)
    if _is_rank_zero_process():
        for name in ("checkpoints", "last", "best"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(stored) as handle:
            json.dump(wanted, handle, indent=2, sort_keys=True)
    return None


def _loggers(run_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard"))
    return loggers


def _apply_freeze_and_init(module: EngineModule, config: TrainConfig) -> None:
    model = module.export_model()
    if config.init_from:
        load_weights_into(model, config.init_from)
    if config.freeze:
        names = [n for n, _ in model.named_parameters()]
        unmatched = [p for p in config.freeze if not any(n.startswith(p) for n in names)]
        if unmatched:
            raise ConfigError(
                f"freeze: no parameter name starts with {unmatched}; names start like {names[:3]}."
            )
        for name, parameter in model.named_parameters():
            if any(name.startswith(p) for p in config.freeze):
                parameter.requires_grad_(False)


def build_trainer(config: TrainConfig, run_dir: Path, callbacks: list) -> L.Trainer:
    """The Lightning Trainer for ``config`` (see the module docstring)."""
    from lightning.pytorch.callbacks import EarlyStopping

    check_accelerator(config)
    devices, num_nodes = resolve_devices(config)
    accumulate = config.accumulate_grad_batches
    val_every = config.val_every_steps or config.max_steps
    callbacks = list(callbacks)
    if config.early_stopping_patience:
        callbacks.append(
            EarlyStopping(
                monitor=config.monitor,
                mode=config.monitor_mode,
                patience=config.early_stopping_patience,
                check_on_train_epoch_end=False,
                check_finite=True,
            )
        )
    progress = config.progress_bar if config.progress_bar is not None else _progress_default()
    return L.Trainer(
        max_steps=config.max_steps,
        max_epochs=config.max_epochs,
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=config.strategy,
        precision=resolve_precision(config),
        accumulate_grad_batches=accumulate,
        gradient_clip_val=config.gradient_clip or None,
        deterministic=config.deterministic,
        val_check_interval=val_every * accumulate,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,
        log_every_n_steps=config.log_every_steps,
        logger=_loggers(run_dir),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )


def fit(
    module: EngineModule,
    datamodule: L.LightningDataModule,
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool | Literal["auto"] = "auto",
    metadata: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> FitResult:
    """Train ``module`` on ``datamodule`` in ``run_dir``; resume when possible.

    Parameters
    ----------
    module : EngineModule
        A :class:`SupervisedModule`, :class:`PretrainModule` or :class:`FineTuneModule`
        (build the model after seeding, e.g. with :func:`seed_everything`, for
        reproducible initial weights).
    datamodule : LightningDataModule
        Its loaders should be :class:`~neuroai.training.data.ResumableLoader`
        (the engine's data modules are), so that a resumed run sees the same data.
    config : TrainConfig
        How to train.
    run_dir : path-like
        The run folder (see the module docstring).
    resume : bool | "auto"
        ``"auto"``: resume from ``checkpoints/last.ckpt`` if it was made with the same
        settings, else start over; ``True``: resume or fail; ``False``: start over.
    metadata : dict | None
        Extra entries for the exports' ``config.json`` and the run's fingerprint
        (data settings, dataset name).
    callbacks : list | None
        Further Lightning callbacks (tests use one to interrupt a run).

    Returns
    -------
    FitResult
    """
    run_dir = Path(run_dir)
    metadata = dict(metadata or {})
    checkpoint = _prepare_resume(run_dir, _fingerprint(module, config, metadata), resume)
    seed_everything(config.seed, deterministic=config.deterministic)
    _apply_freeze_and_init(module, config)
    saver = RunCheckpoints(run_dir, config, metadata)
    trainer = build_trainer(
        config, run_dir, [saver, ProgressLog(config.log_every_steps), *(callbacks or [])]
    )
    resumed_from = None
    if checkpoint is not None:
        import torch

        resumed_from = int(
            torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]
        )
        logger.info("Resuming %s from step %d", run_dir, resumed_from)
    trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
    last_val = max(
        (r["step"] for r in saver.history if any(k.startswith("val/") for k in r)), default=-1
    )
    stopped_early = bool(trainer.should_stop and trainer.global_step < config.max_steps)
    if last_val != trainer.global_step and not stopped_early and _has_val(datamodule):
        trainer.validate(module, datamodule=datamodule, verbose=False)
    # Every rank says where it ended: under DDP the digests must agree (only rank 0
    # writes artifacts, so this line is how a desynchronised rank shows).
    logger.info(
        "rank %d of %d (node %d, local rank %d) finished at step %d: weights sha256 %s",
        trainer.global_rank,
        trainer.world_size,
        trainer.node_rank,
        trainer.local_rank,
        trainer.global_step,
        weights_digest(module),
    )
    return FitResult(
        run_dir=run_dir,
        best=saver.best_export,
        last=saver.last_export,
        best_score=saver.best_score,
        best_step=saver.best_step if saver.best_step >= 0 else trainer.global_step,
        steps=trainer.global_step,
        history=list(saver.history),
        resumed_from=resumed_from,
        is_global_zero=trainer.is_global_zero,
        stopped_early=stopped_early,
        world_size=trainer.world_size,
    )


def weights_digest(module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes and bytes, in order)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        value = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(value.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _has_val(datamodule: L.LightningDataModule) -> bool:
    return type(datamodule).val_dataloader is not L.LightningDataModule.val_dataloader
