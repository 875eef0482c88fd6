"""Training the 2D autoencoder on scikit-image's photographs, and fine-tuning on fMRI slices."""

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.testing.volumes import tiny_autoencoder_config, torch_threads, write_bold_run
from neuroai.tokenizers.autoencoder import build_autoencoder
from neuroai.tokenizers.natural_images import PHOTOGRAPHS, PhotoCrops, photograph_paths
from neuroai.tokenizers.training import FrameSlices, fit_autoencoder


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):
        yield


def test_photographs_are_bundled_and_exclude_synthetic_images():
    paths = photograph_paths()
    assert len(paths) == len(PHOTOGRAPHS) == 16
    assert all(p.is_file() for p in paths)
    assert not {"chessboard_GRAY.png", "logo.png", "phantom.png", "moon.png"} & set(PHOTOGRAPHS)


def test_crops_are_seeded_scaled_and_grey_on_request():
    crops = PhotoCrops(crop_size=40, max_crop=90, grayscale_prob=1.0, seed=3)
    batch = crops.sample(5)
    assert batch.shape == (5, 3, 40, 40) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.std() > 0.05
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 1], batch[:, 2])
    again = PhotoCrops(crop_size=40, max_crop=90, grayscale_prob=1.0, seed=3).sample(5)
    assert torch.equal(batch, again)
    colour = PhotoCrops(crop_size=40, grayscale_prob=0.0, seed=3).sample(8)
    assert not torch.equal(colour[:, 0], colour[:, 1])


def test_aperture_blur_and_contrast_augmentations():
    from neuroai.errors import ConfigError
    from neuroai.tokenizers.natural_images import gaussian_blur

    apertured = PhotoCrops(crop_size=48, grayscale_prob=1.0, aperture_prob=1.0, seed=2).sample(6)
    # Outside the ellipse the crop is black (-1); a corner lies outside every ellipse whose
    # centre is within 0.3 of the middle and whose radii are at most 1.1 of the half-side.
    assert torch.all(apertured[:, :, 0, 0] == -1.0) and torch.all(apertured[:, :, -1, -1] == -1.0)
    assert ((apertured > -1.0).float().mean(dim=(1, 2, 3)) > 0.05).all()
    # The blur is a normalised Gaussian: constants pass unchanged, and a 1D profile matches
    # the formula away from the borders.
    flat = torch.full((1, 20, 20), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.2), flat)
    impulse = torch.zeros((1, 21, 21))
    impulse[0, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, 1.0)
    line = torch.exp(-(torch.arange(-3.0, 4.0) ** 2) / 2)
    expected = torch.outer(line, line) / line.sum() ** 2
    torch.testing.assert_close(blurred[0, 7:14, 7:14], expected)
    sharp = PhotoCrops(crop_size=48, grayscale_prob=1.0, seed=4).sample(8)
    soft = PhotoCrops(crop_size=48, grayscale_prob=1.0, blur_prob=1.0, seed=4).sample(8)
    assert soft.diff(dim=-1).abs().mean() < sharp.diff(dim=-1).abs().mean()
    low = PhotoCrops(crop_size=48, grayscale_prob=1.0, contrast=(0.2, 0.2), brightness=0.0)
    assert low.sample(8).std(dim=(1, 2, 3)).max() < sharp.std(dim=(1, 2, 3)).max()
    # Zero probabilities draw nothing extra: the same crops as the defaults.
    default = PhotoCrops(crop_size=40, max_crop=90, grayscale_prob=1.0, seed=3).sample(5)
    explicit = PhotoCrops(
        crop_size=40, max_crop=90, grayscale_prob=1.0, blur_prob=0.0, aperture_prob=0.0, seed=3
    ).sample(5)
    assert torch.equal(default, explicit)
    for bad in ({"aperture_prob": 1.5}, {"contrast": (1.2, 0.5)}, {"brightness": -0.1}):
        with pytest.raises(ConfigError):
            PhotoCrops(crop_size=40, **bad)


def test_training_reduces_the_reconstruction_loss():
    torch.manual_seed(0)
    model = build_autoencoder(tiny_autoencoder_config())
    crops = PhotoCrops(crop_size=32, max_crop=64, seed=0)
    report = fit_autoencoder(model, crops, steps=24, batch_size=4, learning_rate=3e-3, log_every=8)
    losses = [h["loss"] for h in report["history"]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert report["device"] == "cpu" and not model.training


def test_time_limit_stops_training_early_and_says_so():
    torch.manual_seed(0)
    model = build_autoencoder(tiny_autoencoder_config())
    crops = PhotoCrops(crop_size=32, max_crop=64, seed=0)
    report = fit_autoencoder(
        model, crops, steps=500, batch_size=2, time_limit=1e-9, warmup_steps=50, log_every=100
    )
    assert report["stopped_early"] and report["steps"] == 1 and report["planned_steps"] == 500
    assert [h["step"] for h in report["history"]] == [1]
    full = fit_autoencoder(model, crops, steps=3, batch_size=2, time_limit=600.0)
    assert not full["stopped_early"] and full["steps"] == 3
    with pytest.raises(ConfigError, match="time_limit"):
        fit_autoencoder(model, crops, steps=3, time_limit=0)


def test_crops_cut_on_a_device_keep_the_seeded_draws():
    crops = PhotoCrops(crop_size=32, max_crop=64, seed=5)
    moved = PhotoCrops(crop_size=32, max_crop=64, seed=5).to("cpu")
    assert moved.images_[0].device.type == "cpu"
    assert torch.equal(crops.sample(3), moved.sample(3))


def test_loader_workers_cut_distinct_batches_reproducibly():
    from neuroai.tokenizers.training import batch_stream

    def first_batches():
        torch.manual_seed(0)  # the loader's worker seeds come from torch's generator
        batches = batch_stream(PhotoCrops(crop_size=32, max_crop=64, seed=0), 3, workers=2)
        return next(batches), next(batches)  # one from each worker

    a, b = first_batches()
    assert a.shape == (3, 3, 32, 32) and not torch.equal(a, b)
    again = first_batches()
    assert torch.equal(a, again[0]) and torch.equal(b, again[1])


def test_training_with_loader_workers():
    torch.manual_seed(0)
    model = build_autoencoder(tiny_autoencoder_config())
    crops = PhotoCrops(crop_size=32, max_crop=64, seed=0)
    report = fit_autoencoder(model, crops, steps=6, batch_size=2, loader_workers=2, log_every=3)
    assert report["steps"] == 6 and all(np.isfinite(h["loss"]) for h in report["history"])

    class NoReseed:
        def sample(self, batch_size):
            return torch.zeros(batch_size, 3, 32, 32)

    with pytest.raises(ConfigError, match="reseed"):
        fit_autoencoder(model, NoReseed(), steps=2, loader_workers=2)
    with pytest.raises(ConfigError, match="loader_workers"):
        fit_autoencoder(model, crops, steps=2, loader_workers=-1)


def test_frame_slices_sample_grey_slices_of_stored_frames(tmp_path):
    from neuroai.tokenizers.frames import write_frames

    run = write_bold_run(tmp_path / "r_bold.nii", shape=(7, 8, 9, 3))
    write_frames([run], tmp_path / "frames.npy", size=24)
    batch = FrameSlices([tmp_path / "frames.npy"], seed=1).sample(6)
    assert batch.shape == (6, 3, 24, 24)
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    assert torch.equal(batch[:, 0], batch[:, 2])
    with pytest.raises(DataError, match="at least one frames store"):
        FrameSlices([])


def test_tokenizer_stage_writes_a_checkpoint_with_provenance(tmp_path):
    from neuroai.io import read_provenance
    from neuroai.pipelines import tokenizer
    from neuroai.tokenizers.autoencoder import load_autoencoder

    out = tokenizer.run(
        tmp_path / "ae",
        architecture=tiny_autoencoder_config(),
        steps=3,
        batch_size=2,
        warmup_steps=2,
        loader_workers=1,
        crop_size=48,
        max_crop=64,
        frame_size=24,
    )
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "training.json",
        "axis_fusion.safetensors",
    }
    record = read_provenance(out)
    assert record["stage"] == "tokenizer" and record["params"]["steps"] == 3
    assert record["params"]["warmup_steps"] == 2 and record["params"]["loader_workers"] == 1
    assert record["extra"]["steps"] == 3 and not record["extra"]["stopped_early"]
    assert record["extra"]["data"] == "scikit-image photographs"
    assert len(record["inputs"]) == 16
    assert load_autoencoder(out).config.latent_channels == 4
