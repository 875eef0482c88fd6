"""The contract every model family fulfils, so one engine trains and serves them all.

A model is a :class:`torch.nn.Module` subclass of :class:`NeuroModel`, built from its
config dataclass through the registry (``create_model``). The engine only ever calls
the methods below, so a new family plugs into training, fine-tuning, embedding,
prediction and evaluation by implementing them:

``forward(inputs)``
    The task output: class logits ``(B, K)``, segmentation logits ``(B, K, D, H, W)``,
    a reconstruction, as the family defines. Inference cost only.
``embed(inputs)``
    One feature vector per item, ``(B, F)``: what the ``embed`` stage writes and what
    probes and fine-tuning heads read.
``predict(inputs)``
    What the ``predict`` stage applies to new data; ``forward`` by default (DSD adds
    sliding-window inference over whole volumes).
``training_loss(batch)``
    The family's supervised loss on a batch dict, returned as a dict with ``"loss"``
    and any components to log.
``validation_metrics(batch)``
    Scalars to log on a validation batch (``"loss"`` at least); the engine averages
    them over the validation set and monitors one of them for the best checkpoint.
``example_input(batch_size)``
    A random input of the right shape (the registry-wide tests feed it to every model).

Batches are dicts: ``batch["inputs"]`` holds the model input and ``batch["target"]``
the supervision (class indices, label volumes). ``INPUTS`` and ``TARGET`` name them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from neuroai.models.config import ModelConfig

INPUTS = "inputs"
TARGET = "target"


class NeuroModel(nn.Module):
    """Base class of every registered model.

    Attributes
    ----------
    config : ModelConfig
        The family's config dataclass instance the model was built from.
    family : str
        Registry name (``"dsd"``), set by ``register_model``.
    modality : str
        Input modality (``"volume"``, ``"eeg"``, ``"tokens"``, ``"graph"``, ...).
    item_ndim : int
        Dimensions of one input item without the batch axis (``4`` for
        ``(C, D, H, W)`` volumes); the embed and predict stages use it to tell a
        single item from a stack of windows.
    embed_dim : int
        Length ``F`` of the vectors :meth:`embed` returns.
    """

    family: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    item_ndim: ClassVar[int] = 0

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def embed_dim(self) -> int:  # pragma: no cover - every family overrides
        raise NotImplementedError

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """One feature vector per item, shape ``(B, embed_dim)``."""
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor) -> torch.Tensor:
        """The output applied to new data (``forward`` unless the family differs)."""
        return self(inputs)

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover
        """The supervised loss of ``batch``: ``{"loss": scalar, ...components}``."""
        raise NotImplementedError

    def validation_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        """Scalars for a validation batch; the training loss in eval mode by default."""
        terms = self.training_loss(batch)
        return {"loss": terms["loss"].detach()}

    def example_input(self, batch_size: int = 1) -> torch.Tensor:  # pragma: no cover
        """A random input batch of the shape the model takes (for tests and benchmarks)."""
        raise NotImplementedError

    def parameter_count(self, *, trainable_only: bool = False) -> int:
        """Number of parameters (trainable ones only when asked)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, *, map_location: str | torch.device = "cpu"
    ) -> NeuroModel:
        """Rebuild a model from a pretrained folder (``config.json`` + ``model.safetensors``).

        ``EEGFormer.from_pretrained(folder)`` refuses a folder of another family;
        ``NeuroModel.from_pretrained(folder)`` accepts any registered family (it is
        :func:`neuroai.models.load_pretrained`).

        Parameters
        ----------
        folder : path-like
            A folder written by :meth:`save_pretrained` or by a training stage.
        map_location : str | torch.device
            Device the weights are loaded onto.

        Returns
        -------
        NeuroModel
            The model in eval mode.
        """
        from neuroai.errors import ArtifactError
        from neuroai.models.checkpoint import load_pretrained, read_pretrained_config

        if cls.family:
            found = read_pretrained_config(folder).get("model")
            if found != cls.family:
                raise ArtifactError(
                    f"{folder} holds a {found!r} model, not a {cls.family!r} one: load it with "
                    f"neuroai.models.load_pretrained or the {found!r} class."
                )
        return load_pretrained(folder, map_location=map_location)

    def save_pretrained(
        self, folder: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None
    ) -> os.PathLike:
        """Write this model as a pretrained folder, atomically (see :func:`save_pretrained`)."""
        from neuroai.models.checkpoint import save_pretrained

        return save_pretrained(self, folder, metadata=metadata)
