"""Released TABLeT checkpoints: their parameter names to ours, and a loader.

The public reference (beotborry/TABLeT, ``src/models/TABLeT.py``) names the modules of
the network our ``paper`` preset builds differently. Renamed, a released state dict
loads into :class:`~neuroai.models.tablet.TABLeT` with nothing left over:

==========================================  ========================================
released                                    ours
==========================================  ========================================
``feature_norm`` LayerNorm(3072)            ``token_norm``
``feature_projection`` Linear(3072, D)      ``project``
``cls_token`` (1, 1, D)                     ``cls``
``input_norm`` LayerNorm(D)                 ``embed_norm``
``layers.{i}.norm1`` / ``norm2``            ``blocks.{i}.norm1`` / ``norm2``
``layers.{i}.self_attn.q_proj`` (k, v)      ``blocks.{i}.attn.q`` (``k``, ``v``)
``layers.{i}.self_attn.out_proj``           ``blocks.{i}.attn.out``
``layers.{i}.ff.0`` / ``ff.3``              ``blocks.{i}.mlp.0`` / ``mlp.2``
``out_norm`` LayerNorm(D) (off in release)  ``norm``
``fc`` Linear(D, outputs)                   ``head``
==========================================  ========================================

(``ff.1`` is the ReLU and ``ff.2``, ``ff.4`` are dropouts, without parameters.) The
masked-token pretraining state dict the released fine-tuning code reads also holds
``mask_token`` and ``decoder.weight`` / ``decoder.bias``; that code drops them before
loading, and so does :func:`from_released_state_dict` (the pretraining code is not
public, so where its mask token enters is not known).

Variants the released module can build but ours cannot (RMSNorm, SwiGLU, QK-norm, no
input LayerNorm over the 3072 values) leave names that are not in the table above and
are refused by name.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.models.registry import create_model
from neuroai.models.tablet import TABLeT

logger = get_logger("models.tablet_released")

#: Released top-level names to ours (a prefix followed by ``.weight`` / ``.bias``, or the
#: parameter itself).
TOP_LEVEL = {
    "feature_norm": "token_norm",
    "feature_projection": "project",
    "cls_token": "cls",
    "input_norm": "embed_norm",
    "out_norm": "norm",
    "fc": "head",
}
#: Released names inside ``layers.{i}`` to ours inside ``blocks.{i}``.
IN_LAYER = {
    "norm1": "norm1",
    "norm2": "norm2",
    "self_attn.q_proj": "attn.q",
    "self_attn.k_proj": "attn.k",
    "self_attn.v_proj": "attn.v",
    "self_attn.out_proj": "attn.out",
    "ff.0": "mlp.0",
    "ff.3": "mlp.2",
}
#: Keys of the released pretraining state dict that the fine-tuning loader drops.
PRETRAINING_ONLY = ("mask_token", "decoder.weight", "decoder.bias")

_LAYER = re.compile(r"layers\.(\d+)\.(.+)\.(weight|bias)$")
_TOP = re.compile(r"([a-z_]+)(?:\.(weight|bias))?$")


def _our_name(name: str) -> str | None:
    """Our parameter name of released ``name`` (None: not a released TABLeT name)."""
    match = _LAYER.match(name)
    if match:
        index, module, kind = match.groups()
        return f"blocks.{index}.{IN_LAYER[module]}.{kind}" if module in IN_LAYER else None
    match = _TOP.match(name)
    if match and match.group(1) in TOP_LEVEL:
        ours = TOP_LEVEL[match.group(1)]
        return ours if match.group(2) is None else f"{ours}.{match.group(2)}"
    return None


def from_released_state_dict(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Rename a released TABLeT state dict to the parameter names of ours.

    Parameters
    ----------
    state_dict : mapping
        The released model's ``state_dict()``, or a released checkpoint holding it
        under ``"model_state_dict"`` (as ``train.py`` saves it). A ``module.`` prefix
        (a model saved inside DDP) is removed.

    Returns
    -------
    dict
        The same tensors under our names; loads into the ``paper`` preset with
        ``strict=True`` when the sizes match (:func:`released_config` reads them).

    Raises
    ------
    DataError
        For a name the released TABLeT does not have, or one of a variant ours cannot
        build (RMSNorm, SwiGLU, QK-norm), listing them.
    """
    if "model_state_dict" in state_dict:
        state_dict = state_dict["model_state_dict"]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    dropped = []
    for name, value in state_dict.items():
        name = name.removeprefix("module.")
        if name in PRETRAINING_ONLY:
            dropped.append(name)
            continue
        ours = _our_name(name)
        if ours is None:
            unknown.append(name)
        else:
            out[ours] = value
    if unknown:
        raise DataError(
            f"Not parameters of the released TABLeT (or of a variant neuroai does not build: "
            f"RMSNorm, SwiGLU, QK-norm): {', '.join(sorted(unknown)[:8])}"
            f"{' ...' if len(unknown) > 8 else ''}. Expected names such as "
            f"'feature_projection.weight', 'layers.0.self_attn.q_proj.weight', 'fc.weight'."
        )
    if dropped:
        logger.info("Dropped the pretraining-only entries %s", ", ".join(dropped))
    return out


def released_config(state_dict: Mapping[str, Any], *, head_dim: int = 64) -> dict[str, Any]:
    """Config values of the network a released state dict was saved from.

    The released attention has ``head_dim = d_model // num_heads``, which the shapes do
    not show: ``head_dim`` (64 in the paper) gives ``n_heads`` and ``n_kv_heads``.

    Parameters
    ----------
    state_dict : mapping
        A released state dict or checkpoint (as :func:`from_released_state_dict` takes).
    head_dim : int
        Width of one attention head.

    Returns
    -------
    dict
        ``token_dim``, ``d_model``, ``depth``, ``n_heads``, ``n_kv_heads``, ``head_dim``,
        ``mlp_dim``, ``n_outputs``, ``embed_norm``, ``final_norm``: overrides of the
        ``paper`` preset.
    """
    state = from_released_state_dict(state_dict)
    needed = ("project.weight", "blocks.0.attn.k.weight", "blocks.0.mlp.0.weight", "head.weight")
    for name in needed:
        if name not in state:
            raise DataError(f"The released state dict has no {name!r} (ours) entry.")
    d_model, token_dim = state["project.weight"].shape
    kv_width = state["blocks.0.attn.k.weight"].shape[0]
    if d_model % head_dim or kv_width % head_dim:
        raise DataError(
            f"head_dim {head_dim} does not divide d_model {d_model} and the key width "
            f"{kv_width} of the checkpoint; pass the head width it was trained with."
        )
    return {
        "token_dim": int(token_dim),
        "d_model": int(d_model),
        "depth": 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.")),
        "n_heads": int(d_model // head_dim),
        "n_kv_heads": int(kv_width // head_dim),
        "head_dim": head_dim,
        "mlp_dim": int(state["blocks.0.mlp.0.weight"].shape[0]),
        "n_outputs": int(state["head.weight"].shape[0]),
        "embed_norm": "embed_norm.weight" in state,
        "final_norm": "norm.weight" in state,
    }


def load_released(source: str | Path | Mapping[str, Any], **overrides: Any) -> TABLeT:
    """Our ``paper`` TABLeT with the weights of a released checkpoint.

    Parameters
    ----------
    source : path-like or mapping
        A file written by ``torch.save`` (a state dict, or a checkpoint with
        ``"model_state_dict"``), or the mapping itself. Files are read with
        ``weights_only=True``: nothing but tensors and plain containers is unpickled.
    **overrides
        Config fields over the ``paper`` preset and what the shapes give (``head_dim``
        goes to :func:`released_config`; ``n_tokens`` for tokens of another grid).

    Returns
    -------
    TABLeT
        In eval mode, on the CPU; its outputs are the released network's.
    """
    if not isinstance(source, Mapping):
        try:
            source = torch.load(source, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            raise DataError(
                f"{source} holds objects other than tensors (a training checkpoint with "
                "optimizer and metric values?). In a session you trust, save its weights "
                "alone: torch.save(torch.load(path, weights_only=False)['model_state_dict'], "
                f"out), and load that. ({str(error).splitlines()[0]})"
            ) from error
    values = released_config(source, head_dim=int(overrides.pop("head_dim", 64)))
    state = from_released_state_dict(source)
    with torch.device("meta"):  # no time spent initialising weights that are replaced
        model = create_model("tablet", preset="paper", **{**values, **overrides})
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise DataError(
            f"The released weights do not fit TABLeT with {model.config}: missing "
            f"{missing}, unexpected {unexpected}."
        )
    return model.eval()
