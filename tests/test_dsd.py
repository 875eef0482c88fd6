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
    "unetr": {
        "roi_size": (16, 16, 16),
        "backbone_options": {"feature_size": 4, "hidden_size": 24, "mlp_dim": 24, "num_heads": 2},
    },
    "swinunetr": {
        "roi_size": (64, 64, 64),
        "backbone_options": {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)},
    },
    # MONAI's VNet has fixed widths; 32^3 keeps its 1/16 bottleneck at 2^3.
    "vnet": {"roi_size": (32, 32, 32), "backbone_options": {}},
}

# -- the reference's stages, written out ------------------------------------------------
#
# soumbane/DualSelfDistillation, networks/*/self_distill_*.py: which module's output
# (or input) each head reads, named as the reference names the head outputs (out_enc1 ..
# out_enc4, out_dec4 .. out_dec1). Teachers: out_dec1 and out_enc4 (loss_functions.py,
# Self_Distillation_Loss_KL: input["out"][4] and input["out"][8]). The oracle below runs
# the MONAI network's own forward with hooks on these modules.

#: DynUNet as the reference builds it (5 levels, strides 1, 2, 2, 2, 2), filters shrunk.
DYNUNET_REFERENCE = {
    "roi_size": (32, 32, 32),  # 2^3 at the bottleneck: instance norm needs more than 1 voxel
    "backbone_options": {
        "kernel_size": (3, 3, 3, 3, 3),
        "strides": (1, 2, 2, 2, 2),
        "upsample_kernel_size": (2, 2, 2, 2),
        "filters": (4, 8, 12, 16, 20),
        "res_block": True,
    },
}
UNET_FOUR_LEVELS = {
    "roi_size": (16, 16, 16),
    "backbone_options": {"channels": (4, 8, 16, 32), "strides": (2, 2, 2), "num_res_units": 1},
}

REFERENCE_TAPS = {
    "unetr": {
        "enc1": ("output", "encoder1"),
        "enc2": ("output", "encoder2"),
        "enc3": ("output", "encoder3"),
        "enc4": ("output", "encoder4"),
        "dec4": ("input", "decoder5"),  # proj_feat(x): the ViT bottleneck
        "dec3": ("output", "decoder5"),
        "dec2": ("output", "decoder4"),
        "dec1": ("output", "decoder3"),
    },
    "dynunet": {  # self_distill_nnunet.py: e_heads on downout, d_heads on nextout
        "enc1": ("output", "input_block"),
        "enc2": ("output", "downsamples.0"),
        "enc3": ("output", "downsamples.1"),
        "enc4": ("output", "downsamples.2"),
        "dec4": ("output", "bottleneck"),
        "dec3": ("output", "upsamples.0"),
        "dec2": ("output", "upsamples.1"),
        "dec1": ("output", "upsamples.2"),
    },
    "swinunetr": {  # the reference's out_enc0..out_enc3 are enc1..enc4 here
        "enc1": ("output", "encoder1"),
        "enc2": ("output", "encoder2"),
        "enc3": ("output", "encoder3"),
        "enc4": ("output", "encoder4"),
        "dec4": ("output", "decoder5"),
        "dec3": ("output", "decoder4"),
        "dec2": ("output", "decoder3"),
        "dec1": ("output", "decoder2"),
    },
    "vnet": {
        "enc1": ("output", "in_tr"),
        "enc2": ("output", "down_tr32"),
        "enc3": ("output", "down_tr64"),
        "enc4": ("output", "down_tr128"),
        "dec4": ("output", "down_tr256"),
        "dec3": ("output", "up_tr256"),
        "dec2": ("output", "up_tr128"),
        "dec1": ("output", "up_tr64"),
    },
    # Not in the paper; the same rule on MONAI's UNet (channels 4, 8, 16, 32).
    "unet": {
        "enc1": ("output", "model.0"),
        "enc2": ("output", "model.1.submodule.0"),
        "enc3": ("output", "model.1.submodule.1.submodule.0"),
        "dec3": ("output", "model.1.submodule.1.submodule.1.submodule"),  # the bottom layer
        "dec2": ("output", "model.1.submodule.1.submodule.2"),
        "dec1": ("output", "model.1.submodule.2"),
    },
}

#: (name, channels, scale) of every stage, forward order, for the configs of the oracle.
REFERENCE_STAGES = {
    "unetr": (  # feature size 4, hidden size 24
        [("enc1", 4, 1), ("enc2", 8, 2), ("enc3", 16, 4), ("enc4", 32, 8)],
        [("dec4", 24, 16), ("dec3", 32, 8), ("dec2", 16, 4), ("dec1", 8, 2)],
    ),
    "dynunet": (  # filters 4, 8, 12, 16, 20
        [("enc1", 4, 1), ("enc2", 8, 2), ("enc3", 12, 4), ("enc4", 16, 8)],
        [("dec4", 20, 16), ("dec3", 16, 8), ("dec2", 12, 4), ("dec1", 8, 2)],
    ),
    "swinunetr": (  # feature size 12
        [("enc1", 12, 1), ("enc2", 12, 2), ("enc3", 24, 4), ("enc4", 48, 8)],
        [("dec4", 96, 16), ("dec3", 48, 8), ("dec2", 24, 4), ("dec1", 12, 2)],
    ),
    "vnet": (
        [("enc1", 16, 1), ("enc2", 32, 2), ("enc3", 64, 4), ("enc4", 128, 8)],
        [("dec4", 256, 16), ("dec3", 256, 8), ("dec2", 128, 4), ("dec1", 64, 2)],
    ),
    "unet": (  # MONAI's first convolution strides: no full-resolution stage
        [("enc1", 4, 2), ("enc2", 8, 4), ("enc3", 16, 8)],
        [("dec3", 32, 8), ("dec2", 8, 4), ("dec1", 4, 2)],
    ),
}

ORACLE_CONFIGS = {
    "unetr": TINY["unetr"],
    "dynunet": DYNUNET_REFERENCE,
    "swinunetr": TINY["swinunetr"],
    "vnet": TINY["vnet"],
    "unet": UNET_FOUR_LEVELS,
}


def _store(found, stage, where):
    def hook(module, args, out=None):
        found[stage] = out if where == "output" else args[0]

    return hook


def hooked_stages(net, x, taps):
    """Run the MONAI network's own forward; return each tapped tensor and the output."""
    modules = dict(net.named_modules())
    found, handles = {}, []
    for stage, (where, path) in taps.items():
        hook = _store(found, stage, where)
        if where == "output":
            handles.append(modules[path].register_forward_hook(hook))
        else:
            handles.append(modules[path].register_forward_pre_hook(hook))
    try:
        out = net(x)
    finally:
        for handle in handles:
            handle.remove()
    return found, out


BACKBONE_PARAMS = [
    "unetr",
    "dynunet",
    "vnet",
    "unet",
    pytest.param("swinunetr", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("backbone", BACKBONE_PARAMS)
def test_stages_are_the_tensors_the_reference_taps(backbone):
    torch.manual_seed(0)
    config = ORACLE_CONFIGS[backbone]
    model = create_model("dsd", backbone=backbone, out_channels=K, **config).eval()
    encoder, decoder = REFERENCE_STAGES[backbone]
    specs = model.backbone
    assert [(s.name, s.channels, s.scale[0]) for s in specs.encoder_specs] == encoder
    assert [(s.name, s.channels, s.scale[0]) for s in specs.decoder_specs] == decoder
    x = torch.randn(1, 1, *config["roi_size"])
    with torch.no_grad():
        expected, main = hooked_stages(model.backbone.net, x, REFERENCE_TAPS[backbone])
        stages = model.backbone.forward_stages(x)
        outputs = model.forward_heads(x)
    torch.testing.assert_close(stages.main, main)
    names = [n for n, _, _ in encoder] + [n for n, _, _ in decoder]
    assert set(expected) == set(names)
    for name, got in zip(names, [*stages.encoder, *stages.decoder], strict=True):
        torch.testing.assert_close(got, expected[name], msg=f"{backbone} {name}")
    for name, channels, scale in [*encoder, *decoder]:
        size = tuple(r // scale for r in config["roi_size"])
        assert expected[name].shape == (1, channels, *size), name
    for logits in [*outputs.encoder, *outputs.decoder]:
        assert logits.shape == outputs.main.shape == (1, K, *config["roi_size"])


def test_swinunetr_stages_and_heads_without_running_it():
    model = create_model("dsd", backbone="swinunetr", out_channels=K, **TINY["swinunetr"])
    encoder, decoder = REFERENCE_STAGES["swinunetr"]
    assert [(s.name, s.channels, s.scale[0]) for s in model.backbone.encoder_specs] == encoder
    assert [(s.name, s.channels, s.scale[0]) for s in model.backbone.decoder_specs] == decoder
    assert model.backbone.bottleneck_channels == 16 * 12  # encoder10: no head, the embedding
    # One shared x2 transposed convolution per head, applied log2(scale) times.
    assert [len(h.plan) for h in model.encoder_heads] == [1, 1, 2, 3]
    assert [len(h.plan) for h in model.decoder_heads] == [4, 3, 2, 1]
    assert all(len(h.upsample) == 1 for h in [*model.encoder_heads, *model.decoder_heads])


def test_anisotropic_strides_reach_full_size():
    options = {
        "kernel_size": (3, 3, 3, 3),
        "strides": (1, (2, 2, 1), 2, (4, 4, 2)),
        "upsample_kernel_size": ((2, 2, 1), 2, (4, 4, 2)),
        "filters": (4, 8, 8, 16),
    }
    model = create_model(
        "dsd", backbone="dynunet", out_channels=K, roi_size=(32, 32, 8), backbone_options=options
    ).eval()
    deepest = model.decoder_heads[0]  # scale (16, 16, 4): x2 steps (2,2,2) x2, (2,2,1) x2
    assert [tuple(c.stride) for c in deepest.upsample] == [(2, 2, 2), (2, 2, 1)]
    assert sorted(deepest.plan) == [0, 0, 1, 1]
    with torch.no_grad():
        outputs = model.forward_heads(torch.randn(1, 1, 32, 32, 8))
    for logits in [*outputs.encoder, *outputs.decoder]:
        assert logits.shape == (1, K, 32, 32, 8)


# -- the heads ---------------------------------------------------------------------------


def reference_head_parameters(channels, scale, k):
    """DeepUp of the reference: UnetOutBlock (1x1x1 conv, bias) + one UpSample(DECONV)
    transposed convolution, kernel 2 (kernel 1 at scale 1), with bias."""
    return channels * k + k + (k * k + k if scale == 1 else 8 * k * k + k)


def test_unetr_heads_have_the_reference_parameter_count():
    model = create_model(
        "dsd",
        backbone="unetr",
        out_channels=8,
        roi_size=(16, 16, 16),
        backbone_options={"feature_size": 16, "hidden_size": 768, "mlp_dim": 96, "num_heads": 12},
    )
    # deep_5_enc, deep_4_enc, deep_3_enc, deep_2_enc, deep_2_dec, deep_3_dec, deep_4_dec,
    # deep_5_dec of self_distill_unetr.py: (in_channels, scale_factor).
    reference = [(16, 1), (32, 2), (64, 4), (128, 8), (768, 16), (128, 8), (64, 4), (32, 2)]
    assert sum(reference_head_parameters(c, s, 8) for c, s in reference) == 13_632
    assert model.head_parameter_count() == 13_632


def test_a_head_applies_one_shared_transposed_convolution_log2_scale_times():
    from neuroai.models.blocks import StageHead

    torch.manual_seed(1)
    head = StageHead(5, K, [(2, 2, 2)] * 3)
    assert len(head.upsample) == 1 and head.plan == (0, 0, 0)
    features = torch.randn(2, 5, 3, 4, 2)
    conv = head.upsample[0]
    expected = F.conv3d(features, head.project.weight, head.project.bias)
    for _ in range(3):
        expected = F.conv_transpose3d(expected, conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(head(features), expected)
    assert expected.shape == (2, K, 24, 32, 16)
    full = StageHead(5, K, [])  # scale 1: the reference's kernel-1 transposed convolution
    assert tuple(full.upsample[0].kernel_size) == (1, 1, 1)
    assert sum(p.numel() for p in full.parameters()) == reference_head_parameters(5, 1, K)


# -- the loss terms ------------------------------------------------------------------------


def reference_kl(teacher, student, T):
    """PixelWiseKLDiv of the reference: KLDivLoss(reduction="none") on log_softmax(student
    / T) against softmax(teacher / T), summed over classes, averaged over the rest."""
    kl = torch.nn.KLDivLoss(reduction="none")
    return kl(F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1)).sum(1).mean()


def test_unetr_loss_is_the_reference_loss_with_5_dice_ce_and_3_plus_3_kl_terms(monkeypatch):
    from monai.losses import DiceCELoss

    torch.manual_seed(2)
    model = create_model("dsd", backbone="unetr", out_channels=K, **TINY["unetr"])
    assert model.loss_plan() == {
        "dice_ce": ["main", "dec4", "dec3", "dec2", "dec1"],
        "kl_decoder": [("dec1", "dec2"), ("dec1", "dec3"), ("dec1", "dec4")],
        "kl_encoder": [("enc4", "enc3"), ("enc4", "enc2"), ("enc4", "enc1")],
    }
    x = torch.randn(2, 1, 16, 16, 16)
    target = torch.randint(0, K, (2, 1, 16, 16, 16), generator=torch.Generator().manual_seed(3))
    # The oracle: the MONAI network's own tensors, the model's heads, MONAI's Dice + CE.
    with torch.no_grad():
        taps, main = hooked_stages(model.backbone.net, x, REFERENCE_TAPS["unetr"])
        heads = dict(
            zip([s.name for s in model.backbone.encoder_specs], model.encoder_heads, strict=True)
        )
        heads |= dict(
            zip([s.name for s in model.backbone.decoder_specs], model.decoder_heads, strict=True)
        )
        out = {name: heads[name](tensor) for name, tensor in taps.items()}
        dice_ce = DiceCELoss(
            include_background=True, to_onehot_y=True, softmax=True, lambda_dice=1.0, lambda_ce=1.0
        )
        T = 3.0
        seg = dice_ce(main, target) + sum(
            dice_ce(out[d], target) for d in ("dec4", "dec3", "dec2", "dec1")
        )
        kl = sum(reference_kl(out["dec1"], out[d], T) for d in ("dec4", "dec3", "dec2"))
        kl = kl + sum(reference_kl(out["enc4"], out[e], T) for e in ("enc1", "enc2", "enc3"))
        expected = seg + 1.0 * T**2 * kl

    calls = {"dice_ce": 0, "kl": 0}
    dice_forward, kl_div = DiceCELoss.forward, F.kl_div

    def counted_dice(self, *args, **kwargs):
        calls["dice_ce"] += 1
        return dice_forward(self, *args, **kwargs)

    def counted_kl(*args, **kwargs):
        calls["kl"] += 1
        return kl_div(*args, **kwargs)

    monkeypatch.setattr(DiceCELoss, "forward", counted_dice)
    monkeypatch.setattr(F, "kl_div", counted_kl)
    terms = model.training_loss({"inputs": x, "target": target})
    assert calls == {"dice_ce": 5, "kl": 6}
    torch.testing.assert_close(terms["loss"], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["dice_ce"], seg, rtol=1e-5, atol=1e-6)


def test_modes_are_switches_of_one_model():
    options = {"backbone": "unetr", "out_channels": K, **TINY["unetr"]}
    plain = create_model("dsd", mode="plain", **options)
    deep = create_model("dsd", mode="deep_supervision", **options)
    dsd = create_model("dsd", mode="dsd", **options)
    assert plain.head_parameter_count() == 0
    assert 0 < deep.head_parameter_count() < dsd.head_parameter_count()
    assert (len(deep.decoder_heads), len(deep.encoder_heads)) == (4, 0)
    assert (len(dsd.decoder_heads), len(dsd.encoder_heads)) == (4, 4)
    assert deep.loss_plan() == {
        "dice_ce": ["main", "dec4", "dec3", "dec2", "dec1"],
        "kl_decoder": [],
        "kl_encoder": [],
    }
    assert plain.loss_plan() == {"dice_ce": ["main"], "kl_decoder": [], "kl_encoder": []}
    batch = {
        "inputs": torch.randn(2, 1, 16, 16, 16),
        "target": torch.randint(0, K, (2, 1, 16, 16, 16)),
    }
    for model in (plain, deep):  # no KL in the loss (deep supervision logs the decoder's)
        terms = model.training_loss(batch)
        torch.testing.assert_close(terms["loss"].detach(), terms["dice_ce"])
        assert float(terms["kl_encoder"]) == 0
    terms = dsd.training_loss(batch)
    assert float(terms["kl_encoder"]) > 0
    assert float(terms["loss"].detach()) > float(terms["dice_ce"])


def test_vnet_builds_and_trains_a_step():
    torch.manual_seed(4)
    model = create_model("dsd", backbone="vnet", out_channels=K, roi_size=(32, 32, 32))
    assert model.head_parameter_count() == sum(
        reference_head_parameters(c, s, K)
        for c, s in [(16, 1), (32, 2), (64, 4), (128, 8), (256, 16), (256, 8), (128, 4), (64, 2)]
    )
    batch = {
        "inputs": torch.randn(2, 1, 32, 32, 32),
        "target": torch.randint(0, K, (2, 1, 32, 32, 32)),
    }
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    terms = model.training_loss(batch)
    assert torch.isfinite(terms["loss"]) and terms["kl_encoder"] > 0 and terms["kl_decoder"] > 0
    terms["loss"].backward()
    for name in ("backbone.net.in_tr", "backbone.net.down_tr256", "encoder_heads.0"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name
    optimizer.step()
    after = model.state_dict()
    for key in ("encoder_heads.3.project.weight", "backbone.net.up_tr64.up_conv.weight"):
        assert not torch.equal(before[key], after[key]), key
    model.eval()
    with torch.no_grad():
        assert model.predict(torch.randn(1, 1, 35, 33, 40)).shape == (1, K, 35, 33, 40)
        assert model.embed(torch.randn(1, 1, 20, 18, 17)).shape == (1, 256)
    with pytest.raises(ConfigError, match="in_channels dividing 16"):
        create_model("dsd", backbone="vnet", in_channels=3)


@pytest.mark.parametrize(
    "preset,backbone,limit",
    [
        ("demo", "unet", 0.02),
        ("demo", "dynunet", 0.02),
        ("paper", "unet", 0.002),
        ("paper", "dynunet", 0.002),
        ("paper", "vnet", 0.001),
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
