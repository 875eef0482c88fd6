"""The DSD model and loss against direct formulas and MONAI."""

import pytest
import torch
import torch.nn.functional as F

from neuroai.errors import ConfigError, DataError
from neuroai.models import create_model
from neuroai.models.dsd import dsd_loss, dsd_loss_terms

pytestmark = pytest.mark.usefixtures("one_torch_thread")

B, K, SHAPE = 2, 3, (5, 6, 7)


def _logits(n, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(B, K, *SHAPE, generator=generator, requires_grad=True) for _ in range(n)]


def _target(seed=9):
    return torch.randint(0, K, (B, 1, *SHAPE), generator=torch.Generator().manual_seed(seed))


def direct_dice_ce(logits, target, smooth=1e-5):
    """Soft Dice over classes (background included, per sample) + cross-entropy."""
    p = logits.softmax(1)
    onehot = F.one_hot(target[:, 0].long(), K).movedim(-1, 1).float()
    dims = tuple(range(2, p.ndim))
    dice = 1 - (2 * (p * onehot).sum(dims) + smooth) / (p.sum(dims) + onehot.sum(dims) + smooth)
    return dice.mean() + F.cross_entropy(logits, target[:, 0].long())


def direct_kl(teacher, student, T):
    p = (teacher / T).softmax(1)
    return (p * ((teacher / T).log_softmax(1) - (student / T).log_softmax(1))).sum(1).mean()


def test_dsd_loss_equals_the_direct_formula():
    main = _logits(1, 0)[0]
    decoder = _logits(3, 1)
    encoder = _logits(4, 2)
    target = _target()
    alpha, T = 0.7, 3.0
    expected = direct_dice_ce(main, target) + sum(direct_dice_ce(d, target) for d in decoder)
    kl = sum(direct_kl(decoder[0], s, T) for s in decoder[1:]) + sum(
        direct_kl(encoder[0], s, T) for s in encoder[1:]
    )
    expected = expected + alpha * T**2 * kl
    got = dsd_loss(main, decoder, encoder, target, alpha=alpha, temperature=T)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_dice_ce_term_is_monais_dice_ce_loss():
    from monai.losses import DiceCELoss

    main, target = _logits(1, 3)[0], _target(4)
    oracle = DiceCELoss(
        include_background=True, to_onehot_y=True, softmax=True, lambda_dice=1.0, lambda_ce=1.0
    )
    torch.testing.assert_close(dsd_loss(main, [], [], target), oracle(main, target))
    torch.testing.assert_close(
        direct_dice_ce(main, target), oracle(main, target), rtol=1e-5, atol=1e-6
    )


def test_alpha_zero_is_deep_supervision_and_encoder_heads_get_no_dice():
    main, decoder, encoder, target = _logits(1, 5)[0], _logits(2, 6), _logits(3, 7), _target()
    terms = dsd_loss_terms(main, decoder, encoder, target, alpha=0.0)
    torch.testing.assert_close(
        terms["loss"],
        direct_dice_ce(main, target) + sum(direct_dice_ce(d, target) for d in decoder),
    )
    assert terms["kl_encoder"] > 0 and terms["kl_decoder"] > 0


def test_detach_teacher_stops_gradients_through_the_teachers():
    main, target = _logits(1, 8)[0], _target()
    for detach in (False, True):
        decoder, encoder = _logits(2, 10), _logits(2, 11)
        terms = dsd_loss_terms(
            main, decoder, encoder, target, temperature=2.0, detach_teacher=detach
        )
        terms["loss"].backward()
        teacher_grad = encoder[0].grad  # the encoder teacher has no Dice + CE term
        assert (teacher_grad is None or teacher_grad.abs().sum() == 0) == detach
        assert encoder[1].grad.abs().sum() > 0 and decoder[1].grad.abs().sum() > 0


def test_loss_refuses_mismatched_shapes():
    main, target = _logits(1, 0)[0], _target()
    with pytest.raises(DataError, match="full resolution"):
        dsd_loss(main, [main[:, :, :-1]], [], target)
    with pytest.raises(DataError, match="class indices"):
        dsd_loss(main, [], [], target[:, 0])


TINY = {
    "unet": {
        "roi_size": (16, 16, 16),
        "backbone_options": {"channels": (4, 8, 16, 16), "strides": (2, 2, 1), "num_res_units": 1},
    },
    "dynunet": {
        "roi_size": (16, 16, 16),
        "backbone_options": {
            "kernel_size": (3, 3, 3, 3),
            "strides": (1, 2, 2, 2),
            "upsample_kernel_size": (2, 2, 2),
            "filters": (4, 8, 8, 16),
            "res_block": True,
        },
    },
    "unetr": {
        "roi_size": (16, 16, 16),
        "backbone_options": {"feature_size": 4, "hidden_size": 24, "mlp_dim": 24, "num_heads": 2},
    },
    "swinunetr": {
        "roi_size": (64, 64, 64),
        "backbone_options": {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)},
    },
}


@pytest.mark.parametrize(
    "backbone",
    ["unet", "dynunet", "unetr", pytest.param("swinunetr", marks=pytest.mark.slow)],
)
def test_stage_taps_reproduce_the_monai_network_and_heads_reach_full_size(backbone):
    torch.manual_seed(0)
    model = create_model("dsd", backbone=backbone, out_channels=K, **TINY[backbone]).eval()
    x = torch.randn(1, 1, *model.config.roi_size)
    with torch.no_grad():
        outputs = model.forward_heads(x)
        torch.testing.assert_close(outputs.main, model.backbone.net(x))
    assert len(outputs.encoder) == len(model.backbone.encoder_specs) >= 3
    assert len(outputs.decoder) == len(model.backbone.decoder_specs) >= 2
    for logits in [*outputs.encoder, *outputs.decoder]:
        assert logits.shape == outputs.main.shape
    encoder_scales = [s.scale for s in model.backbone.encoder_specs]
    decoder_scales = [s.scale for s in model.backbone.decoder_specs]
    # Teachers: the bottleneck (lowest resolution) and the last decoder stage (highest).
    assert model.backbone.encoder_specs[-1].name == "bottleneck"
    assert max(encoder_scales) == encoder_scales[-1]
    assert min(decoder_scales) == decoder_scales[-1]


def test_swinunetr_stages_and_heads_without_running_it():
    model = create_model("dsd", backbone="swinunetr", out_channels=K, **TINY["swinunetr"])
    specs = model.backbone.encoder_specs
    assert [s.scale[0] for s in specs] == [1, 2, 4, 8, 16, 32]
    assert [s.scale[0] for s in model.backbone.decoder_specs] == [16, 8, 4, 2]
    assert len(model.encoder_heads[-1].upsample) == 5 and len(model.decoder_heads[-1].upsample) == 1


def test_modes_are_switches_of_one_model():
    options = {"out_channels": K, **TINY["unet"]}
    plain = create_model("dsd", mode="plain", **options)
    deep = create_model("dsd", mode="deep_supervision", **options)
    dsd = create_model("dsd", mode="dsd", **options)
    assert plain.head_parameter_count() == 0
    assert 0 < deep.head_parameter_count() < dsd.head_parameter_count()
    assert len(deep.encoder_heads) == 0 and len(dsd.encoder_heads) == len(
        dsd.backbone.encoder_specs
    )
    batch = {
        "inputs": torch.randn(2, 1, 16, 16, 16),
        "target": torch.randint(0, K, (2, 1, 16, 16, 16)),
    }
    assert float(plain.training_loss(batch)["kl_encoder"]) == 0
    assert float(dsd.training_loss(batch)["kl_encoder"]) > 0


@pytest.mark.parametrize(
    "preset,backbone,limit",
    [
        ("demo", "unet", 0.02),
        ("demo", "dynunet", 0.02),
        ("paper", "unet", 0.002),
        ("paper", "dynunet", 0.002),
    ],
)
def test_dsd_heads_add_a_tiny_fraction_of_parameters(preset, backbone, limit):
    model = create_model("dsd", preset=preset, backbone=backbone)
    fraction = model.head_parameter_count() / model.parameter_count()
    assert 0 < fraction < limit, fraction


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["unetr", "swinunetr"])
def test_dsd_heads_are_tiny_on_the_paper_transformers(backbone):
    model = create_model("dsd", preset="paper", backbone=backbone)
    assert model.head_parameter_count() / model.parameter_count() < 0.001


def test_config_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="Did you mean 'num_res_units'"):
        create_model(
            "dsd", backbone_options={"channels": (4, 8), "strides": (2,), "num_res_unit": 1}
        )
    with pytest.raises(ConfigError, match="multiple of"):
        create_model("dsd", roi_size=(30, 32, 32))
    with pytest.raises(ConfigError, match="Did you mean 'dsd'"):
        create_model("dsd", mode="dds")


def test_embed_and_sliding_window_predict_take_whole_volumes():
    model = create_model("dsd", out_channels=K, **TINY["unet"]).eval()
    x = torch.randn(1, 1, 19, 23, 17)
    assert model.predict(x).shape == (1, K, 19, 23, 17)
    assert model.embed(x).shape == (1, model.embed_dim)
