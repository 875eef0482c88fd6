"""The autoencoder shipped with neuroai, and the DCT baseline it is measured against."""

import json

import numpy as np
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.io.provenance import file_digest, read_provenance
from neuroai.testing.volumes import torch_threads
from neuroai.tokenizers import autoencoder, qc
from neuroai.tokenizers.autoencoder import (
    autoencoder_config,
    build_autoencoder,
    bundled_autoencoder_dir,
    load_autoencoder,
    preset_config,
)


def test_dct_round_trip_keeping_every_coefficient_is_lossless():
    frames = np.random.default_rng(0).normal(size=(2, 16, 16, 16)).astype(np.float32)
    rebuilt = qc.dct_round_trip(frames, block=8, keep=64)
    np.testing.assert_allclose(rebuilt, frames, atol=1e-5)


def test_dct_round_trip_keeping_one_coefficient_gives_tile_means():
    frames = np.random.default_rng(1).normal(size=(1, 8, 8, 8)).astype(np.float32)
    expected = np.zeros_like(frames)
    for axis in range(3):  # per slice along `axis`, each 4 x 4 tile replaced by its mean
        moved = np.moveaxis(frames[0], axis, 0).reshape(8, 2, 4, 2, 4)
        means = np.broadcast_to(moved.mean(axis=(2, 4), keepdims=True), moved.shape)
        expected[0] += np.moveaxis(means.reshape(8, 8, 8), 0, axis) / 3
    np.testing.assert_allclose(qc.dct_round_trip(frames, block=4, keep=1), expected, atol=1e-5)


def test_dct_round_trip_refuses_frames_off_the_tile_grid():
    with pytest.raises(DataError, match="multiple of 32"):
        qc.dct_round_trip(np.zeros((1, 40, 40, 40), np.float32))


def test_dct_spectral_merge_is_lossless_when_the_codec_is():
    frames = np.random.default_rng(2).normal(size=(1, 32, 32, 32)).astype(np.float32)
    rebuilt = qc.dct_round_trip(frames, block=32, keep=32 * 32, merge="spectral")
    np.testing.assert_allclose(rebuilt, frames, atol=1e-4)
    with pytest.raises(ConfigError, match="merge"):
        qc.dct_round_trip(frames, merge="median")


def test_bundled_autoencoder_is_the_recorded_photograph_training():
    folder = bundled_autoencoder_dir()
    record = read_provenance(folder)
    assert record["stage"] == "tokenizer" and record["params"]["steps"] == 12000
    assert record["params"]["grayscale_prob"] == 1.0 and record["params"]["aperture_prob"] > 0
    assert record["extra"]["data"] == "scikit-image photographs"
    assert record["extra"]["total_steps"] == 36000
    # It continued the first checkpoint, whose own record ships beside it.
    base = json.loads((folder.parent / "demo_photographs_base.prov.json").read_text())
    assert base["params"]["steps"] == 24000 and base["params"].get("init_from") is None
    assert record["extra"]["init_from"]["steps"] == 24000
    assert base["output"]["sha256"] in {i.get("sha256") for i in record["inputs"]}
    # The shipped files are exactly the ones the training wrote.
    assert file_digest(folder)["sha256"] == record["output"]["sha256"]
    history = json.loads((folder / "training.json").read_text())["history"]
    assert len(history) == 12000 // 50 and all(np.isfinite(h["loss"]) for h in history)
    model = load_autoencoder(folder)
    assert autoencoder_config(model) == autoencoder_config(build_autoencoder(preset_config("demo")))


def test_bundled_distortion_map_is_the_one_its_weights_give():
    from neuroai.tokenizers.fusion import load_distortion, measure_distortion

    folder = bundled_autoencoder_dir()
    with torch_threads(1):
        measured = measure_distortion(load_autoencoder(folder), size=96, device="cpu")
    np.testing.assert_allclose(load_distortion(folder), measured, rtol=1e-3, atol=1e-6)


def test_missing_bundled_files_name_the_fix(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(autoencoder, "BUNDLED_DIR", tmp_path)
    with pytest.raises(DataError, match="tokenizer.source: train") as caught:
        bundled_autoencoder_dir()
    assert "lacks diffusion_pytorch_model.safetensors" in str(caught.value)


# Measured: see docs/benchmarks.md, "What the demo tokenizer reconstructs".
MARGIN = {"mean": 0.02, "spectral": 0.02}


def test_bundled_autoencoder_beats_the_same_size_dct_on_an_unseen_brain():
    """MNI152 T1 (never seen in training, photographs only) through the token round trip."""
    pytest.importorskip("nilearn")
    from nilearn.datasets import load_mni152_template

    from neuroai.tokenizers.frames import mni_grid
    from neuroai.tokenizers.tokenizer import VolumeTokenizer

    grid = mni_grid()
    t1 = qc.image_on_grid(load_mni152_template(resolution=2), grid, 96).astype(np.float32)
    frame = (np.clip(t1, 0, None) / t1.max() * 2 - 1)[None]  # the frames' scaling
    mask = qc.image_on_grid(qc.default_brain_mask(), grid, 96) > 0
    with torch_threads(1):
        tokenizer = VolumeTokenizer.from_folder(bundled_autoencoder_dir(), device="cpu")
        assert tokenizer.axis_merge_ == "spectral"
        tokens = tokenizer.encode(frame).astype(np.float16)
        rebuilt = {
            "spectral": tokenizer.decode(tokens),
            "mean": tokenizer.decode(tokens, per_axis=True).mean(axis=1),
        }
    for merge, volume in rebuilt.items():  # each against the DCT merged the same way
        learned = qc.spatial_correlation(frame, volume, mask)[0]
        linear = qc.spatial_correlation(frame, qc.dct_round_trip(frame, merge=merge), mask)[0]
        assert linear > 0.7  # the baseline is not a straw man
        assert learned > linear + MARGIN[merge], (merge, learned, linear)
