"""The VQ-VAE objective of EEGFormer: reconstruct the patches through the codebook.

Pretraining minimises ``reconstruction + codebook + beta * commitment`` (van den Oord
et al. 2017; EEGFormer, Chen et al. 2024): the encoder's patch vectors are replaced by
their nearest codes (straight-through gradient), the decoder reconstructs the input
patches from the codes, the codebook term pulls the codes towards the encoder's
vectors (replaced by EMA updates when the model's ``ema`` is set) and the commitment
term, weighted by ``beta``, keeps the encoder near its codes. Codebook usage and
perplexity are returned for logging. The wrapped model holds the encoder, the
codebook and the decoder, so the exported pretrained folder can both embed (encoder)
and score reconstructions (anomaly detection).

Shapes:
    ``batch["inputs"]``: ``(B, n_chans, n_patches, patch_len)`` spectral patches.
"""

from __future__ import annotations

import torch

from neuroai.errors import ConfigError, check_option
from neuroai.models.base import INPUTS, NeuroModel
from neuroai.models.eegformer import RECONSTRUCTIONS
from neuroai.models.objectives.base import Objective, register_objective


@register_objective("vqvae")
class VQVAEObjective(Objective):
    """VQ-VAE pretraining of a model with ``vqvae_terms`` (EEGFormer).

    Parameters
    ----------
    encoder : NeuroModel
        An EEGFormer (``create_model("eegformer")``).
    beta : float | None
        Commitment weight (None: the model's ``beta``, 0.25 by default).
    reconstruction : {"mse", "l1", "smooth_l1"}
        Distance between patches and their reconstruction.
    """

    def __init__(
        self, encoder: NeuroModel, beta: float | None = None, reconstruction: str = "mse"
    ) -> None:
        super().__init__(encoder, beta=beta, reconstruction=reconstruction)
        check_option("reconstruction", reconstruction, RECONSTRUCTIONS)
        if not hasattr(encoder, "vqvae_terms"):
            raise ConfigError(
                f"The vqvae objective needs a vector-quantised model such as 'eegformer'; "
                f"{encoder.family!r} has no vqvae_terms."
            )
        if beta is not None and beta < 0:
            raise ConfigError(f"beta must be >= 0, got {beta}.")
        self.beta = beta
        self.reconstruction = reconstruction

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.encoder.vqvae_terms(
            batch[INPUTS], beta=self.beta, reconstruction=self.reconstruction
        )
