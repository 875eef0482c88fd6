"""EEGNet: the compact convolutional baseline EEG models are compared against.

EEGNet (Lawhern et al., 2018, J. Neural Eng. 15, 056013) learns a temporal filter bank,
spatial filters per temporal filter and a separable convolution, about a thousand weights
in all. It is a *baseline* for EEGFormer's downstream tasks, trained from scratch on the
same training windows, split and step budget as EEGFormer's probe, fine-tune and scratch
modes (``pipelines/eegformer_finetune.py``, mode ``eegnet``), so that the report can say
what pretraining buys against a published small architecture, not only against the same
transformer from random weights.

Architecture (EEGNet-F1,D; the paper's EEGNet-8,2 is the default, both presets):

1. temporal convolution, ``F1`` filters of ``kernel_length`` samples, "same" padding, no
   bias; batch norm;
2. depthwise spatial convolution over all ``n_chans`` electrodes, ``D`` per temporal
   filter, no bias, each filter's L2 norm capped at ``max_norm`` (1.0); batch norm; ELU;
   average pooling by ``pool1`` (4) in time; dropout;
3. separable convolution (depthwise ``separable_kernel`` in time, then pointwise to
   ``F2`` maps), no bias; batch norm; ELU; average pooling by ``pool2`` (8); dropout;
4. flatten: ``embed(x)`` is this vector, ``(B, F2 * (n_samples // pool1 // pool2))``;
   the classifier is the probe's linear head on it (the paper's dense softmax layer).

What differs from the paper, and why:

- Kernel lengths are given in seconds of the paper's 128 Hz data (64 samples = 0.5 s,
  16 samples = 0.125 s) and scaled to the store's sampling rate (``sfreq``) when left at
  0, so the filters cover the same frequencies; the pooling factors stay 4 and 8 as in
  the paper, so at 250 Hz the feature map is about twice as long.
- The input is the patch store's time patches (instance-normalised per channel and
  window), put back together into the window's signal; the paper z-scores nothing and
  band-passes instead (our stores are band-passed upstream, ``neuroai.eeg``).
- The dense layer's max-norm constraint (0.25) is not applied (the probe's head is a
  plain linear layer); the depthwise constraint is.

Shapes:
    input ``x``: ``(B, n_chans, n_time_patches, patch_len)`` time patches (float);
    ``forward(x)`` and ``embed(x)``: ``(B, embed_dim)`` features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError
from neuroai.models.base import NeuroModel
from neuroai.models.config import ModelConfig
from neuroai.models.registry import register_model

#: The paper's sampling rate, to which its kernel lengths (64 and 16 samples) refer.
PAPER_SFREQ = 128.0


class TimePatchGeometry:
    """What a config with ``n_times``, ``patch_len`` and ``patch_stride`` derives from them."""

    n_times: int
    patch_len: int
    patch_stride: int

    @property
    def n_time_patches(self) -> int:
        """Time patches per channel in the store (``neuroai.eeg.patches.n_patches``)."""
        if self.n_times < self.patch_len:
            return 0
        return (self.n_times - self.patch_len) // self.patch_stride + 1

    @property
    def n_samples(self) -> int:
        """Samples the time patches cover (the signal the network convolves)."""
        return (self.n_time_patches - 1) * self.patch_stride + self.patch_len


@dataclass
class EEGNetConfig(TimePatchGeometry, ModelConfig):
    """Hyperparameters of EEGNet (see the module docstring).

    Attributes
    ----------
    n_chans : int
        Electrodes per window.
    n_times : int
        Samples per window (the store's ``window_samples``).
    patch_len, patch_stride : int
        The store's time patches, in samples (the input is put back together from them;
        ``patch_stride <= patch_len``).
    sfreq : float
        Sampling rate of the windows, Hz (scales the default kernel lengths).
    F1 : int
        Temporal filters.
    D : int
        Spatial filters per temporal filter (depth multiplier).
    F2 : int
        Maps of the separable convolution (0: ``F1 * D``, as in the paper).
    kernel_length : int
        Temporal filter length in samples (0: half a second, the paper's 64 at 128 Hz).
    separable_kernel : int
        Separable convolution length in samples (0: 1/8 s, the paper's 16 at 128 Hz).
    pool1, pool2 : int
        Average pooling factors in time.
    dropout : float
        Dropout rate (the paper: 0.5 across subjects, 0.25 within a subject).
    max_norm : float
        Cap on each spatial filter's L2 norm (0: none).
    """

    n_chans: int = 22
    n_times: int = 3000
    patch_len: int = 50
    patch_stride: int = 50
    sfreq: float = 250.0
    F1: int = 8
    D: int = 2
    F2: int = 0
    kernel_length: int = 0
    separable_kernel: int = 0
    pool1: int = 4
    pool2: int = 8
    dropout: float = 0.5
    max_norm: float = 1.0

    @property
    def maps(self) -> int:
        return self.F2 or self.F1 * self.D

    @property
    def temporal_kernel(self) -> int:
        return self.kernel_length or max(1, round(64 * self.sfreq / PAPER_SFREQ))

    @property
    def separable_length(self) -> int:
        return self.separable_kernel or max(1, round(16 * self.sfreq / PAPER_SFREQ))

    @property
    def n_features(self) -> int:
        return self.maps * (self.n_samples // self.pool1 // self.pool2)

    def validate(self) -> None:
        positive = ("n_chans", "n_times", "patch_len", "patch_stride", "F1", "D")
        positive += ("pool1", "pool2")
        bad = [name for name in positive if getattr(self, name) < 1]
        if bad or self.sfreq <= 0:
            raise ConfigError(f"EEGNet: {', '.join(bad) or 'sfreq'} must be positive.")
        if self.patch_stride > self.patch_len:
            raise ConfigError(
                f"EEGNet needs the whole signal, but time patches of {self.patch_len} samples "
                f"every {self.patch_stride} leave gaps; build the store with "
                "patch_stride <= patch_len."
            )
        if self.n_time_patches < 1 or self.n_samples // self.pool1 // self.pool2 < 1:
            raise ConfigError(
                f"EEGNet: windows of {self.n_times} samples are too short for time patches of "
                f"{self.patch_len} and pooling by {self.pool1} x {self.pool2}."
            )
        if not 0 <= self.dropout < 1 or self.max_norm < 0 or self.F2 < 0:
            raise ConfigError(
                f"EEGNet: dropout={self.dropout} (in [0, 1)), max_norm={self.max_norm} "
                f"and F2={self.F2} (>= 0) are out of range."
            )


def _same(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Zero-pad time as Keras' "same" does (the extra sample of an even kernel on the right)."""
    left = (kernel - 1) // 2
    return F.pad(x, (left, kernel - 1 - left))


def patches_to_signal(
    x: torch.Tensor,
    n_chans: int,
    n_time_patches: int,
    patch_len: int,
    patch_stride: int,
    *,
    who: str = "EEGNet",
) -> torch.Tensor:
    """Windows' signal ``(B, n_chans, n_samples)`` from their time patches.

    ``x`` is ``(B, n_chans, n_time_patches, patch_len)``, cut every ``patch_stride``
    samples (``patch_stride <= patch_len``); ``who`` names the model in the error.
    """
    expected = (n_chans, n_time_patches, patch_len)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{who} takes time patches of shape (batch, {', '.join(map(str, expected))}) "
            f"(n_chans, n_time_patches, patch_len); got {tuple(x.shape)}. Build the model "
            "from the patch store's header and feed the store's time patches."
        )
    x = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if patch_stride == patch_len:
        return x.reshape(x.shape[0], n_chans, -1)
    # Overlapping patches: the first ``stride`` samples of every patch, then the last one.
    head = x[:, :, :-1, :patch_stride].reshape(x.shape[0], n_chans, -1)
    return torch.cat([head, x[:, :, -1]], dim=-1)


#: Both presets are the paper's EEGNet-8,2 (it is small enough for CPU demos).
PRESETS = {"demo": {}, "paper": {"F1": 8, "D": 2, "dropout": 0.5}}


@register_model(
    "eegnet",
    config=EEGNetConfig,
    presets=PRESETS,
    description="EEGNet-8,2 (Lawhern et al. 2018): compact CNN baseline for EEG tasks",
)
class EEGNet(NeuroModel):
    """EEGNet's convolutional feature extractor (see the module docstring).

    Parameters
    ----------
    config : EEGNetConfig
        Its hyperparameters.
    """

    modality = "eeg"
    item_ndim = 3  # one window: (n_chans, n_time_patches, patch_len)

    def __init__(self, config: EEGNetConfig) -> None:
        super().__init__(config)
        c = config
        spatial = c.F1 * c.D
        self.temporal = nn.Conv2d(1, c.F1, (1, c.temporal_kernel), bias=False)
        self.temporal_norm = nn.BatchNorm2d(c.F1)
        self.spatial = nn.Conv2d(c.F1, spatial, (c.n_chans, 1), groups=c.F1, bias=False)
        self.spatial_norm = nn.BatchNorm2d(spatial)
        self.pool1 = nn.AvgPool2d((1, c.pool1))
        self.separable_depthwise = nn.Conv2d(
            spatial, spatial, (1, c.separable_length), groups=spatial, bias=False
        )
        self.separable_pointwise = nn.Conv2d(spatial, c.maps, 1, bias=False)
        self.separable_norm = nn.BatchNorm2d(c.maps)
        self.pool2 = nn.AvgPool2d((1, c.pool2))
        self.activation = nn.ELU()
        self.drop = nn.Dropout(c.dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.n_features

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        c = self.config
        return torch.randn(batch_size, c.n_chans, c.n_time_patches, c.patch_len)

    def signal(self, x: torch.Tensor) -> torch.Tensor:
        """The windows' signal ``(B, n_chans, n_samples)`` from their time patches."""
        c = self.config
        return patches_to_signal(x, c.n_chans, c.n_time_patches, c.patch_len, c.patch_stride)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.training and c.max_norm:
            with torch.no_grad():  # Keras' max_norm constraint, kept after every update
                self.spatial.weight.copy_(
                    torch.renorm(self.spatial.weight, p=2, dim=0, maxnorm=c.max_norm)
                )
        h = self.temporal(_same(self.signal(x).unsqueeze(1), c.temporal_kernel))
        h = self.temporal_norm(h)
        h = self.drop(self.pool1(self.activation(self.spatial_norm(self.spatial(h)))))
        h = self.separable_pointwise(self.separable_depthwise(_same(h, c.separable_length)))
        h = self.drop(self.pool2(self.activation(self.separable_norm(h))))
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)
