"""A fake SLURM toolkit: ``sbatch``, ``squeue``, ``sacct``, ``scancel``, ``sinfo``,
``scontrol``, ``sacctmgr`` and ``srun`` as small scripts to put first on ``PATH``.

The real ``snakemake-executor-plugin-slurm`` then submits to them: ``sbatch`` records
every call (its arguments, as one JSON line per job, in ``sbatch.jsonl``) and answers a
job id without running anything; ``sacct`` reports every recorded job COMPLETED. A
cluster's answers are configurable (:func:`install`): its partitions and their GPUs,
whether accounts are enforced, the user's accounts, and whether ``sbatch`` refuses a job
without an account.

``srun`` runs its command as the tasks SLURM would start: ``--nodes`` x
``--ntasks-per-node`` local processes, each with the environment SLURM gives a task
(``SLURM_PROCID``, ``SLURM_LOCALID``, ``SLURM_NODEID``, ``SLURM_NTASKS``,
``SLURM_NTASKS_PER_NODE``, ``SLURM_NNODES``, ``SLURM_STEP_ID``, ``SLURM_NODELIST``, ...),
all on this machine; it fails when any task fails, like ``--kill-on-bad-exit``.

:func:`placeholder_outputs` creates every output of a workflow's DAG as an empty file or
folder, so that a submission test reaches every rule without computing anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

_COMMON = r"""
import json, os, sys
from pathlib import Path
STATE = Path(os.environ["FAKE_SLURM_STATE"])
SETTINGS = json.loads((STATE / "settings.json").read_text())
def jobs():
    path = STATE / "sbatch.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
"""

_SBATCH = r"""
args = sys.argv[1:]
wrap = next((a.split("=", 1)[1] for a in args if a.startswith("--wrap=")), None)
script = sys.stdin.read() if "/dev/stdin" in args else None
options = [a for a in args if not a.startswith("--wrap=")]
if SETTINGS["refuse_without_account"] and "-A" not in options:
    print("sbatch: error: Batch job submission failed: Invalid account or "
          "account/partition combination specified", file=sys.stderr)
    sys.exit(1)
job_id = 1000 + len(jobs())
record = {"id": job_id, "options": options, "wrap": wrap, "script": script}
with open(STATE / "sbatch.jsonl", "a") as f:
    f.write(json.dumps(record) + "\n")
print(job_id)
"""

_SACCT = r"""
if "-nu" in sys.argv:  # the plugin's account guess: the account of recent jobs
    print(SETTINGS["default_account"])
    sys.exit(0)
outputs = STATE / "outputs.json"
for path, is_dir in json.loads(outputs.read_text()) if outputs.exists() else []:
    path = Path(path)
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
for job in jobs():
    print(f"{job['id']}|COMPLETED")
"""

_SQUEUE = r"""
sys.exit(0)
"""

_SCANCEL = r"""
sys.exit(0)
"""

_SINFO = r"""
rows = SETTINGS["partitions"]
if any("%G" in a for a in sys.argv):
    for name, gres in rows:
        print(f"{name}|{gres}")
else:
    if "-h" not in sys.argv:
        print("PARTITION")
    for name, _ in rows:
        print(name)
"""

_SCONTROL = r"""
if sys.argv[1:3] == ["show", "config"]:
    enforce = "associations,limits" if SETTINGS["enforce_accounts"] else "none"
    print(f"AccountingStorageEnforce = {enforce}")
    print("MinJobAge               = 300 sec")
elif sys.argv[1:3] == ["show", "partition"]:
    for name, _ in SETTINGS["partitions"]:
        print(f"PartitionName={name.rstrip('*')}\n   MaxNodes=UNLIMITED MaxTime=UNLIMITED\n")
"""

_SACCTMGR = r"""
if any(a.startswith("format=defaultaccount") for a in sys.argv):
    print(SETTINGS["default_account"])
else:
    for account in SETTINGS["accounts"]:
        print(account)
"""

_SRUN = r"""
import signal, subprocess
args = sys.argv[1:]
layout = {"nodes": 1, "ntasks-per-node": 1}
while args and args[0].startswith("-"):
    option = args.pop(0)
    if option.startswith("--") and "=" in option:
        key, value = option[2:].split("=", 1)
        if key in layout:
            layout[key] = int(value)
    elif option in ("-n", "-N", "-c"):
        value = args.pop(0)
        if option == "-N":
            layout["nodes"] = int(value)
        elif option == "-n":
            layout["ntasks-per-node"] = int(value)
nodes, per_node = layout["nodes"], layout["ntasks-per-node"]
tasks = nodes * per_node
with open(STATE / "srun.jsonl", "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "nodes": nodes, "per_node": per_node}) + "\n")
job_id = os.environ.get("SLURM_JOB_ID", "4321")
processes = []
for rank in range(tasks):
    env = dict(os.environ)
    env.update({
        "SLURM_JOB_ID": job_id, "SLURM_JOBID": job_id, "SLURM_JOB_NAME": "neuroai-fake",
        "SLURM_STEP_ID": "0", "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank % per_node),
        "SLURM_NODEID": str(rank // per_node), "SLURM_NTASKS": str(tasks),
        "SLURM_STEP_NUM_TASKS": str(tasks), "SLURM_NTASKS_PER_NODE": str(per_node),
        "SLURM_NNODES": str(nodes), "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost",
        "SLURMD_NODENAME": "localhost",
    })
    processes.append(subprocess.Popen(args, env=env))
codes = [p.wait() for p in processes]
bad = [c for c in codes if c != 0]
sys.exit(bad[0] if bad else 0)
"""

SCRIPTS = {
    "sbatch": _SBATCH,
    "sacct": _SACCT,
    "squeue": _SQUEUE,
    "scancel": _SCANCEL,
    "sinfo": _SINFO,
    "scontrol": _SCONTROL,
    "sacctmgr": _SACCTMGR,
    "srun": _SRUN,
}


def install(
    folder: str | Path,
    *,
    partitions: tuple[tuple[str, str], ...] = (("cpu*", "(null)"), ("gpu", "gpu:a100:4(S:0-1)")),
    enforce_accounts: bool = False,
    accounts: tuple[str, ...] = ("lab",),
    default_account: str = "lab",
    refuse_without_account: bool = False,
) -> dict[str, str]:
    """Write the fake commands into ``folder/bin`` and return the environment to use them.

    Parameters
    ----------
    folder : path
        Gets ``bin/`` (the commands) and the state: ``settings.json``, ``sbatch.jsonl``
        (one line per submitted job), ``srun.jsonl`` (one line per step).
    partitions : tuple of (name, gres)
        What ``sinfo -o %P|%G`` prints; the default partition ends with ``*``.
    enforce_accounts : bool
        ``AccountingStorageEnforce`` includes ``associations``.
    accounts, default_account : str
        The user's accounts (``sacctmgr``) and default account ("" for none).
    refuse_without_account : bool
        ``sbatch`` fails for a job without ``-A``.

    Returns
    -------
    dict
        ``os.environ`` with ``bin/`` first on ``PATH`` and ``FAKE_SLURM_STATE`` set.
    """
    folder = Path(folder)
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "partitions": [list(p) for p in partitions],
        "enforce_accounts": enforce_accounts,
        "accounts": list(accounts),
        "default_account": default_account,
        "refuse_without_account": refuse_without_account,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    for name, body in SCRIPTS.items():
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{_COMMON}\n{body}")
        path.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env["FAKE_SLURM_STATE"] = str(folder)
    return env


def submitted(folder: str | Path) -> list[dict]:
    """The recorded ``sbatch`` calls: ``id``, ``options`` (the arguments), ``wrap``, and
    ``rule`` (from the plugin's ``--comment rule_<name>...``)."""
    path = Path(folder) / "sbatch.jsonl"
    records = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    for record in records:
        options = record["options"]
        comment = options[options.index("--comment") + 1] if "--comment" in options else ""
        record["rule"] = comment.removeprefix("rule_").split("_wildcards_")[0]
    return records


_PLACEHOLDERS = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings, DAGSettings, DeploymentSettings, OutputSettings, ResourceSettings,
    StorageSettings, WorkflowSettings,
)
snakefile, workdir = Path(sys.argv[1]), Path(sys.argv[2])
configfiles = [Path(x) for x in sys.argv[3:]]
with SnakemakeApi(OutputSettings()) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=configfiles),
        storage_settings=StorageSettings(),
        workflow_settings=WorkflowSettings(),
        deployment_settings=DeploymentSettings(),
        snakefile=snakefile,
        workdir=workdir,
    )
    workflow = workflow_api.dag(DAGSettings(forceall=True)).workflow_api._workflow
    workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True)
    workflow._build_dag()
    outputs = []
    for job in workflow.dag.jobs:
        files = list(job.output) + list(job.log) + ([job.benchmark] if job.benchmark else [])
        outputs += [[str(f), bool(getattr(f, "is_directory", False)), job.rule.name] for f in files]
print("OUTPUTS " + json.dumps(outputs))
"""


def placeholder_outputs(
    workdir: str | Path,
    snakefile: str | Path,
    configfiles: tuple[str | Path, ...] = (),
    *,
    state: str | Path | None = None,
) -> set[str]:
    """Create every output of the workflow's DAG in ``workdir`` as an empty file or folder
    (all with one time stamp, so nothing is out of date); returns the DAG's rules.

    With ``state`` (the folder given to :func:`install`), the list is kept there and the
    fake ``sacct`` re-creates any that is missing when it reports jobs COMPLETED: Snakemake
    deletes a job's outputs before it submits the job, and the fake job computes nothing.
    Snakemake's API runs in a subprocess (it changes the working directory).
    """
    done = subprocess.run(
        [sys.executable, "-c", _PLACEHOLDERS, str(snakefile), str(workdir)]
        + [str(c) for c in configfiles],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("OUTPUTS ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"listing the DAG's outputs failed:\n{done.stderr[-3000:]}")
    listed = json.loads(lines[-1][8:])
    outputs = [(str(Path(workdir) / path), is_dir) for path, is_dir, _ in listed]
    stamp = time.time() - 60
    for path, is_dir in outputs:
        _create(Path(path), is_dir, stamp)
    if state is not None:
        (Path(state) / "outputs.json").write_text(json.dumps(outputs))
    return {rule for _, _, rule in listed}


def _create(path: Path, is_dir: bool, stamp: float | None = None) -> None:
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    if stamp is not None:
        os.utime(path, (stamp, stamp))
