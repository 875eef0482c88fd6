"""A prediction head on a pretrained encoder: linear probing and full fine-tuning.

Every family's encoder gives one vector per item (``encoder.embed(x)``, ``(B, F)``).
:class:`ProbeModel` puts a head on it for a downstream label (abnormal EEG, diagnosis,
age) and is itself a registered model, so a fine-tuned probe is saved and reloaded
like any other: its config nests the encoder's registry name and config.

With ``freeze=True`` (a probe) the encoder's weights do not train and it stays in
eval mode (normalisation statistics and dropout frozen); with ``freeze=False`` the
whole network is fine-tuned.

Shapes:
    input: whatever the encoder takes; output: ``(B, n_outputs)`` logits (or values
    for regression).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import INPUTS, TARGET, NeuroModel
from neuroai.models.config import ModelConfig
from neuroai.models.registry import build_model, register_model

TASKS = ("classification", "regression", "multilabel")


@dataclass
class ProbeConfig(ModelConfig):
    """Hyperparameters of a probe.

    Attributes
    ----------
    encoder : str
        Registry name of the encoder family.
    encoder_config : dict
        The encoder's config (as its checkpoint stores it).
    n_outputs : int
        Classes (classification) or targets (regression).
    task : {"classification", "regression", "multilabel"}
        Cross-entropy on class indices, mean squared error, or binary
        cross-entropy on multi-hot targets ``(B, n_outputs)`` (one logit per class).
    freeze : bool
        Keep the encoder's weights fixed (linear probe).
    hidden : int
        Width of one hidden layer of the head (0: a linear head).
    dropout : float
        Dropout before the head's last layer.
    """

    encoder: str = "dsd"
    encoder_config: dict = field(default_factory=dict)
    n_outputs: int = 2
    task: str = "classification"
    freeze: bool = True
    hidden: int = 0
    dropout: float = 0.0

    def validate(self) -> None:
        check_option("task", self.task, TASKS)
        if self.encoder == "probe":
            raise ConfigError("A probe cannot wrap another probe; give it an encoder family.")
        if self.n_outputs < 1 or self.hidden < 0 or not 0 <= self.dropout < 1:
            raise ConfigError(
                f"Invalid probe head: n_outputs={self.n_outputs}, hidden={self.hidden}, "
                f"dropout={self.dropout}."
            )


def _demo_probe(overrides: dict[str, Any]) -> dict[str, Any]:
    from neuroai.models.registry import model_config

    encoder = overrides.get("encoder", "dsd")
    return {"encoder": encoder, "encoder_config": model_config(encoder, "demo").to_dict()}


@register_model(
    "probe",
    config=ProbeConfig,
    presets={"demo": _demo_probe, "paper": _demo_probe},
    description="Linear probe or fine-tuning head on any registered encoder",
)
class ProbeModel(NeuroModel):
    """A head on a (pretrained) encoder; see the module docstring.

    Parameters
    ----------
    config : ProbeConfig
        Its hyperparameters.
    encoder : NeuroModel | None
        An already built (pretrained) encoder; built from ``config`` when ``None``.
    """

    def __init__(self, config: ProbeConfig, encoder: NeuroModel | None = None) -> None:
        super().__init__(config)
        self.encoder = (
            encoder if encoder is not None else build_model(config.encoder, config.encoder_config)
        )
        width = self.encoder.embed_dim
        layers: list[nn.Module] = []
        if config.hidden:
            layers += [nn.Linear(width, config.hidden), nn.GELU()]
            width = config.hidden
        layers += [nn.Dropout(config.dropout), nn.Linear(width, config.n_outputs)]
        self.head = nn.Sequential(*layers)
        if config.freeze:
            self.encoder.requires_grad_(False)

    modality = property(lambda self: self.encoder.modality)  # type: ignore[assignment]
    item_ndim = property(lambda self: self.encoder.item_ndim)  # type: ignore[assignment]

    @classmethod
    def from_encoder(cls, encoder: NeuroModel, **config: Any) -> ProbeModel:
        """A probe on an existing (pretrained) encoder, e.g. from ``load_pretrained``."""
        values = {"encoder": encoder.family, "encoder_config": encoder.config.to_dict(), **config}
        return cls(ProbeConfig.from_dict(values, source="the probe config"), encoder=encoder)

    def train(self, mode: bool = True) -> ProbeModel:
        super().train(mode)
        if self.config.freeze:
            self.encoder.eval()
        return self

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        return self.encoder.example_input(batch_size)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.embed(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.freeze:
            with torch.no_grad():
                features = self.encoder.embed(x)
        else:
            features = self.encoder.embed(x)
        return self.head(features)

    def _loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.task == "classification":
            target = target.reshape(-1).long()
            if target.shape[0] != outputs.shape[0]:
                raise DataError(
                    f"Probe: {target.shape[0]} targets for {outputs.shape[0]} inputs in a batch."
                )
            return F.cross_entropy(outputs.float(), target)
        if self.config.task == "multilabel":
            target = target.reshape(outputs.shape).float()
            return F.binary_cross_entropy_with_logits(outputs.float(), target)
        return F.mse_loss(outputs.float(), target.reshape(outputs.shape).float())

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        outputs = self(batch[INPUTS])
        return {"loss": self._loss(outputs, batch[TARGET])}

    @torch.no_grad()
    def validation_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        outputs = self(batch[INPUTS])
        metrics = {"loss": self._loss(outputs, batch[TARGET])}
        if self.config.task == "classification":
            target = batch[TARGET].reshape(-1).long()
            metrics["accuracy"] = (outputs.argmax(1) == target).float().mean()
        return metrics
