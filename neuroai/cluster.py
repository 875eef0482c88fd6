"""Where the GPU rules run: the resources each asks for and the line that launches it.

A GPU rule's layout is read from the Snakemake profile, so one file says how a site runs
training. The keys, all optional, sit in the profile's ``default-resources`` (every GPU
rule) and ``set-resources`` (one rule):

``gpu_launch``
    ``srun`` on a SLURM cluster (the ``slurm`` profile); ``local`` (the default) runs
    every task on this machine.
``gpus_per_node`` / ``nodes``
    The training layout: one DDP task per GPU, ``nodes x gpus_per_node`` tasks in all.
    Only training rules (:data:`DISTRIBUTED`) use more than one GPU; evaluation,
    inference and encoding rules take one.
``cpus_per_gpu``
    CPUs for each task: the data loader's workers and the main process.
``gpu_partition`` / ``gpu_model``
    The partition and GPU type of GPU rules; the partition of the other rules is the
    SLURM plugin's own ``slurm_partition`` and the account its ``slurm_account``.

:func:`gpu_resources` turns a layout into the resources that
``snakemake-executor-plugin-slurm`` (2.8) reads, written around three facts of the
plugin: a job with an ``mpi`` resource must have more than one task, ``tasks`` on a
GPU job becomes ``--ntasks-per-gpu``, and the jobstep executor runs an ``mpi`` job's
command directly after removing the job's ``SLURM_*`` layout variables. So a job of one
task has no ``mpi`` (the jobstep starts it under ``srun -n1``), and a job of several
carries the whole layout in its own ``srun`` line (:meth:`GpuLayout.launch_line`).
:func:`check_site` asks the cluster (``sinfo``, ``scontrol``) before any job is sent
whether the partitions exist, whether GPU rules would land on a partition without GPUs,
and whether an account is required but not set.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from neuroai.errors import ConfigError, did_you_mean

#: Rules that train through Lightning and can run as DDP tasks over several GPUs and nodes.
DISTRIBUTED = (
    "dfc_gnn_pretrain",
    "eegformer_pretrain",
    "eegformer_finetune",
    "segmentation_train",
    "tablet_pretrain",
    "tablet_finetune",
)

#: Rules that use one GPU when there is one (evaluation, inference, tokenizer, encoding).
SINGLE_GPU = (
    "dfc_gnn_finetune",
    "dfc_gnn_evaluate",
    "eegformer_anomaly",
    "eegformer_interpret",
    "embed",
    "predict",
    "predict_table",
    "segmentation_evaluate",
    "tablet_evaluate",
    "tokenizer_train",
    "tokenizer_finetune",
    "tokens",
)

LAUNCHERS = ("local", "srun")
PROFILE_HINT = "the profile's default-resources (all GPU rules) or set-resources (one rule)"


@dataclass(frozen=True)
class GpuLayout:
    """How one GPU rule runs (see the module docstring for each key)."""

    gpu_launch: str = "local"
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_gpu: int = 8
    gpu_partition: str = ""
    gpu_model: str = ""
    distributed: bool = True

    @property
    def tasks(self) -> int:
        """DDP tasks: one per GPU of every node for a training rule, else one."""
        return self.nodes * self.gpus_per_node if self.distributed else 1

    @classmethod
    def from_settings(
        cls,
        rule: str,
        defaults: Mapping[str, object],
        overrides: Mapping[str, object] | None = None,
    ) -> GpuLayout:
        """The layout of ``rule`` from the profile's default and per-rule resources.

        Values may be strings (as Snakemake keeps them); keys that are not layout keys
        are ignored (they are the plugin's or Snakemake's own). A single-GPU rule keeps
        one node and one GPU whatever the defaults say, unless its own set-resources
        ask for more, which is refused.
        """
        values: dict[str, object] = {}
        keys = [f.name for f in fields(cls) if f.name != "distributed"]
        for source in (defaults, overrides or {}):
            for key in keys:
                if key in source and source[key] is not None:
                    values[key] = source[key]
        if not str(values.get("gpu_partition", "")).strip("'\""):
            # No GPU partition: GPU rules go where the other rules go.
            for source in (defaults, overrides or {}):
                if source.get("slurm_partition") is not None:
                    values["gpu_partition"] = source["slurm_partition"]
        if rule not in DISTRIBUTED:
            asked = {k: (overrides or {}).get(k) for k in ("nodes", "gpus_per_node")}
            if any(str(v).strip("'\"") not in ("None", "1") for v in asked.values()):
                raise ConfigError(
                    f"Rule {rule} uses one GPU; its set-resources ask for {asked}. Only "
                    f"{', '.join(DISTRIBUTED)} run on several GPUs."
                )
            values["nodes"] = 1
        return cls(**_typed(rule, values), distributed=rule in DISTRIBUTED)

    def launch_line(self) -> str:
        """The prefix of the rule's command that starts its tasks.

        Under SLURM with several tasks: ``srun`` with the layout spelled out, since the
        jobstep has removed it from the environment. Locally with several GPUs: the device
        count for Lightning, which starts one process per GPU itself. Else nothing.
        """
        if self.tasks == 1:
            return ""
        if self.gpu_launch == "srun":
            return (
                f"srun --nodes={self.nodes} --ntasks-per-node={self.gpus_per_node} "
                f"--cpus-per-task={self.cpus_per_gpu} --gres={self.gres()} "
                "--kill-on-bad-exit=1"
            )
        return f"NEUROAI_DEVICES={self.gpus_per_node}"

    def gres(self) -> str:
        """The per-node GPU request, ``gpu:<n>`` or ``gpu:<model>:<n>``."""
        model = f"{self.gpu_model}:" if self.gpu_model else ""
        return f"gpu:{model}{self.gpus_per_node}"


def _typed(rule: str, values: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in values.items():
        text = str(value).strip().strip("'\"")
        if key in ("nodes", "gpus_per_node", "cpus_per_gpu"):
            try:
                number = int(text)
            except ValueError:
                number = 0
            if number < 1:
                raise ConfigError(
                    f"Rule {rule}: {key} must be a whole number >= 1, got {value!r}; set it "
                    f"in {PROFILE_HINT}."
                )
            out[key] = number
        elif key == "gpu_launch":
            if text not in LAUNCHERS:
                raise ConfigError(
                    f"Rule {rule}: gpu_launch must be one of {LAUNCHERS}, got {value!r}"
                    f"{did_you_mean(text, LAUNCHERS)}; set it in {PROFILE_HINT}."
                )
            out[key] = text
        else:
            out[key] = text
    return out


def gpu_resources(layout: GpuLayout) -> dict[str, int | str]:
    """The resources of a GPU rule with ``layout``, as the SLURM plugin reads them.

    Always ``launch`` (the command prefix, see :meth:`GpuLayout.launch_line`). Locally
    also ``gpu``: the machine's GPUs (``gpus_per_node``) for every GPU rule, so that with
    ``--resources gpu=N`` GPU jobs take turns. Under ``srun``: one task is
    ``gpu`` (``--gpus=1``, or ``model:1``) with ``gpu_model``; several tasks are
    ``gres`` per node, ``nodes``, and ``tasks_per_node`` (or, with one GPU per node,
    ``tasks`` and ``tasks_per_gpu=1``) plus ``mpi``, so the jobstep runs the ``srun``
    line itself. ``cpus_per_task`` and the GPU partition under ``srun``.
    """
    launch = layout.launch_line()
    if layout.gpu_launch != "srun":
        # Locally every GPU rule holds all the machine's GPUs: a single-GPU stage uses the
        # first visible one, so two of them at once would share it.
        return {"launch": launch, "gpu": layout.gpus_per_node}
    resources: dict[str, int | str] = {
        "launch": launch,
        "nodes": layout.nodes,
        "cpus_per_task": layout.cpus_per_gpu,
    }
    if layout.gpu_partition:
        resources["slurm_partition"] = layout.gpu_partition
    if layout.tasks == 1:
        resources["gpu"] = 1
        if layout.gpu_model:
            resources["gpu_model"] = layout.gpu_model
        return resources
    resources["gres"] = layout.gres()
    resources["mpi"] = launch
    if layout.gpus_per_node > 1:
        resources["tasks_per_node"] = layout.gpus_per_node
    else:
        resources["tasks"] = layout.tasks
        resources["tasks_per_gpu"] = 1
    return resources


# ---------------------------------------------------------------------------------------
# Asking the cluster before submitting


Runner = Callable[[list[str]], str]


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    gpus: bool


def partitions(run: Runner = _run) -> list[Partition]:
    """The cluster's partitions from ``sinfo -h -o %P|%G`` (one line per node set)."""
    found: dict[str, Partition] = {}
    for line in run(["sinfo", "-h", "-o", "%P|%G"]).splitlines():
        if "|" not in line:
            continue
        name, gres = line.strip().split("|", 1)
        default = name.endswith("*")
        name = name.rstrip("*")
        has_gpu = "gpu" in gres.lower()
        old = found.get(name)
        found[name] = Partition(
            name, default or bool(old and old.default), has_gpu or bool(old and old.gpus)
        )
    return list(found.values())


def accounts_enforced(run: Runner = _run) -> bool:
    """Whether ``AccountingStorageEnforce`` includes ``associations`` (jobs need an account)."""
    for line in run(["scontrol", "show", "config"]).splitlines():
        if line.strip().startswith("AccountingStorageEnforce"):
            return "associations" in line.split("=", 1)[-1]
    return False


def default_account(run: Runner = _run) -> str:
    """The user's default account from ``sacctmgr`` ("" when there is none)."""
    user = getpass.getuser()
    try:
        out = run(["sacctmgr", "-nP", "show", "user", user, "format=defaultaccount"])
    except (OSError, subprocess.SubprocessError):
        return ""
    return next((x.strip() for x in out.splitlines() if x.strip()), "")


def check_site(
    layouts: Mapping[str, GpuLayout],
    *,
    account: str,
    partition: str,
    where: str,
    run: Runner = _run,
    log: Callable[[str], None] = print,
) -> None:
    """Refuse, before any job is sent, a profile the cluster would reject or starve.

    Parameters
    ----------
    layouts : mapping
        Each GPU rule of the run and its layout.
    account, partition : str
        The profile's ``slurm_account`` and ``slurm_partition`` ("" when unset).
    where : str
        Where these are set (the profile's path), for the messages.
    run : callable
        Runs a command and returns its output (a test passes a fake).
    log : callable
        Where notes go (the account the cluster will use when none is set).

    Raises
    ------
    ConfigError
        A partition the cluster does not have; GPU rules that would run on a partition
        without GPUs; an account the cluster requires and the profile lacks.
    """
    if shutil.which("sinfo") is None and run is _run:
        log("neuroai: no sinfo on PATH: the SLURM settings are not checked against a cluster.")
        return
    known = partitions(run)
    names = [p.name for p in known]
    asked = {"slurm_partition": partition} | {
        f"gpu_partition of {rule}": lay.gpu_partition for rule, lay in layouts.items()
    }
    for key, name in asked.items():
        if name and name not in names:
            raise ConfigError(
                f"SLURM partition {name!r} ({key}) is not a partition of this cluster; "
                f"sinfo lists {names}{did_you_mean(name, names)}. Set it in {where}."
            )
    default = next((p for p in known if p.default), None)
    by_name = {p.name: p for p in known}
    for rule, lay in sorted(layouts.items()):
        target = (
            by_name.get(lay.gpu_partition or partition)
            if (lay.gpu_partition or partition)
            else default
        )
        if target is not None and not target.gpus:
            gpu_parts = [p.name for p in known if p.gpus]
            raise ConfigError(
                f"Rule {rule} asks for GPUs but would run on partition {target.name!r}, "
                f"which has no GPUs (sinfo). Set gpu_partition in {where} to one of "
                f"{gpu_parts or 'the GPU partitions of your site'}."
            )
    if not account and accounts_enforced(run):
        guess = default_account(run)
        if not guess:
            raise ConfigError(
                "This cluster requires an account for every job (AccountingStorageEnforce "
                f"includes associations) and none is set: set slurm_account in {where}."
            )
        log(
            f"neuroai: no slurm_account set; the cluster requires one and will use your "
            f"default account {guess!r} (sacctmgr). Set slurm_account in {where} to choose."
        )
