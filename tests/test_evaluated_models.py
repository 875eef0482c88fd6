"""Evaluated model folders: the trained weights with held-out metrics in their card."""

from __future__ import annotations

import json

import pytest
import torch

from neuroai.errors import ArtifactError
from neuroai.io import read_provenance
from neuroai.io.provenance import file_digest
from neuroai.models import create_model, load_pretrained, save_pretrained
from neuroai.models.card import model_card
from neuroai.models.evaluated import (
    EvaluatedModel,
    parse_datasets,
    write_evaluated_models,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METRICS = {
    "recording auroc": {"estimate": 0.875, "ci_low": 0.5, "ci_high": 1.0, "n": 8},
    "window auprc": {"estimate": 0.8455, "ci_low": 0.4022, "ci_high": 0.9861, "n": 78},
}


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    model = create_model("eegnet", preset="demo").eval()
    folder = save_pretrained(
        model, tmp_path / "models" / "eegnet", metadata={"task": "abnormal", "mode": "eegnet"}
    )
    splits = tmp_path / "splits.tsv"
    splits.write_text("subject\tsplit\ns1\ttrain\ns2\ttest\n", encoding="utf-8")
    return model, folder, splits


def _entry(folder, splits, **overrides):
    settings = {
        "name": "eegnet",
        "source": folder,
        "metrics": METRICS,
        "evaluation": {
            "stage": "eegformer_evaluate",
            "n_test": 8,
            "unit": "subjects",
            "bootstrap": {"n_resamples": 1000, "confidence": 0.95, "unit": "subject"},
            "metrics_file": str(folder.parent.parent / "metrics.json"),
        },
        "splits": splits,
        "datasets": ["demo_eeg"],
        "data_cards": ["demo_eeg_simulated.yaml"],
    }
    return EvaluatedModel(**{**settings, **overrides})


def test_evaluated_folder_loads_the_same_weights_and_its_card_shows_the_test_metrics(
    trained, tmp_path
):
    model, folder, splits = trained
    before = file_digest(folder)
    out = write_evaluated_models(
        tmp_path / "evaluated", [_entry(folder, splits)], stage="eegformer_evaluate"
    )
    copy = out / "eegnet"
    assert sorted(p.name for p in copy.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "splits.tsv",
    ]
    reloaded = load_pretrained(copy)
    x = model.example_input(2)
    with torch.no_grad():
        assert torch.equal(reloaded(x), model(x))
    # The training folder is left exactly as it was (its checksum is in downstream records).
    assert file_digest(folder)["sha256"] == before["sha256"]
    assert (copy / "model.safetensors").stat().st_ino == (
        folder / "model.safetensors"
    ).stat().st_ino
    document = json.loads((copy / "config.json").read_text())
    assert document["heldout"]["metrics"] == METRICS
    assert document["heldout"]["trained_folder"] == str(folder)
    assert document["heldout"]["metrics_file"] == "../../metrics.json"
    assert document["splits"] == "splits.tsv" and document["datasets"] == ["demo_eeg"]
    assert (copy / "splits.tsv").read_text() == splits.read_text()
    card = (copy / "README.md").read_text()
    assert card.startswith("# eegnet model: abnormal (eegnet)")
    assert "## Held-out test metrics" in card
    assert "on 8 held-out test subjects" in card
    assert "95% percentile bootstrap resampling subjects (1000 resamples)" in card
    assert "- recording auroc: 0.875 [0.5, 1]" in card
    assert "- window auprc: 0.8455 [0.4022, 0.9861]" in card
    assert "- Data card: `demo_eeg_simulated.yaml`" in card
    record = read_provenance(out)
    assert record["stage"] == "eegformer_evaluate" and record["extra"]["models"] == ["eegnet"]
    assert {item["path"] for item in record["inputs"]} == {str(folder), str(splits)}


def test_a_trained_folder_card_says_where_its_test_metrics_are(trained):
    _, folder, _ = trained
    card = (folder / "README.md").read_text()
    assert "## Held-out test metrics" not in card
    assert "No held-out metrics in this folder" in card and "evaluated/" in card


def test_missing_weights_are_named_and_nothing_is_left_behind(trained, tmp_path):
    _, folder, splits = trained
    (folder / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="model.safetensors is missing"):
        write_evaluated_models(
            tmp_path / "evaluated", [_entry(folder, splits)], stage="eegformer_evaluate"
        )
    assert not (tmp_path / "evaluated").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".evaluated")]


def test_repeated_names_are_refused(trained, tmp_path):
    _, folder, splits = trained
    entry = _entry(folder, splits)
    with pytest.raises(ArtifactError, match="names repeat"):
        write_evaluated_models(tmp_path / "evaluated", [entry, entry], stage="x")


def test_datasets_option_pairs_names_with_cards():
    assert parse_datasets(["a=a.yaml", "b="]) == (["a", "b"], ["a.yaml"])
    assert parse_datasets(None) == ([], [])
    with pytest.raises(ValueError, match="NAME=CARD"):
        parse_datasets(["demo_eeg"])


def test_card_without_interval_or_metrics_says_so():
    document = {
        "model": "tablet",
        "heldout": {"stage": "tablet_evaluate", "n_test": 4, "metrics": {}},
        "tablet": {"task": {"name": "site"}, "variant": "pretrained-rope"},
    }
    card = model_card(document)
    assert card.startswith("# tablet model: site (pretrained-rope)")
    assert "- No metric could be computed." in card
    assert "- No validation score recorded." in card
