"""How training data are loaded: one rule for the DataLoader options of every family.

Each model family's items cost the CPU milliseconds (an EEG window's spectral patches,
a TABLeT window of 256 x 27 x 3072 tokens, a crop of window graphs, a 3D patch through
MONAI's augmentations); one process preparing them while a GPU trains leaves the GPU
waiting. :func:`loader_options` gives every training and validation DataLoader of the
project the same keyword arguments: worker processes sized from the CPUs this process
may use, pinned memory for fast copies to CUDA, workers kept alive across epochs and
validations, and a few batches prefetched per worker.

``num_workers="auto"`` (the :class:`~neuroai.training.TrainConfig` default) is 0 off
CUDA, so a CPU run (the demo, the tests) stays one process and gives the same numbers
as before; on CUDA it is this process's share of the node's CPUs minus one for the
process itself, at most :data:`MAX_WORKERS`. Workers never change the data: the
sampler draws the order and every item's seed in the main process
(:class:`~neuroai.training.data.ResumableSampler`), so any worker count yields the same
batches.
"""

from __future__ import annotations

import os
from typing import Any

from neuroai.errors import ConfigError

AUTO = "auto"
#: Workers ``"auto"`` gives at most, per training process: beyond this, reading and
#: augmenting outpace one GPU for every family here, and each worker costs memory.
MAX_WORKERS = 8
#: Batches each worker prepares ahead of the training loop.
PREFETCH_FACTOR = 4


def check_num_workers(value: Any, *, name: str = "num_workers") -> None:
    """Raise :class:`~neuroai.errors.ConfigError` unless ``value`` is an int >= 0 or ``"auto"``."""
    if isinstance(value, str) and value == AUTO:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return
    raise ConfigError(
        f"Invalid value for the {name!r} parameter: an integer >= 0 (loader worker processes) "
        f"or 'auto' (sized from the CPUs), but got {value!r} instead."
    )


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask: what SLURM or taskset granted)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def _slurm_tasks_per_node() -> int:
    # "4", "4(x2)" or "4,2" (heterogeneous nodes: take the first)
    per_node = os.environ.get("SLURM_NTASKS_PER_NODE", "")
    if per_node:
        return int(per_node.split("(")[0].split(",")[0])
    nodes = int(os.environ.get("SLURM_NNODES", "1"))
    return max(1, int(os.environ["SLURM_NTASKS"]) // max(nodes, 1))


def tasks_sharing_cpus(devices: int | None = None) -> int:
    """Training processes on this node that share this process's CPUs.

    Parameters
    ----------
    devices : int | None
        Processes per node of the run when known (the Trainer's ``num_devices``, which
        also counts the processes Lightning starts itself for local DDP). None: from
        the environment: under ``srun`` ``SLURM_NTASKS_PER_NODE`` (or ``SLURM_NTASKS``
        over ``SLURM_NNODES``), else ``LOCAL_WORLD_SIZE`` (torchrun), else 1.

    Returns
    -------
    int
        At least 1. Under ``srun`` a task already bound to its own CPUs (an affinity
        of at most ``SLURM_CPUS_PER_TASK`` CPUs) shares them with no other task: 1,
        so its CPUs are not divided twice.
    """
    from neuroai.training.launch import under_srun

    srun = under_srun()
    per_task = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if srun and per_task.isdigit() and available_cpus() <= int(per_task):
        return 1
    if devices is not None:
        return max(1, int(devices))
    if srun:
        return _slurm_tasks_per_node()
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def auto_workers(
    *, cuda: bool, local_tasks: int = 1, cpus: int | None = None, max_workers: int = MAX_WORKERS
) -> int:
    """The worker count ``num_workers="auto"`` means (see :func:`loader_options`)."""
    if not cuda:
        return 0
    cpus = available_cpus() if cpus is None else int(cpus)
    share = cpus // max(1, int(local_tasks))
    return max(0, min(max_workers, share - 1))


def loader_options(
    num_workers: int | str,
    *,
    cuda: bool,
    local_tasks: int = 1,
    cpus: int | None = None,
) -> dict[str, Any]:
    """DataLoader keyword arguments of a training or validation loader.

    Parameters
    ----------
    num_workers : int or "auto"
        Loader worker processes. An int is used as given. ``"auto"``: 0 when the run
        is not on CUDA (a CPU run stays single-process, as the demo and the tests
        expect: its batches and timings do not depend on the machine); on CUDA, the
        CPUs this process may use (:func:`available_cpus`: its affinity, else
        ``os.cpu_count()``) divided by ``local_tasks``, minus one for the training
        process itself, at most :data:`MAX_WORKERS` and at least 0. The CPUs are
        divided because every GPU's process on the node starts its own workers: more
        workers than CPUs only adds switching and memory.
    cuda : bool
        Whether the run trains on CUDA: pins batch memory for asynchronous copies.
    local_tasks : int
        Training processes on this node sharing the CPUs (see :func:`tasks_sharing_cpus`).
    cpus : int | None
        CPUs to share (None: :func:`available_cpus`).

    Returns
    -------
    dict
        ``num_workers``, ``pin_memory`` (True on CUDA), ``persistent_workers`` (True
        with workers: no restart at each epoch and validation) and, with workers only
        (torch refuses it otherwise), ``prefetch_factor`` (:data:`PREFETCH_FACTOR`).

    Raises
    ------
    ConfigError
        For a ``num_workers`` that is neither an int >= 0 nor ``"auto"``.
    """
    check_num_workers(num_workers)
    if num_workers == AUTO:
        workers = auto_workers(cuda=cuda, local_tasks=local_tasks, cpus=cpus)
    else:
        workers = int(num_workers)
    options: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": bool(cuda),
        "persistent_workers": workers > 0,
    }
    if workers > 0:
        options["prefetch_factor"] = PREFETCH_FACTOR
    return options
