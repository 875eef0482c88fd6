"""braindecode networks as encoders: braindecode's own network is the oracle.

Our encoder takes the network's final layer off and lets a linear head classify; for
the networks whose final layer is a convolution over the whole remaining time axis,
the head holding braindecode's classifier weights must give braindecode's outputs.
"""

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
braindecode = pytest.importorskip("braindecode")

from neuroai.errors import ConfigError, DataError  # noqa: E402
from neuroai.models import create_model, load_pretrained  # noqa: E402
from neuroai.models.braindecode_models import (  # noqa: E402
    BraindecodeEncoder,
    baseline_config,
    is_braindecode_mode,
    network_name,
)
from neuroai.models.probe import ProbeModel  # noqa: E402

GEOMETRY = {"n_chans": 4, "n_times": 1000, "patch_len": 50, "patch_stride": 50, "sfreq": 100.0}


def _patches(signal: torch.Tensor, patch_len: int) -> torch.Tensor:
    b, c, t = signal.shape
    return signal.reshape(b, c, t // patch_len, patch_len)


@pytest.mark.parametrize("network", ["ShallowFBCSPNet", "EEGNetv4", "Deep4Net"])
def test_encoder_and_linear_head_equal_braindecode_network(network):
    import braindecode.models as bd

    torch.manual_seed(0)
    encoder = create_model("braindecode", network=network, **GEOMETRY).eval()
    reference = getattr(bd, network)(
        n_chans=4,
        n_outputs=2,
        n_times=1000,
        sfreq=100.0,
        final_conv_length="auto",
        **({"add_log_softmax": False} if network != "EEGNetv4" else {}),
    ).eval()
    # Same layers but the classifier: copy ours over, keep braindecode's classifier.
    state = {k: v for k, v in encoder.network.state_dict().items()}
    missing, unexpected = reference.load_state_dict(state, strict=False)
    assert not unexpected
    assert all(k.startswith("final_layer.") for k in missing)
    conv = reference.final_layer.conv_classifier
    head = torch.nn.Linear(encoder.embed_dim, 2)
    with torch.no_grad():
        head.weight.copy_(conv.weight.reshape(2, -1))
        head.bias.copy_(conv.bias)
    signal = torch.randn(3, 4, 1000)
    with torch.no_grad():
        ours = head(encoder(_patches(signal, 50)))
        theirs = reference(signal)
    assert ours.shape == theirs.shape == (3, 2)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_overlapping_patches_give_the_signal_back():
    geometry = {**GEOMETRY, "patch_len": 100, "patch_stride": 50}
    encoder = create_model("braindecode", network="ShallowFBCSPNet", **geometry)
    signal = torch.randn(2, 4, 1000)
    patches = signal.unfold(-1, 100, 50)  # (2, 4, 19, 100)
    torch.testing.assert_close(encoder.signal(patches), signal)
    with pytest.raises(DataError, match="time patches of shape"):
        encoder.signal(torch.randn(2, 4, 10, 100))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(1)
    probe = ProbeModel.from_encoder(
        create_model("braindecode", network="EEGNetv4", **GEOMETRY), n_outputs=2
    ).eval()
    probe.save_pretrained(tmp_path / "model")
    loaded = load_pretrained(tmp_path / "model")
    assert isinstance(loaded.encoder, BraindecodeEncoder)
    assert loaded.encoder.config.library_version == braindecode.__version__
    x = probe.encoder.example_input(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), probe(x))


def test_config_from_store_layout_and_mode_names():
    layout = {"n_chans": 19, "n_times": 3000, "patch_len": 50, "patch_stride": 50, "sfreq": 250}
    config = baseline_config("ShallowFBCSPNet", layout, drop_prob=0.25)
    encoder = create_model("braindecode", **config)
    assert encoder.config.n_samples == 3000
    assert encoder.network.drop.p == 0.25
    assert is_braindecode_mode("braindecode.ShallowFBCSPNet")
    assert not is_braindecode_mode("eegnet")
    assert network_name("braindecode.EEGNetv4") == "EEGNetv4"


def test_bad_networks_and_arguments_are_named():
    with pytest.raises(ConfigError, match="Did you mean 'ShallowFBCSPNet'"):
        create_model("braindecode", network="ShallowFBCSP", **GEOMETRY)
    with pytest.raises(ConfigError, match="set from the patch store"):
        create_model("braindecode", network="EEGNetv4", kwargs={"n_chans": 3}, **GEOMETRY)
    with pytest.raises(ConfigError, match="has no argument 'dropout'"):
        create_model("braindecode", network="EEGNetv4", kwargs={"dropout": 0.1}, **GEOMETRY)
    with pytest.raises(ConfigError, match="patch_stride <= patch_len"):
        create_model("braindecode", **{**GEOMETRY, "patch_stride": 60})


def test_without_braindecode_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "braindecode", None)
    with pytest.raises(ConfigError, match=r"neuroai\[braindecode\]"):
        create_model("braindecode", network="EEGNetv4", **GEOMETRY)


FAST = {"max_steps": 4, "batch_size": 4, "val_every_steps": 2, "log_every_steps": 1,
        "progress_bar": False, "lr": 0.003}  # fmt: skip
BASELINES = ["braindecode.ShallowFBCSPNet", "braindecode.EEGNetv4"]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    from neuroai.pipelines import eegformer_evaluate, eegformer_finetune, eegformer_pretrain
    from neuroai.testing import tiny_patch_store

    root = tmp_path_factory.mktemp("braindecode_baselines")
    store = tiny_patch_store(root / "eeg" / "corpus" / "store", seed=0)
    model = {"preset": "demo", "options": {"d_model": 16, "codebook_size": 16}}
    pretrained = root / "pretrain" / "model"
    eegformer_pretrain.run(
        [store], pretrained, root / "pretrain" / "history.tsv", model=model,
        training=FAST, split={"n_val": 1},
    )  # fmt: skip
    folder = root / "abnormal"
    eegformer_finetune.run(
        [store], pretrained, folder / "models", folder / "predictions.tsv",
        folder / "history.tsv", task="abnormal", modes=["probe", "eegnet", *BASELINES],
        training=FAST, split={"n_val": 1},
    )  # fmt: skip
    eegformer_evaluate.run(
        folder / "predictions.tsv", folder / "metrics.json", folder / "recordings.tsv",
        models=folder / "models", history=folder / "history.tsv", n_bootstrap=100,
        evaluated_output=folder / "evaluated", splits=folder / "splits.tsv",
    )  # fmt: skip
    return root, store, pretrained, folder


def test_braindecode_baselines_train_on_the_same_split_and_are_compared(baselines):
    from neuroai.io import load_json, load_table

    _, _, _, folder = baselines
    predictions = load_table(folder / "predictions.tsv")
    probe = predictions[predictions["mode"] == "probe"]
    for mode in BASELINES:
        rows = predictions[predictions["mode"] == mode]
        assert list(rows["recording"]) == list(probe["recording"])  # same test windows
        assert rows["score"].between(0, 1).all()
        saved = json.loads((folder / "models" / mode / "config.json").read_text())
        assert saved["config"]["encoder"] == "braindecode"
        assert saved["config"]["encoder_config"]["network"] == network_name(mode)
        card = (folder / "evaluated" / mode / "README.md").read_text()
        assert "Started from the pretrained encoder" not in card
    metrics = load_json(folder / "metrics.json")
    assert set(metrics["models"]) == {"probe", "eegnet", *BASELINES}
    pairs = {(c["a"], c["b"]) for c in metrics["comparisons"]}
    assert pairs == {("probe", "eegnet"), *(("probe", m) for m in BASELINES)}


def test_report_names_each_braindecode_baseline(baselines, tmp_path):
    from neuroai.io import load_json
    from neuroai.reports.html import Section
    from neuroai.reports.sections.eegformer import _task

    section = Section("eegformer", "EEGFormer")
    _task(section, load_json(baselines[3] / "metrics.json"), tmp_path)
    html = "".join(str(part) for part in section.parts)
    assert "ShallowFBCSPNet baseline (braindecode" in html and "EEGNetv4 baseline" in html


def test_an_unknown_network_stops_fine_tuning_before_anything_is_written(baselines, tmp_path):
    from neuroai.pipelines import eegformer_finetune

    _, store, pretrained, _ = baselines
    with pytest.raises(ConfigError, match="Did you mean 'Deep4Net'"):
        eegformer_finetune.run(
            [store], pretrained, tmp_path / "models", tmp_path / "predictions.tsv",
            tmp_path / "history.tsv", task="abnormal", modes=["braindecode.Deep4"],
            training=FAST,
        )  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_a_misspelled_baseline_fails_when_the_workflow_is_parsed(tmp_path):
    import yaml

    from neuroai.testing.workflow import REPO, run_snakemake

    config = yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())
    config["eegformer"]["tasks"]["abnormal"]["modes"] = ["probe", "braindecode.ShallowFBCSP"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"))
    message = done.stdout + done.stderr
    assert done.returncode != 0
    assert "eegformer.tasks.abnormal.modes: braindecode.ShallowFBCSP" in message
    assert "Did you mean 'ShallowFBCSPNet'?" in message
    assert not (tmp_path / "results").exists()


def test_a_mode_that_is_neither_ours_nor_braindecode_is_named_with_the_choices():
    from neuroai.config import read_yaml, validate_config
    from neuroai.testing.workflow import REPO

    config = read_yaml(REPO / "workflows" / "config" / "config.yaml")
    config["eegformer"]["tasks"]["abnormal"]["modes"] = ["probe", "probes"]
    with pytest.raises(ConfigError) as error:
        validate_config(config, REPO / "workflows" / "schemas" / "config.schema.yaml")
    assert "'probes' is not one of probe, finetune, scratch, eegnet, a match of" in str(error.value)
    assert "Did you mean 'probe'?" in str(error.value)
