"""GPU rules on a SLURM cluster: the resources each layout asks for, the real SLURM plugin
submitting to a fake toolkit, and a launch line starting one DDP group under a fake srun."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neuroai.cluster import (
    DISTRIBUTED,
    SINGLE_GPU,
    GpuLayout,
    check_site,
    gpu_resources,
    partitions,
)
from neuroai.errors import ConfigError
from neuroai.testing import slurm
from neuroai.testing.workflow import REPO

PROFILE = REPO / "workflows" / "profiles" / "slurm" / "config.v8+.yaml"


def srun_layout(**kw):
    return GpuLayout.from_settings("tablet_pretrain", {"gpu_launch": "srun", **kw})


# --- layouts -> resources -------------------------------------------------------------


def test_one_gpu_job_is_a_plain_gpu_request_without_mpi():
    res = gpu_resources(srun_layout(gpu_partition="gpu"))
    assert res == {
        "launch": "",
        "nodes": 1,
        "cpus_per_task": 8,
        "slurm_partition": "gpu",
        "gpu": 1,
    }


def test_several_gpus_per_node_ask_tasks_per_node_and_gres_per_node():
    res = gpu_resources(srun_layout(nodes="2", gpus_per_node="4", cpus_per_gpu="6"))
    assert res["gres"] == "gpu:4" and res["tasks_per_node"] == 4 and res["nodes"] == 2
    assert "tasks" not in res and "gpu" not in res
    assert (
        res["mpi"]
        == res["launch"]
        == (
            "srun --nodes=2 --ntasks-per-node=4 --cpus-per-task=6 --gres=gpu:4 --kill-on-bad-exit=1"
        )
    )


def test_one_gpu_on_each_of_several_nodes_asks_one_task_per_gpu():
    res = gpu_resources(srun_layout(nodes=3, gpu_model="a100"))
    assert res["tasks"] == 3 and res["tasks_per_gpu"] == 1 and res["gres"] == "gpu:a100:1"
    assert "--nodes=3 --ntasks-per-node=1" in res["launch"]


def test_single_gpu_rules_keep_one_gpu_and_refuse_more():
    layout = GpuLayout.from_settings("tablet_evaluate", {"gpu_launch": "srun", "gpus_per_node": 4})
    assert layout.tasks == 1 and gpu_resources(layout)["gpu"] == 1
    assert "mpi" not in gpu_resources(layout)
    with pytest.raises(ConfigError, match="tablet_evaluate uses one GPU"):
        GpuLayout.from_settings("tablet_evaluate", {}, {"gpus_per_node": "2"})


def test_local_layouts_hold_the_machines_gpus_and_set_devices_for_lightning():
    train = GpuLayout.from_settings("segmentation_train", {"gpus_per_node": "4"})
    assert gpu_resources(train) == {"launch": "NEUROAI_DEVICES=4", "gpu": 4}
    evaluate = GpuLayout.from_settings("segmentation_evaluate", {"gpus_per_node": "4"})
    assert gpu_resources(evaluate) == {"launch": "", "gpu": 4}
    assert gpu_resources(GpuLayout.from_settings("tokens", {})) == {"launch": "", "gpu": 1}


def test_gpu_partition_defaults_to_the_profiles_partition():
    layout = GpuLayout.from_settings("tokens", {"gpu_launch": "srun", "slurm_partition": "'big'"})
    assert gpu_resources(layout)["slurm_partition"] == "big"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"gpus_per_node": "four"}, "gpus_per_node must be a whole number"),
        ({"nodes": "0"}, "nodes must be a whole number"),
        ({"gpu_launch": "srn"}, "Did you mean 'srun'"),
    ],
)
def test_bad_layout_values_name_the_rule_key_and_where_to_set_it(settings, message):
    with pytest.raises(ConfigError, match=message) as info:
        GpuLayout.from_settings("eegformer_pretrain", settings)
    assert "eegformer_pretrain" in str(info.value) and "default-resources" in str(info.value)


def test_every_gpu_rule_of_the_workflow_takes_its_resources_from_the_layout():
    text = "\n".join(p.read_text() for p in (REPO / "workflows" / "rules").glob("*.smk"))
    for rule in DISTRIBUTED + SINGLE_GPU:
        body = re.search(rf"^rule {rule}:\n(.*?)(?=^rule |\Z)", text, re.S | re.M).group(1)
        assert "**GPU," in body, rule
        assert "gpu=" not in body and "mpi=" not in body, rule
        if rule in DISTRIBUTED:
            assert '"{resources.launch} python -m neuroai.pipelines.' in body, rule


# --- the cluster's answers ------------------------------------------------------------


def fake_cluster(
    rows="cpu*|(null)\ngpu|gpu:a100:4(S:0-1)\ngpu|gpu:h100:8", enforce=False, account="lab"
):
    def run(command):
        if command[0] == "sinfo":
            return rows
        if command[0] == "scontrol":
            return f"AccountingStorageEnforce = {'associations,limits' if enforce else 'none'}\n"
        if command[0] == "sacctmgr":
            return account
        raise AssertionError(command)

    return run


def test_partitions_merge_node_sets_and_mark_the_default():
    parts = {p.name: p for p in partitions(fake_cluster())}
    assert parts["cpu"].default and not parts["cpu"].gpus
    assert parts["gpu"].gpus and not parts["gpu"].default


def test_site_check_refuses_gpu_rules_on_a_partition_without_gpus():
    layouts = {"tablet_pretrain": srun_layout()}
    with pytest.raises(ConfigError, match="would run on partition 'cpu', which has no GPUs") as e:
        check_site(layouts, account="lab", partition="", where="PROFILE", run=fake_cluster())
    assert "gpu_partition in PROFILE" in str(e.value) and "['gpu']" in str(e.value)
    check_site(
        {"tablet_pretrain": srun_layout(gpu_partition="gpu")},
        account="lab",
        partition="",
        where="PROFILE",
        run=fake_cluster(),
    )


def test_site_check_refuses_an_unknown_partition():
    with pytest.raises(
        ConfigError, match=r"'gpus' \(gpu_partition of tokens\).*Did you mean 'gpu'"
    ):
        check_site(
            {
                "tokens": GpuLayout.from_settings(
                    "tokens", {"gpu_launch": "srun", "gpu_partition": "gpus"}
                )
            },
            account="",
            partition="cpu",
            where="PROFILE",
            run=fake_cluster(),
        )


def test_site_check_on_accounts():
    layouts = {"tokens": GpuLayout.from_settings("tokens", {"gpu_partition": "gpu"})}
    notes = []
    check_site(
        layouts,
        account="",
        partition="",
        where="P",
        run=fake_cluster(enforce=True),
        log=notes.append,
    )
    assert "default account 'lab'" in notes[0] and "slurm_account in P" in notes[0]
    with pytest.raises(ConfigError, match="requires an account.*set slurm_account in P"):
        check_site(
            layouts, account="", partition="", where="P", run=fake_cluster(enforce=True, account="")
        )
    check_site(
        layouts, account="", partition="", where="P", run=fake_cluster(enforce=False, account="")
    )


# --- the real plugin, submitting to a fake toolkit ------------------------------------


def site_profile(folder: Path, **default_resources) -> Path:
    """The repository's SLURM profile with a site's settings, as a user would edit it."""
    settings = yaml.safe_load(PROFILE.read_text())
    settings["default-resources"].update(default_resources)
    settings["latency-wait"] = 1
    settings["retries"] = 0
    settings["slurm-init-seconds-before-status-checks"] = 1
    settings["set-resources"] = {
        "tablet_pretrain": {"nodes": 2, "gpus_per_node": 4},
        "eegformer_pretrain": {"gpus_per_node": 2},
        "dfc_gnn_pretrain": {"nodes": 2},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.v8+.yaml").write_text(yaml.safe_dump(settings))
    return folder


def snakemake(project, profile, env, *args, timeout=600):
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(project), "--profile", str(profile), *args,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    """The demo's GPU jobs submitted by snakemake-executor-plugin-slurm to the fake toolkit."""
    root = tmp_path_factory.mktemp("slurm")
    env = slurm.install(root / "cluster")
    project = root / "project"
    project.mkdir()
    rules = slurm.placeholder_outputs(project, REPO / "Snakefile", state=root / "cluster")
    gpu_rules = [r for r in DISTRIBUTED + SINGLE_GPU if r in rules]
    profile = site_profile(
        root / "profile", slurm_account="lab", slurm_partition="cpu", gpu_partition="gpu"
    )
    done = snakemake(project, profile, env, "--forcerun", *gpu_rules)
    return done, slurm.submitted(root / "cluster"), gpu_rules


def test_the_plugin_submits_every_gpu_rule_with_its_layout(submission):
    done, jobs, gpu_rules = submission
    assert done.returncode == 0, done.stderr[-4000:]
    assert "refused" not in done.stderr and "sbatch failed" not in done.stderr
    # The demo trains and evaluates every family: all GPU rules but the tokenizer's
    # training (the demo uses the bundled autoencoder).
    assert set(gpu_rules) == set(DISTRIBUTED + SINGLE_GPU) - {
        "tokenizer_train",
        "tokenizer_finetune",
    }
    lines = {}
    for job in jobs:
        lines.setdefault(job["rule"], " ".join(job["options"]))
    assert set(gpu_rules) <= set(lines)
    for rule in gpu_rules:
        line = lines[rule]
        assert "-A lab" in line and "-p gpu" in line and "--cpus-per-task=8" in line, line
        assert "--requeue" in line, line
    assert lines["tablet_pretrain"].count("--nodes=2") == 1
    assert (
        "--ntasks-per-node=4" in lines["tablet_pretrain"]
        and "--gres=gpu:4" in lines["tablet_pretrain"]
    )
    assert "--ntasks-per-gpu" not in lines["tablet_pretrain"]
    assert (
        "--ntasks-per-node=2" in lines["eegformer_pretrain"]
        and "--gres=gpu:2" in lines["eegformer_pretrain"]
    )
    assert (
        "--ntasks-per-gpu=1 --ntasks=2" in lines["dfc_gnn_pretrain"]
        and "--gres=gpu:1" in lines["dfc_gnn_pretrain"]
    )
    for rule in set(gpu_rules) - {"tablet_pretrain", "eegformer_pretrain", "dfc_gnn_pretrain"}:
        assert "--gpus=1" in lines[rule] and "--nodes=1" in lines[rule], lines[rule]
        assert "--ntasks" not in lines[rule], lines[rule]
    # CPU rules: the CPU partition, no GPU.
    assert "-p cpu" in lines["tokens_summary"] and "gpu" not in lines["tokens_summary"].replace(
        "-p cpu", ""
    )


def test_the_job_carries_the_layout_to_its_jobstep(submission):
    """The job process re-reads the profile's resources from its command line, so its
    launch line is the one the submission was made for."""
    _, jobs, _ = submission
    job = next(j for j in jobs if j["rule"] == "tablet_pretrain")
    assert "--executor slurm-jobstep" in job["wrap"]
    assert "--set-resources" in job["wrap"] and "--default-resources" in job["wrap"]


def test_a_cluster_that_needs_an_account_gets_a_clear_message(tmp_path):
    env = slurm.install(
        tmp_path / "cluster", enforce_accounts=True, default_account="", accounts=()
    )
    project = tmp_path / "project"
    project.mkdir()
    rules = slurm.placeholder_outputs(project, REPO / "Snakefile", state=tmp_path / "cluster")
    profile = site_profile(tmp_path / "profile", gpu_partition="gpu")
    done = snakemake(project, profile, env, "--forcerun", "tokens", timeout=300)
    assert done.returncode != 0 and "tokens" in rules
    assert "requires an account for every job" in done.stderr
    assert "set slurm_account in the profile" in done.stderr
    assert not (tmp_path / "cluster" / "sbatch.jsonl").exists()


def test_gpu_rules_left_on_a_cpu_partition_are_refused_before_submission(tmp_path):
    env = slurm.install(tmp_path / "cluster")
    project = tmp_path / "project"
    project.mkdir()
    slurm.placeholder_outputs(project, REPO / "Snakefile", state=tmp_path / "cluster")
    profile = site_profile(tmp_path / "profile", slurm_account="lab")
    done = snakemake(project, profile, env, "--forcerun", "segmentation_evaluate", timeout=300)
    assert done.returncode != 0
    assert "which has no GPUs (sinfo). Set gpu_partition in the profile" in done.stderr
    assert not (tmp_path / "cluster" / "sbatch.jsonl").exists()


# --- the launch line under srun -------------------------------------------------------


def jobstep_environment(folder, *, job_id):
    """The environment the jobstep gives an ``mpi`` job: the fake toolkit first on PATH,
    no SLURM layout variables but the job id, no inherited rendezvous, one thread."""
    env = slurm.install(folder)
    env = {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SRUN_", "SBATCH_"))}
    env |= {"SLURM_JOB_ID": job_id, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("MASTER_PORT", "MASTER_ADDR", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE"):
        env.pop(name, None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("nodes, per_node", [(1, 2), (2, 1)])
def test_the_launch_line_forms_one_ddp_group_under_srun(tmp_path, nodes, per_node):
    """The rule's launch line, run as the jobstep runs it (no SLURM layout variables left
    but the job id), starts nodes x per_node tasks under the fake srun; Lightning joins them
    into one gloo group, and every rank ends at the same step with the same weights."""
    from neuroai.io import read_provenance
    from neuroai.testing import graph_dataset

    env = jobstep_environment(tmp_path / "cluster", job_id="98765")
    layout = GpuLayout.from_settings(
        "dfc_gnn_pretrain",
        {"gpu_launch": "srun", "cpus_per_gpu": "1"},
        {"nodes": str(nodes), "gpus_per_node": str(per_node)},
    )
    graphs = graph_dataset(tmp_path / "graphs")
    params = {
        "model": {"options": {"hidden": 8, "gin_layers": 1, "heads": 1}},
        "data": {"crop_windows": 5, "samples_per_run": 2},
        "training": {
            "max_steps": 3, "batch_size": 2, "val_every_steps": 0, "log_every_steps": 1,
            "strategy": "ddp", "accelerator": "cpu", "progress_bar": False,
        },
    }  # fmt: skip
    out = tmp_path / "out"
    command = (
        f"{gpu_resources(layout)['launch']} {shlex.quote(sys.executable)} -m neuroai.pipelines.dfc_gnn_pretrain "
        f"--graphs {graphs} --model-output {out}/model --history-output {out}/history.tsv "
        f"--threads 1 --params {shlex.quote(json.dumps(params))} --log {tmp_path}/pretrain.log"
    )
    done = subprocess.run(
        command, shell=True, env=env, capture_output=True, text=True, timeout=300,
        start_new_session=True, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    steps = [json.loads(x) for x in (tmp_path / "cluster" / "srun.jsonl").read_text().splitlines()]
    assert steps == [{"argv": steps[0]["argv"], "nodes": nodes, "per_node": per_node}]
    pattern = (
        r"rank (\d+) of (\d+) \(node (\d+), local rank (\d+)\) finished at step (\d+): "
        r"weights sha256 (\w+)"
    )
    finished = set(re.findall(pattern, (tmp_path / "pretrain.log").read_text()))
    ranks = sorted((int(r), int(node), int(local)) for r, _, node, local, _, _ in finished)
    assert ranks == [(r, r // per_node, r % per_node) for r in range(nodes * per_node)]
    assert {(w, s) for _, w, _, _, s, _ in finished} == {(str(nodes * per_node), "3")}
    assert len({d for *_, d in finished}) == 1, finished
    record = read_provenance(out / "model")
    assert record["extra"]["world_size"] == nodes * per_node


@pytest.mark.slow
def test_a_requeued_ddp_job_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    """Preemption as SLURM does it: every task is killed, then the same command runs again
    (``--requeue``). The second run resumes from the run folder's last checkpoint and ends
    with the weights of a run that was never interrupted."""
    import signal
    import time

    from neuroai.testing import graph_dataset

    env = jobstep_environment(tmp_path / "cluster", job_id="98766")
    layout = GpuLayout.from_settings(
        "dfc_gnn_pretrain", {"gpu_launch": "srun", "cpus_per_gpu": "1", "gpus_per_node": "2"}
    )
    graphs = graph_dataset(tmp_path / "graphs")
    params = {
        "model": {"options": {"hidden": 8, "gin_layers": 1, "heads": 1}},
        "data": {"crop_windows": 5, "samples_per_run": 2},
        "training": {
            "max_steps": 40, "batch_size": 2, "val_every_steps": 0, "log_every_steps": 5,
            "checkpoint_every_steps": 4, "strategy": "ddp", "accelerator": "cpu",
            "progress_bar": False,
        },
    }  # fmt: skip

    def command(name):
        out = tmp_path / name
        return (
            f"{gpu_resources(layout)['launch']} {shlex.quote(sys.executable)} -m "
            f"neuroai.pipelines.dfc_gnn_pretrain --graphs {graphs} --model-output {out}/model "
            f"--history-output {out}/history.tsv --run-dir {out}/run --threads 1 "
            f"--params {shlex.quote(json.dumps(params))} --log {out}.log"
        )

    def digests(name):
        pattern = r"rank (\d+) of 2 .* finished at step 40: weights sha256 (\w+)"
        return dict(re.findall(pattern, (tmp_path / f"{name}.log").read_text()))

    def run(name):
        done = subprocess.run(
            command(name), shell=True, env=env, capture_output=True, text=True,
            timeout=300, start_new_session=True, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]

    run("whole")
    # The preempted job: every task killed once the first checkpoint is on disk.
    job = subprocess.Popen(
        command("requeued"), shell=True, env=env, cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    checkpoint = tmp_path / "requeued" / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert checkpoint.exists() and not (tmp_path / "requeued" / "model").exists()
    run("requeued")
    log = (tmp_path / "requeued.log").read_text()
    assert re.search(r"Resuming .* from step (\d+)", log), log[-2000:]
    whole, requeued = digests("whole"), digests("requeued")
    assert set(whole) == {"0", "1"} and len(set(whole.values())) == 1
    assert requeued == whole


def test_the_workstation_profile_runs_training_as_ddp_over_its_gpus(tmp_path):
    profile = REPO / "workflows" / "profiles" / "workstation"
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(tmp_path), "--profile", str(profile), "-n", "-p",
        "results/tablet/demo_volumes/metrics.json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    pretrain = [
        x for x in output.splitlines() if "python -m neuroai.pipelines.tablet_pretrain " in x
    ]
    evaluate = [
        x for x in output.splitlines() if "python -m neuroai.pipelines.tablet_evaluate " in x
    ]
    assert pretrain and all(
        x.split("python -m")[0].endswith("NEUROAI_DEVICES=4 ") for x in pretrain
    )
    assert evaluate and all("NEUROAI_DEVICES" not in x for x in evaluate)
    # Every GPU job holds the machine's 4 GPUs, so `resources: gpu: 4` runs one at a time.
    gpu_lines = [x for x in output.splitlines() if re.search(r"resources:.*\blaunch=", x)]
    assert gpu_lines and all("gpu=4" in x for x in gpu_lines)


def test_neuroai_devices_sets_the_device_count_outside_srun(monkeypatch):
    from neuroai.training import TrainConfig, resolve_devices

    for name in ("SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEUROAI_DEVICES", "3")
    assert resolve_devices(TrainConfig(max_steps=1)) == (3, 1)
    assert resolve_devices(TrainConfig(max_steps=1, devices=2)) == (2, 1)
    # Under srun the step's layout wins.
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NNODES", "2")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "2(x2)")
    assert resolve_devices(TrainConfig(max_steps=1)) == (2, 2)


def test_a_gpu_run_without_a_gpu_says_so_or_refuses(monkeypatch, caplog):
    import torch

    from neuroai.training import TrainConfig, gpu_policy
    from neuroai.training.launch import check_accelerator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with caplog.at_level("WARNING"):
        check_accelerator(TrainConfig(max_steps=1))
    assert "No GPU visible (CUDA_VISIBLE_DEVICES=''" in caplog.text
    refuse = TrainConfig.from_dict(gpu_policy({"max_steps": 1}, "paper"))
    with pytest.raises(ConfigError, match="needs a GPU .*training.without_gpu: cpu"):
        check_accelerator(refuse)
    check_accelerator(TrainConfig.from_dict({**refuse.to_dict(), "accelerator": "cpu"}))
    assert gpu_policy({}, "demo")["without_gpu"] == "cpu"
    assert gpu_policy({"without_gpu": "cpu"}, "paper")["without_gpu"] == "cpu"
    with pytest.raises(ConfigError, match="without_gpu"):
        TrainConfig(max_steps=1, without_gpu="never").validate()


def test_the_paper_preset_stage_refuses_to_start_on_a_cpu_machine(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    from neuroai.testing import graph_dataset

    graphs = graph_dataset(tmp_path / "graphs")
    params = {"model": {"preset": "paper"}, "training": {"max_steps": 1}}
    command = [
        sys.executable, "-m", "neuroai.pipelines.dfc_gnn_pretrain", "--graphs", str(graphs),
        "--model-output", str(tmp_path / "out" / "model"),
        "--history-output", str(tmp_path / "out" / "history.tsv"),
        "--params", json.dumps(params), "--log", str(tmp_path / "log.txt"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode != 0
    assert "needs a GPU (training.without_gpu: refuse)" in done.stderr + done.stdout
    assert not (tmp_path / "out" / "model").exists()
