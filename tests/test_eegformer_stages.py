"""EEGFormer stages end to end on a tiny store: compound pretraining, fine-tuning, evaluation,
anomaly detection, interpretation and the report section."""

import json

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.io import load_json, load_table, read_provenance
from neuroai.testing import tiny_patch_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {
    "max_steps": 4,
    "batch_size": 4,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
    "lr": 0.003,
}
MODEL = {"preset": "demo", "options": {"d_model": 16, "codebook_size": 16, "restart_every": 2}}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    from neuroai.pipelines import (
        eegformer_anomaly,
        eegformer_evaluate,
        eegformer_finetune,
        eegformer_interpret,
        eegformer_pretrain,
    )

    root = tmp_path_factory.mktemp("eegformer_stages")
    stores = [
        tiny_patch_store(root / "eeg" / "tuab_like" / "store", seed=0),
        tiny_patch_store(root / "eeg" / "other" / "store", seed=1, n_recordings=4),
    ]
    out = root / "eegformer"
    split = {"n_val": 1}
    for corpus, labels in (("compound", None), ("normal", ["normal"])):
        eegformer_pretrain.run(
            stores if corpus == "compound" else stores[:1],
            out / "pretrain" / corpus / "model",
            out / "pretrain" / corpus / "history.tsv",
            model=MODEL,
            training=FAST,
            split=split,
            labels=labels,
        )
    pretrained = out / "pretrain" / "compound" / "model"
    for task, modes, definition in (
        ("abnormal", ["probe", "finetune", "scratch"], None),
        ("artifacts", ["probe"], None),
        ("seizure", ["probe"], {"positive": ["seiz", "spsw"]}),
    ):
        folder = out / task
        eegformer_finetune.run(
            stores[:1],
            pretrained,
            folder / "models",
            folder / "predictions.tsv",
            folder / "history.tsv",
            task=task,
            modes=modes,
            definition=definition,
            training=FAST,
            split=split,
        )
        eegformer_evaluate.run(
            folder / "predictions.tsv",
            folder / "metrics.json",
            folder / "recordings.tsv",
            models=folder / "models",
            history=folder / "history.tsv",
            n_bootstrap=200,
            evaluated_output=folder / "evaluated",
            splits=folder / "splits.tsv",
            datasets=["tuab_like=tuab_like.yaml"],
        )
    eegformer_anomaly.run(
        stores[:1],
        out / "pretrain" / "normal" / "model",
        out / "anomaly" / "scores.tsv",
        out / "anomaly" / "anomaly.json",
        split=split,
        n_bootstrap=200,
    )
    eegformer_interpret.run(
        stores,
        pretrained,
        out / "interpret" / "codes.json",
        out / "interpret" / "codes.npy",
        min_count=1,
    )
    return root, stores, out


def test_compound_pretraining_uses_every_stores_training_recordings(outputs):
    _, stores, out = outputs
    info = json.loads((out / "pretrain" / "compound" / "model" / "config.json").read_text())
    train = info["split"]["train"]
    assert {r.split("/")[0] for r in train} == {"tuab_like", "other"}
    assert not set(train) & set(info["split"]["test"]) and info["split"]["test"]
    assert info["objective"] == {
        "name": "vqvae",
        "settings": {"beta": None, "reconstruction": "mse"},
    }
    config = info["config"]
    assert (config["n_chans"], config["n_times"], config["patch_len"]) == (5, 400, 20)
    history = load_table(out / "pretrain" / "compound" / "history.tsv")
    assert {"train/perplexity", "train/usage", "val/loss"} <= set(history.columns)
    normal = json.loads((out / "pretrain" / "normal" / "model" / "config.json").read_text())
    assert normal["labels"] == ["normal"] and normal["n_windows"]["train"] in (3, 6)


def test_fine_tuning_writes_models_and_test_predictions_for_every_mode(outputs):
    _, _, out = outputs
    predictions = load_table(out / "abnormal" / "predictions.tsv", stage="eegformer_finetune")
    assert sorted(set(predictions["mode"])) == ["finetune", "probe", "scratch"]
    assert set(predictions["recording"]) == {"tuab_like/rec04", "tuab_like/rec05"}
    assert predictions["score"].between(0, 1).all()
    assert sorted(p.name for p in (out / "abnormal" / "models").iterdir()) == [
        "finetune",
        "probe",
        "scratch",
    ]
    probe = json.loads((out / "abnormal" / "models" / "probe" / "config.json").read_text())
    assert probe["model"] == "probe" and probe["config"]["freeze"] is True
    scratch = json.loads((out / "abnormal" / "models" / "scratch" / "config.json").read_text())
    assert scratch["config"]["freeze"] is False and scratch["mode"] == "scratch"
    artifacts = load_table(out / "artifacts" / "predictions.tsv")
    assert {"target_eyem", "score_eyem", "target_musc", "score_musc"} <= set(artifacts.columns)


def test_pretrained_weights_start_fine_tuning_and_scratch_starts_at_random(outputs):
    from neuroai.models import load_pretrained

    _, _, out = outputs
    pretrained = load_pretrained(out / "pretrain" / "compound" / "model")
    probe = load_pretrained(out / "abnormal" / "models" / "probe")
    scratch = load_pretrained(out / "abnormal" / "models" / "scratch")
    key = "patch_embed.weight"
    torch.testing.assert_close(probe.encoder.state_dict()[key], pretrained.state_dict()[key])
    assert not torch.allclose(scratch.encoder.state_dict()[key], pretrained.state_dict()[key])


def test_metrics_have_window_and_recording_levels_with_intervals(outputs):
    _, _, out = outputs
    document = load_json(out / "abnormal" / "metrics.json", stage="eegformer_evaluate")
    assert document["bootstrap"]["unit"] == "subject" and document["n_recordings"] == 2
    assert document["n_subjects"] == 2 and document["test_subjects_pretrained_on"] == 0
    for entry in document["models"].values():
        for level in ("window", "recording"):
            assert set(entry["metrics"][level]) == {"auroc", "auprc", "balanced_accuracy"}
    pairs = {(c["a"], c["b"], c["level"]) for c in document["comparisons"]}
    assert ("finetune", "scratch", "recording") in pairs and ("probe", "scratch", "window") in pairs
    assert document["pretrained"]["config"]["codebook_size"] == 16
    recordings = load_table(out / "abnormal" / "recordings.tsv")
    assert len(recordings) == 6 and set(recordings["target"]) == {0, 1}  # 3 modes x 2 recordings
    artifacts = load_json(out / "artifacts" / "metrics.json")
    assert artifacts["classes"] == ["eyem", "musc"] and "per_class" in artifacts["models"]["probe"]


def test_anomaly_and_interpretation_outputs(outputs):
    _, _, out = outputs
    anomaly = load_json(out / "anomaly" / "anomaly.json", stage="eegformer_anomaly")
    assert anomaly["pretrained_on"] == ["normal"]
    assert anomaly["n_recordings"] == {"normal": 1, "abnormal": 1}
    assert set(anomaly["metrics"]) == {
        "reconstruction",
        "reconstruction_z",
        "quantization",
        "code_rarity",
    }
    scores = load_table(out / "anomaly" / "scores.tsv")
    assert np.isfinite(scores["reconstruction_z"]).all() and set(scores["abnormal"]) == {0, 1}
    codes = load_json(out / "interpret" / "codes.json", stage="eegformer_interpret")
    assert codes["n_windows"] == 30 and codes["channels"] == ["Fp1", "C3", "Cz", "C4", "O2"]
    assert len(codes["positions"]) == 5 and set(codes["classes"]) == {"normal", "abnormal"}
    assert sum(codes["classes"]["normal"]["usage"]) == 5 * 10 * 15  # 15 normal windows
    slow = codes["events"]["slow"]
    assert slow["example"]["recording"].endswith(("rec01", "rec03", "rec05"))
    assert len(slow["example"]["activity"]) == 5  # channels x windows of that recording
    from neuroai.io import load_array

    assert load_array(out / "interpret" / "codes.npy").shape == (30, 5, 10)


def test_report_section_renders_every_part(outputs):
    from neuroai.reports.sections import render

    _, _, out = outputs
    paths = [
        out / "pretrain" / "compound" / "history.tsv",
        out / "pretrain" / "normal" / "history.tsv",
        *(
            out / task / name
            for task in ("abnormal", "artifacts", "seizure")
            for name in ("metrics.json", "recordings.tsv", "history.tsv")
        ),
        out / "anomaly" / "anomaly.json",
        out / "interpret" / "codes.json",
    ]
    (section,) = render("eegformer", paths)
    page = "".join(section.parts)
    for text in (
        "Task: abnormal",
        "Task: artifacts",
        "Task: seizure",
        "Anomaly detection",
        "Codebook interpretation",
        "snakemake --cores 2",
        "finetune - scratch",
        "Scalp maps",
        "abnormal: fine-tuning curves per mode",
        "ROC and precision-recall curves of the recording scores",
        "Confusion matrices of the recording predictions",
    ):
        assert text in page, text
    assert page.count("<img") >= 9


def test_stage_errors_name_the_problem_and_write_nothing(outputs, tmp_path):
    from neuroai.pipelines import eegformer_finetune

    root, stores, out = outputs
    other = tiny_patch_store(tmp_path / "eeg" / "long" / "store", window_samples=600)
    with pytest.raises(ConfigError, match="built for other windows"):
        eegformer_finetune.run(
            [other],
            out / "pretrain" / "compound" / "model",
            tmp_path / "m",
            tmp_path / "p.tsv",
            tmp_path / "h.tsv",
            task="abnormal",
        )
    with pytest.raises(DataError, match=r"needs positive and negative windows.*spsw"):
        eegformer_finetune.run(
            stores[:1],
            out / "pretrain" / "compound" / "model",
            tmp_path / "models",
            tmp_path / "pred.tsv",
            tmp_path / "hist.tsv",
            task="seizure",
        )
    assert not list(tmp_path.glob("*.tsv")) and not (tmp_path / "models").exists()
    assert read_provenance(out / "abnormal" / "predictions.tsv")["stage"] == "eegformer_finetune"


def test_evaluate_writes_an_evaluated_copy_of_every_mode_with_its_test_metrics(outputs):
    _, _, out = outputs
    document = load_json(out / "abnormal" / "metrics.json", stage="eegformer_evaluate")
    evaluated = out / "abnormal" / "evaluated"
    assert sorted(p.name for p in evaluated.iterdir()) == ["finetune", "probe", "scratch"]
    for mode in ("finetune", "probe", "scratch"):
        heldout = json.loads((evaluated / mode / "config.json").read_text())["heldout"]
        auroc = document["models"][mode]["metrics"]["recording"]["auroc"]
        assert heldout["metrics"]["recording auroc"]["estimate"] == auroc["estimate"]
        assert heldout["n_test"] == document["n_subjects"]
        card = (evaluated / mode / "README.md").read_text()
        assert card.startswith(f"# probe model: abnormal ({mode})")
        assert "- Data card: `tuab_like.yaml`" in card and "[splits.tsv](splits.tsv)" in card
    # Only the fine-tuned modes started from the pretrained encoder.
    assert (
        "Started from the pretrained encoder"
        not in (evaluated / "scratch" / "README.md").read_text()
    )
    assert "Started from the pretrained encoder" in (evaluated / "probe" / "README.md").read_text()
