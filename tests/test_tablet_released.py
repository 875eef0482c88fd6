"""TABLeT ``paper`` is the released network; released checkpoints load into it.

The released network is written out here from the public reference (beotborry/TABLeT,
``src/models/TABLeT.py`` built with ``configs/hcp_configs/tablet_hcp_intelligence_T256.yaml``:
``feature_norm: True``, ``input_norm: True``, ``out_norm: False``, ``use_TR: False``, and
``MultiheadGQA(d_model, num_heads, num_kv_heads, dropout, qk_norm)`` passing ``qk_norm``
into ``use_rope``), without reading our model: its parameter names and shapes, the order
in which its forward pass calls its layers, and that forward pass itself in plain tensor
operations, as the paper describes it.
"""

from __future__ import annotations

import fractions
import math

import pytest
import torch
import torch.nn.functional as F

from neuroai.errors import DataError
from neuroai.models import create_model
from neuroai.models.tablet_released import (
    from_released_state_dict,
    load_released,
    released_config,
)

#: The released HCP T256 sizes: tokens of 3072, width 896, 12 layers, 14 query heads and
#: 2 key/value heads (head width 896 / 14 = 64), MLP 4864, one output.
PAPER = {"f": 3072, "d": 896, "heads": 14, "kv": 2, "mlp": 4864, "depth": 12, "outputs": 1}
#: Small unequal sizes of the same network for forward passes (head width 4).
SMALL = {"f": 15, "d": 24, "heads": 6, "kv": 2, "mlp": 40, "depth": 2, "outputs": 3}


def released_shapes(f, d, heads, kv, mlp, depth, outputs) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the released ``TABLeT`` module."""
    kv_width = d // heads * kv
    shapes = {
        "cls_token": (1, 1, d),
        "feature_projection.weight": (d, f),
        "feature_projection.bias": (d,),
        "feature_norm.weight": (f,),
        "feature_norm.bias": (f,),
        "input_norm.weight": (d,),
        "input_norm.bias": (d,),
    }
    for i in range(depth):
        layer = {
            "self_attn.q_proj": (d, d),
            "self_attn.k_proj": (kv_width, d),
            "self_attn.v_proj": (kv_width, d),
            "self_attn.out_proj": (d, d),
            "norm1": (d, None),
            "norm2": (d, None),
            "ff.0": (mlp, d),  # ff = Linear, ReLU, Dropout, Linear, Dropout
            "ff.3": (d, mlp),
        }
        for name, (rows, cols) in layer.items():
            shapes[f"layers.{i}.{name}.weight"] = (rows,) if cols is None else (rows, cols)
            shapes[f"layers.{i}.{name}.bias"] = (rows,)
    shapes["fc.weight"] = (outputs, d)
    shapes["fc.bias"] = (outputs,)
    return shapes


def released_call_order(f, d, heads, kv, mlp, depth, outputs) -> list[tuple]:
    """The layers the released forward pass calls, in order: feature_norm,
    feature_projection, [CLS], input_norm, per layer norm1, q/k/v/out projections, norm2,
    ff.0, ff.3; then fc on CLS (no out_norm, no TR or position embedding)."""
    kv_width = d // heads * kv
    layer = [
        ("LayerNorm", d),
        ("Linear", d, d),
        ("Linear", d, kv_width),
        ("Linear", d, kv_width),
        ("Linear", d, d),
        ("LayerNorm", d),
        ("Linear", d, mlp),
        ("Linear", mlp, d),
    ]
    return [
        ("LayerNorm", f),
        ("Linear", f, d),
        ("LayerNorm", d),
        *layer * depth,
        ("Linear", d, outputs),
    ]


def released_state(sizes, seed=0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """A released state dict of random values (LayerNorms too, so no swap goes unseen)."""
    g = torch.Generator().manual_seed(seed)
    return {
        name: float(len(shape) == 1 and name.endswith(".weight"))  # LayerNorm scales near 1
        + torch.randn(shape, generator=g, dtype=dtype) / math.sqrt(shape[-1])
        for name, shape in released_shapes(**sizes).items()
    }


def paper_forward(w, x, frame_mask, *, heads, kv, depth):
    """TABLeT's forward pass from the paper: LayerNorm over each 3072-value token, a
    linear projection, a [CLS] token in front, a LayerNorm, pre-LN Transformer layers
    with grouped-query attention (query head j reads key/value head j // (heads / kv);
    padded frames are never attended to) and a ReLU MLP, and a linear head on [CLS]."""
    b, t, k, f = x.shape

    def norm(h, name):
        return F.layer_norm(h, h.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps=1e-5)

    def linear(h, name):
        return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    h = linear(norm(x.reshape(b, t * k, f), "feature_norm"), "feature_projection")
    h = norm(torch.cat([w["cls_token"].expand(b, 1, -1), h], dim=1), "input_norm")
    n, d = h.shape[1:]
    width = d // heads
    keep = torch.cat([torch.ones(b, 1, dtype=torch.bool), frame_mask.repeat_interleave(k, 1)], 1)
    for i in range(depth):
        p = f"layers.{i}."
        a = norm(h, p + "norm1")
        q = linear(a, p + "self_attn.q_proj").reshape(b, n, heads, width).transpose(1, 2)
        keys = linear(a, p + "self_attn.k_proj").reshape(b, n, kv, width).transpose(1, 2)
        values = linear(a, p + "self_attn.v_proj").reshape(b, n, kv, width).transpose(1, 2)
        keys = keys.repeat_interleave(heads // kv, dim=1)
        values = values.repeat_interleave(heads // kv, dim=1)
        scores = q @ keys.transpose(-1, -2) / math.sqrt(width)
        weights = scores.masked_fill(~keep[:, None, None, :], -math.inf).softmax(-1)
        mixed = (weights @ values).transpose(1, 2).reshape(b, n, d)
        h = h + linear(mixed, p + "self_attn.out_proj")
        h = h + linear(torch.relu(linear(norm(h, p + "norm2"), p + "ff.0")), p + "ff.3")
    return linear(h[:, 0], "fc")


def _small_inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 5, SMALL["f"], generator=g, dtype=torch.float64)
    frame_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    x[1, 2:] = 50.0  # garbage in the padded frames
    return x, frame_mask


def test_paper_preset_is_the_released_network():
    with torch.device("meta"):
        model = create_model("tablet", preset="paper")
    c = model.config
    assert (c.positional, c.tr_embedding, c.embed_norm, c.final_norm) == (
        "none",
        False,
        True,
        False,
    )
    assert model.tr_embed is None and model.cube_embed is None and model.norm is None
    # The parameters: the released names and shapes, one to one, nothing left over.
    shapes = released_shapes(**PAPER)
    released = {name: torch.empty(shape, device="meta") for name, shape in shapes.items()}
    model.load_state_dict(from_released_state_dict(released), strict=True, assign=True)
    expected = sum(math.prod(s) for s in shapes.values())
    assert model.parameter_count() == expected == 129_515_393
    # The order of the layers the forward pass calls: LayerNorm placement, no final norm.
    calls = []

    def record(module, args, output):
        if isinstance(module, torch.nn.LayerNorm):
            calls.append(("LayerNorm", module.normalized_shape[0]))
        else:
            calls.append(("Linear", module.in_features, module.out_features))

    for module in model.modules():
        if isinstance(module, torch.nn.Linear | torch.nn.LayerNorm):
            module.register_forward_hook(record)
    tokens = torch.empty(1, 3, 27, 3072, device="meta")
    model(tokens, torch.ones(1, 3, dtype=torch.bool, device="meta"), torch.tensor([0.72]))
    assert calls == released_call_order(**PAPER)


def test_recommended_and_demo_keep_our_layout():
    with torch.device("meta"):
        recommended = create_model("tablet", preset="recommended")
        demo = create_model("tablet", preset="demo")
    for model in (recommended, demo):
        c = model.config
        assert (c.positional, c.tr_embedding, c.embed_norm, c.final_norm) == (
            "rope",
            True,
            False,
            True,
        )
        assert model.embed_norm is None and model.norm is not None
    # + TR embedding Linear(1, 896) - 0: the final LayerNorm replaces the input one.
    assert recommended.parameter_count() == 129_515_393 + 2 * 896 == 129_517_185
    assert demo.parameter_count() == 119_649


def test_paper_preset_sees_a_set_of_tokens_and_no_tr():
    torch.manual_seed(0)
    model = create_model("tablet", preset="paper", token_dim=12, n_tokens=5, d_model=16, head_dim=4,
                         n_heads=4, n_kv_heads=2, mlp_dim=24, depth=2).eval()  # fmt: skip
    x = torch.randn(1, 3, 5, 12)
    with torch.no_grad():
        out = model(x, tr=torch.tensor([0.72]))
        torch.testing.assert_close(model(x[:, [2, 0, 1]], tr=torch.tensor([2.0])), out)
        torch.testing.assert_close(model(x[:, :, [4, 0, 3, 1, 2]]), out)


def test_a_released_state_dict_gives_the_papers_outputs(tmp_path):
    weights = released_state(SMALL)
    x, frame_mask = _small_inputs()
    expected = paper_forward(weights, x, frame_mask, heads=6, kv=2, depth=2)
    assert released_config(weights, head_dim=4) == {
        "token_dim": 15, "d_model": 24, "depth": 2, "n_heads": 6, "n_kv_heads": 2,
        "head_dim": 4, "mlp_dim": 40, "n_outputs": 3, "embed_norm": True, "final_norm": False,
    }  # fmt: skip
    model = create_model(
        "tablet", preset="paper", n_tokens=5, **released_config(weights, head_dim=4)
    )
    model = model.double().eval()
    model.load_state_dict(from_released_state_dict(weights), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x, frame_mask), expected, rtol=1e-10, atol=1e-10)
    # The file the released training saves (a checkpoint dict), with the pretraining-only
    # entries its fine-tuning loader drops.
    checkpoint = {
        "epoch": 19,
        "model_state_dict": {
            **{k: v.float() for k, v in weights.items()},
            "mask_token": torch.zeros(24),
            "decoder.weight": torch.zeros(15, 24),
            "decoder.bias": torch.zeros(15),
        },
    }
    torch.save(checkpoint, tmp_path / "checkpoint_epoch_19.pt")
    loaded = load_released(tmp_path / "checkpoint_epoch_19.pt", head_dim=4, n_tokens=5)
    assert not loaded.training and loaded.config.n_heads == 6
    with torch.no_grad():
        out = loaded(x.float(), frame_mask)
    torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)


def test_released_checkpoints_ours_cannot_hold_are_refused_by_name(tmp_path):
    weights = released_state(SMALL)
    qk_norm = {**weights, "layers.1.self_attn.q_norm.weight": torch.ones(4)}
    with pytest.raises(DataError, match=r"layers\.1\.self_attn\.q_norm\.weight"):
        from_released_state_dict(qk_norm)
    swiglu = {**weights, "layers.0.ff.gate_proj.weight": torch.ones(40, 24)}
    with pytest.raises(DataError, match="RMSNorm, SwiGLU, QK-norm"):
        load_released(swiglu, head_dim=4)
    with pytest.raises(DataError, match="head_dim 5 does not divide d_model 24"):
        released_config(weights, head_dim=5)
    torch.save({"model_state_dict": weights, "ratio": fractions.Fraction(1, 3)}, tmp_path / "c.pt")
    with pytest.raises(DataError, match="weights_only=False"):
        load_released(tmp_path / "c.pt", head_dim=4)
