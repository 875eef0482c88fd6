"""Vector quantisation with a straight-through gradient (VQ-VAE, van den Oord et al. 2017).

Each input vector ``z`` is replaced by its nearest codebook entry ``e_k``,
``k = argmin_j ||z - e_j||^2``. The output ``z + sg(e_k - z)`` equals ``e_k`` in the
forward pass and passes the gradient to ``z`` unchanged (the straight-through
estimator; ``sg`` stops gradients). Two ways to learn the codebook:

- gradients (``ema=False``): the codebook term ``||sg(z) - e_k||^2`` moves the codes
  towards the vectors assigned to them, the commitment term ``||z - sg(e_k)||^2``
  (weighted by ``beta`` by the caller) keeps the encoder close to its codes;
- exponential moving averages (``ema=True``, as in VQ-VAE-2): after each training
  step every code becomes the decayed running mean of the vectors assigned to it
  (Laplace-smoothed counts); the codebook term is then zero and only the commitment
  term trains the encoder.

Codes that receive no vector for ``restart_every`` training steps are *dead*: they
are moved onto randomly chosen input vectors of the current batch (as in Jukebox and
SoundStream), so that the codebook stays in use. With ``init_from_data`` the first
training batch initialises the codebook the same way. In a distributed run counts and
sums are summed over processes and the restart vectors come from rank 0, so every
process keeps the same codebook. Random choices draw from torch's global generator,
which the training engine checkpoints, so a resumed run restarts the same codes.

Shapes:
    input ``z``: ``(..., dim)``; ``quantized``: same; ``indices``: ``(...)`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError


@dataclass
class Quantized:
    """What :class:`VectorQuantizer` returns.

    Attributes
    ----------
    quantized : Tensor, shape (..., dim)
        Straight-through codes: ``e_k`` forward, identity gradient to the input.
    indices : Tensor, shape (...), int64
        Chosen code of each vector.
    distance : Tensor, shape (...)
        Squared distance from each vector to its code (quantisation error).
    codebook_loss : Tensor, scalar
        ``mean ||sg(z) - e_k||^2`` (zero with EMA updates).
    commitment_loss : Tensor, scalar
        ``mean ||z - sg(e_k)||^2``.
    perplexity : Tensor, scalar
        ``exp(entropy)`` of the batch's code frequencies (1: one code, K: all equally).
    usage : Tensor, scalar
        Fraction of the codebook used in the batch.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    distance: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed():
        torch.distributed.all_reduce(tensor)
    return tensor


def _broadcast(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed():
        torch.distributed.broadcast(tensor, src=0)
    return tensor


def code_perplexity(counts: torch.Tensor) -> torch.Tensor:
    """``exp(-sum p log p)`` of code counts ``(K,)``; 0 when there are none."""
    total = counts.sum()
    if total <= 0:
        return counts.new_zeros(())
    p = counts / total
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class VectorQuantizer(nn.Module):
    """A codebook of ``codebook_size`` vectors of ``dim`` (see the module docstring).

    Parameters
    ----------
    codebook_size : int
        Number of codes ``K``.
    dim : int
        Length of each code.
    ema : bool
        Update the codebook by exponential moving averages instead of gradients.
    decay : float
        EMA decay per training step.
    restart_every : int
        Training steps without an assignment after which a code is restarted
        (0: never).
    init_from_data : bool
        Initialise the codebook from the first training batch.
    eps : float
        Laplace smoothing of the EMA counts.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        ema: bool = False,
        decay: float = 0.99,
        restart_every: int = 20,
        init_from_data: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if codebook_size < 2 or dim < 1:
            raise ConfigError(
                f"A codebook needs at least 2 codes of length >= 1; got {codebook_size} x {dim}."
            )
        if not 0 < decay < 1 or restart_every < 0:
            raise ConfigError(
                f"decay must be in (0, 1) and restart_every >= 0; got {decay}, {restart_every}."
            )
        self.codebook_size = codebook_size
        self.dim = dim
        self.ema = ema
        self.decay = decay
        self.restart_every = restart_every
        self.eps = eps
        self.codebook = nn.Parameter(
            torch.empty(codebook_size, dim).uniform_(-1 / codebook_size, 1 / codebook_size),
            requires_grad=not ema,
        )
        if ema:
            self.register_buffer("ema_count", torch.ones(codebook_size))
            self.register_buffer("ema_sum", self.codebook.detach().clone())
        # Assignments since the last dead-code check, and training steps since it.
        self.register_buffer("recent_counts", torch.zeros(codebook_size))
        self.register_buffer("steps_since_check", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not init_from_data))
        self.register_buffer("restarted", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, ema={self.ema}, "
            f"restart_every={self.restart_every}"
        )

    # The codebook ---------------------------------------------------------------------
    def nearest(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of the nearest code and the squared distance to it, for ``(N, dim)``."""
        codebook = self.codebook.float()
        distances = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ codebook.t()
            + codebook.pow(2).sum(1)[None, :]
        )
        distance, indices = distances.min(dim=1)
        return indices, distance.clamp_min(0)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices`` ``(...)``: shape ``(..., dim)``."""
        return F.embedding(indices, self.codebook)

    @torch.no_grad()
    def _random_rows(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        """``n`` rows of ``flat`` chosen at random (the same on every process)."""
        rows = torch.randint(0, flat.shape[0], (n,), device=flat.device)
        return _broadcast(flat[rows].clone())

    @torch.no_grad()
    def _set_codes(self, which: torch.Tensor, vectors: torch.Tensor) -> None:
        self.codebook.data[which] = vectors.to(self.codebook.dtype)
        if self.ema:
            self.ema_sum[which] = vectors.to(self.ema_sum.dtype)
            self.ema_count[which] = 1.0

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        """EMA update, dead-code restart and bookkeeping after a training batch."""
        onehot = F.one_hot(indices, self.codebook_size).to(flat.dtype)
        counts = _all_reduce(onehot.sum(0))
        if self.ema:
            sums = _all_reduce(onehot.t() @ flat)
            self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            total = self.ema_count.sum()
            smoothed = (self.ema_count + self.eps) / (total + self.codebook_size * self.eps) * total
            self.codebook.data.copy_(self.ema_sum / smoothed[:, None])
        self.recent_counts.add_(counts)
        self.steps_since_check.add_(1)
        if self.restart_every and int(self.steps_since_check) >= self.restart_every:
            dead = torch.nonzero(self.recent_counts == 0).flatten()
            if dead.numel():
                self._set_codes(dead, self._random_rows(flat, dead.numel()))
                self.restarted.add_(dead.numel())
            self.recent_counts.zero_()
            self.steps_since_check.zero_()

    # Forward -----------------------------------------------------------------------------
    def forward(self, z: torch.Tensor) -> Quantized:
        # Distances and codes in float32, also under bf16/fp16 autocast.
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._forward(z)

    def _forward(self, z: torch.Tensor) -> Quantized:
        shape = z.shape
        if shape[-1] != self.dim:
            raise DataError(
                f"VectorQuantizer expects vectors of {self.dim}, got {shape[-1]} "
                f"(input shape {tuple(shape)})."
            )
        flat = z.reshape(-1, self.dim).float()
        if self.training and not bool(self.initialized):
            with torch.no_grad():
                self._set_codes(
                    torch.arange(self.codebook_size, device=z.device),
                    self._random_rows(flat.detach(), self.codebook_size),
                )
                self.initialized.fill_(True)
        indices, distance = self.nearest(flat.detach())
        codes = self.lookup(indices).float()
        commitment = F.mse_loss(flat, codes.detach())
        codebook_loss = flat.new_zeros(()) if self.ema else F.mse_loss(codes, flat.detach())
        counts = torch.bincount(indices, minlength=self.codebook_size).float()
        if self.training:
            self._update(flat.detach(), indices)
        quantized = flat + (codes - flat).detach()
        return Quantized(
            quantized=quantized.reshape(shape).to(z.dtype),
            indices=indices.reshape(shape[:-1]),
            distance=distance.reshape(shape[:-1]),
            codebook_loss=codebook_loss,
            commitment_loss=commitment,
            perplexity=code_perplexity(counts),
            usage=(counts > 0).float().mean(),
        )
