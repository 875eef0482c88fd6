"""EEGFormer: spectral patches, vector quantiser, VQ-VAE loss, presets, tasks, metrics, resume."""

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.models import create_model, load_pretrained
from neuroai.models.blocks import VectorQuantizer, code_perplexity
from neuroai.models.eegformer import spectral_patches
from neuroai.models.objectives import create_objective
from neuroai.testing import tiny_patch_store
from neuroai.testing.training import CrashAtStep

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"n_chans": 5, "n_times": 400, "sfreq": 100.0, "patch_len": 20, "patch_stride": 20}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_patch_store(tmp_path_factory.mktemp("eegformer") / "tiny" / "store")


def test_spectral_patches_are_the_patch_stores(store):
    from neuroai.eeg.patches import PatchLayout, window_patches

    rng = np.random.default_rng(3)
    windows = rng.standard_normal((2, 3, 170)) * 20
    layout = PatchLayout(170, 15, 10)
    expected, _ = window_patches(windows, layout)
    got = spectral_patches(torch.from_numpy(windows), 15, 10).numpy()
    assert got.shape == (2, 3, layout.n_spectrum, 15)
    np.testing.assert_allclose(got.reshape(6, -1, 15), expected[:, layout.n_time :], atol=1e-6)


def test_quantizer_picks_the_nearest_code_with_a_straight_through_gradient():
    torch.manual_seed(0)
    vq = VectorQuantizer(7, 3, init_from_data=False, restart_every=0)
    z = torch.randn(4, 5, 3, requires_grad=True)
    out = vq(z)
    nearest = torch.cdist(z.detach().reshape(-1, 3), vq.codebook.detach()).argmin(1)
    assert torch.equal(out.indices.reshape(-1), nearest) and out.indices.shape == (4, 5)
    codes = vq.codebook.detach()[out.indices]
    torch.testing.assert_close(out.quantized, codes)
    torch.testing.assert_close(out.commitment_loss, ((z.detach() - codes) ** 2).mean())
    torch.testing.assert_close(out.codebook_loss, out.commitment_loss)
    torch.testing.assert_close(out.distance, ((z.detach() - codes) ** 2).sum(-1))
    out.quantized.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))  # straight through
    counts = torch.bincount(out.indices.reshape(-1), minlength=7).float()
    p = counts / counts.sum()
    expected = torch.exp(-(p[p > 0] * p[p > 0].log()).sum())
    torch.testing.assert_close(out.perplexity, expected)
    assert float(out.usage) == pytest.approx(float((counts > 0).float().mean()))
    assert float(code_perplexity(torch.tensor([5.0, 0, 0]))) == pytest.approx(1.0)


def test_ema_moves_codes_to_the_running_mean_of_their_vectors():
    torch.manual_seed(1)
    vq = VectorQuantizer(4, 2, ema=True, decay=0.9, eps=0.0, init_from_data=False, restart_every=0)
    before, sums = vq.codebook.detach().clone(), vq.ema_sum.clone()
    z = torch.randn(12, 2)
    out = vq.train()(z)
    assert float(out.codebook_loss) == 0.0 and not vq.codebook.requires_grad
    onehot = torch.nn.functional.one_hot(out.indices, 4).float()
    count = 0.9 * torch.ones(4) + 0.1 * onehot.sum(0)
    expected = (0.9 * sums + 0.1 * onehot.t() @ z) / count[:, None]
    torch.testing.assert_close(vq.codebook.detach(), expected)
    assert not torch.equal(vq.codebook.detach(), before)
    vq.eval()(torch.randn(12, 2))
    torch.testing.assert_close(vq.codebook.detach(), expected)  # no update in eval mode


def test_dead_codes_are_restarted_on_batch_vectors():
    torch.manual_seed(2)
    vq = VectorQuantizer(6, 2, init_from_data=False, restart_every=3).train()
    vq.codebook.data[3:] = 100.0  # never the nearest: dead
    z = torch.randn(16, 2)
    for _ in range(3):
        vq(z)
    assert int(vq.restarted) >= 3
    moved = vq.codebook.detach()[3:]
    assert (moved.abs() < 100).all()
    assert all(any(torch.equal(code, row) for row in z) for code in moved)


def test_codebook_is_initialised_from_the_first_batch():
    torch.manual_seed(4)
    vq = VectorQuantizer(5, 3, restart_every=0).train()
    z = torch.randn(40, 3)
    vq(z)
    assert all(any(torch.equal(code, row) for row in z) for code in vq.codebook.detach())


def test_vqvae_loss_is_reconstruction_plus_codebook_plus_beta_commitment():
    torch.manual_seed(0)
    model = create_model("eegformer", **TINY).eval()
    x = model.example_input(3)
    objective = create_objective("vqvae", model, beta=0.7)
    terms = objective({"inputs": x})
    q = model.quantize(model.encode(x))
    restored = model.decode(q.quantized)
    reconstruction = ((restored - x) ** 2).mean()
    torch.testing.assert_close(terms["reconstruction"], reconstruction)
    torch.testing.assert_close(
        terms["loss"], reconstruction + q.codebook_loss + 0.7 * q.commitment_loss
    )
    torch.testing.assert_close(model(x), restored)
    assert {"perplexity", "usage", "codebook", "commitment"} <= set(terms)
    default = create_objective("vqvae", model)({"inputs": x})
    torch.testing.assert_close(
        default["loss"], reconstruction + q.codebook_loss + 0.25 * q.commitment_loss
    )
    with pytest.raises(ConfigError, match="Did you mean 'mse'"):
        create_objective("vqvae", model, reconstruction="mes")
    with pytest.raises(ConfigError, match="vector-quantised model"):
        create_objective("vqvae", create_model("dsd", mode="plain"))


@pytest.mark.parametrize(
    ("preset", "depth", "parameters"),
    [("small", 6, 1_936_690), ("base", 8, 2_333_234), ("large", 12, 3_126_322)],
)
def test_paper_size_presets_build_and_run(preset, depth, parameters):
    torch.manual_seed(0)
    model = create_model("eegformer", preset=preset).eval()
    config = model.config
    assert (config.d_model, config.depth, config.decoder_depth) == (128, depth, 3)
    assert (config.n_chans, config.n_times, config.n_patches, config.patch_len) == (
        22,
        3000,
        30,
        50,
    )
    assert config.codebook_size == 1024 and config.beta == 0.25
    assert model.parameter_count() == parameters
    x = model.example_input(1)
    with torch.no_grad():
        assert model(x).shape == x.shape
        assert model.embed(x).shape == (1, 22 * 128)
        assert model.codes(x).shape == (1, 22, 30)
    if preset == "base":
        paper = create_model("eegformer", preset="paper")
        assert paper.config == config and paper.parameter_count() == parameters


def test_config_and_input_errors_say_what_is_expected():
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        create_model("eegformer", d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="fewer than patch_len"):
        create_model("eegformer", n_times=60, patch_len=50)
    model = create_model("eegformer", **TINY)
    with pytest.raises(DataError, match=r"\(batch, 5, 10, 20\)"):
        model(torch.zeros(2, 5, 11, 20))


def test_tuh_task_definitions(store):
    from neuroai.eeg.tasks import make_task, task_targets
    from neuroai.training.eeg_data import window_table

    table = window_table([store])
    abnormal = task_targets(make_task("abnormal"), table)
    assert abnormal.targets.tolist() == (table["label"] == "abnormal").astype(int).tolist()
    artifacts = task_targets(make_task("artifacts"), table)
    assert artifacts.classes == ["eyem", "musc"] and artifacts.dropped_classes == [
        "chew",
        "shiv",
        "elpp",
        "elec",
    ]
    combined = table["events"].str.contains("eyem_musc").to_numpy()
    assert (artifacts.targets[combined] == 1).all()  # eyem_musc counts for eyem and musc
    slowing = task_targets(make_task("slowing"), table)
    assert slowing.targets.tolist() == table["events"].str.contains("slow").astype(int).tolist()
    with pytest.raises(DataError, match="needs positive and negative windows"):
        task_targets(make_task("seizure"), table)  # no seizure label in the default list
    seizure = task_targets(make_task("seizure", {"positive": ["seiz", "spsw"]}), table)
    assert seizure.positives() == {"seiz/spsw": 3}
    with pytest.raises(ConfigError, match="Did you mean 'positive'"):
        make_task("seizure", {"positiv": ["x"]})
    with pytest.raises(ConfigError, match="give its kind"):
        make_task("sleep")
    custom = make_task("sleep", {"kind": "binary_events", "positive": ["N3"]})
    assert custom.aggregate == "max"


def test_recording_split_keeps_recordings_together_and_tests_on_eval(store):
    from neuroai.training.eeg_data import recording_split, rows_of, window_table

    table = window_table([store])
    split = recording_split(table, n_val=1, seed=0)
    assert split.test == ["tiny/rec04", "tiny/rec05"] and len(split.val) == 1
    assert not set(split.train) & set(split.val)
    rows = rows_of(table, split.val)
    assert set(table.loc[rows, "recording"]) == set(split.val) and rows.size == 3


def test_window_metrics_equal_scikit_learn_with_weights():
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    from neuroai.evaluation.windows import (
        aggregate_recordings,
        cluster_bootstrap,
        metric_value,
        paired_difference,
        resample_weights,
        weighted_metric,
    )

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 57)
    s = np.round(rng.random(57), 1)  # ties
    w = rng.integers(0, 4, (3, 57)).astype(float)
    oracles = {
        "auroc": lambda y, s, w: roc_auc_score(y, s, sample_weight=w),
        "auprc": lambda y, s, w: average_precision_score(y, s, sample_weight=w),
        "balanced_accuracy": lambda y, s, w: balanced_accuracy_score(y, s >= 0.5, sample_weight=w),
    }
    for name, oracle in oracles.items():
        got = weighted_metric(name)(y, s, w)
        np.testing.assert_allclose(got, [oracle(y, s, row) for row in w], atol=1e-12)
        assert metric_value(name, y, s) == pytest.approx(oracle(y, s, None))
    recordings = np.repeat([f"r{k}" for k in range(19)], 3)
    weights = next(resample_weights(recordings, 5, seed=1))
    assert weights.shape == (5, 57) and (weights.sum(1) == 57).all()
    assert all(len(set(row[recordings == r])) == 1 for row in weights for r in recordings[:3])
    summary = cluster_bootstrap(y, s, recordings, weighted_metric("auroc"), n_resamples=200)
    assert summary["estimate"] == pytest.approx(roc_auc_score(y, s))
    assert (
        summary["ci_low"] < summary["estimate"] < summary["ci_high"] and summary["n_groups"] == 19
    )
    ids, y_rec, s_rec = aggregate_recordings(recordings, y, s, how="max")
    assert len(ids) == 19 and y_rec[0] == y[:3].max() and s_rec[0] == s[:3].max()
    multi = np.stack([y, 1 - y, np.zeros_like(y)], axis=1)  # third class never positive
    scores = np.stack([s, 1 - s, s], axis=1)
    macro = metric_value("auroc", multi, scores, multilabel=True)
    assert macro == pytest.approx(roc_auc_score(y, s))  # the undefined class is left out
    same = paired_difference(y, s, s, recordings, weighted_metric("auroc"), n_resamples=50)
    assert same["estimate"] == 0 and same["ci_low"] == same["ci_high"] == 0


def test_codebook_statistics_and_anomaly_scores():
    from neuroai.evaluation.anomaly import anomaly_scores, normal_reference
    from neuroai.evaluation.codebook import (
        CodebookRun,
        channel_activity,
        code_counts,
        enrichment,
        top_codes,
        usage_by_group,
    )

    codes = np.array([[[0, 1], [1, 1]], [[2, 2], [0, 2]], [[2, 1], [2, 2]]])  # (3, 2, 2)
    counts = code_counts(codes, 4)
    assert counts.tolist() == [2, 4, 6, 0]
    usage = usage_by_group(codes, ["a", "b", "b"], 4)
    assert usage["a"].tolist() == [1, 3, 0, 0] and usage["b"].tolist() == [1, 1, 6, 0]
    ratio = enrichment(usage["b"], usage["a"])
    assert ratio[2] == pytest.approx(np.log2((7 / 12) / (1 / 8)))
    assert [t["code"] for t in top_codes(usage["b"], usage["a"], 2, min_count=2)] == [2]
    np.testing.assert_allclose(channel_activity(codes, [2]), [[0, 0], [1, 0.5], [0.5, 1]])
    errors = np.array([[1.0, 2.0], [3.0, 2.0], [2.0, 8.0]])
    reference = normal_reference(CodebookRun(np.arange(3), codes, errors, np.zeros((3, 2)), 4))
    np.testing.assert_allclose(np.exp(reference.log_frequency), (counts + 1) / (12 + 4))
    np.testing.assert_allclose(reference.error_mean, [2, 4])
    run = CodebookRun(np.arange(1), codes[:1], np.array([[4.0, 4.0]]), np.ones((1, 2)), 4)
    scores = anomaly_scores(run, reference)
    assert scores["code_rarity"][0] == pytest.approx(-reference.log_frequency[codes[0]].mean())
    assert scores["reconstruction"][0] == 4 and scores["quantization"][0] == 1
    z = ((4 - 2) / np.std([1, 3, 2]) + 0) / 2
    assert scores["reconstruction_z"][0] == pytest.approx(z)


def test_workflow_config_errors_name_the_key(repo):
    from neuroai.config import validate_config
    from neuroai.errors import ConfigError

    schema = repo / "workflows" / "schemas" / "config.schema.yaml"
    config = {"datasets": {"x": {"card": "c.yaml", "layout": "tuh", "root": "/data"}}}
    config["eegformer"] = {"datasets": ["x"], "model": {"preset": "bse"}}
    with pytest.raises(ConfigError, match="Did you mean 'base'"):
        validate_config(config, schema)
    config["eegformer"] = {"datasets": ["x"], "pretrainig": {}}
    with pytest.raises(ConfigError, match="Did you mean"):
        validate_config(config, schema)
    config["eegformer"] = {"datasets": ["x"], "tasks": {"abnormal": {"datasets": ["x"]}}}
    validate_config(config, schema)
    assert config["eegformer"]["tasks"]["abnormal"]["modes"] == ["probe", "finetune", "scratch"]
    assert config["eegformer"]["objective"]["beta"] == 0.25


def _pretrain(store, run_dir, *, callbacks=()):
    from neuroai.training import PretrainModule, TrainConfig, fit, seed_everything
    from neuroai.training.eeg_data import EEGWindowDataModule

    config = TrainConfig(
        max_steps=8,
        batch_size=4,
        val_every_steps=4,
        checkpoint_every_steps=3,
        log_every_steps=1,
        warmup_steps=2,
        progress_bar=False,
        lr=3e-3,
    )
    seed_everything(0)
    model = create_model("eegformer", **TINY, ema=True, restart_every=2, dropout=0.1)
    datamodule = EEGWindowDataModule(
        [store], np.arange(12), np.arange(12, 18), batch_size=4, val_batch_size=4, seed=0
    )
    module = PretrainModule(create_objective("vqvae", model), config)
    return fit(module, datamodule, config, run_dir, callbacks=list(callbacks)), model


def test_resumed_pretraining_matches_an_uninterrupted_one(store, tmp_path):
    reference, reference_model = _pretrain(store, tmp_path / "a")
    with pytest.raises(RuntimeError, match="simulated kill"):
        # 3 batches per epoch: the checkpoint at step 3 is on the last batch of epoch 0
        _pretrain(store, tmp_path / "b", callbacks=[CrashAtStep(5)])
    resumed, resumed_model = _pretrain(store, tmp_path / "b")
    assert resumed.resumed_from == 3 and resumed.steps == reference.steps == 8
    assert int(reference_model.quantizer.restarted) > 0  # dead codes were restarted
    for key, value in reference_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value, rtol=0, atol=1e-6)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in reference.history]
    rows = [r for r in reference.history if "train/perplexity" in r]
    assert rows and all("train/usage" in r for r in rows)
    exported = load_pretrained(reference.last)
    assert exported.pretrained_info["objective"]["name"] == "vqvae"
    torch.testing.assert_close(exported.state_dict(), reference_model.state_dict())
