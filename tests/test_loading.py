"""Loader options sized from the CPUs: the auto rule, its inputs, and workers that change nothing."""

import importlib.util
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError
from neuroai.io import read_decathlon
from neuroai.testing import (
    graph_dataset,
    hippocampus_like_dataset,
    tiny_patch_store,
    write_token_store,
)
from neuroai.training import (
    GraphCropDataset,
    GraphDataModule,
    SegmentationDataConfig,
    SegmentationDataModule,
    TokenWindowDataModule,
    TrainConfig,
)
from neuroai.training.eeg_data import EEGWindowDataModule
from neuroai.training.loading import (
    MAX_WORKERS,
    PREFETCH_FACTOR,
    available_cpus,
    loader_options,
    tasks_sharing_cpus,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYOUT_VARIABLES = (
    "SLURM_STEP_ID",
    "SLURM_NTASKS",
    "SLURM_PROCID",
    "SLURM_NNODES",
    "SLURM_NTASKS_PER_NODE",
    "SLURM_CPUS_PER_TASK",
    "LOCAL_WORLD_SIZE",
)


@pytest.fixture
def no_layout(monkeypatch):
    """No SLURM step or torchrun layout in the environment, whatever runs the tests."""
    for name in LAYOUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _affinity(monkeypatch, n_cpus: int, cpu_count: int = 96) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n_cpus)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)


# -- the auto rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "tasks", "expected"),
    [
        (16, 1, 8),  # 15 would be free: capped
        (16, 4, 3),  # 4 CPUs per GPU process, one of them trains
        (18, 4, 3),  # 4.5 CPUs per process: whole CPUs only
        (9, 1, 8),
        (2, 1, 1),  # this machine
        (1, 1, 0),  # never negative
        (4, 8, 0),  # fewer CPUs than processes
    ],
)
def test_auto_is_the_process_share_of_the_cpus_minus_one_capped(cpus, tasks, expected):
    options = loader_options("auto", cuda=True, local_tasks=tasks, cpus=cpus)
    assert options["num_workers"] == expected == min(MAX_WORKERS, max(0, cpus // tasks - 1))
    assert options["pin_memory"] is True
    assert options["persistent_workers"] is (expected > 0)
    assert ("prefetch_factor" in options) is (expected > 0)


def test_auto_without_cuda_stays_in_one_process():
    assert loader_options("auto", cuda=False, cpus=64) == {
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
    }


def test_auto_counts_the_cpus_of_the_affinity_not_of_the_machine(monkeypatch):
    _affinity(monkeypatch, 6, cpu_count=96)  # taskset / a SLURM cgroup: 6 of 96
    assert available_cpus() == 6
    assert loader_options("auto", cuda=True)["num_workers"] == 5
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows: the machine's count
    assert available_cpus() == 96
    assert loader_options("auto", cuda=True, local_tasks=12)["num_workers"] == 7


def test_tasks_sharing_cpus_from_srun_torchrun_and_the_trainer(no_layout):
    monkeypatch = no_layout
    assert tasks_sharing_cpus() == 1
    assert tasks_sharing_cpus(devices=4) == 4  # the Trainer's processes on this node
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # torchrun
    assert tasks_sharing_cpus() == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    # An allocation without an srun step: its layout variables say nothing about this process.
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    assert tasks_sharing_cpus() == 1
    srun = {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_NNODES": "2"}
    for name, value in srun.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4(x2)")
    assert tasks_sharing_cpus() == 4
    monkeypatch.delenv("SLURM_NTASKS_PER_NODE")
    assert tasks_sharing_cpus() == 4  # 8 tasks over 2 nodes


def test_a_task_bound_to_its_own_cpus_does_not_divide_them_again(no_layout):
    monkeypatch = no_layout
    for name, value in {
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "4",
        "SLURM_PROCID": "1",
        "SLURM_NNODES": "1",
        "SLURM_NTASKS_PER_NODE": "4",
        "SLURM_CPUS_PER_TASK": "8",
    }.items():
        monkeypatch.setenv(name, value)
    _affinity(monkeypatch, 8)  # srun bound the task to its 8 CPUs
    assert tasks_sharing_cpus(devices=4) == 1
    assert loader_options("auto", cuda=True, local_tasks=tasks_sharing_cpus())["num_workers"] == 7
    _affinity(monkeypatch, 32)  # not bound: the 4 tasks share the job's 32 CPUs
    assert tasks_sharing_cpus(devices=4) == 4
    assert loader_options("auto", cuda=True, local_tasks=tasks_sharing_cpus())["num_workers"] == 7


# -- explicit counts and bad values ---------------------------------------------------


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("workers", [0, 1, 3, 12])
@pytest.mark.parametrize("cuda", [False, True])
def test_an_int_is_used_as_given_and_torch_accepts_the_options(workers, cuda):
    options = loader_options(workers, cuda=cuda, cpus=2)
    assert options["num_workers"] == workers  # 12 > 2 CPUs: the user's choice
    assert options["pin_memory"] is cuda
    assert options["persistent_workers"] is (workers > 0)
    assert options.get("prefetch_factor") == (PREFETCH_FACTOR if workers else None)
    torch.utils.data.DataLoader(range(3), **options)  # torch refuses inconsistent options


@pytest.mark.parametrize("bad", [-1, 1.5, 2.0, True, "4", "Auto", None])
def test_bad_values_are_refused_naming_the_value(bad):
    with pytest.raises(ConfigError, match="num_workers") as error:
        loader_options(bad, cuda=True)
    assert repr(bad) in str(error.value)
    with pytest.raises(ConfigError, match="num_workers") as error:
        TrainConfig(num_workers=bad)
    assert repr(bad) in str(error.value)
    with pytest.raises(ConfigError, match=r"'auto'"):
        TrainConfig.from_dict({"num_workers": bad})


def test_train_config_defaults_to_auto_and_round_trips():
    assert TrainConfig().num_workers == "auto"
    for value in ("auto", 0, 5):
        config = TrainConfig(num_workers=value)
        again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again.num_workers == value


def test_datamodule_takes_cuda_and_process_count_from_its_trainer(tmp_path, no_layout):
    monkeypatch = no_layout
    _affinity(monkeypatch, 10)
    store = tiny_patch_store(tmp_path / "store", n_recordings=2)
    data = EEGWindowDataModule([store], np.arange(4), batch_size=2, num_workers="auto")

    def trainer(device: str, n: int):
        strategy = SimpleNamespace(root_device=torch.device(device))
        return SimpleNamespace(strategy=strategy, num_devices=n)

    data.trainer = trainer("cpu", 2)  # a CPU run: one process, as before
    assert data.loader_options()["num_workers"] == 0
    assert data.train_dataloader().num_workers == 0
    data.trainer = trainer("cuda", 2)  # 2 GPU processes share 10 CPUs
    assert data.loader_options() == loader_options("auto", cuda=True, local_tasks=2, cpus=10)
    assert data.loader_options()["num_workers"] == 4
    data.trainer = trainer("cuda", 1)
    assert data.loader_options()["num_workers"] == 8
    with pytest.raises(ConfigError, match="-2"):
        EEGWindowDataModule([store], np.arange(4), batch_size=2, num_workers=-2)


# -- workers change nothing: the same batches from 0 and 2 workers -----------------------


def _eeg(tmp_path):
    store = tiny_patch_store(tmp_path / "eeg", n_recordings=4, windows_per_recording=3)
    targets = np.arange(12) % 2
    return lambda workers: EEGWindowDataModule(
        [store], np.arange(9), np.arange(9, 12), train_targets=targets[:9],
        val_targets=targets[9:], batch_size=2, val_batch_size=2, seed=5, num_workers=workers,
    )  # fmt: skip


def _tokens(tmp_path):
    stores = [
        write_token_store(tmp_path / f"s{i}_tokens.npy", n_frames=9 + 2 * i, seed=i)
        for i in range(7)
    ]
    return lambda workers: TokenWindowDataModule(
        stores[:6], stores[6:], window=4, mask_ratio=0.5, batch_size=2, seed=5,
        num_workers=workers,
    )  # fmt: skip


def _graphs(tmp_path):
    path = graph_dataset(tmp_path / "graphs")
    return lambda workers: GraphDataModule(
        GraphCropDataset.random_crops(path, range(5), length=4, samples_per_run=2),
        GraphCropDataset(path, GraphCropDataset.random_crops(path, [5], length=4).crops),
        batch_size=3, seed=5, num_workers=workers,
    )  # fmt: skip


def _segmentation(tmp_path):
    hippocampus_like_dataset(tmp_path / "seg", n_train=5, n_test=0)
    cases = read_decathlon(tmp_path / "seg").training
    config = SegmentationDataConfig(spacing=None, num_samples=2, intensity="minmax")
    return lambda workers: SegmentationDataModule(
        cases[:4], cases[4:], roi_size=(8, 12, 8), config=config, batch_size=2, seed=5,
        num_workers=workers,
    )  # fmt: skip


FAMILIES = {"eegformer": _eeg, "tablet": _tokens, "dfc_gnn": _graphs, "dsd": _segmentation}


def _flatten(value, prefix=""):
    """A batch as a flat dict of tensors and plain values (PyG batches by their stores)."""
    if hasattr(value, "to_dict") and hasattr(value, "num_graphs"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: v for key in value for k, v in _flatten(value[key], f"{prefix}/{key}").items()}
    if isinstance(value, list | tuple) and value and isinstance(value[0], torch.Tensor):
        return {k: v for i, x in enumerate(value) for k, v in _flatten(x, f"{prefix}[{i}]").items()}
    return {prefix: value}


def _batches(datamodule):
    """Training batches of epochs 0 and 1, then the validation batches."""
    loader = datamodule.train_dataloader()
    epochs = []
    for epoch in (0, 1):  # the second epoch reuses the persistent workers
        loader.sampler.set_epoch(epoch)
        epochs.append([_flatten(batch) for batch in loader])
    return epochs + [[_flatten(batch) for batch in datamodule.val_dataloader()]]


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("family", FAMILIES)
def test_two_workers_yield_exactly_the_batches_of_none(family, tmp_path):
    make = FAMILIES[family](tmp_path)
    with_workers = make(2)
    assert with_workers.train_dataloader().num_workers == 2
    alone, shared = _batches(make(0)), _batches(with_workers)
    assert [len(part) for part in alone] == [len(part) for part in shared]
    assert len(alone[0]) >= 2 and alone[2]
    for one, two in zip(sum(alone, []), sum(shared, []), strict=True):
        assert one.keys() == two.keys()
        for key in one:
            assert _equal(one[key], two[key]), key
    # Epochs differ (order, random crops, windows, masks): equal across worker counts
    # because each item is seeded, not because the data never change.
    first, second = alone[0][0], alone[1][0]
    assert not all(_equal(first[k], second[k]) for k in first)


def test_a_loader_with_workers_resumes_mid_epoch_where_it_stopped(tmp_path):
    make = _tokens(tmp_path)
    reference = make(0).train_dataloader()
    reference.sampler.set_epoch(1)
    expected = [_flatten(b) for b in reference]
    interrupted = make(2).train_dataloader()
    interrupted.sampler.set_epoch(1)
    batches = iter(interrupted)
    next(batches)  # the workers have prefetched more than this one batch
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches": 1}
    resumed = make(2).train_dataloader()
    resumed.load_state_dict(state)
    rest = [_flatten(b) for b in resumed]
    assert len(rest) == len(expected) - 1 == 2
    for one, two in zip(expected[1:], rest, strict=True):
        assert all(_equal(one[k], two[k]) for k in one)


# -- the benchmark --------------------------------------------------------------------------


def test_benchmark_quick_run_measures_every_family_and_worker_count(repo, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "loader_throughput", repo / "benchmarks" / "loader_throughput.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = tmp_path / "loader.json"
    bench.main(["--quick", "--output", str(output)])
    result = json.loads(output.read_text())
    rows = result["results"]
    assert {r["family"] for r in rows} == {"eegformer", "tablet", "dfc_gnn", "dsd"}
    for family in {r["family"] for r in rows}:
        mine = {r["workers"]: r for r in rows if r["family"] == family}
        assert sorted(mine) == [0, 1, 2]
        assert all(r["samples_per_s"] > 0 and r["batches"] > 0 for r in mine.values())
        assert mine[0]["ratio_to_0"] == 1.0
        for workers in (1, 2):
            r = mine[workers]
            assert r["ratio_to_0"] == pytest.approx(r["samples_per_s"] / mine[0]["samples_per_s"])
            assert r["per_worker_samples_per_s"] == pytest.approx(r["samples_per_s"] / workers)
