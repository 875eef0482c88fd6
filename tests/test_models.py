"""The model registry, config dataclasses and the pretrained-folder format, for every model."""

import json

import pytest
import torch

from neuroai.errors import ArtifactError, ConfigError
from neuroai.models import (
    NeuroModel,
    build_model,
    check_pretrained,
    create_model,
    describe_models,
    get_model_entry,
    list_models,
    load_pretrained,
    load_weights_into,
    model_config,
    read_pretrained_config,
    save_pretrained,
)
from neuroai.models.objectives import create_objective, list_objectives

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = list_models()
FAMILY_CLASSES = [get_model_entry(name).model_class for name in MODELS]


#: Every family the library ships, written out here (not read from the registry) so that a
#: family whose module fails to register makes this test fail instead of silently shrinking
#: the per-model loops below.
FAMILIES = {"braindecode", "dfc_gnn", "dsd", "eegformer", "eegnet", "probe", "tablet"}
OBJECTIVES = {"masked_dfc", "masked_tokens", "masked_volume", "vqvae"}


def test_builtin_families_are_registered():
    assert set(MODELS) == FAMILIES
    assert set(list_objectives()) == OBJECTIVES
    assert all(
        d["description"] and {"demo", "paper"} <= set(d["presets"]) for d in describe_models()
    )


@pytest.mark.parametrize("name", MODELS)
def test_every_model_builds_runs_embeds_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, preset="demo").eval()
    x = model.example_input(2)
    with torch.no_grad():
        out = model(x)
        embedding = model.embed(x)
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    assert embedding.shape == (2, model.embed_dim)
    folder = save_pretrained(model, tmp_path / name, metadata={"note": "test"})
    document = json.loads((folder / "config.json").read_text())
    assert document["model"] == name and document["note"] == "test"
    assert set(p.name for p in folder.iterdir()) == {
        "config.json",
        "model.safetensors",
        "README.md",
    }
    again = load_pretrained(folder)
    with torch.no_grad():
        torch.testing.assert_close(again(x), out)
    assert type(again.config) is type(model.config) and again.config == model.config
    # The HF-style names: the family's class and the base class both reload it, bit for bit.
    hf_folder = model.save_pretrained(tmp_path / f"{name}-hf")
    for cls in (type(model), NeuroModel):
        reloaded = cls.from_pretrained(hf_folder)
        assert type(reloaded) is type(model)
        with torch.no_grad():
            torch.testing.assert_close(reloaded(x), out, rtol=0, atol=0)
    assert check_pretrained(hf_folder, family=name)["model"] == name
    other = next(cls for cls in FAMILY_CLASSES if cls.family != name)
    with pytest.raises(ArtifactError, match=f"holds a '{name}' model, not a '{other.family}'"):
        other.from_pretrained(hf_folder)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_has_a_paper_config_and_checks_overrides(name):
    config = model_config(name, "paper")
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    field = config.field_names()[0]
    with pytest.raises(ConfigError, match=f"Did you mean '{field}'"):
        model_config(name, "demo", **{field + "x": 1})


def test_unknown_model_and_preset_suggest_the_nearest():
    with pytest.raises(ConfigError, match="Did you mean 'dsd'"):
        create_model("dsdd")
    with pytest.raises(ConfigError, match="Did you mean 'paper'"):
        create_model("dsd", preset="papr")


def test_checkpoint_needs_no_original_config_and_never_unpickles(tmp_path):
    model = create_model("dsd", mode="plain", out_channels=3)
    folder = save_pretrained(model, tmp_path / "m")
    document = read_pretrained_config(folder)
    rebuilt = build_model(document["model"], document["config"])
    assert rebuilt.config.out_channels == 3
    (folder / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="weights file is missing"):
        load_pretrained(folder)
    with pytest.raises(ArtifactError, match="config.json is missing"):
        load_pretrained(tmp_path)


def test_weights_transfer_into_a_model_with_another_head(tmp_path):
    source = create_model("dsd", mode="plain", out_channels=3)
    folder = save_pretrained(source, tmp_path / "src")
    target = create_model("dsd", mode="dsd", out_channels=5)
    report = load_weights_into(target, folder)
    assert report["loaded"] and report["skipped_shape"]  # the output layer has 5 classes now
    key = report["loaded"][0]
    torch.testing.assert_close(target.state_dict()[key], source.state_dict()[key])


def test_objectives_wrap_an_encoder():
    assert "masked_volume" in list_objectives()
    encoder = create_model("dsd", mode="plain")
    objective = create_objective("masked_volume", encoder, mask_ratio=0.4, patch_size=8)
    terms = objective({"inputs": torch.rand(2, 1, 32, 32, 32)})
    terms["loss"].backward()
    assert float(terms["loss"]) > 0 and 0.1 < float(terms["masked_fraction"]) < 0.8
    assert objective.describe() == {
        "name": "masked_volume",
        "settings": {"mask_ratio": 0.4, "patch_size": 8},
    }
    with pytest.raises(ConfigError, match="Did you mean 'mask_ratio'"):
        create_objective("masked_volume", encoder, mask_ration=0.5)


def test_check_pretrained_refuses_each_bad_folder_by_name(tmp_path):
    model = create_model("eegformer", preset="demo")
    folder = model.save_pretrained(tmp_path / "eeg")
    n_chans = model.config.n_chans
    with pytest.raises(ArtifactError, match=r"holds a 'eegformer' model.*'dfc_gnn' checkpoint"):
        check_pretrained(folder, family="dfc_gnn")
    with pytest.raises(ArtifactError, match=f"n_chans={n_chans}.*feeds it n_chans={n_chans + 3}"):
        check_pretrained(folder, family="eegformer", expect={"n_chans": n_chans + 3})
    # Weights of another size than the config says: a wider model's weights under this config.
    wider = create_model("eegformer", preset="demo", d_model=model.config.d_model * 2)
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    (mismatched / "config.json").write_text((folder / "config.json").read_text())
    wider_folder = wider.save_pretrained(tmp_path / "wider")
    (mismatched / "model.safetensors").write_bytes(
        (wider_folder / "model.safetensors").read_bytes()
    )
    with pytest.raises(ArtifactError, match="do not match the 'eegformer' model its config.json"):
        check_pretrained(mismatched, family="eegformer")
    # A truncated (corrupt) weights file, then a missing one.
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        check_pretrained(folder, family="eegformer")
    weights.unlink()
    with pytest.raises(ArtifactError, match="weights file is missing"):
        check_pretrained(folder, family="eegformer")
    with pytest.raises(ArtifactError, match="does not exist"):
        check_pretrained(tmp_path / "nowhere", family="eegformer")


def test_model_card_states_family_size_training_metrics_and_checksum(tmp_path):
    import hashlib

    model = create_model("dfc_gnn", preset="demo")
    metadata = {
        "preset": "demo",
        "dataset": "results/fmri/demo_regions/graphs",
        "data_cards": ["data_cards/demo_regions.yaml"],
        "splits": "../splits.tsv",
        "objective": {"name": "masked_dfc", "settings": {}},
        "step": 37,
        "training": {"max_steps": 40, "batch_size": 8},
        "metrics": {"auroc": {"value": 0.8125, "ci_low": 0.61, "ci_high": 0.95}},
    }
    folder = model.save_pretrained(tmp_path / "m", metadata=metadata)
    card = (folder / "README.md").read_text()
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert f"SHA-256: `{digest}`" in card
    assert "# dfc_gnn model" in card and "- Preset: demo" in card
    assert f"- Parameters: {model.parameter_count():,}" in card
    assert "- Dataset: `results/fmri/demo_regions/graphs`" in card
    assert "- Data card: `data_cards/demo_regions.yaml`" in card
    assert "[../splits.tsv](../splits.tsv)" in card
    assert "- Objective: masked_dfc" in card and "- Steps: 37 of at most 40" in card
    assert "- auroc: 0.8125 [0.61, 0.95]" in card
    assert "## Intended use" in card and "## Limitations" in card
