"""The 2D autoencoder, the cube-token layout and the volume tokenizer."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroai.errors import ConfigError, DataError
from neuroai.testing.volumes import tiny_autoencoder_config, torch_threads
from neuroai.tokenizers.autoencoder import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    build_autoencoder,
    compression_factor,
    load_autoencoder,
    preset_config,
    save_autoencoder,
)
from neuroai.tokenizers.layout import (
    frames_to_slices,
    latents_to_tokens,
    slices_to_frames,
    token_shape,
    tokens_to_latents,
)
from neuroai.tokenizers.tokenizer import VolumeTokenizer, read_token_store

S, F_, C = 24, 8, 4  # frames of 24^3, factor 8, 4 latent channels: 27 tokens of 96


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_autoencoder(tiny_autoencoder_config(latent_channels=C, stages=4)).eval()


def test_token_shapes_of_tablet_and_other_factors():
    assert token_shape(96, 32, 32) == (27, 3072)
    assert token_shape(96, 16, 8) == (216, 384)
    assert token_shape(96, 32, 32)[0] * token_shape(96, 32, 32)[1] == 3 * 96 * 32 * 3 * 3
    with pytest.raises(ConfigError, match="must divide the frame size"):
        token_shape(96, 64, 128)


def test_layout_round_trips_exactly():
    latents = torch.randn(2, 3, 12, 5, 3, 3)  # f = 4, C = 5, L = 3
    tokens = latents_to_tokens(latents, 4)
    assert tokens.shape == (2, 27, 3 * 4 * 5)
    assert torch.equal(tokens_to_latents(tokens, 4, 5), latents)
    frames = torch.randn(2, 12, 12, 12)
    slices = frames_to_slices(frames)
    assert slices.shape == (2 * 3 * 12, 3, 12, 12)
    rebuilt = slices_to_frames(slices, 2)
    for axis in range(3):
        torch.testing.assert_close(rebuilt[:, axis], frames)


def test_each_token_holds_exactly_its_cube():
    # A local "encoder" (mean over f x f patches) makes the oracle: a cube lights its own token.
    f, size = 4, 12
    frames = torch.zeros(1, size, size, size)
    frames[0, 4:8, 0:4, 8:12] = 1.0  # cube (bx, by, bz) = (1, 0, 2)
    latents = F.avg_pool2d(frames_to_slices(frames), f).reshape(1, 3, size, 3, 3, 3)
    tokens = latents_to_tokens(latents, f)
    lit = (tokens[0].abs().sum(dim=1) > 0).nonzero().ravel().tolist()
    assert lit == [(1 * 3 + 0) * 3 + 2]
    # Features: axis a, slice-in-cube s, channel c at (a * f + s) * C + c; every slice crosses it.
    assert torch.allclose(tokens[0, 11], torch.ones(3 * f * 3))


def test_presets_are_dc_ae_f32c32():
    for name in ("demo", "medium", "paper"):
        config = preset_config(name)
        assert compression_factor(config) == 32 and config["latent_channels"] == 32
    medium = build_autoencoder(preset_config("medium"))
    assert 21e6 < sum(p.numel() for p in medium.parameters()) < 23e6
    paper = preset_config("paper")
    assert paper["encoder_layers_per_block"] == [0, 4, 8, 2, 2, 2]
    assert paper["encoder_block_out_channels"][-1] == 1024
    with pytest.raises(ConfigError, match="Did you mean 'paper'"):
        preset_config("papr")


def test_build_refuses_bad_configurations():
    with pytest.raises(ConfigError, match="Did you mean 'latent_channels'"):
        build_autoencoder({**tiny_autoencoder_config(), "latent_channel": 4})
    with pytest.raises(ConfigError, match="3 channels"):
        build_autoencoder({**tiny_autoencoder_config(), "in_channels": 1})


def test_checkpoint_round_trip_and_clear_errors(tmp_path, tiny_model):
    folder = save_autoencoder(tiny_model, tmp_path / "ae")
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    loaded = load_autoencoder(folder)
    x = torch.randn(2, 3, S, S)
    with torch.no_grad():
        assert torch.equal(loaded(x).sample, tiny_model(x).sample)

    with pytest.raises(DataError, match="does not exist.*config.json and diffusion_pytorch_model"):
        load_autoencoder(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / CONFIG_NAME).write_text((folder / CONFIG_NAME).read_text())
    with pytest.raises(DataError, match="incomplete: diffusion_pytorch_model.safetensors missing"):
        load_autoencoder(partial)
    other = tmp_path / "other"
    save_autoencoder(build_autoencoder(tiny_autoencoder_config(latent_channels=8)), other)
    (other / WEIGHTS_NAME).write_bytes((folder / WEIGHTS_NAME).read_bytes())
    with pytest.raises(DataError, match="does not match config.json.*other shapes"):
        load_autoencoder(other)
    wrong = json.loads((folder / CONFIG_NAME).read_text())
    (other / CONFIG_NAME).write_text(json.dumps({**wrong, "in_channels": 1}))
    with pytest.raises(DataError, match="Incompatible autoencoder configuration"):
        load_autoencoder(other)
    (other / CONFIG_NAME).write_text(json.dumps({**wrong, "_class_name": "AutoencoderKL"}))
    with pytest.raises(DataError, match="AutoencoderKL"):
        load_autoencoder(other)


def test_tokenizer_matches_slice_by_slice_encoding(tiny_model):
    tokenizer = VolumeTokenizer(tiny_model, frame_size=S, batch_size=20, device="cpu")
    assert (tokenizer.n_tokens_, tokenizer.token_dim_) == (27, 3 * F_ * C)
    frames = torch.rand(2, S, S, S) * 2 - 1
    tokens = tokenizer.encode(frames.numpy())
    assert tokens.shape == (2, 27, 96)
    # Oracle: encode axis 1's slices of frame 1 directly and read cube (bx, by, bz) = (2, 0, 1).
    with torch.no_grad():
        direct = tiny_model.encode(frames[1].movedim(1, 0)[:, None].expand(-1, 3, -1, -1)).latent
    cube = direct[0:F_, :, 2, 1]  # slices j = 0..7 (by = 0), latent position (bx, bz) = (2, 1)
    block = tokens[1, (2 * 3 + 0) * 3 + 1, F_ * C : 2 * F_ * C].reshape(F_, C)
    np.testing.assert_allclose(block, cube.numpy(), rtol=1e-4, atol=1e-5)
    decoded = tokenizer.decode(tokens)
    assert decoded.shape == (2, S, S, S)
    assert tokenizer.decode(tokens, per_axis=True).shape == (2, 3, S, S, S)
    with pytest.raises(DataError, match=r"\(n_frames, 27, 96\)"):
        tokenizer.decode(tokens[:, :5])


def test_frame_size_must_suit_the_factor(tiny_model):
    with pytest.raises(ConfigError, match="must divide"):
        VolumeTokenizer(tiny_model, frame_size=20)


def test_token_store_is_streamed_float16_with_its_layout(tmp_path, tiny_model):
    from neuroai.testing.volumes import write_bold_run
    from neuroai.tokenizers.frames import write_frames

    run = write_bold_run(tmp_path / "sub-01_bold.nii.gz", shape=(7, 8, 9, 5), seed=3)
    write_frames([run], tmp_path / "frames.npy", size=S)
    tokenizer = VolumeTokenizer(tiny_model, frame_size=S, device="cpu")
    tokenizer.encode_store(tmp_path / "frames.npy", tmp_path / "a.npy", chunk_frames=2)
    tokenizer.encode_store(tmp_path / "frames.npy", tmp_path / "b.npy", chunk_frames=5)
    store = read_token_store(tmp_path / "a.npy")
    assert store.tokens.shape == (5, 27, 96) and store.tokens.dtype == np.float16
    assert isinstance(store.tokens, np.memmap)
    assert store.tr == 2.0 and store.layout["factor"] == F_
    np.testing.assert_allclose(
        store.tokens.astype(np.float32), read_token_store(tmp_path / "b.npy").tokens, atol=2e-3
    )


def test_unknown_device_is_a_config_error(tiny_model):
    with pytest.raises(ConfigError, match="Did you mean 'cuda'"):
        VolumeTokenizer(tiny_model, device="cdua")


@pytest.mark.slow
def test_paper_preset_builds_at_the_published_size():
    model = build_autoencoder(preset_config("paper"))
    n = sum(p.numel() for p in model.parameters())
    assert 300e6 < n < 350e6
    tokenizer = VolumeTokenizer(model, device="cpu")
    assert (tokenizer.n_tokens_, tokenizer.token_dim_) == (27, 3072)


@pytest.mark.gpu
def test_tokenizer_uses_cuda_when_present(tiny_model):
    tokenizer = VolumeTokenizer(tiny_model, frame_size=S, device="auto")
    assert tokenizer.device_.type == "cuda"
    assert tokenizer.encode(np.zeros((1, S, S, S), np.float32)).shape == (1, 27, 96)


class _SpaceToDepth(torch.nn.Module):
    """A lossless stand-in for the autoencoder: f x f patches of a slice become C = f^2 channels.

    Slices arrive replicated to 3 channels, so the channel mean is the slice itself; decoding
    puts every latent value back on its pixel. Anything the tokenizer does to the data outside
    the autoencoder (slicing, channel replication, latent regrouping and ungrouping, float16
    storage, restacking the axes) then shows as a difference between frames and their decoding.
    """

    def __init__(self, factor: int, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = gain
        self.spatial_compression_ratio = factor
        self.config = SimpleNamespace(latent_channels=factor * factor)

    def encode(self, x):
        patches = F.pixel_unshuffle(x.mean(dim=1, keepdim=True), self.spatial_compression_ratio)
        return SimpleNamespace(latent=patches * self.gain)

    def decode(self, z):
        pixels = F.pixel_shuffle(z / self.gain, self.spatial_compression_ratio)
        return SimpleNamespace(sample=pixels.expand(-1, 3, -1, -1))


def test_round_trip_is_lossless_with_a_lossless_autoencoder(tmp_path):
    # Guards the token path itself: with an exactly invertible "autoencoder", frames -> float16
    # token store -> decoded volumes gives the frames back (spatial r = 1 in any mask), so a
    # poor reconstruction can only come from the autoencoder's weights.
    from neuroai.testing.volumes import write_bold_run
    from neuroai.tokenizers import qc
    from neuroai.tokenizers.frames import load_frames, write_frames

    run = write_bold_run(tmp_path / "sub-01_bold.nii.gz", shape=(7, 8, 9, 5), seed=3)
    write_frames([run], tmp_path / "frames.npy", size=S)
    frames = np.asarray(load_frames(tmp_path / "frames.npy")[0], dtype=np.float32)
    tokenizer = VolumeTokenizer(_SpaceToDepth(F_), frame_size=S, batch_size=17, device="cpu")
    assert (tokenizer.n_tokens_, tokenizer.token_dim_) == (27, 3 * F_ * F_ * F_)
    tokenizer.encode_store(tmp_path / "frames.npy", tmp_path / "tokens.npy", chunk_frames=2)
    tokens = read_token_store(tmp_path / "tokens.npy").tokens
    per_axis = tokenizer.decode(tokens, per_axis=True)
    for axis in range(3):
        np.testing.assert_allclose(per_axis[:, axis], frames, atol=1e-3)
    decoded = tokenizer.decode(tokens)
    np.testing.assert_allclose(decoded, frames, atol=1e-3)
    mask = qc.qc_mask(frames, None)
    assert mask.sum() > 100
    np.testing.assert_allclose(qc.spatial_correlation(frames, decoded, mask), 1.0, atol=1e-5)


def test_latents_beyond_float16_stop_the_store(tmp_path):
    # Latents past float16's range would be stored as inf and decode to NaN: a clear error instead.
    from neuroai.testing.volumes import write_bold_run
    from neuroai.tokenizers.frames import write_frames

    run = write_bold_run(tmp_path / "sub-01_bold.nii.gz", shape=(7, 8, 9, 3), seed=3)
    write_frames([run], tmp_path / "frames.npy", size=S)
    tokenizer = VolumeTokenizer(_SpaceToDepth(F_, gain=1e6), frame_size=S, device="cpu")
    with pytest.raises(DataError, match="beyond float16"):
        tokenizer.encode_store(tmp_path / "frames.npy", tmp_path / "tokens.npy")
    assert not (tmp_path / "tokens.npy").exists()
