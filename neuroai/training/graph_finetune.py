"""Downstream use of a window-graph encoder: run embeddings, fine-tuning, run predictions.

A run (a subject's scan) is longer than the crops a graph encoder trains on, so
run-level outputs average over crops: :func:`evaluation_crops` takes up to
``max_crops`` non-overlapping crops spread evenly over a window range (the whole run,
or one segment of it), :func:`embed_runs` averages the encoder's crop embeddings and
:func:`predict_runs` a probe's class probabilities (or predicted values) over them,
as TABLeT's evaluation averages over windows. :func:`finetune_probe` trains a head on
an encoder (a copy of a pretrained one, or a fresh one for training from scratch) with
the engine, on random crops of the training runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from neuroai.errors import ConfigError
from neuroai.fmri.graph_dataset import GraphArrays
from neuroai.models.base import INPUTS, TARGET, NeuroModel
from neuroai.models.probe import ProbeModel
from neuroai.training.config import TrainConfig
from neuroai.training.graph_data import (
    Crop,
    GraphCropDataset,
    GraphDataModule,
    collate_graphs,
    tiling_crops,
)


def evaluation_crops(
    run: int, start: int, stop: int, *, length: int, max_crops: int | None = None
) -> list[Crop]:
    """Up to ``max_crops`` non-overlapping crops of ``length`` windows, spread over ``start:stop``."""
    crops = tiling_crops(run, start, stop, length)
    if max_crops and len(crops) > max_crops:
        keep = np.unique(np.linspace(0, len(crops) - 1, max_crops).round().astype(int))
        crops = [crops[i] for i in keep]
    return crops


def _run_crops(
    path: str | os.PathLike,
    runs: Sequence[int],
    ranges: Mapping[int, tuple[int, int]] | None,
    length: int,
    max_crops: int | None,
) -> tuple[list[Crop], np.ndarray]:
    run_ptr = GraphArrays(path, verify="none")["run_ptr"]
    crops, owner = [], []
    for k, run in enumerate(runs):
        n_windows = int(run_ptr[run + 1] - run_ptr[run])
        start, stop = ranges[run] if ranges else (0, n_windows)
        chosen = evaluation_crops(run, start, stop, length=length, max_crops=max_crops)
        crops += chosen
        owner += [k] * len(chosen)
    return crops, np.asarray(owner)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _crop_outputs(
    model: NeuroModel,
    path: str | os.PathLike,
    runs: Sequence[int],
    *,
    length: int,
    max_crops: int | None,
    ranges: Mapping[int, tuple[int, int]] | None,
    density: float | None,
    batch_size: int,
    kind: str,
) -> np.ndarray:
    crops, owner = _run_crops(path, runs, ranges, length, max_crops)
    dataset = GraphCropDataset(path, crops, density=density, verify="none")
    was_training = model.training
    model.eval()
    device = _device_of(model)
    outputs = []
    try:
        for first in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(first, min(first + batch_size, len(dataset)))]
            graph = collate_graphs(items)[INPUTS].to(device)
            if kind == "embed":
                out = model.embed(graph)
            else:
                out = model(graph)
                if kind == "probabilities":
                    out = out.float().softmax(dim=1)
            outputs.append(out.float().cpu())
    finally:
        model.train(was_training)
    values = torch.cat(outputs).numpy()
    result = np.zeros((len(runs), values.shape[1]))
    np.add.at(result, owner, values)
    return result / np.bincount(owner, minlength=len(runs))[:, None]


def embed_runs(
    model: NeuroModel,
    path: str | os.PathLike,
    runs: Sequence[int],
    *,
    length: int,
    max_crops: int | None = 8,
    ranges: Mapping[int, tuple[int, int]] | None = None,
    density: float | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Mean crop embedding of each run (or of a window range of it).

    Parameters
    ----------
    model : NeuroModel
        An encoder (or probe) with ``embed``.
    path : path-like
        The graph dataset.
    runs : sequence of int
        Run indices.
    length : int
        Windows per crop (as in training).
    max_crops : int | None
        At most this many crops per run, spread evenly (None: all).
    ranges : mapping | None
        Run index to the window range ``(start, stop)`` to embed (default: whole runs).
    density : float | None
        Re-sparsify the windows (as in training).
    batch_size : int
        Crops per forward pass.

    Returns
    -------
    ndarray, shape (n_runs, embed_dim)
    """
    return _crop_outputs(
        model,
        path,
        runs,
        length=length,
        max_crops=max_crops,
        ranges=ranges,
        density=density,
        batch_size=batch_size,
        kind="embed",
    )


def predict_runs(
    probe: ProbeModel,
    path: str | os.PathLike,
    runs: Sequence[int],
    *,
    length: int,
    max_crops: int | None = 8,
    density: float | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Run-level outputs of a probe: mean class probabilities ``(n_runs, K)`` over crops
    (classification) or mean predicted values ``(n_runs,)`` (regression)."""
    classification = probe.config.task == "classification"
    out = _crop_outputs(
        probe,
        path,
        runs,
        length=length,
        max_crops=max_crops,
        ranges=None,
        density=density,
        batch_size=batch_size,
        kind="probabilities" if classification else "values",
    )
    return out if classification else out[:, 0]


class RegularisedProbe(ProbeModel):
    """A probe whose training loss adds the encoder's orthogonality regulariser.

    STAGIN trains its classifier on ``loss + lambda * R_ortho``
    (:func:`~neuroai.models.dfc_gnn.orthogonality_penalty`); a ``dfc_gnn`` encoder with
    ``orthogonality > 0`` is fine-tuned the same way. Saved and loaded as a plain
    ``probe`` (the regulariser is a training-time term only).
    """

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        encoding = self.encoder.encode(batch[INPUTS])
        outputs = self.head(encoding.subject)
        loss = self._loss(outputs, batch[TARGET])
        weight = self.encoder.config.orthogonality
        return {
            "loss": loss + weight * encoding.orthogonality,
            "orthogonality": encoding.orthogonality.detach(),
        }


def finetune_probe(
    encoder: NeuroModel,
    path: str | os.PathLike,
    runs: Sequence[int],
    targets,
    *,
    train_config: TrainConfig,
    run_dir: str | os.PathLike,
    task: str = "classification",
    n_outputs: int = 2,
    freeze: bool = False,
    hidden: int = 0,
    dropout: float = 0.0,
    encoder_lr_scale: float = 1.0,
    length: int = 12,
    min_items: int = 32,
    density: float | None = None,
    keep_run_dir: bool = False,
    target_scale: tuple[float, float] = (0.0, 1.0),
) -> tuple[ProbeModel, object]:
    """Train a head on ``encoder`` (fine-tuned in full unless ``freeze``) on random crops.

    Parameters
    ----------
    encoder : NeuroModel
        Trained in place: pass a copy of a pretrained encoder, or a freshly built one
        (seeded) for training from scratch.
    path : path-like
        The graph dataset.
    runs : sequence of int
        Training runs.
    targets : array-like
        Target of every run of the dataset, indexed by run index.
    train_config : TrainConfig
        Steps, batch size, learning rate ... (no validation is run: a fixed budget).
    run_dir : path-like
        The engine's run folder (removed afterwards unless ``keep_run_dir``).
    task : {"classification", "regression"}
    n_outputs : int
        Classes (or 1 for regression).
    freeze, hidden, dropout
        Probe settings (:class:`~neuroai.models.probe.ProbeConfig`).
    encoder_lr_scale : float
        Learning rate of the encoder relative to the head.
    length : int
        Windows per training crop.
    min_items : int
        Random crops per epoch at least (the training runs are repeated to reach it).
    density : float | None
        Re-sparsify the windows.
    keep_run_dir : bool
        Keep the run folder (checkpoints, logs) instead of removing it.
    target_scale : (float, float)
        Regression targets are fed as ``(y - shift) / scale`` (train on standardised
        values; :func:`predict_runs` outputs are in those units).

    Returns
    -------
    probe : ProbeModel
        The trained probe (in eval mode).
    result : FitResult
        What the engine returned (its ``best``/``last`` folders are gone unless
        ``keep_run_dir``).
    """
    from neuroai.training.modules import FineTuneModule
    from neuroai.training.trainer import fit

    runs = [int(r) for r in runs]
    if not runs:
        raise ConfigError("finetune_probe: no training run.")
    targets = np.asarray(targets)
    if task == "regression":
        shift, scale = target_scale
        targets = (targets.astype(float) - shift) / (scale or 1.0)
    repeats = max(1, -(-min_items // len(runs)))
    dataset = GraphCropDataset.random_crops(
        path,
        runs,
        length=length,
        samples_per_run=repeats,
        targets=targets,
        target_kind="categorical" if task == "classification" else "numeric",
        density=density,
        verify="none",
    )
    regularised = not freeze and getattr(encoder.config, "orthogonality", 0) > 0
    probe = (RegularisedProbe if regularised else ProbeModel).from_encoder(
        encoder, n_outputs=n_outputs, task=task, freeze=freeze, hidden=hidden, dropout=dropout
    )
    module = FineTuneModule(probe, train_config, encoder_lr_scale=encoder_lr_scale)
    data = GraphDataModule(
        dataset,
        batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
    )
    result = fit(module, data, train_config, run_dir, resume=False)
    if not keep_run_dir:
        shutil.rmtree(Path(run_dir), ignore_errors=True)
    probe.eval()
    return probe, result
