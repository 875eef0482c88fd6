"""EEGFormer: a vector-quantised Transformer over channel-independent spectral patches.

Chen et al. 2024, "EEGFormer: Towards transferable and interpretable large-scale EEG
foundation model" (arXiv:2401.10278). Every channel of a 12 s window at 250 Hz is its
own univariate sequence: the FFT amplitude of the channel, instance-normalised and
cut into patches (the patch store of :mod:`neuroai.eeg.store` holds exactly these,
see :mod:`neuroai.eeg.patches`). The model, read top to bottom:

1. patch embedding: each patch of ``patch_len`` values -> ``d_model`` (linear, shared
   by all channels) plus a learnable position per patch index;
2. encoder: a pre-LN Transformer over each channel's patch sequence (``depth``
   layers), channels independent (they share weights and never attend to each other);
3. vector quantiser: every encoded patch is replaced by its nearest code of a
   ``codebook_size`` codebook (straight-through gradient; codebook + ``beta`` *
   commitment terms, or EMA updates; dead codes restarted; see
   :mod:`neuroai.models.blocks.quantizer`);
4. decoder: a ``decoder_depth``-layer Transformer (3 in the paper) over the quantised
   sequence and a linear layer back to ``patch_len`` values: the reconstructed patches.

Pretraining minimises the VQ-VAE loss ``reconstruction + codebook + beta * commitment``
(:meth:`EEGFormer.vqvae_terms`, wrapped by the ``vqvae`` objective). Downstream
models read the encoder: :meth:`EEGFormer.embed` averages each channel's encoded
patches and concatenates the channels (``n_chans * d_model`` features, so a linear
probe sees where on the scalp a pattern is); :meth:`EEGFormer.codes` gives the
discrete tokens that the interpretation and anomaly analyses count.

What the paper fixes and what was chosen here (the paper is silent where noted):

- 250 Hz, 12 s windows (``n_times = 3000``), FFT amplitude, instance normalisation,
  linear patch embedding to 128 dimensions, learnable positions, 3-layer decoder,
  VQ-VAE loss; sizes small / base / large with encoder depths 6 / 8 / 12.
- Chosen (paper silent): patch length 50 and stride 50 (non-overlapping; 50 FFT bins
  are 4.2 Hz of a 12 s window, 30 patches from 0 to 125 Hz, the store's default);
  codebook of 1024 codes of dimension 128 (``code_dim``); 8 attention heads, MLP
  ratio 4, dropout 0.1; beta 0.25 (VQ-VAE's value); dead codes restarted after 20
  steps without use; ``paper`` is an alias of ``base``. All are config fields.
- ``demo`` is a tiny version (d_model 32, 2 heads, 2 encoder layers, 1 decoder layer,
  64 codes) that pretrains in seconds on a CPU.

Shapes:
    input ``x``: ``(B, n_chans, n_patches, patch_len)`` spectral patches (float);
    ``forward(x)``: reconstruction, same shape; ``embed(x)``: ``(B, n_chans * d_model)``;
    ``codes(x)``: ``(B, n_chans, n_patches)`` int64.
    :func:`spectral_patches` makes the input from raw windows ``(B, n_chans, n_times)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import INPUTS, NeuroModel
from neuroai.models.blocks.quantizer import Quantized, VectorQuantizer
from neuroai.models.config import ModelConfig
from neuroai.models.registry import register_model

EPS = 1e-6
RECONSTRUCTIONS = ("mse", "l1", "smooth_l1")


def patch_count(n_times: int, patch_len: int, patch_stride: int) -> int:
    """Spectral patches of a window of ``n_times`` samples (``n_times // 2`` FFT bins)."""
    bins = n_times // 2
    return 0 if bins < patch_len else (bins - patch_len) // patch_stride + 1


def spectral_patches(signal: torch.Tensor, patch_len: int, patch_stride: int) -> torch.Tensor:
    """FFT-amplitude patches of raw windows, as the patch store computes them.

    ``|rfft(x)|`` at bins ``0 .. L/2 - 1``, normalised per channel over bins
    (``(a - mean) / (std + 1e-6)``, population SD), cut into patches
    (see :mod:`neuroai.eeg.patches`).

    Parameters
    ----------
    signal : Tensor, shape (..., n_times)
        Preprocessed windows (any unit: the normalisation removes it).
    patch_len, patch_stride : int
        In FFT bins.

    Returns
    -------
    Tensor, shape (..., n_patches, patch_len)
    """
    length = signal.shape[-1]
    amplitude = torch.fft.rfft(signal.double(), dim=-1).abs()[..., : length // 2]
    mean = amplitude.mean(-1, keepdim=True)
    std = amplitude.std(-1, unbiased=False, keepdim=True)
    normalised = (amplitude - mean) / (std + EPS)
    return normalised.unfold(-1, patch_len, patch_stride).to(signal.dtype)


@dataclass
class EEGFormerConfig(ModelConfig):
    """Hyperparameters of EEGFormer (see the module docstring for what is chosen).

    Attributes
    ----------
    n_chans : int
        Channels per window (22 for the TUH TCP montage).
    n_times : int
        Samples per window (12 s at 250 Hz).
    sfreq : float
        Sampling frequency, Hz (recorded; the patches do not depend on it).
    patch_len, patch_stride : int
        Spectral patch length and stride in FFT bins.
    d_model : int
        Width of the patch embedding and the Transformers.
    depth : int
        Encoder layers.
    n_heads : int
        Attention heads (must divide ``d_model``).
    mlp_ratio : float
        Width of the Transformer MLPs relative to ``d_model``.
    dropout : float
        Dropout in the Transformers.
    decoder_depth : int
        Decoder layers.
    codebook_size : int
        Codes in the codebook.
    code_dim : int
        Length of a code (0: ``d_model``; otherwise linear maps in and out).
    beta : float
        Weight of the commitment term.
    ema : bool
        EMA codebook updates instead of the codebook loss.
    ema_decay : float
        Decay of the EMA updates.
    restart_every : int
        Training steps without use after which a code is restarted (0: never).
    """

    n_chans: int = 22
    n_times: int = 3000
    sfreq: float = 250.0
    patch_len: int = 50
    patch_stride: int = 50
    d_model: int = 128
    depth: int = 8
    n_heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    decoder_depth: int = 3
    codebook_size: int = 1024
    code_dim: int = 0
    beta: float = 0.25
    ema: bool = False
    ema_decay: float = 0.99
    restart_every: int = 20

    @property
    def n_patches(self) -> int:
        """Spectral patches per channel."""
        return patch_count(self.n_times, self.patch_len, self.patch_stride)

    def validate(self) -> None:
        positive = ("n_chans", "n_times", "patch_len", "patch_stride", "d_model", "depth")
        positive += ("n_heads", "decoder_depth", "codebook_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"EEGFormer: {name} must be >= 1, got {getattr(self, name)}.")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"EEGFormer: d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})."
            )
        if self.n_patches < 1:
            raise ConfigError(
                f"EEGFormer: a window of n_times={self.n_times} has {self.n_times // 2} FFT bins, "
                f"fewer than patch_len={self.patch_len}; shorten the patches."
            )
        if self.codebook_size < 2 or self.code_dim < 0:
            raise ConfigError(
                f"EEGFormer: codebook_size must be >= 2 and code_dim >= 0; got "
                f"{self.codebook_size}, {self.code_dim}."
            )
        if not 0 <= self.dropout < 1 or self.beta < 0 or self.mlp_ratio <= 0:
            raise ConfigError(
                f"EEGFormer: dropout must be in [0, 1), beta >= 0, mlp_ratio > 0; got "
                f"{self.dropout}, {self.beta}, {self.mlp_ratio}."
            )
        if not 0 < self.ema_decay < 1 or self.restart_every < 0:
            raise ConfigError(
                f"EEGFormer: ema_decay must be in (0, 1), restart_every >= 0; got "
                f"{self.ema_decay}, {self.restart_every}."
            )


_SIZES = {
    "small": {"d_model": 128, "depth": 6},
    "base": {"d_model": 128, "depth": 8},
    "large": {"d_model": 128, "depth": 12},
}
_PAPER = {"n_heads": 8, "mlp_ratio": 4.0, "decoder_depth": 3, "codebook_size": 1024}
PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "d_model": 32,
        "depth": 2,
        "n_heads": 2,
        "mlp_ratio": 2.0,
        "dropout": 0.0,
        "decoder_depth": 1,
        "codebook_size": 64,
        "restart_every": 10,
    },
    **{name: {**_PAPER, **size} for name, size in _SIZES.items()},
    "paper": {**_PAPER, **_SIZES["base"]},
}


def _transformer(config: EEGFormerConfig, depth: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        config.d_model,
        config.n_heads,
        dim_feedforward=int(config.d_model * config.mlp_ratio),
        dropout=config.dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


@register_model(
    "eegformer",
    config=EEGFormerConfig,
    presets=PRESETS,
    description="EEGFormer: channel-independent FFT patches, Transformer, VQ codebook, decoder",
)
class EEGFormer(NeuroModel):
    """The EEGFormer VQ-VAE (see the module docstring).

    Parameters
    ----------
    config : EEGFormerConfig
    """

    modality = "eeg"
    item_ndim = 3  # one window: (n_chans, n_patches, patch_len)

    def __init__(self, config: EEGFormerConfig) -> None:
        super().__init__(config)
        d, s = config.d_model, config.n_patches
        code_dim = config.code_dim or d
        self.patch_embed = nn.Linear(config.patch_len, d)
        self.position = nn.Parameter(torch.zeros(1, s, d))
        self.encoder = _transformer(config, config.depth)
        self.encoder_norm = nn.LayerNorm(d)
        self.to_code = nn.Linear(d, code_dim) if code_dim != d else nn.Identity()
        self.quantizer = VectorQuantizer(
            config.codebook_size,
            code_dim,
            ema=config.ema,
            decay=config.ema_decay,
            restart_every=config.restart_every,
        )
        self.from_code = nn.Linear(code_dim, d) if code_dim != d else nn.Identity()
        self.decoder_position = nn.Parameter(torch.zeros(1, s, d))
        self.decoder = _transformer(config, config.decoder_depth)
        self.decoder_norm = nn.LayerNorm(d)
        self.reconstruct = nn.Linear(d, config.patch_len)
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.decoder_position, std=0.02)

    @property
    def embed_dim(self) -> int:
        return self.config.n_chans * self.config.d_model

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        c = self.config
        return torch.randn(batch_size, c.n_chans, c.n_patches, c.patch_len)

    # The parts ----------------------------------------------------------------------------
    def _check(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        expected = (c.n_chans, c.n_patches, c.patch_len)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise DataError(
                f"EEGFormer takes spectral patches of shape (batch, {', '.join(map(str, expected))}) "
                f"(n_chans, n_patches, patch_len); got {tuple(x.shape)}. Build the model from the "
                "patch store's header (n_chans, n_times, patch_len, patch_stride)."
            )
        return x if x.dtype in (torch.float32, torch.float64) else x.float()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded patches before quantisation: shape ``(B, n_chans, n_patches, d_model)``."""
        x = self._check(x)
        b, c, s, _ = x.shape
        tokens = self.patch_embed(x.reshape(b * c, s, -1)) + self.position
        return self.encoder_norm(self.encoder(tokens)).reshape(b, c, s, -1)

    def quantize(self, encoded: torch.Tensor) -> Quantized:
        """Quantise encoded patches ``(B, C, S, d_model)`` (codes of length ``code_dim``)."""
        return self.quantizer(self.to_code(encoded))

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:
        """Patches reconstructed from quantised codes ``(B, C, S, code_dim)``."""
        b, c, s, _ = quantized.shape
        h = self.from_code(quantized).reshape(b * c, s, -1) + self.decoder_position
        h = self.decoder_norm(self.decoder(h))
        return self.reconstruct(h).reshape(b, c, s, -1)

    # The contract --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed patches, shape ``(B, n_chans, n_patches, patch_len)``."""
        return self.decode(self.quantize(self.encode(x)).quantized)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel mean of the encoded patches, channels concatenated: ``(B, C * d_model)``."""
        return self.encode(x).mean(dim=2).flatten(1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Code index of every patch: shape ``(B, n_chans, n_patches)``, int64."""
        return self.quantize(self.encode(x)).indices

    def vqvae_terms(
        self,
        x: torch.Tensor,
        *,
        beta: float | None = None,
        reconstruction: str = "mse",
    ) -> dict[str, torch.Tensor]:
        """The VQ-VAE loss and what to log about the codebook.

        Parameters
        ----------
        x : Tensor, shape (B, n_chans, n_patches, patch_len)
        beta : float | None
            Commitment weight (``config.beta`` when None).
        reconstruction : {"mse", "l1", "smooth_l1"}
            Distance between the patches and their reconstruction.

        Returns
        -------
        dict
            ``loss`` = reconstruction + codebook + beta * commitment, and the
            terms, ``perplexity``, ``usage`` (fraction of codes used in the batch)
            and, in training, ``restarted`` (codes restarted so far).
        """
        check_option("reconstruction", reconstruction, RECONSTRUCTIONS)
        x = self._check(x)
        beta = self.config.beta if beta is None else beta
        q = self.quantize(self.encode(x))
        restored = self.decode(q.quantized).float()
        if reconstruction == "mse":
            error = F.mse_loss(restored, x.float())
        elif reconstruction == "l1":
            error = F.l1_loss(restored, x.float())
        else:
            error = F.smooth_l1_loss(restored, x.float())
        loss = error + q.codebook_loss + beta * q.commitment_loss
        terms = {
            "loss": loss,
            "reconstruction": error.detach(),
            "codebook": q.codebook_loss.detach(),
            "commitment": q.commitment_loss.detach(),
            "perplexity": q.perplexity.detach(),
            "usage": q.usage.detach(),
        }
        if self.training:
            terms["restarted"] = self.quantizer.restarted.detach().float()
        return terms

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """The VQ-VAE loss with the config's ``beta`` (self-supervised: no target)."""
        return self.vqvae_terms(batch[INPUTS])

    @torch.no_grad()
    def validation_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.vqvae_terms(batch[INPUTS]).items()}

    @torch.no_grad()
    def window_scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-window quantities for anomaly scoring and interpretation.

        Returns
        -------
        dict
            ``codes`` (B, C, S) int64; ``reconstruction_error`` (B, C) mean squared
            error per channel; ``quantization_error`` (B, C) mean squared distance of
            the encoded patches to their codes.
        """
        x = self._check(x)
        q = self.quantize(self.encode(x))
        restored = self.decode(q.quantized).float()
        dim = q.quantized.shape[-1]
        return {
            "codes": q.indices,
            "reconstruction_error": (restored - x.float()).pow(2).mean(dim=(2, 3)),
            "quantization_error": q.distance.mean(dim=2) / dim,
        }
