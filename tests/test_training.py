"""The training engine: schedules, resumable data, fit, exports, resume, pretraining, probes."""

import math

import numpy as np
import pytest
import torch

from neuroai.io import read_decathlon, save_array
from neuroai.models import create_model, load_pretrained
from neuroai.models.objectives import create_objective
from neuroai.models.probe import ProbeModel
from neuroai.testing import hippocampus_like_dataset
from neuroai.testing.training import CrashAtStep
from neuroai.training import (
    ArrayDataModule,
    FineTuneModule,
    PretrainModule,
    ResumableSampler,
    SegmentationDataConfig,
    SegmentationDataModule,
    SupervisedModule,
    TrainConfig,
    fit,
    lr_factor,
    seed_everything,
)
from neuroai.training import data as data_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_UNET = {
    "out_channels": 3,
    "roi_size": (16, 16, 16),
    "backbone_options": {
        "channels": (4, 8, 16, 16),
        "strides": (2, 2, 1),
        "num_res_units": 1,
        "dropout": 0.1,
    },
}


@pytest.fixture(scope="module")
def hippocampus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hippocampus")
    hippocampus_like_dataset(root, n_train=5, n_test=1)
    return read_decathlon(root)


def test_lr_schedule_warmup_then_cosine_and_step():
    config = TrainConfig(max_steps=110, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(9, config) == pytest.approx(1.0)
    assert lr_factor(60, config) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(110, config) == pytest.approx(0.1)
    step = TrainConfig(max_steps=60, schedule="step", gamma=0.5)
    assert [lr_factor(s, step) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


def test_sampler_is_seeded_sharded_and_skips(monkeypatch):
    sampler = ResumableSampler(11, seed=3)
    sampler.set_epoch(2)
    order = [i for i, _ in sampler]
    assert sorted(order) == list(range(11)) and order == [i for i, _ in sampler]
    sampler.set_epoch(3)
    assert [i for i, _ in sampler] != order
    sampler.set_epoch(2)
    sampler.skip(4)
    assert [i for i, _ in sampler] == order[4:]
    assert len({seed for _, seed in ResumableSampler(11, seed=3)}) == 11
    shards = []
    for rank in range(3):
        monkeypatch.setattr(data_module, "_world", lambda rank=rank: (rank, 3))
        shards.append([i for i, _ in sampler])
    assert all(len(s) == 4 for s in shards) and set(sum(shards, [])) == set(range(11))


def _run(hippocampus, run_dir, *, callbacks=(), max_steps=8):
    config = TrainConfig(
        max_steps=max_steps,
        batch_size=1,
        val_every_steps=4,
        checkpoint_every_steps=3,
        log_every_steps=1,
        warmup_steps=2,
        progress_bar=False,
        monitor="val/dice",
        monitor_mode="max",
    )
    data = SegmentationDataConfig(spacing=None, num_samples=2, intensity="minmax")
    seed_everything(0)
    model = create_model("dsd", **TINY_UNET)
    datamodule = SegmentationDataModule(
        hippocampus.training[:4],
        hippocampus.training[4:],
        roi_size=(16, 16, 16),
        config=data,
        batch_size=1,
        seed=0,
    )
    result = fit(
        SupervisedModule(model, config), datamodule, config, run_dir, callbacks=list(callbacks)
    )
    return result, model


def test_run_killed_mid_epoch_resumes_to_the_same_weights(hippocampus, tmp_path):
    reference, reference_model = _run(hippocampus, tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated kill"):
        _run(
            hippocampus, tmp_path / "b", callbacks=[CrashAtStep(5)]
        )  # 4 batches per epoch: mid-epoch 1
    checkpoint = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    resumed, resumed_model = _run(hippocampus, tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.steps == reference.steps == 8
    for key, value in reference_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=0, atol=1e-6)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in reference.history]
    # The exports rebuild the model alone, and the best one is the best validation step.
    last = load_pretrained(reference.last)
    torch.testing.assert_close(last.state_dict(), reference_model.state_dict())
    assert (
        last.pretrained_info["step"] == 8
        and load_pretrained(reference.best).pretrained_info["export"] == "best"
    )
    vals = [r["val/dice"] for r in reference.history if "val/dice" in r]
    assert reference.best_score == max(vals)


def test_a_run_with_other_settings_starts_over(hippocampus, tmp_path):
    _run(hippocampus, tmp_path / "r", max_steps=3)
    result, _ = _run(hippocampus, tmp_path / "r", max_steps=4)
    assert result.resumed_from is None and result.steps == 4


def test_pretraining_then_frozen_probe_on_array_artifacts(tmp_path):
    rng = np.random.default_rng(0)
    volumes = rng.random((6, 1, 16, 16, 16)).astype(np.float32)
    labels = np.array([0, 1, 0, 1, 0, 1])
    volumes[labels == 1] += 0.5
    paths = [save_array(tmp_path / f"sub-{i}.npy", v, stage="test") for i, v in enumerate(volumes)]
    config = TrainConfig(
        max_steps=3, batch_size=2, val_every_steps=0, log_every_steps=1, progress_bar=False
    )
    seed_everything(0)
    encoder = create_model("dsd", mode="plain", **{**TINY_UNET, "out_channels": 2})
    objective = create_objective("masked_volume", encoder, mask_ratio=0.5, patch_size=4)
    pretrained = fit(
        PretrainModule(objective, config),
        ArrayDataModule(paths[:4], paths[4:], batch_size=2),
        config,
        tmp_path / "ssl",
    )
    loaded = load_pretrained(pretrained.last)
    assert loaded.pretrained_info["objective"]["name"] == "masked_volume"
    probe = ProbeModel.from_encoder(loaded, n_outputs=2, freeze=True)
    before = {k: v.clone() for k, v in probe.encoder.state_dict().items()}
    head_before = probe.head[-1].weight.clone()
    datamodule = ArrayDataModule(
        paths[:4], paths[4:], train_targets=labels[:4], val_targets=labels[4:], batch_size=2
    )
    probe_config = TrainConfig(
        max_steps=3,
        batch_size=2,
        val_every_steps=3,
        lr=0.05,
        log_every_steps=1,
        progress_bar=False,
        monitor="val/accuracy",
        monitor_mode="max",
    )
    result = fit(FineTuneModule(probe, probe_config), datamodule, probe_config, tmp_path / "probe")
    for key, value in probe.encoder.state_dict().items():
        torch.testing.assert_close(value, before[key])  # frozen
    assert not torch.equal(probe.head[-1].weight, head_before)
    reloaded = load_pretrained(result.best)
    assert isinstance(reloaded, ProbeModel) and reloaded.config.freeze
    assert any("val/accuracy" in r for r in result.history)


def _array_task(tmp_path, n=8):
    rng = np.random.default_rng(1)
    volumes = rng.random((n, 1, 16, 16, 16)).astype(np.float32)
    labels = np.arange(n) % 2
    volumes[labels == 1] += 0.3
    paths = [save_array(tmp_path / f"x{i}.npy", v, stage="test") for i, v in enumerate(volumes)]
    return paths, labels


def test_early_stopping_accumulation_and_csv_logs(tmp_path):
    paths, labels = _array_task(tmp_path)
    encoder = create_model("dsd", mode="plain", **{**TINY_UNET, "out_channels": 2})
    probe = ProbeModel.from_encoder(encoder, n_outputs=2, freeze=True)
    config = TrainConfig(
        max_steps=20, batch_size=2, accumulate_grad_batches=2, lr=1e-12, val_every_steps=1,
        early_stopping_patience=2, log_every_steps=1, progress_bar=False,
    )  # fmt: skip
    datamodule = ArrayDataModule(
        paths[:6], paths[6:], train_targets=labels[:6], val_targets=labels[6:], batch_size=2
    )
    result = fit(FineTuneModule(probe, config), datamodule, config, tmp_path / "run")
    assert result.stopped_early and 3 <= result.steps < 20  # lr ~ 0: no validation improves much
    train_rows = [r for r in result.history if "train/loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, result.steps + 1))
    assert train_rows[2]["epoch"] == 1  # 3 batches per epoch, 2 batches per optimizer step
    assert list((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))


def test_embed_stage_writes_a_parquet_table_of_its_input(tmp_path):
    from neuroai.errors import ConfigError
    from neuroai.evaluation import read_embeddings
    from neuroai.io import read_provenance
    from neuroai.models import save_pretrained
    from neuroai.pipelines import embed

    model = create_model("dsd", mode="plain", **TINY_UNET)
    folder = save_pretrained(model, tmp_path / "model")
    volume = save_array(
        tmp_path / "sub-01_volume.npy",
        np.random.default_rng(0).random((1, 16, 16, 16)),
        stage="test",
    )
    with pytest.raises(ConfigError, match="Parquet"):
        embed.run(folder, tmp_path / "emb" / "index.tsv", inputs=[volume])
    assert not (tmp_path / "emb" / "index.tsv").exists()
    out = embed.run(folder, tmp_path / "emb" / "embeddings.parquet", inputs=[volume])
    table = read_embeddings(out)
    columns = [c for c in table.columns if c.startswith("e") and c[1:].isdigit()]
    assert len(table) == 1 and len(columns) == model.embed_dim
    assert read_provenance(out)["extra"]["family"] == "dsd"


def test_predict_stage_applies_a_probe_to_windows(tmp_path):
    from neuroai.io import load_array, load_table
    from neuroai.models import save_pretrained
    from neuroai.pipelines import predict

    encoder = create_model("dsd", mode="plain", **TINY_UNET)
    folder = save_pretrained(ProbeModel.from_encoder(encoder, n_outputs=3), tmp_path / "probe")
    windows = save_array(
        tmp_path / "rec-1.npy", np.random.default_rng(0).random((4, 1, 16, 16, 16)), stage="test"
    )
    index = load_table(predict.run(folder, tmp_path / "pred" / "index.tsv", inputs=[windows]))
    outputs = load_array(index["prediction"][0])
    assert outputs.shape == (4, 3) and index["predicted_class"][0] == int(
        outputs.mean(axis=0).argmax()
    )
