"""The spectral merge of the three axes' reconstructions (neuroai.tokenizers.fusion)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neuroai.errors import ConfigError, DataError
from neuroai.io import read_provenance
from neuroai.io.provenance import file_digest
from neuroai.testing.volumes import tiny_autoencoder_config, torch_threads
from neuroai.tokenizers.autoencoder import build_autoencoder, save_autoencoder
from neuroai.tokenizers.fusion import (
    DISTORTION_FLOOR,
    FUSION_FILE,
    axis_weights,
    load_distortion,
    measure_distortion,
    merge_axes,
    save_distortion,
)
from neuroai.tokenizers.tokenizer import VolumeTokenizer

S = 24


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):
        yield


class _Filter(torch.nn.Module):
    """An "autoencoder" that multiplies each image's 2D spectrum by a fixed real gain."""

    def __init__(self, gain: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("gain", torch.as_tensor(gain, dtype=torch.float64))

    def forward(self, x):
        spectrum = torch.fft.fft2(x.double()) * self.gain
        return SimpleNamespace(sample=torch.fft.ifft2(spectrum).real.float())


def _low_pass(size: int, width: float) -> np.ndarray:
    k = np.fft.fftfreq(size)
    return np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * width**2))


def _volume(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((size, size, size)).astype(np.float32)


def test_distortion_of_a_known_filter_is_one_minus_its_gain_squared():
    # Oracle: a linear, shift-invariant filter of gain G has transfer function G exactly,
    # so the measured distortion is |1 - G|^2 (plus the floor) at every frequency.
    gain = _low_pass(S, 0.15)
    measured = measure_distortion(_Filter(gain), size=S, n_crops=8, batch_size=4, device="cpu")
    np.testing.assert_allclose(measured, (1 - gain) ** 2 + DISTORTION_FLOOR, atol=1e-5)
    lossless = measure_distortion(_Filter(np.ones((S, S))), size=S, n_crops=4, device="cpu")
    np.testing.assert_allclose(lossless, DISTORTION_FLOOR, rtol=1e-3)


def test_weights_sum_to_one_and_a_flat_map_gives_the_mean():
    weights = axis_weights(_low_pass(S, 0.2) * -1 + 1.01)
    assert weights.shape == (3, S, S, S // 2 + 1)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-6)
    volumes = torch.from_numpy(np.stack([_volume(S, seed) for seed in range(3)]))[None]
    flat = torch.from_numpy(axis_weights(np.full((S, S), 0.3)))
    np.testing.assert_allclose(merge_axes(volumes, flat), volumes.mean(dim=1), atol=1e-5)
    same = volumes[:, :1].expand(-1, 3, -1, -1, -1)
    np.testing.assert_allclose(merge_axes(same, torch.from_numpy(weights)), same[:, 0], atol=1e-5)


def _slice_filtered(volume: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """(1, 3, S, S, S): the volume low-passed slice by slice along each axis, as a 2D
    autoencoder fed the slices of each axis would rebuild it."""
    rebuilt = []
    for axis in range(3):
        moved = volume.movedim(axis, 0)
        rebuilt.append(torch.fft.ifft2(torch.fft.fft2(moved) * gain).real.movedim(0, axis))
    return torch.stack(rebuilt)[None].float()


def test_merge_keeps_detail_that_only_its_own_axis_keeps():
    gain = torch.from_numpy(_low_pass(S, 0.25))
    volume = torch.from_numpy(_volume(S, 4)).double()
    per_axis = _slice_filtered(volume, gain)
    weights = torch.from_numpy(axis_weights((1 - gain.numpy()) ** 2 + DISTORTION_FLOOR))

    def error(x):
        return float(((x[0].double() - volume) ** 2).mean() / (volume**2).mean())

    # Measured: 0.37 of the volume's energy lost by the merge, 0.45 by the mean.
    assert error(merge_axes(per_axis, weights)) < 0.9 * error(per_axis.mean(dim=1))
    # A wave along one axis only survives in that axis's rebuild alone: the merge gives it
    # back whole, the mean a third of it.
    narrow = torch.from_numpy(_low_pass(S, 0.08))
    line = torch.cos(2 * np.pi * 9 * torch.arange(S) / S).double()
    wave = line[:, None, None].expand(S, S, S)
    per_axis = _slice_filtered(wave, narrow)
    weights = torch.from_numpy(axis_weights((1 - narrow.numpy()) ** 2 + DISTORTION_FLOOR))
    np.testing.assert_allclose(merge_axes(per_axis, weights)[0], wave, atol=2e-3)
    np.testing.assert_allclose(per_axis.mean(dim=1)[0], wave / 3, atol=2e-3)


def test_checkpoint_map_is_saved_loaded_and_used(tmp_path):
    torch.manual_seed(0)
    model = build_autoencoder(tiny_autoencoder_config())
    save_autoencoder(model, tmp_path / "ckpt")
    assert load_distortion(tmp_path / "ckpt") is None
    plain = VolumeTokenizer.from_folder(tmp_path / "ckpt", frame_size=S, device="cpu")
    assert plain.axis_merge_ == "mean"
    distortion = measure_distortion(model, size=S, n_crops=4, device="cpu")
    save_distortion(tmp_path / "ckpt", distortion, n_crops=4)
    np.testing.assert_array_equal(load_distortion(tmp_path / "ckpt"), distortion)
    tokenizer = VolumeTokenizer.from_folder(tmp_path / "ckpt", frame_size=S, device="cpu")
    assert tokenizer.axis_merge_ == "spectral"
    frames = np.clip(_volume(S, 1)[None] * 0.3, -1, 1)
    tokens = tokenizer.encode(frames)
    per_axis = tokenizer.decode(tokens, per_axis=True)
    expected = merge_axes(torch.from_numpy(per_axis), torch.from_numpy(axis_weights(distortion)))
    np.testing.assert_allclose(tokenizer.decode(tokens), expected, atol=1e-5)
    np.testing.assert_allclose(plain.decode(tokens), per_axis.mean(axis=1), atol=1e-5)


def test_bad_maps_name_the_file_and_the_fix(tmp_path):
    torch.manual_seed(0)
    model = build_autoencoder(tiny_autoencoder_config())
    with pytest.raises(DataError, match="frame-size 24"):
        VolumeTokenizer(model, frame_size=S, device="cpu", distortion=np.ones((16, 16)))
    with pytest.raises(DataError, match="positive"):
        axis_weights(np.zeros((S, S)))
    (tmp_path / FUSION_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match=f"{FUSION_FILE}.*--calibrate"):
        load_distortion(tmp_path)


def test_calibrate_writes_the_map_into_a_published_style_folder(tmp_path):
    from neuroai.pipelines import tokenizer as stage

    torch.manual_seed(0)
    save_autoencoder(build_autoencoder(tiny_autoencoder_config()), tmp_path / "published")
    stage.main(["--calibrate", str(tmp_path / "published"), "--frame-size", str(S)])
    assert load_distortion(tmp_path / "published").shape == (S, S)
    assert {p.name for p in (tmp_path / "published").iterdir()} == {
        "config.json",
        "diffusion_pytorch_model.safetensors",
        FUSION_FILE,
    }


def test_trained_checkpoint_carries_its_map_under_its_provenance(tmp_path):
    from neuroai.pipelines import tokenizer as stage

    torch.manual_seed(0)
    base = tmp_path / "base"
    save_autoencoder(build_autoencoder(tiny_autoencoder_config()), base)
    (base / "training.json").write_text(json.dumps({"steps": 7, "preset": "demo"}))
    out = stage.run(
        tmp_path / "continued",
        init_from=base,
        steps=2,
        batch_size=2,
        crop_size=24,
        max_crop=48,
        grayscale_prob=1.0,
        blur_prob=1.0,
        aperture_prob=1.0,
        frame_size=S,
        device="cpu",
    )
    assert load_distortion(out).shape == (S, S)
    record = read_provenance(out)
    assert file_digest(out)["sha256"] == record["output"]["sha256"]
    assert record["extra"]["total_steps"] == 9 and record["extra"]["init_from"]["steps"] == 7
    with pytest.raises(ConfigError, match="leave preset and architecture unset"):
        stage.run(tmp_path / "other", init_from=base, preset="medium", steps=1, device="cpu")
    assert not (tmp_path / "other").exists()
