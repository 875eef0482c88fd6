"""The GPU check: the gpu tests, bf16 resume, and whether loading keeps up, in one run.

On one lent GPU (H100 or H200), from the repository root, in one command:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out $OUT

The GPU machine's ``python3`` has PyTorch, Lightning and PyG but lacks some packages
neuroai imports; ``.whl/`` (ignored by git, carried to the machine) holds their wheels for
Python 3.12, downloaded beforehand with ``pip download --no-deps --only-binary=:all:`` as
the device notes say: monai, nibabel, jsonschema, jsonschema-specifications, referencing,
rpds-py, diffusers, importlib-metadata. The run is sized for about 6 minutes and stops
cleanly, writing what it has, before ``--budget`` seconds (450 s = 7.5 minutes). On a CPU,
``python benchmarks/gpu_check.py --device cpu --quick`` runs every part on tiny sizes in
fp32 in under a minute (``tests/test_gpu_check.py`` runs it).

The parts, each timed; each family's parts are run and recorded on their own, so one
failing family leaves its error in the JSON and the others go on:

a. **gpu tests**: ``python -m pytest -m gpu -q -p no:cacheprovider`` in a subprocess:
   pass, fail and skip counts and time (killed at 40 % of the budget).
b. **resume**: every registry family trains ``--steps`` optimizer steps (200) of its
   ``demo`` preset through the engine (``fit``, ``TrainConfig(precision="auto")``: bf16
   mixed on a GPU, fp32 on a CPU; deterministic algorithms), once uninterrupted and once
   killed at 60 % (``CrashAtStep``) and resumed from its run folder's last checkpoint.
   Reported: the largest absolute difference between the two runs' final weights and
   buffers (0: the resume is exact).
c. **throughput**: samples per second of the family's training step (forward, backward,
   optimizer step; bf16 autocast on a GPU; CUDA-synchronised) on one batch already on
   the device ("model alone") against the same step fed by the family's own resumable
   DataLoader ("end to end", ``--workers`` loader processes, default the engine's
   ``"auto"``), with the ``--preset`` model (``paper`` sizes; ``demo`` with ``--quick``).
   Warm-up steps are not timed; end to end they also drain the batches the workers had
   prefetched at start-up (``workers x prefetch_factor``), and the timed steps are at
   least three times that, so the rate is the loader's steady state. The goal is
   end to end / model alone >= 0.9.

The data are small synthetic on-disk datasets written by ``neuroai.testing`` with the
per-sample sizes of real runs (the quick ones are the tests' tiny ones):

=========  =====================================  ============================================
family     trained as                              data
=========  =====================================  ============================================
dsd        SupervisedModule (Dice+CE, DSD heads)  Decathlon folder, 91 x 109 x 91 volumes
eegformer  PretrainModule (VQ-VAE)                patch store, 22 channels x 12 s at 250 Hz
probe      FineTuneModule (EEGFormer + head)      the same store, normal / abnormal labels
eegnet     FineTuneModule (EEGNet-8,2 + head)     the same store's time patches, same labels
dfc_gnn    PretrainModule (masked dFC)            graph dataset, 200 regions, 300 TRs a run
tablet     PretrainModule (masked tokens)         token stores, 27 x 3072 float16 per frame
=========  =====================================  ============================================

Output, in ``--out`` (default ``$OUT`` when set, else ``benchmarks/results/``):
``gpu_check.json`` (settings, device, every part's record and time, errors with their
traceback), rewritten after every part, so a run stopped from outside leaves what it had;
and ``gpu_check.md``, the table for the README (also printed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import itertools
import json
import logging
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_RATIO = 0.9
FALLBACK_WORKERS = 4  # an engine without num_workers="auto"


@dataclass(frozen=True)
class Sizes:
    """How long the runs and the measurements are (``--quick``: CPU seconds)."""

    quick: bool
    steps: int  # optimizer steps of each resume run
    warmup: int  # untimed steps of each throughput measurement (at least)
    timed: int  # timed steps of each throughput measurement (at least)
    measure_s: float  # at most this long per throughput measurement
    reserve_s: float  # kept at the end of the budget to write the results

    @classmethod
    def make(cls, quick: bool, steps: int | None) -> Sizes:
        if quick:
            return cls(True, steps or 12, warmup=2, timed=5, measure_s=10.0, reserve_s=5.0)
        return cls(False, steps or 200, warmup=10, timed=60, measure_s=20.0, reserve_s=15.0)


class OutOfTime(Exception):
    """The whole budget ran out inside a part (raised by the watchdog alarm)."""


@dataclass
class Check:
    """What every part of one run shares."""

    sizes: Sizes
    device: str  # "cuda" or "cpu"
    workers: int | str  # loader processes, or "auto"
    preset: str  # model preset of the throughput part
    data: SyntheticData
    workdir: Path  # run folders
    budget_s: float
    start: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        """Seconds left of the budget."""
        return self.budget_s - (time.monotonic() - self.start)


# -- synthetic data, each dataset written once ---------------------------------------------


class SyntheticData:
    """The families' on-disk datasets, written into ``root`` when first asked for."""

    def __init__(self, root: Path, quick: bool) -> None:
        self.root, self.quick = root, quick
        self._made: dict[str, object] = {}

    def get(self, name: str):
        """Dataset ``name`` (``eeg_store``, ``graphs``, ``token_stores``, ``decathlon``)."""
        if name not in self._made:
            self._made[name] = getattr(self, f"_{name}")()
        return self._made[name]

    def make(self, name: str) -> dict:
        """Write dataset ``name`` unless it is there (a record for :func:`guarded`)."""
        self.get(name)
        return {"status": "ok"}

    def _eeg_store(self) -> Path:
        from neuroai.testing import tiny_patch_store

        path = self.root / "eeg" / "store"
        if self.quick:
            return tiny_patch_store(path)  # 6 recordings x 3 windows, 5 channels, 4 s at 100 Hz
        return tiny_patch_store(  # as TUH through the tcp_22 montage
            path,
            n_recordings=24,
            windows_per_recording=16,
            sfreq=250.0,
            window_samples=3000,
            patch_len=50,
            channels=[f"E{k:02d}" for k in range(22)],
        )

    def _graphs(self) -> Path:
        from neuroai.testing import graph_dataset

        if self.quick:
            return graph_dataset(self.root / "graphs")  # 6 runs, 7 regions, windows of 10 TRs
        runs = [300 + 9 * (k % 4) for k in range(24)]
        return graph_dataset(
            self.root / "graphs", n_timepoints=runs, n_regions=200, window=50, step=3, density=0.3
        )

    def _token_stores(self) -> list[Path]:
        from neuroai.testing import write_token_store

        if self.quick:
            shapes = [(n, 5, 12) for n in (7, 5, 9, 4, 7, 6)]
        else:  # TABLeT's tokens; 256-frame windows start anywhere in 256-284 frames
            shapes = [(256 + 7 * (k % 5), 27, 3072) for k in range(14)]
        return [
            write_token_store(
                self.root / "tokens" / f"sub-{k:02d}_tokens.npy",
                n_frames=n,
                n_tokens=tokens,
                token_dim=dim,
                tr=0.72,
                seed=k,
            )
            for k, (n, tokens, dim) in enumerate(shapes)
        ]

    def _decathlon(self):
        from neuroai.io import read_decathlon
        from neuroai.testing import hippocampus_like_dataset

        root = self.root / "decathlon"
        if self.quick:
            hippocampus_like_dataset(root, n_train=5, n_test=0)  # ~19 x 23 x 17 voxels
        else:  # MNI152's 2 mm grid
            shapes = ((91, 109, 91), (87, 112, 89))
            hippocampus_like_dataset(root, n_train=13, n_test=0, shapes=shapes, spacing=(2.0,) * 3)
        return read_decathlon(root)


# -- the families: (engine module, data module) for a TrainConfig and a model preset --------

TINY = {  # --quick, demo preset: the sizes of the families' own tests
    "dsd": {
        "roi_size": (16, 16, 16),
        "backbone_options": {"channels": (4, 8, 16, 16), "strides": (2, 2, 1), "num_res_units": 1},
    },
    "dfc_gnn": {"hidden": 16, "gin_layers": 2, "heads": 2},
}


def _tiny(data: SyntheticData, family: str, preset: str) -> dict:
    return TINY.get(family, {}) if data.quick and preset == "demo" else {}


def _dsd(data: SyntheticData, config, preset: str):
    from neuroai.models import create_model
    from neuroai.training import SegmentationDataConfig, SegmentationDataModule, SupervisedModule

    task = data.get("decathlon")
    model = create_model("dsd", preset=preset, out_channels=3, **_tiny(data, "dsd", preset))
    datamodule = SegmentationDataModule(
        task.training[:-1],
        task.training[-1:],
        roi_size=model.config.roi_size,
        config=SegmentationDataConfig(spacing=None, num_samples=2),
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
    )
    return SupervisedModule(model, config), datamodule


def _eeg(data: SyntheticData, config, preset: str, *, labels: bool, family: str = "eegformer"):
    """EEGFormer (or EEGNet, on time patches) and its data module: the last recording validates."""
    import numpy as np

    from neuroai.models import create_model
    from neuroai.training.eeg_data import EEGWindowDataModule, store_layout, window_table

    store = data.get("eeg_store")
    table = window_table([store])
    val = table["recording"] == sorted(table["recording"].unique())[-1]
    rows = np.arange(len(table))
    targets = (table["label"] == "abnormal").to_numpy().astype(np.int64)
    layout = store_layout([store])
    shape = {k: layout[k] for k in ("n_chans", "n_times", "sfreq", "patch_len", "patch_stride")}
    network = create_model(family, preset=preset, **shape)
    datamodule = EEGWindowDataModule(
        [store],
        rows[~val],
        rows[val],
        train_targets=targets[~val] if labels else None,
        val_targets=targets[val] if labels else None,
        batch_size=config.batch_size,
        val_batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        part="spectrum" if family == "eegformer" else "time",
    )
    return network, datamodule


def _eegformer(data: SyntheticData, config, preset: str):
    from neuroai.models.objectives import create_objective
    from neuroai.training import PretrainModule

    network, datamodule = _eeg(data, config, preset, labels=False)
    return PretrainModule(create_objective("vqvae", network), config), datamodule


def _probe(data: SyntheticData, config, preset: str):
    from neuroai.models.probe import ProbeModel
    from neuroai.training import FineTuneModule

    network, datamodule = _eeg(data, config, preset, labels=True)
    probe = ProbeModel.from_encoder(network, n_outputs=2, freeze=False)  # fine-tuned in full
    return FineTuneModule(probe, config, encoder_lr_scale=0.1), datamodule


def _eegnet(data: SyntheticData, config, preset: str):
    from neuroai.models.probe import ProbeModel
    from neuroai.training import FineTuneModule

    network, datamodule = _eeg(data, config, preset, labels=True, family="eegnet")
    probe = ProbeModel.from_encoder(network, n_outputs=2, freeze=False)  # EEGFormer's baseline
    return FineTuneModule(probe, config), datamodule


def _braindecode(data: SyntheticData, config, preset: str):
    from neuroai.models.probe import ProbeModel
    from neuroai.training import FineTuneModule

    network, datamodule = _eeg(data, config, preset, labels=True, family="braindecode")
    probe = ProbeModel.from_encoder(network, n_outputs=2, freeze=False)  # ShallowFBCSPNet
    return FineTuneModule(probe, config), datamodule


def _dfc_gnn(data: SyntheticData, config, preset: str):
    from neuroai.fmri import GraphArrays
    from neuroai.models import create_model
    from neuroai.models.objectives import create_objective
    from neuroai.training import GraphCropDataset, GraphDataModule, PretrainModule

    path = data.get("graphs")
    crops = GraphCropDataset.random_crops(
        path, range(GraphArrays(path).n_runs), length=5 if data.quick else 12, samples_per_run=4
    )
    options = {**_tiny(data, "dfc_gnn", preset), **crops.model_overrides()}
    model = create_model("dfc_gnn", preset=preset, **options)
    # No validation set, as pipelines/dfc_gnn_pretrain.py: masked dFC validation draws its
    # masks from the global random stream, so a checkpoint taken at a validation step
    # resumes on another stream than the run that went on.
    datamodule = GraphDataModule(
        crops, batch_size=config.batch_size, seed=config.seed, num_workers=config.num_workers
    )
    return PretrainModule(create_objective("masked_dfc", model), config), datamodule


def _tablet(data: SyntheticData, config, preset: str):
    from neuroai.models import create_model
    from neuroai.models.objectives import create_objective
    from neuroai.training import PretrainModule, TokenWindowDataModule, TokenWindows

    stores = data.get("token_stores")
    n_tokens, token_dim = TokenWindows(stores[:1], window=1).shape
    model = create_model("tablet", preset=preset, n_tokens=n_tokens, token_dim=token_dim)
    datamodule = TokenWindowDataModule(
        stores[:-2],
        stores[-2:],
        window=4 if data.quick else 256,
        mask_ratio=0.5,
        batch_size=config.batch_size,
        val_batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
    )
    objective = create_objective("masked_tokens", model, mask_ratio=0.5)
    return PretrainModule(objective, config), datamodule


@dataclass(frozen=True)
class Family:
    """How this check trains one registry family."""

    build: Callable  # (SyntheticData, TrainConfig, preset) -> (EngineModule, LightningDataModule)
    dataset: str  # the SyntheticData it reads
    batch: tuple[int, int]  # items per batch: --quick, full
    monitor: str = "val/loss"
    monitor_mode: str = "min"


FAMILIES: dict[str, Family] = {
    "dsd": Family(_dsd, "decathlon", (1, 2), monitor="val/dice", monitor_mode="max"),
    "eegformer": Family(_eegformer, "eeg_store", (4, 32)),
    "probe": Family(_probe, "eeg_store", (4, 32)),
    "eegnet": Family(_eegnet, "eeg_store", (4, 32)),
    "braindecode": Family(_braindecode, "eeg_store", (4, 32)),
    "dfc_gnn": Family(_dfc_gnn, "graphs", (4, 8)),
    "tablet": Family(_tablet, "token_stores", (2, 2)),
}


def train_config(family: Family, sizes: Sizes, device: str, workers: int | str, **overrides):
    """The TrainConfig of both parts: validation at half-time, 4 checkpoints per run."""
    from neuroai.training import TrainConfig

    steps = sizes.steps
    values = {
        "max_steps": steps,
        "batch_size": family.batch[0 if sizes.quick else 1],
        "warmup_steps": max(1, steps // 10),
        "val_every_steps": steps // 2,
        "checkpoint_every_steps": max(1, steps // 4),
        "log_every_steps": max(1, steps // 20),
        "progress_bar": False,
        "accelerator": "gpu" if device == "cuda" else "cpu",
        "devices": 1,
        "precision": "auto",
        "deterministic": True,
        "num_workers": workers,
        "monitor": family.monitor,
        "monitor_mode": family.monitor_mode,
    }
    return TrainConfig(**{**values, **overrides})


# -- a. the gpu tests --------------------------------------------------------------------------

PYTEST = ["-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
# A test module that cannot be imported on the GPU machine (a package not carried there)
# must not keep the other modules' gpu tests from running; its errors are counted.
PYTEST += ["--continue-on-collection-errors"]


def pytest_counts(output: str) -> tuple[str, dict[str, int]]:
    """pytest's last summary line (``3 passed, 1 failed, ... in 9.1s``) and its counts."""
    lines = [line.strip("= ") for line in output.splitlines() if re.search(r" in [\d.]+s\b", line)]
    summary = lines[-1] if lines else ""
    found = re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)", summary)
    return summary, {"errors" if word == "error" else word: int(n) for n, word in found}


def uncollected(output: str) -> list[str]:
    """Test modules pytest could not import (``-ra`` lists them as ``ERROR <file> - ...``)."""
    return re.findall(r"^ERROR (\S+\.py)(?: - .*)?$", output, flags=re.MULTILINE)


def tests_status(counts: dict[str, int], n_uncollected: int) -> str:
    """``failed`` on a failure or a test's error; modules that could not be imported are
    listed beside it (a package not carried), not counted as failures."""
    if counts.get("failed", 0) or counts.get("errors", 0) > n_uncollected:
        return "failed"
    if counts.get("passed"):
        return "passed"
    return "all skipped" if counts.get("skipped") else "no test ran"


def run_gpu_tests(timeout_s: float) -> dict:
    """``pytest -m gpu`` in a subprocess of its own process group, killed on time-out."""
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *PYTEST],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    status = None
    try:
        output, _ = process.communicate(timeout=max(timeout_s, 1.0))
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:
        if process.poll() is None:  # timed out, or the watchdog interrupted the wait
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    summary, counts = pytest_counts(output)
    modules = uncollected(output)
    status = status or tests_status(counts, len(modules))
    return {
        "status": status,
        "command": "python " + " ".join(PYTEST),
        "returncode": process.returncode,
        "summary": summary,
        "counts": counts,
        "uncollected": modules,
        "seconds": round(time.monotonic() - start, 2),
        "output_tail": output[-800:] if status == "passed" and not modules else output[-4000:],
    }


# -- b. a killed and resumed run against an uninterrupted one ----------------------------------


def _stop_at(deadline: float, flag: dict):
    """A Lightning callback that ends training cleanly at ``deadline`` (``time.monotonic``)."""
    import lightning as L

    class StopAtDeadline(L.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if time.monotonic() > deadline:
                flag["stopped"] = True
                trainer.should_stop = True

    return StopAtDeadline()


def max_abs_difference(a: dict, b: dict) -> tuple[float, str]:
    """The largest absolute difference over the tensors of two state dicts, and where."""
    import torch

    def difference(x: torch.Tensor, y: torch.Tensor) -> float:
        if x.shape != y.shape:
            return float("inf")
        if x.is_floating_point() and x.numel():
            gap = float((x.double() - y.double()).abs().max())
            return float("inf") if gap != gap else gap  # a NaN weight is never "close"
        return 0.0 if torch.equal(x, y) else float("inf")

    differences = {key: difference(a[key].detach().cpu(), b[key].detach().cpu()) for key in a}
    where = max(differences, key=differences.get)
    return differences[where], where


def _three_runs(check: Check, name: str, config, killed_at: int, stop) -> dict:
    """Uninterrupted, killed at ``killed_at``, resumed: ``{run: (module, FitResult, s)}``."""
    from neuroai.testing.training import CrashAtStep
    from neuroai.training import fit, seed_everything

    folder = check.workdir / name / ("deterministic" if config.deterministic else "default")
    runs = {}
    for run, run_dir, callbacks in (
        ("uninterrupted", folder / "a", []),
        ("killed", folder / "b", [CrashAtStep(killed_at)]),
        ("resumed", folder / "b", []),
    ):
        start = time.monotonic()
        seed_everything(config.seed)  # the same initial weights in each run
        module, datamodule = FAMILIES[name].build(check.data, config, "demo")
        try:
            result = fit(module, datamodule, config, run_dir, callbacks=[*callbacks, stop])
        except RuntimeError as error:
            if "simulated kill" not in str(error):
                raise
            result = None
        runs[run] = module, result, round(time.monotonic() - start, 2)
    return runs


def resume_check(check: Check, name: str, deadline: float) -> dict:
    """Train uninterrupted, then killed and resumed from the run folder; compare the weights.

    With deterministic algorithms (so that a GPU run repeats exactly); where a kernel has
    no deterministic version, again without them (and the record says so).
    """
    import torch

    from neuroai.training import resolve_precision

    config = train_config(FAMILIES[name], check.sizes, check.device, check.workers)
    killed_at = int(check.sizes.steps * 0.6) + 1  # past a checkpoint, short of the next one
    saved = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    flag = {"stopped": False}
    stop, note = _stop_at(deadline, flag), None
    try:
        try:
            runs = _three_runs(check, name, config, killed_at, stop)
        except RuntimeError as error:
            if "deterministic" not in str(error):
                raise
            note = str(error).splitlines()[0]
            config = train_config(
                FAMILIES[name], check.sizes, check.device, check.workers, deterministic=False
            )
            runs = _three_runs(check, name, config, killed_at, stop)
    finally:  # Lightning's deterministic=True switched these for the whole process
        torch.use_deterministic_algorithms(saved[0])
        torch.backends.cudnn.benchmark = saved[1]
    (reference, first, seconds), (resumed, last, _) = runs["uninterrupted"], runs["resumed"]
    worst, where = max_abs_difference(reference.state_dict(), resumed.state_dict())
    record = {
        "status": "stopped: time budget" if flag["stopped"] else "ok",
        "precision": resolve_precision(config),
        "deterministic": config.deterministic,
        "steps": first.steps,
        "killed_at": killed_at,
        "resumed_from": last.resumed_from,
        "resumed_steps": last.steps,
        "max_abs_diff": worst,
        "worst_tensor": where,
        "exact": worst == 0.0,
        "parameters": sum(p.numel() for p in reference.parameters()),
        "seconds": {run: s for run, (_, _, s) in runs.items()},
        # The whole uninterrupted fit: start-up, validation, checkpoints.
        "fit_samples_per_s": round(first.steps * config.batch_size / seconds, 1),
    }
    if note:
        record["not_deterministic"] = note
    if not flag["stopped"] and (last.resumed_from is None or last.steps != first.steps):
        record["status"] = "error"
        record["error"] = (
            f"the killed run did not resume to the same end: resumed_from={last.resumed_from}, "
            f"{last.steps} steps against {first.steps}"
        )
    return record


# -- c. the model alone against end to end ----------------------------------------------------


def _count(batch) -> int:
    """Samples in a batch: rows of its input tensor (windows, 3D patches), or its graphs."""
    inputs = batch["inputs"]
    return int(inputs.num_graphs) if hasattr(inputs, "num_graphs") else int(inputs.shape[0])


def _epochs(loader) -> Iterator:
    """Batches of consecutive epochs, as training reads them."""
    for epoch in itertools.count():
        loader.sampler.set_epoch(epoch)
        yield from loader


def throughput_check(check: Check, name: str, deadline: float) -> dict:
    """Samples per second of the training step on one resident batch, and fed by the loader."""
    import torch
    from lightning.fabric.utilities.apply_func import move_data_to_device

    from neuroai.training import seed_everything

    family, sizes, device, preset = FAMILIES[name], check.sizes, check.device, check.preset
    config = train_config(family, sizes, device, check.workers, deterministic=False)
    seed_everything(config.seed)
    module, datamodule = family.build(check.data, config, preset)
    module = module.to(device).train()
    optimizer = module.configure_optimizers()["optimizer"]
    target = torch.device(device)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def measure(batches, warmup: int, timed: int) -> dict:
        """Untimed steps (``warmup``, or as many as fit in the time limit), then timed ones."""
        limit = min(sizes.measure_s, max(deadline - time.monotonic(), 2.0) / 2)
        began, start, samples, steps = time.perf_counter(), None, 0, 0
        for k, batch in enumerate(batches):
            if start is None and (k >= warmup or time.perf_counter() - began > limit):
                sync()
                start, warm = time.perf_counter(), k
            batch = move_data_to_device(batch, target)  # as Lightning does; resident: no copy
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                loss = module.compute_train(batch)["loss"]
            loss.backward()
            optimizer.step()
            if start is not None:
                samples, steps = samples + _count(batch), steps + 1
                if steps >= timed or time.perf_counter() - start > limit:
                    break
        sync()
        seconds = time.perf_counter() - start
        return {
            "samples_per_s": round(samples / seconds, 2),
            "steps": steps,
            "seconds": round(seconds, 3),
            "warmup_steps": warm,
        }

    loader = datamodule.train_dataloader()
    prefetched = loader.num_workers * (loader.prefetch_factor or 0)
    # The model alone: the loader's first batch, assembled here, kept on the device.
    items = [loader.dataset[(i, i)] for i in range(min(loader.batch_size, len(loader.dataset)))]
    resident = move_data_to_device(loader.collate_fn(items), target)
    model_alone = measure(itertools.repeat(resident), sizes.warmup, sizes.timed)
    end_to_end = measure(
        _epochs(loader), sizes.warmup + prefetched, max(sizes.timed, 3 * prefetched)
    )
    ratio = end_to_end["samples_per_s"] / model_alone["samples_per_s"]
    return {
        "status": "ok",
        "preset": preset,
        "precision": "bf16-mixed" if bf16 else "32-true",
        "parameters": sum(p.numel() for p in module.parameters()),
        "batch_samples": _count(resident),
        "workers": loader.num_workers,
        "prefetched_batches": prefetched,
        "persistent_workers": bool(loader.persistent_workers),
        "pin_memory": bool(loader.pin_memory),
        "batches_per_epoch": len(loader),
        "model_alone": model_alone,
        "end_to_end": end_to_end,
        "ratio": round(ratio, 3),
        "goal_met": ratio >= GOAL_RATIO,
    }


# -- the run --------------------------------------------------------------------------------------


def guarded(check: Check, work: Callable[[], dict]) -> dict:
    """Run one part unless the budget is spent; an exception becomes the part's record."""
    if check.left() < 2 * check.sizes.reserve_s:
        return {"status": "skipped: time budget"}
    start = time.monotonic()
    try:
        record = work()
    except (Exception, OutOfTime) as exc:  # one family's failure must not stop the others
        record = {
            "status": "stopped: time budget" if isinstance(exc, OutOfTime) else "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-3000:],
        }
    record["part_s"] = round(time.monotonic() - start, 2)
    return record


@contextlib.contextmanager
def watchdog(seconds: float):
    """Raise :class:`OutOfTime` in the main thread after ``seconds`` (the last resort)."""

    def out_of_time(*_) -> None:
        raise OutOfTime(f"the budget ran out ({seconds:.0f} s after the parts started)")

    previous = signal.signal(signal.SIGALRM, out_of_time)
    outer = signal.alarm(max(int(seconds), 1))  # a caller's alarm (pytest-timeout) is restored
    start = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.alarm(max(int(outer - (time.monotonic() - start)), 1))


def device_info(device: str) -> dict:
    """What ran: the device's name, library versions, the precision ``auto`` chose."""
    import lightning
    import torch

    from neuroai.training import TrainConfig, resolve_precision

    cuda = device == "cuda"
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "device": device,
        "name": torch.cuda.get_device_name(0) if cuda else platform.processor() or "CPU",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "cpus": len(affinity(0)) if affinity else os.cpu_count(),
        "precision": resolve_precision(TrainConfig(precision="auto")) if cuda else "32-true",
    }


def resolve_workers(requested: str) -> tuple[int | str, str]:
    """``--workers`` as the data modules take it, and where the value came from."""
    from neuroai.training import TrainConfig

    if requested != "auto":
        return int(requested), "--workers"
    try:
        TrainConfig(num_workers="auto")
    except Exception:  # an engine from before num_workers="auto"
        return FALLBACK_WORKERS, f"the engine has no 'auto': {FALLBACK_WORKERS}"
    return "auto", "the engine's 'auto'"


def markdown(result: dict) -> str:
    """The README table of one run."""
    info, settings, times = result["device"], result["settings"], result["times_s"]
    versions = f"torch {info['torch']}" + (f", CUDA {info['cuda']}" if info["cuda"] else "")
    tests = result["gpu_tests"]
    ran = f"{tests['status']}" + (f": {tests['summary']}" if tests.get("summary") else "")
    if tests.get("uncollected"):
        ran += f"; could not import {', '.join(tests['uncollected'])}"
    lines = [
        f"GPU check on {info['name']} ({versions}), {info['precision']}"
        f"{', --quick' if settings['quick'] else ''}: resume runs of {settings['steps']} steps "
        f"(demo preset); throughput of the {settings['preset']} preset, loader workers "
        f"{settings['workers']} ({settings['workers_from']}).",
        "",
        f"- gpu tests: {ran} ({tests.get('seconds', 0):.0f} s)",
        f"- time: {times['total']:.0f} s of a {result['budget_s']:.0f} s budget: gpu tests "
        f"{times['gpu_tests']:.0f} s, data {times['data']:.0f} s, resume {times['resume']:.0f} s, "
        f"throughput {times['throughput']:.0f} s",
        "",
        "| family | resume: steps, killed at, resumed from | max abs diff of weights "
        "| model alone (samples/s) | end to end (samples/s) | end to end / model alone "
        "| workers | time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, record in result["families"].items():
        resume, speed = record.get("resume", {}), record.get("throughput", {})
        runs, diff = _status(record.get("data") or resume), ""
        if "max_abs_diff" in resume:
            runs = f"{resume['steps']}, {resume['killed_at']}, {resume['resumed_from']}"
            runs += "" if resume["status"] == "ok" else f" ({resume['status']})"
            runs += "" if resume["deterministic"] else " (nondeterministic kernels)"
            diff = f"{resume['max_abs_diff']:.3g}" + (" (exact)" if resume["exact"] else "")
        alone, e2e, ratio, workers = _status(record.get("data") or speed), "", "", ""
        if speed.get("status") == "ok":
            alone = f"{speed['model_alone']['samples_per_s']:,.1f}"
            e2e = f"{speed['end_to_end']['samples_per_s']:,.1f}"
            ratio = f"{speed['ratio']:.3f}" + ("" if speed["goal_met"] else f" (< {GOAL_RATIO})")
            workers = str(speed["workers"])
        total = record.get("data_s", 0) + resume.get("part_s", 0) + speed.get("part_s", 0)
        lines.append(
            f"| {name} | {runs} | {diff} | {alone} | {e2e} | {ratio} | {workers} | {total:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _status(record: dict) -> str:
    if record.get("status") == "error":
        return "error: " + record["error"].splitlines()[0][:100].replace("|", "/")
    return record.get("status", "not run")


def write(result: dict, out: Path) -> None:
    """``gpu_check.json`` and ``gpu_check.md`` in ``out``, each written whole, then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "gpu_check.json": json.dumps(result, indent=2, default=str),
        "gpu_check.md": markdown(result),
    }
    for name, text in texts.items():
        partial = out / f"{name}.partial"
        partial.write_text(text, encoding="utf-8")
        partial.replace(out / name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--device", default="auto", choices=["auto", "cuda", "cpu"], help="auto: cuda if there")
    add("--quick", action="store_true", help="tiny data and models, few steps (a CPU check)")
    add("--steps", type=int, default=None, help="optimizer steps of each resume run (200; 12)")
    add("--workers", default="auto", help='loader processes: N, or "auto" (the engine\'s)')
    add("--preset", default=None, choices=["demo", "paper"], help="throughput models (paper; demo)")
    add("--budget", type=float, default=450.0, help="seconds for everything (450)")
    add("--families", nargs="+", default=None, help="default: every registered family")
    add("--skip", nargs="+", default=[], choices=["gpu-tests", "resume", "throughput"])
    add("--out", type=Path, default=None, help="default: $OUT, else benchmarks/results")
    add("--workdir", type=Path, default=None, help="where the temporary data and runs go")
    return parser.parse_args(argv)


def check_family(check: Check, name: str, record: dict, n_left: int, skip: list, snapshot) -> None:
    """Data, resume and throughput of one family into ``record``; errors stay in it."""
    import gc

    import torch

    if name not in FAMILIES:
        record["data"] = {"status": "error", "error": f"gpu_check.py has no case for {name!r}"}
        return
    made = guarded(check, lambda: check.data.make(FAMILIES[name].dataset))
    record["data_s"] = made.get("part_s", 0.0)
    if made["status"] != "ok":
        record["data"] = made
    # A family's parts may take up to twice its share of the time left.
    left, reserve = check.left(), check.sizes.reserve_s
    deadline = time.monotonic() + min(2 * (left - reserve) / n_left, left - 2 * reserve)
    for part, work in (("resume", resume_check), ("throughput", throughput_check)):
        if part in skip or "data" in record:
            record[part] = {"status": "skipped" if part in skip else "no data"}
        else:
            record[part] = guarded(check, lambda work=work: work(check, name, deadline))
        gc.collect()  # loader workers and GPU memory of this part go before the next
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        snapshot()


def save(result: dict, out: Path, start: float) -> None:
    """Bring the totals up to date and write the results."""
    records = result["families"].values()
    times = result["times_s"]
    times["gpu_tests"] = round(result["gpu_tests"].get("seconds", 0.0), 1)
    times["data"] = round(sum(r.get("data_s", 0.0) for r in records), 1)
    for part in ("resume", "throughput"):
        times[part] = round(sum(r.get(part, {}).get("part_s", 0.0) for r in records), 1)
    times["total"] = round(time.monotonic() - start, 1)
    statuses = [p.get("status", "") for r in records for p in r.values() if isinstance(p, dict)]
    result["stopped_by_budget"] = "stopped" in result or any("budget" in s for s in statuses)
    write(result, out)


def main(argv: list[str] | None = None) -> dict:
    """Run the check (see the module docstring); return what ``gpu_check.json`` holds."""
    args = parse_args(argv)
    start = time.monotonic()
    import torch

    from neuroai.models import list_models

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch.cuda.is_available() is False on this machine.")
    sizes = Sizes.make(args.quick, args.steps)
    workers, workers_from = resolve_workers(args.workers)
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_", dir=args.workdir))
    check = Check(
        sizes=sizes,
        device=device,
        workers=workers,
        preset=args.preset or ("demo" if args.quick else "paper"),
        data=SyntheticData(workdir / "data", sizes.quick),
        workdir=workdir / "runs",
        budget_s=args.budget,
        start=start,
    )
    families = args.families or list_models()
    out = args.out or Path(os.environ.get("OUT") or REPO / "benchmarks" / "results")
    result = {
        "script": "benchmarks/gpu_check.py",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "quick": sizes.quick,
            "steps": sizes.steps,
            "preset": check.preset,
            "warmup_steps": sizes.warmup,
            "timed_steps": sizes.timed,
            "workers": workers,
            "workers_from": workers_from,
            "families": families,
            "skip": args.skip,
        },
        "budget_s": args.budget,
        "device": device_info(device),
        "goal_ratio": GOAL_RATIO,
        "gpu_tests": {"status": "skipped" if "gpu-tests" in args.skip else "not run"},
        "families": {name: {} for name in families},
        "times_s": {},
        "complete": False,
    }
    snapshot = functools.partial(save, result, out, start)
    snapshot()
    lightning_log = logging.getLogger("lightning.pytorch")  # its notes at each of 15 fits
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with watchdog(check.left() - sizes.reserve_s / 2):
            if "gpu-tests" not in args.skip:
                result["gpu_tests"] = run_gpu_tests(min(0.4 * check.left(), check.left() - 60))
                snapshot()
            for k, name in enumerate(families):
                record = result["families"][name]
                check_family(check, name, record, len(families) - k, args.skip, snapshot)
            result["complete"] = True
    except OutOfTime as exc:
        result["stopped"] = str(exc)
    finally:
        lightning_log.setLevel(level)
        shutil.rmtree(workdir, ignore_errors=True)
        snapshot()
    print(markdown(result))
    print(f"Wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    return result


if __name__ == "__main__":
    main()
