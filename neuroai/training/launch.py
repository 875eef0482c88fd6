"""Where a run executes: devices, nodes, precision, seeding.

On a SLURM cluster the training rule launches the stage under ``srun`` with the nodes,
tasks and GPUs of the profile; every task then runs the same command, and Lightning's
SLURM environment wires them into one process group. :func:`resolve_devices` reads
the task layout from the SLURM variables so the Trainer agrees with it. Locally, one
process (or ``devices`` processes with ``strategy="ddp"``) runs.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from neuroai._logging import get_logger
from neuroai.errors import ConfigError
from neuroai.training.config import TrainConfig

logger = get_logger(__name__)


def under_srun() -> bool:
    """Whether this process is a task of an ``srun`` step (not just inside an allocation)."""
    return (
        "SLURM_STEP_ID" in os.environ
        and "SLURM_NTASKS" in os.environ
        and "SLURM_PROCID" in os.environ
    )


def resolve_devices(config: TrainConfig) -> tuple[int | str, int]:
    """``(devices, num_nodes)`` for the Trainer.

    ``devices="auto"`` under ``srun`` becomes the tasks per node and the node count
    of the step (``SLURM_NTASKS_PER_NODE``, ``SLURM_NNODES``); on a workstation the
    workflow's launch line sets ``NEUROAI_DEVICES`` (the profile's ``gpus_per_node``) and
    Lightning starts one process per device; elsewhere ``"auto"`` stays (one process per
    visible GPU with DDP, or one CPU process).
    """
    if config.devices != "auto":
        return config.devices, config.num_nodes
    if os.environ.get("NEUROAI_DEVICES") and not under_srun():
        devices = int(os.environ["NEUROAI_DEVICES"])
        logger.info("NEUROAI_DEVICES: %d device(s) on this machine", devices)
        return devices, config.num_nodes
    if under_srun():
        nodes = int(os.environ.get("SLURM_NNODES", "1"))
        per_node = os.environ.get("SLURM_NTASKS_PER_NODE", "")
        tasks = (
            int(per_node.split("(")[0]) if per_node else int(os.environ["SLURM_NTASKS"]) // nodes
        )
        logger.info("Launched by srun: %d node(s) x %d task(s)", nodes, tasks)
        return tasks, nodes
    if torch.cuda.is_available():
        return "auto", config.num_nodes
    return 1, config.num_nodes


def check_accelerator(config: TrainConfig) -> None:
    """Say so when a run meant for a GPU finds none; refuse when the config says to.

    Raises
    ------
    ConfigError
        No CUDA device is visible, ``accelerator`` is not ``"cpu"`` and ``without_gpu``
        is ``"refuse"``.
    """
    if config.accelerator == "cpu" or torch.cuda.is_available():
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = (
        f"CUDA_VISIBLE_DEVICES={visible!r}, " if visible is not None else ""
    ) + f"torch {torch.__version__} built {'with' if torch.version.cuda else 'without'} CUDA"
    if config.without_gpu == "refuse":
        raise ConfigError(
            f"This training needs a GPU (training.without_gpu: refuse) and none is visible "
            f"({where}). Run it on a GPU node (gpu_partition in the SLURM profile), or set "
            f"training.without_gpu: cpu to train on the CPU anyway."
        )
    logger.warning("No GPU visible (%s): training on the CPU.", where)


def resolve_precision(config: TrainConfig) -> str:
    """``auto``: bf16 mixed precision on a GPU that supports it, else 32-bit."""
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally force deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - libraries (MONAI) draw from the global state
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
