"""TABLeT: a plain Transformer over 2D-autoencoded fMRI volume tokens.

Each fMRI frame is compressed by a natural-image 2D autoencoder into 27 tokens of 3072
values (one per 32^3 cube of the 96^3 MNI frame, see :mod:`neuroai.tokenizers.layout`),
so hundreds of frames fit one sequence. The encoder is

    LayerNorm(3072) -> Linear(3072, D) -> [CLS] + tokens (+ positions, + TR)
    -> [LayerNorm(D)] -> N pre-LayerNorm blocks (grouped-query attention, ReLU MLP)
    -> [LayerNorm(D)] -> head on CLS

with grouped-query attention through :func:`torch.nn.functional.scaled_dot_product_attention`
(``n_heads`` query heads share ``n_kv_heads`` key/value heads) and a key-padding mask so
padded frames are never attended to. The two bracketed LayerNorms are flags:
``embed_norm`` (before the blocks, after any added embedding, as CLIP's ``ln_pre``) and
``final_norm`` (after the blocks).

Presets (D = 896, 12 blocks, 14 query and 2 key/value heads of 64, MLP 4864, biases on
every projection in both large ones):

- ``paper``: the released network (beotborry/TABLeT, ``src/models/TABLeT.py`` with
  ``configs/hcp_configs/*T256.yaml``): ``embed_norm`` on (its ``input_norm``), no final
  LayerNorm (``out_norm: False``), no positions (an argument slip passes ``qk_norm=False``
  into ``use_rope``), no TR embedding (``use_TR: False``; its model ignores the TR
  anyway). 129,515,393 parameters. :mod:`neuroai.models.tablet_released` loads its
  checkpoints.
- ``recommended``: the same sizes with our choices, the config defaults: RoPE (the
  released code's evident intent; without positions a window is a set of tokens and the
  masked-token objective cannot tell its identical mask tokens apart), the TR embedding
  (cohorts with different TRs pretrain together) and the usual pre-LN layout of a final
  LayerNorm before the head and decoder (GPT-2, ViT) instead of one before the blocks.
  129,517,185 parameters.
- ``demo``: tiny (CPU seconds), with the ``recommended`` flags.

Positional information is a flag, ``positional``:

- ``"none"``: no positions, what the released code does: the model sees a set of tokens;
- ``"rope"`` (default): 1-D rotary embeddings over the flattened sequence (CLS first,
  then frame-major, cube-minor), theta 10000, the apparent intent of the released code.
  It adds no parameters and extends to any number of frames;
- ``"spacetime"``: ours: a sinusoidal embedding of the frame index plus a learned
  embedding of the cube (one of the 3x3x3), added to the tokens, so the two axes are
  kept apart.

A TR embedding (a linear map of log TR in seconds, added to every position) tells the
model how far apart frames are, so cohorts with different TRs pretrain together.

Shapes:
    tokens ``(B, T, K, F)`` (T frames, K = 27 tokens, F = 3072 values, float);
    ``frame_mask`` ``(B, T)`` bool, True for real frames (False: padding);
    ``tr`` ``(B,)`` seconds; output ``(B, n_outputs)``; ``embed`` ``(B, D)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuroai.errors import ConfigError, DataError, check_option
from neuroai.models.base import INPUTS, TARGET, NeuroModel
from neuroai.models.config import ModelConfig
from neuroai.models.registry import register_model

POSITIONAL = ("none", "rope", "spacetime")
TASKS = ("classification", "regression")
FRAME_MASK = "frame_mask"
TR = "tr"


@dataclass
class TABLeTConfig(ModelConfig):
    """Hyperparameters of TABLeT.

    Attributes
    ----------
    token_dim : int
        Values per token (3072 for DC-AE f32c32).
    n_tokens : int
        Tokens per frame (27: the 3x3x3 cubes of a 96^3 frame).
    d_model : int
        Width D of the Transformer.
    depth : int
        Number of blocks.
    n_heads, n_kv_heads : int
        Query heads and key/value heads (``n_heads`` a multiple of ``n_kv_heads``).
    head_dim : int
        Width of one head.
    mlp_dim : int
        Hidden width of the ReLU MLP.
    bias : bool
        Biases on the attention and MLP projections.
    dropout : float
        Dropout on attention weights and residual branches.
    positional : {"none", "rope", "spacetime"}
        Positional information (see the module docstring).
    rope_theta : float
        RoPE base.
    tr_embedding : bool
        Add an embedding of log TR to every position.
    embed_norm : bool
        LayerNorm(D) over [CLS] + tokens before the first block (the released
        network's ``input_norm``).
    final_norm : bool
        LayerNorm(D) after the last block (the released network has none).
    default_tr : float
        TR in seconds assumed when a batch gives none.
    n_outputs : int
        Outputs of the head on CLS (1 for a binary label or one regression target).
    task : {"classification", "regression"}
        Loss of :meth:`TABLeT.training_loss`: BCE with logits (``pos_weight`` on the
        positive class) for ``n_outputs == 1``, else cross-entropy; L1 for regression
        (on targets z-scored by the caller).
    pos_weight : float
        Weight of the positive class in binary BCE (n_negative / n_positive of the
        training split is the usual choice).
    example_frames : int
        Frames of :meth:`TABLeT.example_input`.
    """

    token_dim: int = 3072
    n_tokens: int = 27
    d_model: int = 896
    depth: int = 12
    n_heads: int = 14
    n_kv_heads: int = 2
    head_dim: int = 64
    mlp_dim: int = 4864
    bias: bool = True
    dropout: float = 0.0
    positional: str = "rope"
    rope_theta: float = 10000.0
    tr_embedding: bool = True
    embed_norm: bool = False
    final_norm: bool = True
    default_tr: float = 2.0
    n_outputs: int = 1
    task: str = "classification"
    pos_weight: float = 1.0
    example_frames: int = 4

    def validate(self) -> None:
        check_option("positional", self.positional, POSITIONAL)
        check_option("task", self.task, TASKS)
        for name in ("token_dim", "n_tokens", "d_model", "depth", "n_heads", "n_kv_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"TABLeT: {name} must be >= 1, got {getattr(self, name)}.")
        if self.head_dim < 2 or self.head_dim % 2:
            raise ConfigError(f"TABLeT: head_dim must be even and >= 2, got {self.head_dim}.")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(
                f"TABLeT: n_heads ({self.n_heads}) must be a multiple of n_kv_heads "
                f"({self.n_kv_heads}) for grouped-query attention."
            )
        if self.n_outputs < 1 or self.mlp_dim < 1 or self.example_frames < 1:
            raise ConfigError(
                f"TABLeT: n_outputs, mlp_dim and example_frames must be >= 1; got "
                f"{self.n_outputs}, {self.mlp_dim}, {self.example_frames}."
            )
        if not 0 <= self.dropout < 1 or self.default_tr <= 0 or self.pos_weight <= 0:
            raise ConfigError(
                f"TABLeT: dropout must be in [0, 1), default_tr and pos_weight > 0; got "
                f"{self.dropout}, {self.default_tr}, {self.pos_weight}."
            )


# -- positions ----------------------------------------------------------------------------


def rope_tables(
    n_positions: int, head_dim: int, theta: float, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables of 1-D RoPE, each ``(n_positions, head_dim)``."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    angles = torch.outer(torch.arange(n_positions, device=device).float(), inv)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``(B, H, N, head_dim)`` by position (rotate-half convention)."""
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def sinusoid(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding ``(..., width)`` of integer or real ``positions``."""
    half = width // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=positions.device).float() / max(half, 1)
    )
    angles = positions.float()[..., None] * freqs
    out = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(out, (0, width - 2 * half))


# -- blocks -------------------------------------------------------------------------------


class GroupedQueryAttention(nn.Module):
    """Multi-head attention whose ``n_heads`` queries share ``n_kv_heads`` keys/values."""

    def __init__(self, config: TABLeTConfig) -> None:
        super().__init__()
        c = config
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.n_kv_heads, c.head_dim
        self.q = nn.Linear(c.d_model, c.n_heads * c.head_dim, bias=c.bias)
        self.k = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=c.bias)
        self.v = nn.Linear(c.d_model, c.n_kv_heads * c.head_dim, bias=c.bias)
        self.out = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=c.bias)
        self.dropout = c.dropout

    def forward(
        self,
        x: torch.Tensor,
        attend: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.q(x).view(b, n, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        mask = None if attend is None else attend[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.n_heads != self.n_kv_heads,
        )
        return self.out(y.transpose(1, 2).reshape(b, n, self.n_heads * self.head_dim))


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: TABLeTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = GroupedQueryAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.mlp_dim, bias=config.bias),
            nn.ReLU(),
            nn.Linear(config.mlp_dim, config.d_model, bias=config.bias),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, attend=None, rope=None):
        x = x + self.drop(self.attn(self.norm1(x), attend, rope))
        return x + self.drop(self.mlp(self.norm2(x)))


# -- the model ----------------------------------------------------------------------------


#: The published sizes (both large presets).
PAPER_SIZES = {
    "d_model": 896,
    "depth": 12,
    "n_heads": 14,
    "n_kv_heads": 2,
    "head_dim": 64,
    "mlp_dim": 4864,
    "bias": True,
}
#: The released network's layout (see the module docstring).
RELEASED = {"positional": "none", "tr_embedding": False, "embed_norm": True, "final_norm": False}
#: Our layout (the config defaults).
RECOMMENDED = {"positional": "rope", "tr_embedding": True, "embed_norm": False, "final_norm": True}

#: ``demo``: tiny (CPU seconds); ``paper``: the released network; ``recommended``: the
#: published sizes with our layout (the config defaults).
PRESETS = {
    "demo": {
        "d_model": 32,
        "depth": 2,
        "n_heads": 4,
        "n_kv_heads": 2,
        "head_dim": 8,
        "mlp_dim": 64,
    },
    "paper": {**PAPER_SIZES, **RELEASED},
    "recommended": {**PAPER_SIZES, **RECOMMENDED},
}


@register_model(
    "tablet",
    config=TABLeTConfig,
    presets=PRESETS,
    description="TABLeT: Transformer over 27 x 3072 volume tokens per fMRI frame",
)
class TABLeT(NeuroModel):
    """TABLeT encoder with a head on CLS (see the module docstring).

    Parameters
    ----------
    config : TABLeTConfig
        Its hyperparameters.
    """

    modality = "tokens"
    item_ndim = 3  # (T, K, F)

    def __init__(self, config: TABLeTConfig) -> None:
        super().__init__(config)
        c = config
        self.token_norm = nn.LayerNorm(c.token_dim)
        self.project = nn.Linear(c.token_dim, c.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, c.d_model))
        self.tr_embed = nn.Linear(1, c.d_model) if c.tr_embedding else None
        self.cube_embed = (
            nn.Parameter(torch.zeros(c.n_tokens, c.d_model))
            if c.positional == "spacetime"
            else None
        )
        self.embed_norm = nn.LayerNorm(c.d_model) if c.embed_norm else None
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.d_model) if c.final_norm else None
        self.head = nn.Linear(c.d_model, c.n_outputs)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.cls, std=0.02)
        if self.cube_embed is not None:
            nn.init.normal_(self.cube_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def embed_dim(self) -> int:
        return self.config.d_model

    def example_input(self, batch_size: int = 1) -> torch.Tensor:
        c = self.config
        return torch.randn(batch_size, c.example_frames, c.n_tokens, c.token_dim)

    # -- pieces the masked-token objective reuses ---------------------------------------
    def check_tokens(self, x: torch.Tensor) -> None:
        """Raise a clear error unless ``x`` is ``(B, T, n_tokens, token_dim)``."""
        c = self.config
        if x.ndim != 4 or tuple(x.shape[2:]) != (c.n_tokens, c.token_dim):
            raise DataError(
                f"TABLeT takes tokens of shape (batch, frames, {c.n_tokens}, {c.token_dim}); "
                f"got {tuple(x.shape)}. Check the token store's layout against the model config."
            )

    def embed_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm and projection of every token: ``(B, T, K, F)`` -> ``(B, T * K, D)``."""
        self.check_tokens(x)
        h = self.project(self.token_norm(x))
        return h.flatten(1, 2)

    def encode(
        self,
        h: torch.Tensor,
        n_frames: int,
        frame_mask: torch.Tensor | None = None,
        tr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the Transformer on embedded tokens.

        Parameters
        ----------
        h : Tensor, shape (B, T * K, D)
            Embedded tokens (from :meth:`embed_tokens`, maybe with mask tokens swapped in).
        n_frames : int
            T.
        frame_mask : Tensor | None, shape (B, T), bool
            True for real frames; padded frames are not attended to.
        tr : Tensor | None, shape (B,)
            TR in seconds (``config.default_tr`` when None).

        Returns
        -------
        Tensor, shape (B, 1 + T * K, D)
            The last block's states (final-normalised when ``final_norm``), CLS first.
        """
        c = self.config
        b, n, _ = h.shape
        if c.positional == "spacetime":
            frames = torch.arange(n_frames, device=h.device)
            space_time = sinusoid(frames, c.d_model)[:, None, :] + self.cube_embed[None]
            h = h + space_time.reshape(1, n, c.d_model).to(h.dtype)
        x = torch.cat([self.cls.expand(b, -1, -1).to(h.dtype), h], dim=1)
        if self.tr_embed is not None:
            if tr is None:
                tr = torch.full((b,), c.default_tr, device=h.device)
            log_tr = torch.log(tr.to(h.device).float().reshape(b, 1))
            x = x + self.tr_embed(log_tr)[:, None, :].to(x.dtype)
        if self.embed_norm is not None:
            x = self.embed_norm(x)
        attend = None
        if frame_mask is not None:
            if tuple(frame_mask.shape) != (b, n_frames):
                raise DataError(
                    f"TABLeT: frame_mask has shape {tuple(frame_mask.shape)}, expected {(b, n_frames)}."
                )
            tokens_ok = frame_mask.bool().repeat_interleave(c.n_tokens, dim=1)
            attend = torch.cat([tokens_ok.new_ones(b, 1), tokens_ok], dim=1)
        rope = None
        if c.positional == "rope":
            rope = rope_tables(n + 1, c.head_dim, c.rope_theta, device=h.device)
        for block in self.blocks:
            x = block(x, attend, rope)
        return x if self.norm is None else self.norm(x)

    # -- the NeuroModel contract ----------------------------------------------------------
    def features(self, x, frame_mask=None, tr=None) -> torch.Tensor:
        """The CLS state ``(B, D)`` of tokens ``x`` ``(B, T, K, F)``."""
        return self.encode(self.embed_tokens(x), x.shape[1], frame_mask, tr)[:, 0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x, frame_mask=None, tr=None) -> torch.Tensor:
        return self.head(self.features(x, frame_mask, tr))

    def _outputs(self, batch: dict) -> torch.Tensor:
        return self(batch[INPUTS], batch.get(FRAME_MASK), batch.get(TR))

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The task loss of head ``outputs`` ``(B, n_outputs)`` against ``target``."""
        c = self.config
        if c.task == "regression":
            return F.l1_loss(outputs.float(), target.reshape(outputs.shape).float())
        if c.n_outputs == 1:
            weight = torch.tensor(c.pos_weight, device=outputs.device)
            return F.binary_cross_entropy_with_logits(
                outputs.float().reshape(-1), target.reshape(-1).float(), pos_weight=weight
            )
        return F.cross_entropy(outputs.float(), target.reshape(-1).long())

    def training_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(self._outputs(batch), batch[TARGET])}

    @torch.no_grad()
    def validation_metrics(self, batch: dict) -> dict[str, torch.Tensor]:
        outputs = self._outputs(batch)
        target = batch[TARGET]
        metrics = {"loss": self.loss(outputs, target)}
        if self.config.task == "regression":
            metrics["mae"] = (outputs.float() - target.reshape(outputs.shape).float()).abs().mean()
        elif self.config.n_outputs == 1:
            hits = (outputs.reshape(-1) > 0).long() == target.reshape(-1).long()
            metrics["accuracy"] = hits.float().mean()
        else:
            metrics["accuracy"] = (outputs.argmax(1) == target.reshape(-1).long()).float().mean()
        return metrics
