"""EEGNet, the published compact baseline beside EEGFormer's modes, and the transfer protocol."""

import json

import numpy as np
import pytest
import torch

from neuroai.eeg.patches import unfold
from neuroai.errors import ConfigError, DataError
from neuroai.io import load_json, load_table
from neuroai.models import create_model
from neuroai.testing import tiny_patch_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _expected_parameters(C, T, F1=8, D=2, F2=16, K1=64, K2=16, classes=2):
    """EEGNet's trainable weights written out from the paper's Table 2 (no biases in the
    convolutions; batch norm: a scale and a shift per map), plus the dense classifier."""
    encoder = F1 * K1 + 2 * F1  # temporal filters, batch norm
    encoder += F1 * D * C + 2 * F1 * D  # depthwise spatial filters, batch norm
    encoder += F1 * D * K2 + F1 * D * F2 + 2 * F2  # separable: depthwise, pointwise; batch norm
    dense = F2 * (T // 32) * classes + classes
    return encoder, dense


def test_parameter_count_matches_the_papers_layer_table():
    from neuroai.models.probe import ProbeModel

    # The paper's BCI IV 2a setting: 22 electrodes, 128 Hz (kernels 64 and 16 samples).
    model = create_model(
        "eegnet", n_chans=22, n_times=512, patch_len=32, patch_stride=32, sfreq=128
    )
    encoder, dense = _expected_parameters(22, 512, classes=4)
    assert model.parameter_count() == encoder
    assert model.embed_dim == 16 * (512 // 32)
    probe = ProbeModel.from_encoder(model, n_outputs=4, freeze=False)
    assert probe.parameter_count() == encoder + dense
    # kernels scale with the sampling rate: 0.5 s and 0.125 s at 256 Hz
    fast = create_model(
        "eegnet", n_chans=22, n_times=1024, patch_len=32, patch_stride=32, sfreq=256
    )
    assert (fast.temporal.kernel_size, fast.separable_depthwise.kernel_size) == ((1, 128), (1, 32))


@pytest.mark.parametrize("stride", [25, 40])
def test_the_signal_is_put_back_together_from_time_patches(stride):
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((2, 3, 400)).astype(np.float32)
    patches = torch.from_numpy(unfold(signal, 40, stride).copy())
    model = create_model(
        "eegnet", n_chans=3, n_times=400, patch_len=40, patch_stride=stride, sfreq=100
    )
    rebuilt = model.signal(patches)
    n = model.config.n_samples
    assert n == (400 - 40) // stride * stride + 40  # the last patch's end
    assert rebuilt.shape == (2, 3, n)
    torch.testing.assert_close(rebuilt, torch.from_numpy(signal[..., :n]), rtol=0, atol=0)


def test_forward_shapes_max_norm_and_clear_errors():
    torch.manual_seed(0)
    model = create_model("eegnet", n_chans=5, n_times=400, patch_len=20, patch_stride=20, sfreq=100)
    with torch.no_grad():
        model.spatial.weight.mul_(50.0)  # far above the cap
    model.train()
    features = model(model.example_input(3))
    assert features.shape == (3, model.embed_dim) and torch.isfinite(features).all()
    norms = model.spatial.weight.flatten(1).norm(dim=1)
    assert (norms <= 1.0 + 1e-5).all()
    with pytest.raises(DataError, match="time patches of shape"):
        model(torch.zeros(3, 5, 7, 20))
    with pytest.raises(ConfigError, match="leave gaps"):
        create_model("eegnet", n_chans=5, n_times=400, patch_len=20, patch_stride=30)
    with pytest.raises(ConfigError, match="too short"):
        create_model("eegnet", n_chans=5, n_times=30, patch_len=20, patch_stride=20)


FAST = {"max_steps": 4, "batch_size": 4, "val_every_steps": 2, "log_every_steps": 1,
        "progress_bar": False, "lr": 0.003}  # fmt: skip


@pytest.fixture(scope="module")
def transfer(tmp_path_factory):
    from neuroai.pipelines import eegformer_evaluate, eegformer_finetune, eegformer_pretrain

    root = tmp_path_factory.mktemp("transfer")
    corpus = tiny_patch_store(root / "eeg" / "corpus_a" / "store", seed=0)
    target = tiny_patch_store(root / "eeg" / "dataset_b" / "store", seed=3, name_prefix="b")
    model = {"preset": "demo", "options": {"d_model": 16, "codebook_size": 16}}
    pretrained = root / "pretrain" / "model"
    eegformer_pretrain.run(
        [corpus], pretrained, root / "pretrain" / "history.tsv", model=model,
        training=FAST, split={"n_val": 1},
    )  # fmt: skip
    outputs = {}
    for name, stores in (("transfer", [target]), ("within", [corpus])):
        folder = root / name
        eegformer_finetune.run(
            stores, pretrained, folder / "models", folder / "predictions.tsv",
            folder / "history.tsv", task="abnormal", modes=["probe", "eegnet"],
            training=FAST, split={"n_val": 1},
        )  # fmt: skip
        eegformer_evaluate.run(
            folder / "predictions.tsv", folder / "metrics.json", folder / "recordings.tsv",
            models=folder / "models", history=folder / "history.tsv", n_bootstrap=100,
        )  # fmt: skip
        outputs[name] = folder
    return outputs


def test_eegnet_baseline_trains_on_the_same_split_and_is_compared(transfer):
    folder = transfer["transfer"]
    predictions = load_table(folder / "predictions.tsv")
    probe, eegnet = (predictions[predictions["mode"] == m] for m in ("probe", "eegnet"))
    assert list(probe["recording"]) == list(eegnet["recording"])  # same test windows
    assert eegnet["score"].between(0, 1).all()
    saved = json.loads((folder / "models" / "eegnet" / "config.json").read_text())
    assert saved["model"] == "probe" and saved["config"]["encoder"] == "eegnet"
    assert saved["config"]["encoder_config"]["n_chans"] == 5
    metrics = load_json(folder / "metrics.json")
    assert set(metrics["models"]) == {"probe", "eegnet"}
    pairs = {(c["a"], c["b"]) for c in metrics["comparisons"]}
    assert ("probe", "eegnet") in pairs
    assert metrics["pretrained"] and metrics["pretrained"]["path"].endswith("model")


def test_a_task_on_a_dataset_the_pretraining_never_read_is_a_transfer(transfer):
    across = load_json(transfer["transfer"] / "metrics.json")["transfer"]
    assert across == {"pretrained_on": ["corpus_a"], "tested_on": ["dataset_b"]}
    assert load_json(transfer["within"] / "metrics.json")["transfer"] is None


def test_report_says_transfer_and_names_the_baseline(transfer, tmp_path):
    from neuroai.reports.html import Section
    from neuroai.reports.sections.eegformer import _task

    section = Section("eegformer", "EEGFormer")
    _task(section, load_json(transfer["transfer"] / "metrics.json"), tmp_path)
    html = "".join(str(part) for part in section.parts)
    assert "Transfer protocol" in html and "corpus_a" in html and "dataset_b" in html
    assert "EEGNet-8,2 baseline" in html
