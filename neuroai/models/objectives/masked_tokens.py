"""Masked token modelling for TABLeT: hide half of the volume tokens, predict them back.

A fraction ``mask_ratio`` (0.5) of the real (non-padded) tokens of each sequence is
replaced, after the input projection, by one learned mask token; the encoder runs on the
whole sequence and a linear decoder maps every output state back to a token. The loss
is the mean squared error between the prediction and the **normalised** token (each
token standardised over its ``token_dim`` values, without learned scale, as MAE's
normalised-pixel loss), averaged over the masked tokens only. Normalising makes tokens
from autoencoders with different latent scales comparable and keeps the loss of order
one.

Masks come from :func:`random_token_mask` with a generator seeded per item (the token
data sets draw them, so a resumed run sees the same masks); a batch without
``"token_mask"`` gets one drawn from torch's generator.

Shapes:
    ``batch["inputs"]`` ``(B, T, K, F)``; ``batch["frame_mask"]`` ``(B, T)`` bool;
    ``batch["token_mask"]`` ``(B, T, K)`` bool (True: hidden); ``batch["tr"]`` ``(B,)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError
from neuroai.models.base import INPUTS
from neuroai.models.objectives.base import Objective, register_objective
from neuroai.models.tablet import FRAME_MASK, TR, TABLeT

TOKEN_MASK = "token_mask"


def random_token_mask(
    frame_mask: np.ndarray, n_tokens: int, ratio: float, rng: np.random.Generator
) -> np.ndarray:
    """Hide ``round(ratio * n_real)`` of the real tokens of one sequence, at random.

    Parameters
    ----------
    frame_mask : ndarray, shape (T,), bool
        True for real frames.
    n_tokens : int
        Tokens per frame (K).
    ratio : float
        Fraction of the real tokens hidden (at least one is hidden).
    rng : numpy.random.Generator
        Source of randomness (seeded per item).

    Returns
    -------
    ndarray, shape (T, K), bool
        True where a token is hidden; never on padded frames.
    """
    real = np.repeat(np.asarray(frame_mask, bool), n_tokens)
    n_real = int(real.sum())
    mask = np.zeros(real.size, bool)
    if n_real:
        n_hidden = min(max(int(round(ratio * n_real)), 1), n_real)
        chosen = rng.choice(np.flatnonzero(real), size=n_hidden, replace=False)
        mask[chosen] = True
    return mask.reshape(len(frame_mask), n_tokens)


def normalise_tokens(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each token standardised over its last axis (zero mean, unit variance)."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


@register_objective("masked_tokens")
class MaskedTokenModeling(Objective):
    """Masked token modelling around a :class:`~neuroai.models.tablet.TABLeT` encoder.

    Parameters
    ----------
    encoder : TABLeT
        The encoder being pretrained (its head is not used).
    mask_ratio : float
        Fraction of real tokens hidden, in (0, 1).
    normalise_targets : bool
        Regress normalised tokens (default) instead of raw latents.
    """

    def __init__(
        self, encoder: TABLeT, mask_ratio: float = 0.5, normalise_targets: bool = True
    ) -> None:
        super().__init__(encoder, mask_ratio=mask_ratio, normalise_targets=normalise_targets)
        if not isinstance(encoder, TABLeT):
            raise ConfigError(
                f"masked_tokens pretrains a TABLeT encoder, got {type(encoder).__name__}."
            )
        if not 0 < mask_ratio < 1:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {mask_ratio}.")
        self.mask_ratio = mask_ratio
        self.normalise_targets = normalise_targets
        self.mask_token = nn.Parameter(torch.zeros(encoder.config.d_model))
        nn.init.normal_(self.mask_token, std=0.02)
        self.decoder = nn.Linear(encoder.config.d_model, encoder.config.token_dim)

    def _mask(self, batch: dict, x: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        if TOKEN_MASK in batch:
            mask = batch[TOKEN_MASK].bool()
            if tuple(mask.shape) != tuple(x.shape[:3]):
                raise DataError(
                    f"masked_tokens: token_mask {tuple(mask.shape)} does not match tokens "
                    f"{tuple(x.shape[:3])}."
                )
            return mask
        scores = torch.rand(x.shape[:3], device=x.device)
        real = frame_mask[:, :, None].expand_as(scores)
        scores = scores.masked_fill(~real, 2.0)
        n_real = real.flatten(1).sum(1)
        n_hidden = (n_real.float() * self.mask_ratio).round().clamp(min=1).long()
        ranks = scores.flatten(1).argsort(1).argsort(1)
        return (ranks < n_hidden[:, None]).reshape(scores.shape) & real

    def reconstruct(self, batch: dict) -> dict[str, torch.Tensor]:
        """Prediction, target and mask of a batch (the report's reconstructions).

        Returns
        -------
        dict
            ``prediction`` and ``target`` ``(B, T, K, F)`` float, ``mask`` ``(B, T, K)``
            bool (hidden tokens), ``real`` ``(B, T, K)`` bool (not padding).
        """
        x = batch[INPUTS]
        b, t, k, f = x.shape
        frame_mask = batch.get(FRAME_MASK)
        if frame_mask is None:
            frame_mask = torch.ones(b, t, dtype=torch.bool, device=x.device)
        frame_mask = frame_mask.bool()
        mask = self._mask(batch, x, frame_mask)
        h = self.encoder.embed_tokens(x)
        h = torch.where(mask.reshape(b, t * k, 1), self.mask_token.to(h.dtype), h)
        states = self.encoder.encode(h, t, frame_mask, batch.get(TR))[:, 1:]
        prediction = self.decoder(states).reshape(b, t, k, f)
        target = normalise_tokens(x) if self.normalise_targets else x.float()
        real = frame_mask[:, :, None].expand(b, t, k)
        return {"prediction": prediction, "target": target, "mask": mask & real, "real": real}

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        parts = self.reconstruct(batch)
        error = (parts["prediction"].float() - parts["target"]).pow(2).mean(-1)
        hidden = parts["mask"].float()
        loss = (error * hidden).sum() / hidden.sum().clamp_min(1.0)
        return {"loss": loss, "masked_fraction": (hidden.sum() / parts["real"].sum()).detach()}
