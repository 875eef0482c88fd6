"""The segmentation stages end to end on a tiny MSD-Hippocampus-format task."""

import nibabel as nib
import numpy as np
import pytest
import torch

from neuroai.errors import DataError
from neuroai.io import load_json, load_table, read_provenance
from neuroai.models import build_model, load_pretrained
from neuroai.testing import hippocampus_like_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = {
    "preset": "demo",
    "backbone": "unet",
    "options": {
        "roi_size": [16, 16, 16],
        "backbone_options": {"channels": [4, 8, 16, 16], "strides": [2, 2, 1], "num_res_units": 1},
    },
}
TRAINING = {
    "max_steps": 3,
    "batch_size": 2,
    "val_every_steps": 3,
    "log_every_steps": 1,
    "monitor": "val/dice",
    "monitor_mode": "max",
    "progress_bar": False,
}
DATA = {"spacing": None, "num_samples": 1, "intensity": "minmax"}
SPLIT = {"n_val": 1}
VARIANTS = ("plain", "deep_supervision", "dsd")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from neuroai.pipelines import segmentation_train

    root = tmp_path_factory.mktemp("seg")
    dataset = hippocampus_like_dataset(root / "Task04", n_train=4, n_test=2, test_labels=True)
    models, initial = {}, {}

    def recording_build_model(name, config):
        # What each variant's network looks like before its first step.
        network = build_model(name, config)
        initial[config.mode] = {k: v.clone() for k, v in network.backbone.state_dict().items()}
        return network

    for variant in VARIANTS:
        out = root / "results" / variant
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("neuroai.models.build_model", recording_build_model)
            models[variant] = segmentation_train.run(
                dataset,
                out / "model",
                out / "history.tsv",
                variant=variant,
                model=MODEL,
                training=TRAINING,
                data=DATA,
                split=SPLIT,
            )
    return root, dataset, models, initial


def test_train_stage_writes_a_pretrained_folder_with_provenance(trained):
    root, dataset, models, initial = trained
    for variant, folder in models.items():
        model = load_pretrained(folder)
        info = model.pretrained_info
        assert model.config.mode == variant and info["variant"] == variant
        assert (
            info["split"]["test"] == ["hippocampus_005", "hippocampus_006"]
            and len(info["split"]["val"]) == 1
        )
        record = read_provenance(folder)
        assert record["stage"] == "segmentation_train" and record["extra"]["steps"] == 3
        history = load_table(folder.parent / "history.tsv", stage="segmentation_train")
        assert {"step", "train/loss", "val/dice"} <= set(history.columns)
    # Same seed: the three variants start from the same backbone weights (a run that drew
    # its initial weights before seeding, or per variant, fails here), then train apart.
    assert set(initial) == set(VARIANTS)
    for variant in VARIANTS[1:]:
        for key, value in initial["plain"].items():
            torch.testing.assert_close(initial[variant][key], value, rtol=0, atol=0, msg=key)
    trained_plain = load_pretrained(models["plain"]).backbone.state_dict()
    trained_dsd = load_pretrained(models["dsd"]).backbone.state_dict()
    assert any(not torch.equal(trained_plain[k], trained_dsd[k]) for k in trained_plain)


def test_train_stage_writes_splits_that_are_disjoint_and_cover_the_cases(trained):
    from neuroai.io import read_decathlon
    from neuroai.training.graph_splits import read_splits

    root, dataset, models, _ = trained
    task = read_decathlon(dataset)
    labelled = {c.id for c in task.cases("all") if c.label is not None}
    for variant, folder in models.items():
        load_table(folder.parent / "splits.tsv", stage="segmentation_train")  # provenance
        splits = read_splits(folder.parent / "splits.tsv")
        assert list(splits.columns) == ["dataset", "subject", "split"]
        # A Decathlon case names no subject: the case id stands for it, one row per case.
        assert splits["subject"].is_unique, variant
        parts = {name: set(rows["subject"]) for name, rows in splits.groupby("split")}
        assert set(parts) == {"train", "val", "test"}
        assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"])
        assert not parts["val"] & parts["test"]
        assert set(splits["subject"]) == labelled, variant
        # The file says what the model trained on (its config.json records the split).
        recorded = load_pretrained(folder).pretrained_info["split"]
        for name in ("train", "val", "test"):
            assert parts[name] == set(recorded[name]), (variant, name)


def test_splits_table_refuses_a_subject_in_two_splits():
    from neuroai.evaluation import splits_table

    with pytest.raises(DataError, match="case_1 is in both train and test"):
        splits_table({"train": ["case_0", "case_1"], "test": ["case_1"]})
    with pytest.raises(DataError, match="'fit'"):
        splits_table({"fit": ["case_0"]})


def test_evaluate_stage_writes_metrics_with_intervals_and_predictions(trained):
    from neuroai.pipelines import segmentation_evaluate
    from neuroai.reports.sections import render

    root, dataset, models, _ = trained
    histories = [m.parent / "history.tsv" for m in models.values()]
    metrics = segmentation_evaluate.run(
        dataset,
        list(models.values()),
        root / "eval" / "metrics.json",
        root / "eval" / "per_case.tsv",
        histories=histories,
        n_bootstrap=200,
        splits=[m.parent / "splits.tsv" for m in models.values()],
        evaluated_output=root / "eval" / "evaluated",
        datasets=["toy=toy_card.yaml"],
    )
    document = load_json(metrics, stage="segmentation_evaluate")
    card = (root / "eval" / "evaluated" / "dsd" / "README.md").read_text()
    mean_dice = document["models"]["dsd"]["metrics"]["dice"]["mean"]
    assert (
        f"- dice mean: {mean_dice['estimate']:.4g} [" in card and "on 2 held-out test cases" in card
    )
    assert "- miss rate Anterior:" in card
    assert set(document["models"]) == set(VARIANTS) and document["classes"] == [
        "Anterior",
        "Posterior",
    ]
    dice = document["models"]["dsd"]["metrics"]["dice"]
    assert set(dice) == {"Anterior", "Posterior", "mean"} and dice["mean"]["n"] == 2
    assert {(c["a"], c["b"]) for c in document["comparisons"]} == {
        ("plain", "deep_supervision"),
        ("plain", "dsd"),
        ("deep_supervision", "dsd"),
    }
    per_case = load_table(root / "eval" / "per_case.tsv")
    assert len(per_case) == 3 * 2 * 2 and {"dice", "hd95", "msd"} <= set(per_case.columns)
    # Every case and class with a reference is scored: a missed structure has the worst-case
    # distance, not NaN, and the miss rate per class counts the cases it was missed in.
    scored = per_case[per_case["reference_voxels"] > 0]
    assert scored["hd95"].notna().all() and scored["msd"].notna().all()
    for name in VARIANTS:
        rows = per_case[per_case["model"] == name]
        for cls in ("Anterior", "Posterior"):
            detection = document["models"][name]["detection"][cls]
            of_class = rows[rows["class"] == cls]
            assert detection["missed"] == int(of_class["missed"].sum())
            assert detection["cases_with_reference"] == int(
                (of_class["reference_voxels"] > 0).sum()
            )
            found = of_class[~of_class["missed"]]["hd95"].to_numpy()
            for worst in of_class[of_class["missed"]]["hd95"]:
                assert (worst >= found).all()  # the diagonal bounds every real distance
    prediction = nib.load(document["artifacts"]["predictions"]["dsd"]["hippocampus_005"])
    assert prediction.shape == (21, 22, 18) and set(np.unique(prediction.get_fdata())) <= {0, 1, 2}
    sections = render("segmentation", [metrics, root / "eval" / "per_case.tsv"])
    html = "".join(part for section in sections for part in section.parts)
    for text in (
        "Distribution over held-out cases of Dice and HD95",
        "DSD vs deep supervision only vs plain",
        "Learning curves",
        "Example slices",
        "HD95",
        "missed (worst case)",
        "data:image/png;base64",
        "Fidelity: DSD",
        "<td>heads shared between stages</td>",
    ):
        assert text in html, text


def test_embed_and_predict_stages(trained, tmp_path):
    from neuroai.pipelines import embed, predict
    from neuroai.reports.sections import render

    root, dataset, models, _ = trained
    from neuroai.evaluation import embedding_matrix, read_embeddings

    index = embed.run(
        models["dsd"], tmp_path / "emb" / "embeddings.parquet", dataset=dataset, split="test"
    )
    table = read_embeddings(index)
    assert list(table["subject"]) == ["hippocampus_005", "hippocampus_006"]
    assert set(table["level"]) == {"case"} and set(table["split"]) == {"test"}
    assert embedding_matrix(table).shape == (2, 16)
    assert read_provenance(index)["extra"]["family"] == "dsd"
    image = dataset.parent / "imagesTs" / "hippocampus_005.nii.gz"
    out = predict.run(models["dsd"], tmp_path / "pred" / "index.tsv", inputs=[image])
    label_map = nib.load(load_table(out, stage="predict")["prediction"][0])
    original = nib.load(image)
    assert label_map.shape == original.shape and np.allclose(label_map.affine, original.affine)
    html = "".join(p for s in render("inference", [index, out]) for p in s.parts)
    assert "embed" in html and "predict" in html


def test_train_stage_refuses_undeclared_labels_naming_the_case(tmp_path):
    from neuroai.pipelines import segmentation_train

    dataset = hippocampus_like_dataset(tmp_path / "Task04", n_train=3, n_test=0)
    label_path = tmp_path / "Task04" / "labelsTr" / "hippocampus_002.nii.gz"
    label = nib.load(label_path)
    data = np.asarray(label.dataobj).copy()
    data[1, 1, 1] = 7
    nib.save(nib.Nifti1Image(data, label.affine), label_path)
    with pytest.raises(DataError, match="Case hippocampus_002: .*values \\[7\\]"):
        segmentation_train.run(
            dataset,
            tmp_path / "m",
            tmp_path / "h.tsv",
            model=MODEL,
            training=TRAINING,
            data=DATA,
            split={"n_val": 0, "test_fraction": 0.3},
        )
    assert not (tmp_path / "m").exists()


def test_a_misspelled_training_key_is_named(tmp_path):
    from neuroai.errors import ConfigError
    from neuroai.pipelines import segmentation_train

    dataset = hippocampus_like_dataset(tmp_path / "Task04", n_train=3, n_test=0)
    with pytest.raises(ConfigError, match="Did you mean 'max_steps'"):
        segmentation_train.run(
            dataset,
            tmp_path / "m",
            tmp_path / "h.tsv",
            training={"max_step": 3},
            split={"n_val": 0, "test_fraction": 0.3},
        )
