"""Embedding tables of every family: rows, identity columns, oracle values, external inputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from neuroai.errors import ArtifactError, ConfigError, DataError
from neuroai.evaluation import embedding_matrix, read_embeddings
from neuroai.io import read_provenance, save_table
from neuroai.models import create_model, load_pretrained
from neuroai.testing import (
    graph_dataset,
    hippocampus_like_dataset,
    tiny_patch_store,
    write_token_store,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def eeg(root):
    """A 5-recording patch store (3 windows each) and an EEGFormer built for it."""
    store = tiny_patch_store(root / "eeg" / "tiny" / "store", n_recordings=5, seed=3)
    torch.manual_seed(0)
    model = create_model(
        "eegformer",
        preset="demo",
        n_chans=5,
        n_times=400,
        sfreq=100.0,
        patch_len=20,
        patch_stride=20,
    )
    return store, model.save_pretrained(root / "models" / "eegformer")


@pytest.fixture(scope="module")
def tokens(root):
    """Four subjects' token stores (unequal lengths) with their index, and a TABLeT."""
    rows = []
    for i in range(4):
        path = write_token_store(
            root / "tokens" / f"sub-{i:02d}_tokens.npy", n_frames=5 + 2 * i, seed=i, tr=2.0
        )
        site = "a" if i % 2 else "b"
        rows.append(
            {"participant_id": f"sub-{i:02d}", "tokens": path.name, "n_frames": 5 + 2 * i}
            | {"tr": 2.0, "site": site, "mean_fc": 0.1 * i}
        )
    index = root / "tokens" / "index.tsv"
    save_table(index, pd.DataFrame(rows), stage="tokens_summary")
    torch.manual_seed(0)
    model = create_model("tablet", preset="demo", n_tokens=5, token_dim=12, positional="rope")
    folder = model.save_pretrained(
        root / "models" / "tablet", metadata={"tablet": {"data": {"window_frames": 3}}}
    )
    return index, folder


@pytest.fixture(scope="module")
def graphs(root):
    from neuroai.training.graph_data import Crop, GraphCropDataset

    path = graph_dataset(root / "graphs")
    torch.manual_seed(0)
    overrides = GraphCropDataset(path, [Crop(0, 0, 2)]).model_overrides()
    model = create_model(
        "dfc_gnn", preset="demo", hidden=16, gin_layers=2, heads=2, dropout=0.0, **overrides
    )
    folder = model.save_pretrained(
        root / "models" / "dfc_gnn", metadata={"data": {"crop_windows": 4, "eval_crops": 3}}
    )
    people = root / "graph_participants.tsv"
    pd.DataFrame(
        {"participant_id": [f"sub-{i:02d}" for i in range(6)], "score": range(30, 36)}
    ).to_csv(people, sep="\t", index=False)
    return path, folder, people


@pytest.fixture(scope="module")
def volumes(root):
    dataset = hippocampus_like_dataset(root / "Task04", n_train=3, n_test=2)
    torch.manual_seed(0)
    model = create_model("dsd", preset="demo", backbone="unet", in_channels=1, out_channels=3)
    return dataset, model.save_pretrained(root / "models" / "dsd")


def test_column_names_and_participants_join():
    from neuroai.evaluation.embeddings import embedding_columns, embedding_table

    assert embedding_columns(3) == ["e000", "e001", "e002"]
    assert embedding_columns(1001)[-1] == "e1000"
    identity = pd.DataFrame({"level": "run", "subject": ["02", "01"], "run": ["r2", "r1"]})
    people = pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "site": ["x", "y"]})
    table = embedding_table(identity, np.array([[2.0, 20.0], [1.0, 10.0]]), people)
    # Rows follow participants.tsv; the subject is spelled as there; values move with rows.
    assert list(table["subject"]) == ["sub-01", "sub-02"] and list(table["site"]) == ["x", "y"]
    np.testing.assert_array_equal(embedding_matrix(table), [[1.0, 10.0], [2.0, 20.0]])
    assert table["e000"].dtype == np.float32
    with pytest.raises(DataError, match=r"\['03'\] are not in participants.tsv"):
        embedding_table(identity.assign(subject=["01", "03"]), np.zeros((2, 2)), people)


def test_eegformer_windows_and_recordings_equal_the_encoder(eeg, root):
    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.pipelines import embed

    store, folder = eeg
    out = embed.run(folder, root / "out" / "eegformer" / "embeddings.parquet", store=store)
    table = read_embeddings(out)
    assert list(table.columns[:6]) == [
        "level",
        "subject",
        "session",
        "recording",
        "window",
        "split",
    ]
    windows, recordings = table[table["level"] == "window"], table[table["level"] == "recording"]
    assert len(windows) == 15 and len(recordings) == 5
    assert (recordings["window"] == -1).all() and (recordings["n_windows"] == 3).all()
    # The oracle: the model's encoder called directly on every window.
    model = load_pretrained(folder)
    dataset = EEGPatchDataset([store])
    x = torch.stack([dataset[i]["spectrum"].float() for i in range(len(dataset))])
    with torch.no_grad():
        direct = model.encode(x).mean(dim=2).flatten(1).numpy()
    np.testing.assert_allclose(embedding_matrix(windows), direct, rtol=1e-5, atol=1e-5)
    first = recordings.iloc[0]["recording"]
    mean = direct[(windows["recording"] == first).to_numpy()].mean(0)
    np.testing.assert_allclose(embedding_matrix(recordings)[0], mean, rtol=1e-5, atol=1e-5)
    assert embedding_matrix(table).shape[1] == model.embed_dim == 5 * model.config.d_model
    assert len(read_embeddings(out, level="recording")) == 5
    record = read_provenance(out)
    assert record["stage"] == "embed" and record["extra"]["family"] == "eegformer"


def test_tablet_subjects_and_runs_equal_the_mean_cls_over_windows(tokens, root):
    from neuroai.pipelines import embed
    from neuroai.tokenizers import read_token_store
    from neuroai.training.token_data import pad_window, tile_starts

    index, folder = tokens
    out = embed.run(folder, root / "out" / "tablet" / "embeddings.parquet", index=index)
    table = read_embeddings(out)
    subjects = table[table["level"] == "subject"]
    assert list(subjects["subject"]) == [f"sub-{i:02d}" for i in range(4)]
    assert list(subjects["site"]) == ["b", "a", "b", "a"]
    assert subjects["mean_fc"].dtype.kind == "f"
    assert list(subjects["n_windows"]) == [2, 3, 3, 4]  # ceil((5 + 2i) / 3)
    assert (table["level"] == "run").sum() == 4  # one run per store here
    model = load_pretrained(folder)
    tokens3 = np.asarray(read_token_store(index.parent / "sub-03_tokens.npy").tokens)
    starts = tile_starts(len(tokens3), 3)
    pairs = [pad_window(tokens3, s, 3) for s in starts]
    x = torch.from_numpy(np.stack([p[0] for p in pairs])).float()
    mask = torch.from_numpy(np.stack([p[1] for p in pairs]))
    with torch.no_grad():
        cls = model.encode(model.embed_tokens(x), x.shape[1], mask, torch.full((4,), 2.0))[:, 0]
    np.testing.assert_allclose(
        embedding_matrix(subjects)[3], cls.mean(0).numpy(), rtol=1e-4, atol=1e-5
    )


def test_dfc_gnn_runs_equal_embed_runs_and_join_participants(graphs, root):
    from neuroai.pipelines import embed
    from neuroai.training.graph_finetune import embed_runs

    path, folder, people = graphs
    out = embed.run(
        folder, root / "out" / "dfc" / "embeddings.parquet", graphs=path, participants=people
    )
    table = read_embeddings(out)
    assert list(table["subject"]) == [f"sub-{i:02d}" for i in range(6)]
    assert list(table["run"]) == [f"sub-{i:02d}_task-rest" for i in range(6)]
    # The dataset's own labels (site, age) come with the runs; participants' columns join.
    assert list(table["score"]) == list(range(30, 36)) and list(table["site"][:2]) == ["a", "b"]
    assert table["age"].notna().all()
    model = load_pretrained(folder)
    direct = embed_runs(model, path, list(range(6)), length=4, max_crops=3)
    np.testing.assert_allclose(embedding_matrix(table), direct, rtol=1e-5, atol=1e-5)
    assert read_provenance(out)["params"]["crop_windows"] == 4


def test_dsd_cases_equal_the_bottleneck_mean(volumes, root):
    from neuroai.models.inputs import read_model_input
    from neuroai.pipelines import embed

    dataset, folder = volumes
    out = embed.run(folder, root / "out" / "dsd" / "embeddings.parquet", dataset=dataset)
    table = read_embeddings(out)
    assert list(table["split"]) == ["training"] * 3 + ["test"] * 2
    assert (table["level"] == "case").all() and table["subject"].is_unique
    model = load_pretrained(folder)
    image = dataset.parent / "imagesTs" / f"{table['subject'].iloc[-1]}.nii.gz"
    with torch.no_grad():
        direct = model.embed(read_model_input(image, model).items)[0].numpy()
    np.testing.assert_allclose(embedding_matrix(table)[-1], direct, rtol=1e-5, atol=1e-5)


def test_an_external_array_is_accepted_and_its_checksum_recorded(eeg, tokens, root):
    import hashlib

    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.pipelines import embed

    store, folder = eeg
    dataset = EEGPatchDataset([store])
    windows = torch.stack([dataset[i]["spectrum"].float() for i in range(4)]).numpy()
    mine = root / "external" / "my_recording.npy"
    mine.parent.mkdir()
    np.save(mine, windows)  # written by a user: no provenance record
    out = embed.run(folder, root / "external" / "embeddings.parquet", inputs=[mine])
    table = read_embeddings(out)
    assert list(table["level"]) == ["recording"] + ["window"] * 4
    assert set(table["recording"]) == {"my_recording"}
    model = load_pretrained(folder)
    with torch.no_grad():
        direct = model.embed(torch.from_numpy(windows)).numpy()
    np.testing.assert_allclose(embedding_matrix(table)[1:], direct, rtol=1e-5, atol=1e-5)
    record = read_provenance(out)
    digest = hashlib.sha256(mine.read_bytes()).hexdigest()
    described = {"path": str(mine), "size": mine.stat().st_size, "sha256": digest}
    assert described in record["inputs"]
    assert record["extra"]["external_inputs"] == [described]
    # A user's token array for TABLeT, too (one subject per file).
    array = root / "external" / "sub-77_tokens.npy"
    np.save(array, np.random.default_rng(0).standard_normal((6, 5, 12)).astype(np.float32))
    out = embed.run(tokens[1], root / "external" / "tablet.parquet", inputs=[array])
    external = read_embeddings(out)
    assert list(external["subject"]) == ["sub-77"] and list(external["level"]) == ["subject"]


def test_a_tampered_own_artifact_is_still_refused(tokens, root):
    from neuroai.io import save_array
    from neuroai.pipelines import embed

    ours = save_array(
        root / "tampered" / "sub-01_tokens.npy",
        np.zeros((4, 5, 12), np.float32),
        stage="tokens",
    )
    with open(ours, "ab") as handle:
        handle.write(b"\0" * 16)
    target = root / "tampered" / "embeddings.parquet"
    with pytest.raises(ArtifactError, match="provenance record says"):
        embed.run(tokens[1], target, inputs=[ours])
    assert not target.exists()


def test_a_model_of_another_family_or_size_is_refused_naming_the_folder(eeg, tokens, root):
    from neuroai.pipelines import embed

    store, eeg_folder = eeg
    index, tablet_folder = tokens
    target = root / "refused" / "embeddings.parquet"
    with pytest.raises(ArtifactError, match=rf"{tablet_folder} holds a 'tablet' model.*token"):
        embed.run(tablet_folder, target, store=store)
    wider = create_model(
        "eegformer", preset="demo", n_chans=4, n_times=400, sfreq=100.0, patch_len=20
    ).save_pretrained(root / "models" / "eegformer_4ch")
    with pytest.raises(DataError, match=rf"Model folder {wider} \(eegformer\).*got \(\d+, 5,"):
        embed.run(wider, target, store=store)
    with pytest.raises(ConfigError, match="exactly one input"):
        embed.run(eeg_folder, target, store=store, index=index)
    assert not target.exists()


def test_the_command_line_embeds_an_external_file(eeg, root, capsys):
    from neuroai.pipelines import embed

    store, folder = eeg
    mine = root / "cli" / "rec.npy"
    mine.parent.mkdir()
    from neuroai.eeg.dataset import EEGPatchDataset

    np.save(mine, EEGPatchDataset([store])[0]["spectrum"].numpy())  # one window
    out = root / "cli" / "embeddings.parquet"
    embed.main(["--model", str(folder), "--output", str(out), "--inputs", str(mine)])
    assert list(read_embeddings(out)["level"]) == ["recording", "window"]
    assert json.loads(out.with_name(out.name + ".prov.json").read_text())["stage"] == "embed"


def test_the_report_draws_each_table_in_2d_coloured_by_a_label(eeg, graphs, root):
    from neuroai.pipelines import embed
    from neuroai.reports.sections import render
    from neuroai.reports.sections.inference import colour_column

    store, folder = eeg
    eeg_table = root / "report" / "eegformer" / "tiny" / "embeddings.parquet"
    embed.run(folder, eeg_table, store=store)
    path, dfc_folder, people = graphs
    dfc_table = root / "report" / "dfc_gnn" / "graphs" / "embeddings.parquet"
    embed.run(dfc_folder, dfc_table, graphs=path, participants=people)
    sections = render("inference", [eeg_table, dfc_table])
    html = "".join(part for s in sections for part in s.parts)
    assert html.count("data:image/png;base64") == 2
    assert "one point per recording" in html and "coloured by label" in html
    assert "one point per run" in html and "coloured by site" in html
    assert sections[0].page == ("embeddings", "Embeddings")
    # The colour label: a preferred label column, else one that varies; never an identity.
    frame = pd.DataFrame({"level": "run", "subject": ["a", "b", "c"], "age": [1.0, 2.0, 3.0]})
    assert colour_column(frame) == "age"
    assert colour_column(frame.assign(site=["x", "y", "x"])) == "site"
    assert colour_column(frame[["level", "subject"]]) is None


def test_the_demo_schedules_an_embed_job_per_family_and_dataset(tmp_path):
    from neuroai.testing.workflow import REPO, job_counts, run_snakemake

    done = run_snakemake(tmp_path, "-n", "-p", "--cores", "1", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())
    eeg_tasks = config["eegformer"]["tasks"].values()
    eeg = {*config["eegformer"]["datasets"], *(d for t in eeg_tasks for d in t["datasets"])}
    expected = (
        {("eegformer", d) for d in eeg}
        | {("tablet", d) for d in config["tablet"]["datasets"]}
        | {("dfc_gnn", d) for d in config["dfc_gnn"]["datasets"]}
        | {("dsd", d) for d in config["segmentation"]["datasets"]}
    )
    assert {family for family, _ in expected} == {"eegformer", "tablet", "dfc_gnn", "dsd"}
    found = set(re.findall(r"results/embeddings/(\w+)/(\w+)/embeddings\.parquet", done.stdout))
    assert found == expected
    counts = job_counts(done.stdout)
    assert counts["embed"] == len(expected)
    # predict: one table per fine-tuned task model and dataset, every family but DSD
    # (whose named model writes label maps).
    tuned = (
        sum(len(t["datasets"]) for t in eeg_tasks)
        + len(config["tablet"]["tasks"]) * len(config["tablet"]["datasets"])
        + len(config["dfc_gnn"]["finetune"]["tasks"]) * len(config["dfc_gnn"]["datasets"])
    )
    assert counts["predict_table"] == tuned
    assert counts["predict"] == len(config["predict"]["models"]) * len(
        config["predict"]["datasets"]
    )
    # Each family reads its own artifact of the dataset.
    for option, source in (
        ("--store", "results/eeg/demo_eeg/store"),
        ("--index", "results/tokens/demo_volumes/index.tsv"),
        ("--graphs", "results/fmri/demo_regions/graphs"),
        ("--dataset", "results/datasets/demo_tissue/dataset.json"),
    ):
        assert f"{option} {source} " in done.stdout, option


def test_a_named_model_may_not_take_a_family_name(tmp_path):
    from neuroai.testing.workflow import REPO, run_snakemake

    config = yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())
    config["embed"]["models"] = {"tablet": "segmentation/demo_tissue/dsd"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, "--configfile", str(path), "-n", timeout=600)
    assert done.returncode != 0
    assert "embed.models names ['tablet'], which are family names" in done.stderr + done.stdout


# -- predict: a participants-aligned table for every family with a fine-tuned model ----------


def test_a_fine_tuned_eegformer_predicts_windows_and_recordings(eeg, root):
    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.io import load_table
    from neuroai.models.probe import ProbeModel
    from neuroai.pipelines import predict

    store, folder = eeg
    torch.manual_seed(1)
    probe = ProbeModel.from_encoder(load_pretrained(folder), n_outputs=2, task="classification")
    tuned = probe.save_pretrained(
        root / "models" / "eeg_probe",
        metadata={"task": "abnormal", "classes": ["normal", "abnormal"]},
    )
    out = predict.run(tuned, root / "pred" / "eeg.tsv", store=store)
    table = load_table(out, stage="predict")
    windows = table[table["level"] == "window"]
    assert len(windows) == 15 and (table["level"] == "recording").sum() == 5
    assert set(table["task"]) == {"abnormal"}
    x = torch.stack([s["spectrum"].float() for s in EEGPatchDataset([store])])
    with torch.no_grad():
        direct = torch.softmax(load_pretrained(tuned)(x), dim=1)[:, 1].numpy()
    np.testing.assert_allclose(windows["score"], direct, rtol=1e-5, atol=1e-6)
    expected = np.where(table["score"] >= 0.5, "abnormal", "normal")
    assert list(table["predicted"]) == list(expected)
    from neuroai.reports.sections import render

    html = "".join(p for s in render("inference", [out]) for p in s.parts)
    assert "task abnormal" in html and "5 recordings, 15 windows" in html
    # An encoder without a head is not a fine-tuned model: refused, naming the folder.
    with pytest.raises(ArtifactError, match=rf"{folder} holds no fine-tuned eegformer"):
        predict.run(folder, root / "pred" / "none.tsv", store=store)
    assert not (root / "pred" / "none.tsv").exists()


def test_a_fine_tuned_tablet_predicts_each_subject_from_its_mean_logit(tokens, root):
    from neuroai.io import load_table
    from neuroai.pipelines import predict
    from neuroai.tokenizers import read_token_store
    from neuroai.training.token_data import pad_window, tile_starts

    index, _ = tokens
    torch.manual_seed(2)
    model = create_model("tablet", preset="demo", n_tokens=5, token_dim=12, n_outputs=1)
    task = {"name": "site", "column": "site", "kind": "classification", "positive": "a"}
    record = {"stage": "tablet_finetune", "task": task, "data": {"window_frames": 3}}
    tuned = model.save_pretrained(root / "models" / "tablet_site", metadata={"tablet": record})
    out = predict.run(tuned, root / "pred" / "tablet.tsv", index=index)
    table = load_table(out, stage="predict")
    assert list(table["subject"]) == [f"sub-{i:02d}" for i in range(4)]
    assert list(table["site"]) == ["b", "a", "b", "a"]  # participants' columns joined
    tokens2 = np.asarray(read_token_store(index.parent / "sub-02_tokens.npy").tokens)
    pairs = [pad_window(tokens2, s, 3) for s in tile_starts(len(tokens2), 3)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs])).float()
    mask = torch.from_numpy(np.stack([p[1] for p in pairs]))
    with torch.no_grad():
        mean = load_pretrained(tuned)(x, mask, torch.full((len(pairs),), 2.0))[:, 0].mean()
    assert table["output"][2] == pytest.approx(float(mean), rel=1e-4, abs=1e-6)
    assert table["predicted"][2] == ("a" if mean > 0 else "not a")


def test_a_fine_tuned_dfc_gnn_predicts_each_run(graphs, root):
    from neuroai.io import load_table
    from neuroai.models.probe import ProbeModel
    from neuroai.pipelines import predict
    from neuroai.training.graph_finetune import predict_runs

    path, folder, people = graphs
    torch.manual_seed(3)
    probe = ProbeModel.from_encoder(load_pretrained(folder), n_outputs=2, task="classification")
    metadata = {
        "task": "site",
        "target": "classification",
        "classes": ["a", "b"],
        "data": {"crop_windows": 4, "eval_crops": 3},
    }
    tuned = probe.save_pretrained(root / "models" / "dfc_site", metadata=metadata)
    out = predict.run(tuned, root / "pred" / "dfc.tsv", graphs=path, participants=people)
    table = load_table(out, stage="predict")
    assert list(table["run"]) == [f"sub-{i:02d}_task-rest" for i in range(6)]
    assert list(table["score"]) == list(range(30, 36))
    direct = predict_runs(load_pretrained(tuned), path, list(range(6)), length=4, max_crops=3)
    np.testing.assert_allclose(table[["p_a", "p_b"]].to_numpy(), direct, rtol=1e-5, atol=1e-6)
    assert list(table["predicted"]) == [["a", "b"][i] for i in direct.argmax(1)]


def test_tablet_runs_follow_the_frames_record_of_each_token_store(tokens, root):
    from neuroai.io import save_array, write_artifact
    from neuroai.pipelines import embed
    from neuroai.tokenizers import read_token_store
    from neuroai.training.token_data import pad_window, tile_starts

    _, folder = tokens
    base = root / "runs"
    runs = [
        {"path": str(base / f"sub-05_task-rest_run-{k}_bold.nii.gz"), "n_frames_used": n}
        for k, n in ((1, 4), (2, 5))
    ]
    frames = save_array(
        base / "sub-05_frames.npy",
        np.zeros((9, 2, 2, 2), np.float16),
        stage="frames",
        extra={"runs": runs},
    )
    tokens9 = np.random.default_rng(5).standard_normal((9, 5, 12)).astype(np.float16)
    store = write_artifact(
        base / "sub-05_tokens.npy",
        lambda tmp: np.save(tmp, tokens9),
        stage="tokens",
        inputs=[frames],
        extra={"layout": {"n_tokens": 5, "token_dim": 12}, "tr": 2.0},
    )
    index = base / "index.tsv"
    row = {"participant_id": "sub-05", "tokens": store.name, "n_frames": 9, "tr": 2.0}
    save_table(index, pd.DataFrame([row]), stage="tokens_summary")
    table = read_embeddings(embed.run(folder, base / "embeddings.parquet", index=index))
    run_rows = table[table["level"] == "run"]
    assert list(run_rows["run"]) == ["sub-05_task-rest_run-1", "sub-05_task-rest_run-2"]
    assert list(run_rows["n_windows"]) == [2, 2]  # 4 and 5 frames in windows of 3
    model = load_pretrained(folder)
    second = np.asarray(read_token_store(store).tokens)[4:]
    pairs = [pad_window(second, s, 3) for s in tile_starts(len(second), 3)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs])).float()
    mask = torch.from_numpy(np.stack([p[1] for p in pairs]))
    with torch.no_grad():
        cls = model.encode(model.embed_tokens(x), 3, mask, torch.full((2,), 2.0))[:, 0]
    np.testing.assert_allclose(
        embedding_matrix(run_rows)[1], cls.mean(0).numpy(), rtol=1e-4, atol=1e-5
    )
