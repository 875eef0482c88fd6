"""TABLeT: model, masked token modelling, token windows, subject-level metrics, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.evaluation import average_by_subject, subject_metrics
from neuroai.models import create_model, load_pretrained
from neuroai.models.objectives.base import create_objective
from neuroai.models.objectives.masked_tokens import normalise_tokens, random_token_mask
from neuroai.models.tablet import RELEASED
from neuroai.testing import write_token_store
from neuroai.testing.training import CrashAtStep
from neuroai.training import (
    PretrainModule,
    TokenWindowDataModule,
    TokenWindows,
    TrainConfig,
    fit,
    pad_window,
    seed_everything,
    tile_starts,
)

TINY = {"token_dim": 12, "n_tokens": 5, "example_frames": 3}


def _tokens(b=2, t=3, seed=0):
    return torch.randn(
        b, t, TINY["n_tokens"], TINY["token_dim"], generator=torch.Generator().manual_seed(seed)
    )


@pytest.fixture
def stores(tmp_path):
    trs = [0.72, 2.0, 0.72, 2.0, 0.72, 2.0]
    frames = [7, 5, 9, 4, 7, 6]
    return [
        write_token_store(
            tmp_path / f"sub-{i:02d}_tokens.npy",
            n_frames=n,
            n_tokens=5,
            token_dim=12,
            tr=tr,
            seed=i,
        )
        for i, (n, tr) in enumerate(zip(frames, trs, strict=True))
    ]


def test_large_presets_have_about_129_5_million_parameters_on_the_meta_device():
    # Structure against the released network: tests/test_tablet_released.py.
    for preset, positional in (("paper", "none"), ("recommended", "rope")):
        with torch.device("meta"):
            model = create_model("tablet", preset=preset)
        assert model.config.n_outputs == 1 and model.config.positional == positional
        assert abs(model.parameter_count() - 129.5e6) / 129.5e6 < 0.01
        attn = model.blocks[0].attn
        assert (attn.q.out_features, attn.k.out_features, attn.q.bias is not None) == (
            896,
            128,
            True,
        )


@pytest.mark.parametrize(
    "layout",
    [
        {"positional": "none"},
        {"positional": "rope"},
        {"positional": "spacetime"},
        RELEASED,  # the paper preset's: LayerNorm before the blocks, none after, no TR
    ],
)
def test_demo_forward_backward_and_padding_is_ignored(layout):
    torch.manual_seed(0)
    model = create_model("tablet", **layout, **TINY).eval()
    x = _tokens(2, 3)
    out = model(x, tr=torch.tensor([0.72, 2.0]))
    assert out.shape == (2, 1) and model.embed(x).shape == (2, 32)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # Two padded frames of garbage change nothing: the key-padding mask hides them.
    padded = torch.cat([x, 100 * torch.randn(2, 2, 5, 12)], dim=1)
    mask = torch.tensor([[True] * 3 + [False] * 2] * 2)
    with torch.no_grad():
        torch.testing.assert_close(model(padded, mask), model(x), rtol=1e-4, atol=1e-5)


def test_positions_matter_only_when_asked():
    torch.manual_seed(1)
    x = _tokens(1, 3)
    shuffled = x[:, [2, 0, 1]]
    outputs = {}
    for positional in ("none", "rope"):
        torch.manual_seed(1)
        model = create_model("tablet", positional=positional, **TINY).eval()
        with torch.no_grad():
            outputs[positional] = (model.embed(x), model.embed(shuffled))
    torch.testing.assert_close(*outputs["none"], rtol=1e-4, atol=1e-5)  # a set of tokens
    assert (outputs["rope"][0] - outputs["rope"][1]).abs().max() > 1e-3


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="multiple of n_kv_heads"):
        create_model("tablet", n_heads=5, n_kv_heads=2)
    with pytest.raises(ConfigError, match="Did you mean 'rope'"):
        create_model("tablet", positional="rop")
    with pytest.raises(DataError, match=r"\(batch, frames, 27, 3072\)"):
        create_model("tablet")(torch.zeros(1, 2, 27, 100))


def test_losses_bce_with_pos_weight_and_l1():
    out = torch.tensor([[0.3], [-1.2], [2.0]])
    y = torch.tensor([1.0, 0.0, 1.0])
    model = create_model("tablet", pos_weight=3.0, **TINY)
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(3.0))(out.reshape(-1), y)
    torch.testing.assert_close(model.loss(out, y), expected)
    reg = create_model("tablet", task="regression", **TINY)
    torch.testing.assert_close(reg.loss(out, y), (out.reshape(-1) - y).abs().mean())


def test_token_mask_hides_half_of_the_real_tokens_only():
    frame_mask = np.array([True] * 5 + [False] * 2)
    mask = random_token_mask(frame_mask, 5, 0.5, np.random.default_rng(0))
    assert mask.shape == (7, 5) and mask.sum() == round(0.5 * 25) and not mask[5:].any()
    again = random_token_mask(frame_mask, 5, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(mask, again)


def test_masked_token_loss_is_mse_on_normalised_masked_tokens():
    torch.manual_seed(0)
    objective = create_objective("masked_tokens", create_model("tablet", **TINY), mask_ratio=0.5)
    x = _tokens(2, 4)
    frame_mask = torch.tensor([[True] * 4, [True, True, True, False]])
    token_mask = torch.from_numpy(
        np.stack(
            [
                random_token_mask(m, 5, 0.5, np.random.default_rng(i))
                for i, m in enumerate(frame_mask.numpy())
            ]
        )
    )
    batch = {
        "inputs": x,
        "frame_mask": frame_mask,
        "token_mask": token_mask,
        "tr": torch.tensor([1.0, 2.0]),
    }
    parts = objective.reconstruct(batch)
    # Normalised target: zero mean, unit variance per token.
    expected_target = (x - x.mean(-1, keepdim=True)) / x.var(-1, unbiased=False, keepdim=True).add(
        1e-6
    ).sqrt()
    torch.testing.assert_close(normalise_tokens(x), expected_target, rtol=1e-4, atol=1e-4)
    error = (parts["prediction"] - expected_target) ** 2
    expected = error.mean(-1)[token_mask].mean()
    result = objective(batch)
    torch.testing.assert_close(result["loss"], expected, rtol=1e-4, atol=1e-5)
    # Only hidden tokens are scored and the learned mask token gets a gradient.
    result["loss"].backward()
    assert objective.mask_token.grad.abs().sum() > 0
    drawn = objective({"inputs": x, "frame_mask": frame_mask})
    assert 0.45 < float(drawn["masked_fraction"]) < 0.55


def test_windows_pad_and_cover_every_frame(stores):
    assert tile_starts(9, 4) == [0, 4, 8] and tile_starts(3, 4) == [0]
    tokens = np.arange(3 * 2 * 1, dtype=np.float16).reshape(3, 2, 1)
    x, mask = pad_window(tokens, 1, 4)
    assert x.shape == (4, 2, 1) and mask.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(x[:2], tokens[1:])
    np.testing.assert_array_equal(x[2:], np.zeros((2, 2, 1), dtype=np.float16))
    every = TokenWindows(stores, window=4, mode="all", targets=[0, 1, 0, 1, 0, 1])
    assert len(every) == sum(len(tile_starts(n, 4)) for n in every.n_frames)
    assert [every.subject(i) for i in range(2)] == ["sub-00", "sub-00"]
    covered = sum(int(every[i]["frame_mask"].sum()) for i in range(len(every)))
    assert covered == sum(every.n_frames)
    random = TokenWindows(stores, window=4, mode="random", mask_ratio=0.5)
    a, b = random.get_item(0, 11), random.get_item(0, 11)
    assert a["start"] == b["start"] and 0 <= a["start"] <= 7 - 4
    assert torch.equal(a["token_mask"], b["token_mask"]) and float(a["tr"]) == pytest.approx(0.72)
    short = random.get_item(3, 5)  # 4 frames: one window, no padding; 5-frame store:
    assert short["start"] == 0 and bool(short["frame_mask"].all())
    long = TokenWindows(stores[3:4], window=6, mode="random").get_item(0, 1)
    assert long["frame_mask"].tolist() == [True] * 4 + [False] * 2


def test_subject_averaging_matches_a_hand_computation():
    logits = np.array([[1.0], [3.0], [-2.0], [0.5], [4.0]])
    ids, means = average_by_subject(logits, ["b", "b", "a", "c", "a"])
    assert ids == ["b", "a", "c"]
    np.testing.assert_allclose(means[:, 0], [2.0, 1.0, 0.5])
    with pytest.raises(DataError):
        average_by_subject(logits, ["a"])


def test_metrics_match_scikit_learn():
    from scipy.stats import pearsonr
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        mean_absolute_error,
        mean_squared_error,
        recall_score,
        roc_auc_score,
    )

    rng = np.random.default_rng(0)
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1])
    logits = rng.standard_normal(11) + y
    got = subject_metrics(y, logits, task="classification", n_resamples=50)
    pred = (logits > 0).astype(int)
    assert got["accuracy"]["estimate"] == pytest.approx(accuracy_score(y, pred))
    assert got["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, logits))
    assert got["f1"]["estimate"] == pytest.approx(f1_score(y, pred))
    assert got["sensitivity"]["estimate"] == pytest.approx(recall_score(y, pred))
    assert got["specificity"]["estimate"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert got["auroc"]["ci_low"] <= got["auroc"]["estimate"] <= got["auroc"]["ci_high"]
    tied = np.round(logits)  # ties count half, as in scikit-learn
    assert subject_metrics(y, tied, task="classification", n_resamples=10)["auroc"][
        "estimate"
    ] == pytest.approx(roc_auc_score(y, tied))
    values = rng.standard_normal(9)
    predicted = values + 0.3 * rng.standard_normal(9)
    reg = subject_metrics(values, predicted, task="regression", n_resamples=50)
    assert reg["pearson_r"]["estimate"] == pytest.approx(pearsonr(values, predicted)[0])
    assert reg["mae"]["estimate"] == pytest.approx(mean_absolute_error(values, predicted))
    assert reg["mse"]["estimate"] == pytest.approx(mean_squared_error(values, predicted))


def _pretrain(stores, run_dir, callbacks=()):
    config = TrainConfig(
        max_steps=8,
        batch_size=1,
        lr=3e-3,
        weight_decay=0.01,
        warmup_steps=2,
        val_every_steps=4,
        checkpoint_every_steps=2,
        log_every_steps=1,
        progress_bar=False,
    )
    seed_everything(0)
    objective = create_objective("masked_tokens", create_model("tablet", **TINY), mask_ratio=0.5)
    data = TokenWindowDataModule(
        stores[:5], stores[5:], window=4, mask_ratio=0.5, batch_size=1, seed=0
    )
    result = fit(
        PretrainModule(objective, config), data, config, run_dir, callbacks=list(callbacks)
    )
    return result, objective


def test_pretraining_killed_mid_epoch_resumes_to_the_same_weights(stores, tmp_path):
    reference, ref_objective = _pretrain(stores, tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated kill"):
        _pretrain(
            stores, tmp_path / "b", [CrashAtStep(5)]
        )  # 5 batches per epoch: stops mid-epoch 0
    resumed, objective = _pretrain(stores, tmp_path / "b")
    assert resumed.resumed_from == 4 and resumed.steps == reference.steps == 8
    for key, value in ref_objective.state_dict().items():
        torch.testing.assert_close(objective.state_dict()[key], value, rtol=0, atol=1e-6)
    encoder = load_pretrained(reference.last)
    assert (
        encoder.family == "tablet"
        and encoder.pretrained_info["objective"]["name"] == "masked_tokens"
    )
    losses = [r["train/loss"] for r in reference.history if "train/loss" in r]
    assert np.isfinite(losses).all()
