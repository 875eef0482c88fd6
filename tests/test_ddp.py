"""The same training on 2 CPU processes with DDP (gloo), launched as a subprocess.

Lightning's DDP launcher re-runs the command for the second rank, so the stage runs in
a subprocess (never inside pytest), in its own process group, with a timeout; on
failure or timeout the whole group is killed so that no orphaned rank hangs.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from neuroai.io import load_table, read_provenance
from neuroai.testing import hippocampus_like_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_group(command, *, timeout, env):
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"DDP run timed out after {timeout} s:\n{err[-3000:]}")
    if process.returncode != 0:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return process.returncode, out, err


def ddp_environment(repo) -> dict[str, str]:
    """The environment of a launched stage: no inherited rendezvous variables, one thread."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MASTER_PORT", "MASTER_ADDR", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_training_on_two_cpu_processes_with_gloo(tmp_path, repo):
    dataset = hippocampus_like_dataset(tmp_path / "Task04", n_train=5, n_test=1, test_labels=True)
    params = {
        "model": {
            "options": {
                "roi_size": [16, 16, 16],
                "backbone_options": {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0},
            }
        },
        "training": {
            "max_steps": 4,
            "batch_size": 1,
            "val_every_steps": 4,
            "log_every_steps": 1,
            "strategy": "ddp",
            "devices": 2,
            "accelerator": "cpu",
            "progress_bar": False,
        },
        "data": {"spacing": None, "num_samples": 1, "intensity": "minmax"},
        "split": {"n_val": 1},
    }
    env = ddp_environment(repo)
    command = [
        sys.executable, "-m", "neuroai.pipelines.segmentation_train",
        "--dataset", str(dataset),
        "--model-output", str(tmp_path / "out" / "model"),
        "--history-output", str(tmp_path / "out" / "history.tsv"),
        "--threads", "1",
        "--params", json.dumps(params),
        "--log", str(tmp_path / "train.log"),
    ]  # fmt: skip
    code, out, err = run_group(command, timeout=300, env=env)
    assert code == 0, err[-3000:]
    record = read_provenance(tmp_path / "out" / "model")
    assert record["extra"]["world_size"] == 2 and record["extra"]["steps"] == 4
    history = load_table(tmp_path / "out" / "history.tsv")
    assert "val/dice" in history.columns


def test_dfc_gnn_pretraining_on_two_cpu_processes_with_gloo(tmp_path, repo):
    from neuroai.models import load_pretrained
    from neuroai.testing import graph_dataset

    graphs = graph_dataset(tmp_path / "graphs")
    params = {
        "model": {"options": {"hidden": 8, "gin_layers": 1, "heads": 1}},
        "data": {"crop_windows": 5, "samples_per_run": 2},
        "training": {
            "max_steps": 3,
            "batch_size": 2,
            "val_every_steps": 0,
            "log_every_steps": 1,
            "strategy": "ddp",
            "devices": 2,
            "accelerator": "cpu",
            "progress_bar": False,
        },
    }
    env = ddp_environment(repo)
    command = [
        sys.executable, "-m", "neuroai.pipelines.dfc_gnn_pretrain",
        "--graphs", str(graphs),
        "--model-output", str(tmp_path / "out" / "model"),
        "--history-output", str(tmp_path / "out" / "history.tsv"),
        "--threads", "1",
        "--params", json.dumps(params),
        "--log", str(tmp_path / "pretrain.log"),
    ]  # fmt: skip
    code, out, err = run_group(command, timeout=300, env=env)
    assert code == 0, err[-3000:]
    record = read_provenance(tmp_path / "out" / "model")
    assert record["extra"]["world_size"] == 2 and record["extra"]["steps"] == 3
    assert load_pretrained(tmp_path / "out" / "model").config.hidden == 8
    history = load_table(tmp_path / "out" / "history.tsv")
    assert history["train/loss"].notna().sum() == 3
