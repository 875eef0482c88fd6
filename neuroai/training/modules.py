"""Lightning modules: supervised training, self-supervised pretraining, fine-tuning.

All three share optimisation (:class:`EngineModule`: optimizer, warm-up and schedule
per step, logging) and differ only in what a step computes:

- :class:`SupervisedModule` trains a registered model on its own loss
  (``model.training_loss(batch)``) and validates with ``model.validation_metrics``;
- :class:`PretrainModule` trains a self-supervised :class:`~neuroai.models.objectives.Objective`
  (which wraps an encoder) and exports the encoder;
- :class:`FineTuneModule` trains a :class:`~neuroai.models.probe.ProbeModel` (a head on
  a pretrained encoder, frozen for a probe or trained in full), optionally with a
  smaller learning rate for the encoder.

Each module names the network to export (``export_model``) and what the export's
metadata should record (``export_metadata``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from neuroai.models.base import INPUTS, NeuroModel
from neuroai.models.objectives.base import Objective
from neuroai.models.probe import ProbeModel
from neuroai.training.config import TrainConfig
from neuroai.training.schedules import build_optimizer, build_scheduler, lr_factor


def _batch_size(batch: Any) -> int:
    if isinstance(batch, dict) and isinstance(batch.get(INPUTS), torch.Tensor):
        return int(batch[INPUTS].shape[0])
    return 1


class EngineModule(L.LightningModule):
    """Optimisation and logging shared by the engine's modules.

    Parameters
    ----------
    train_config : TrainConfig
        Optimizer, schedule and logging settings.
    """

    def __init__(self, train_config: TrainConfig) -> None:
        super().__init__()
        self.train_config = train_config

    # What subclasses provide -------------------------------------------------------
    def export_model(self) -> NeuroModel:  # pragma: no cover - abstract
        raise NotImplementedError

    def export_metadata(self) -> dict[str, Any]:
        return {}

    def compute_train(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def compute_val(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    # Lightning hooks ---------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = build_optimizer(self.parameters(), self.train_config)
        scheduler = build_scheduler(optimizer, self.train_config)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.compute_train(batch)
        size = _batch_size(batch)
        for name, value in terms.items():
            self.log(
                f"train/{name}",
                value.detach(),
                on_step=True,
                on_epoch=False,
                batch_size=size,
                prog_bar=name == "loss",
            )
        self.log(
            "train/lr",
            self.train_config.lr * lr_factor(self.global_step, self.train_config),
            on_step=True,
            on_epoch=False,
        )
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        metrics = self.compute_val(batch)
        size = _batch_size(batch)
        for name, value in metrics.items():
            self.log(
                f"val/{name}",
                value.detach().float(),
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=True,
                prog_bar=name in ("loss", "dice"),
            )


class SupervisedModule(EngineModule):
    """Train a registered model on its supervised loss.

    Parameters
    ----------
    model : NeuroModel
        Any registered model (``training_loss`` and ``validation_metrics`` define the step).
    train_config : TrainConfig
        How to train.
    """

    def __init__(self, model: NeuroModel, train_config: TrainConfig) -> None:
        super().__init__(train_config)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def compute_train(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.model.training_loss(batch)

    def compute_val(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.model.validation_metrics(batch)

    def export_model(self) -> NeuroModel:
        return self.model


class PretrainModule(EngineModule):
    """Self-supervised pretraining of an objective that wraps an encoder.

    Parameters
    ----------
    objective : Objective
        E.g. ``create_objective("masked_volume", create_model("dsd"))``.
    train_config : TrainConfig
        How to train.
    """

    def __init__(self, objective: Objective, train_config: TrainConfig) -> None:
        super().__init__(train_config)
        self.objective = objective

    def compute_train(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.objective(batch)

    @torch.no_grad()
    def compute_val(self, batch: dict) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.objective(batch).items()}

    def export_model(self) -> NeuroModel:
        return self.objective.encoder

    def export_metadata(self) -> dict[str, Any]:
        return {"objective": self.objective.describe()}


class FineTuneModule(SupervisedModule):
    """Fine-tune a probe: a head on a pretrained encoder (frozen or trained in full).

    Parameters
    ----------
    probe : ProbeModel
        The head and its encoder, e.g. ``ProbeModel.from_encoder(load_pretrained(path),
        n_outputs=2, freeze=True)``.
    train_config : TrainConfig
        How to train.
    encoder_lr_scale : float
        Learning rate of the encoder relative to the head when it is not frozen
        (layer-wise decay in its simplest form).
    """

    def __init__(
        self, probe: ProbeModel, train_config: TrainConfig, *, encoder_lr_scale: float = 1.0
    ) -> None:
        super().__init__(probe, train_config)
        self.encoder_lr_scale = encoder_lr_scale

    def configure_optimizers(self):
        probe: ProbeModel = self.model
        groups = [{"params": [p for p in probe.head.parameters() if p.requires_grad]}]
        encoder = [p for p in probe.encoder.parameters() if p.requires_grad]
        if encoder:
            groups.append({"params": encoder, "lr": self.train_config.lr * self.encoder_lr_scale})
        config = self.train_config
        if config.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                groups,
                lr=config.lr,
                momentum=config.momentum,
                nesterov=True,
                weight_decay=config.weight_decay,
            )
        else:
            cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
            optimizer = cls(
                groups, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay
            )
        scheduler = build_scheduler(optimizer, config)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def export_metadata(self) -> dict[str, Any]:
        return {
            "fine_tuning": {
                "freeze": self.model.config.freeze,
                "encoder_lr_scale": self.encoder_lr_scale,
            }
        }
