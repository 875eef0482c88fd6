"""The training configuration: one dataclass for every model family.

What a run needs besides the model: optimisation (optimizer, learning rate, warm-up
and schedule, gradient accumulation and clipping), the step budget, validation and
checkpoint cadence, early stopping, reproducibility (seed, deterministic algorithms),
precision and devices. It is stored in every checkpoint beside the model config.
Runtime placement (nodes, tasks, GPUs on a cluster) comes from the environment (see
:mod:`neuroai.training.launch`), not from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuroai.errors import ConfigError, check_option
from neuroai.models.config import JsonConfig
from neuroai.training.loading import check_num_workers

SCHEDULES = ("constant", "cosine", "linear", "step", "poly")
OPTIMIZERS = ("adamw", "adam", "sgd")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "64-true")


@dataclass
class TrainConfig(JsonConfig):
    """How to train.

    Attributes
    ----------
    max_steps : int
        Optimizer steps of the run (the budget; equal budgets compare methods fairly).
    max_epochs : int
        Upper bound on passes over the training set (-1: none).
    batch_size : int
        Items per batch and process (MONAI crop sampling may add several patches per item).
    accumulate_grad_batches : int
        Batches whose gradients are summed per optimizer step.
    optimizer : {"adamw", "adam", "sgd"}
    lr, weight_decay : float
        Peak learning rate and weight decay.
    betas : tuple of float
        Adam(W) betas.
    momentum : float
        SGD momentum (Nesterov).
    schedule : {"constant", "cosine", "linear", "step", "poly"}
        Learning-rate schedule after warm-up, per optimizer step.
    warmup_steps : int
        Linear warm-up from ``lr / warmup_steps`` to ``lr``.
    min_lr_ratio : float
        Floor of the cosine/linear/poly schedules as a fraction of ``lr``.
    step_size : int
        Steps between decays of the ``step`` schedule (0: ``max_steps // 6``, as the
        DSD reference decays six times per run).
    gamma : float
        Decay factor of the ``step`` schedule; exponent of ``poly`` (0.9 is usual).
    gradient_clip : float
        Clip the gradient norm to this value (0: no clipping).
    seed : int
        Seeds the weights, the data order and every augmentation.
    deterministic : bool
        Use deterministic algorithms only (slower on GPU).
    precision : {"auto", "32-true", "bf16-mixed", "16-mixed", "64-true"}
        ``auto``: bf16 mixed precision on a GPU that supports it, else 32-bit.
    val_every_steps : int
        Validate every this many optimizer steps (and at the end); 0: at the end only.
    checkpoint_every_steps : int
        Write the resumable checkpoint and the ``last`` export this often (0: as
        ``val_every_steps``).
    monitor, monitor_mode : str
        Validation metric (``"val/loss"``, ``"val/dice"``) that picks the ``best``
        export, and whether lower (``"min"``) or higher (``"max"``) is better.
    early_stopping_patience : int
        Stop after this many validations without improvement (0: never).
    accelerator : str
        ``"auto"``, ``"cpu"``, ``"gpu"``.
    devices : int | str
        Processes per node (``"auto"``: from SLURM when launched by ``srun``, else 1).
    num_nodes : int
        Nodes (SLURM sets it when launched by ``srun``).
    strategy : str
        ``"auto"`` or ``"ddp"``.
    without_gpu : {"cpu", "refuse"}
        When no GPU is visible and ``accelerator`` is not ``"cpu"``: train on the CPU
        (with a warning; the default of the demo presets) or refuse (the default of the
        presets sized for real data in the pretraining and training stages, see
        :func:`gpu_policy`: days on a CPU).
    num_workers : int | "auto"
        Data-loading worker processes of each training process. ``"auto"``: none off
        CUDA (a CPU run stays one process), on CUDA this process's share of the node's
        CPUs minus one, at most 8 (see :func:`neuroai.training.loading.loader_options`).
        The batches do not depend on it.
    progress_bar : bool | None
        Show a progress bar (``None``: on an interactive terminal unless
        ``NEUROAI_PROGRESS=0``).
    log_every_steps : int
        Logging cadence of training metrics.
    freeze : tuple of str
        Parameter-name prefixes that do not train (``("backbone.net.model.0",)``).
    init_from : str | None
        Pretrained folder whose matching weights initialise the model (fine-tuning).
    """

    max_steps: int = 200
    max_epochs: int = -1
    batch_size: int = 2
    accumulate_grad_batches: int = 1
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-5
    betas: tuple[float, ...] = (0.9, 0.999)
    momentum: float = 0.99
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    step_size: int = 0
    gamma: float = 0.5
    gradient_clip: float = 0.0
    seed: int = 0
    deterministic: bool = False
    precision: str = "auto"
    val_every_steps: int = 50
    checkpoint_every_steps: int = 0
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    early_stopping_patience: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    without_gpu: str = "cpu"
    num_workers: int | str = "auto"
    progress_bar: bool | None = None
    log_every_steps: int = 10
    freeze: tuple[str, ...] = ()
    init_from: str | None = None

    def validate(self) -> None:
        check_option("schedule", self.schedule, SCHEDULES)
        check_option("optimizer", self.optimizer, OPTIMIZERS)
        check_option("precision", self.precision, PRECISIONS)
        check_option("without_gpu", self.without_gpu, ("cpu", "refuse"))
        check_option("monitor_mode", self.monitor_mode, ("min", "max"))
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}.")
        for name in ("batch_size", "accumulate_grad_batches", "num_nodes", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in (
            "warmup_steps",
            "val_every_steps",
            "checkpoint_every_steps",
            "step_size",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}.")
        check_num_workers(self.num_workers)
        if self.lr <= 0 or self.weight_decay < 0 or self.gradient_clip < 0:
            raise ConfigError(
                f"lr must be > 0, weight_decay and gradient_clip >= 0; got {self.lr}, "
                f"{self.weight_decay}, {self.gradient_clip}."
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}.")
        if self.warmup_steps >= self.max_steps and self.warmup_steps:
            raise ConfigError(
                f"warmup_steps ({self.warmup_steps}) must be smaller than max_steps ({self.max_steps})."
            )

    @property
    def checkpoint_every(self) -> int:
        """Steps between resumable checkpoints."""
        every = self.checkpoint_every_steps or self.val_every_steps
        return every or self.max_steps


def gpu_policy(training: dict | None, preset: str) -> dict:
    """``training`` with ``without_gpu`` defaulting to ``"cpu"`` for the ``demo`` preset and
    to ``"refuse"`` for every preset sized for real data (``paper``, ``recommended``,
    EEGFormer's ``small``/``base``/``large``: days on a CPU); a value the config gives is
    kept."""
    values = dict(training or {})
    values.setdefault("without_gpu", "cpu" if preset == "demo" else "refuse")
    return values
