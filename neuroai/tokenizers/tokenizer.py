"""The volume tokenizer: frames to TABLeT tokens and back, with a 2D ``AutoencoderDC``.

:class:`VolumeTokenizer` holds a 2D autoencoder and encodes frames of S^3
voxels (S = 96, values in [-1, 1], see :mod:`neuroai.tokenizers.frames`) into
(S / f)^3 tokens of 3 * f * C values each (27 x 3072 for DC-AE f32c32; the
layout is in :mod:`neuroai.tokenizers.layout`), and decodes tokens back to
volumes. Slices go through the autoencoder in batches of ``batch_size``, on CUDA
when present. Decoding merges the three axes' reconstructions of each frame
frequency by frequency when the checkpoint carries a distortion map
(:mod:`neuroai.tokenizers.fusion`), and takes their mean otherwise.

Token stores (:meth:`VolumeTokenizer.encode_store`) are one ``.npy`` per
subject, (n_frames, n_tokens, token_dim) float16, frames in the order of the
frames store (runs in order, then time), memory-mappable; their provenance
record holds the layout, the TR and the tokenizer (see :func:`read_token_store`).
Tokens are the autoencoder's raw latents (no ``scaling_factor`` applied).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroai._logging import get_logger, progress
from neuroai.errors import DataError
from neuroai.tokenizers._private import NpyStream, check_positive, resolve_device
from neuroai.tokenizers.fusion import FUSION_FILE, axis_weights, load_distortion, merge_axes
from neuroai.tokenizers.layout import (
    frames_to_slices,
    latents_to_tokens,
    slices_to_frames,
    token_shape,
    tokens_to_latents,
)

logger = get_logger(__name__)

TOKENS_STAGE = "tokens"
FLOAT16_MAX = float(np.finfo(np.float16).max)


class VolumeTokenizer:
    """Encode fMRI frames into cube tokens with a 2D autoencoder, and decode them.

    Parameters
    ----------
    autoencoder : diffusers.AutoencoderDC
        The 2D autoencoder (3 input channels); see
        :func:`neuroai.tokenizers.load_autoencoder`.
    frame_size : int
        Frame voxels per side, S (96); a multiple of the autoencoder's factor.
    batch_size : int
        Slices per autoencoder call (96 = one axis of one frame).
    device : {"auto", "cpu", "cuda"}
        Where the autoencoder runs; ``"auto"`` uses CUDA when present.
    distortion : ndarray (S, S) | None
        The autoencoder's 2D distortion map (:func:`~neuroai.tokenizers.fusion.
        measure_distortion`); decoding then merges the three axes spectrally.
        None: decoding takes the mean of the three axes.

    Attributes
    ----------
    factor_ : int
        Spatial downsampling factor f of the autoencoder.
    channels_ : int
        Latent channels C.
    n_tokens_, token_dim_ : int
        Tokens per frame, (S / f)^3, and values per token, 3 * f * C.
    device_ : torch.device
    axis_merge_ : {"spectral", "mean"}
        How :meth:`decode` merges the three axes.
    """

    def __init__(
        self,
        autoencoder,
        *,
        frame_size: int = 96,
        batch_size: int = 96,
        device: str = "auto",
        distortion: np.ndarray | None = None,
    ) -> None:
        self.autoencoder = autoencoder
        self.frame_size = check_positive("frame_size", frame_size)
        self.batch_size = check_positive("batch_size", batch_size)
        self.device = device
        self.device_ = resolve_device(device)
        self.factor_ = int(autoencoder.spatial_compression_ratio)
        self.channels_ = int(autoencoder.config.latent_channels)
        self.n_tokens_, self.token_dim_ = token_shape(frame_size, self.factor_, self.channels_)
        self.autoencoder.to(self.device_).eval()
        self.distortion = distortion
        self.weights_ = None
        if distortion is not None:
            if np.shape(distortion) != (self.frame_size, self.frame_size):
                raise DataError(
                    f"The distortion map is {np.shape(distortion)}, but frames are "
                    f"{self.frame_size}^3: re-measure it at this frame size with "
                    "`python -m neuroai.pipelines.tokenizer --calibrate FOLDER --frame-size "
                    f"{self.frame_size}`."
                )
            self.weights_ = torch.from_numpy(axis_weights(distortion)).to(self.device_)
        self.axis_merge_ = "mean" if self.weights_ is None else "spectral"

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, **kwargs: Any) -> VolumeTokenizer:
        """Load the autoencoder from a checkpoint folder (see ``load_autoencoder``).

        The folder's distortion map (``axis_fusion.safetensors``), when present and
        not overridden by a ``distortion`` argument, makes decoding merge the axes
        spectrally.
        """
        from neuroai.tokenizers.autoencoder import load_autoencoder

        if "distortion" not in kwargs:
            kwargs["distortion"] = load_distortion(folder)
            if kwargs["distortion"] is None:
                logger.info(
                    "%s has no %s: decoding averages the three axes (measure one with "
                    "`python -m neuroai.pipelines.tokenizer --calibrate %s`).",
                    folder,
                    FUSION_FILE,
                    folder,
                )
        return cls(load_autoencoder(folder), **kwargs)

    def layout(self) -> dict[str, Any]:
        """The token layout, as recorded in token stores."""
        return {
            "frame_size": self.frame_size,
            "factor": self.factor_,
            "latent_channels": self.channels_,
            "n_tokens": self.n_tokens_,
            "token_dim": self.token_dim_,
            "token_index": "(bx * L + by) * L + bz, L = frame_size / factor",
            "feature_index": "(axis * factor + slice_in_cube) * latent_channels + channel",
        }

    def _check_frames(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        if torch.is_tensor(frames):
            tensor = frames
        else:  # a copy: memory-mapped stores are read-only
            tensor = torch.from_numpy(np.array(frames, dtype=np.float32))
        size = self.frame_size
        if tensor.ndim != 4 or tuple(tensor.shape[1:]) != (size, size, size):
            raise DataError(
                f"Frames must be (n_frames, {size}, {size}, {size}), got {tuple(tensor.shape)}."
            )
        return tensor.to(self.device_, torch.float32)

    @torch.inference_mode()
    def encode(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Encode frames into tokens.

        Parameters
        ----------
        frames : array, shape (n_frames, S, S, S)
            Frames scaled to [-1, 1].

        Returns
        -------
        ndarray, shape (n_frames, n_tokens_, token_dim_), float32
        """
        x = self._check_frames(frames)
        slices = frames_to_slices(x)
        latents = torch.cat(
            [
                self.autoencoder.encode(batch.contiguous()).latent
                for batch in slices.split(self.batch_size)
            ]
        )
        side = self.frame_size // self.factor_
        latents = latents.reshape(len(x), 3, self.frame_size, self.channels_, side, side)
        return latents_to_tokens(latents, self.factor_).float().cpu().numpy()

    @torch.inference_mode()
    def decode(self, tokens: np.ndarray | torch.Tensor, *, per_axis: bool = False) -> np.ndarray:
        """Decode tokens back to volumes.

        Parameters
        ----------
        tokens : array, shape (n_frames, n_tokens_, token_dim_)
        per_axis : bool
            Return the three volumes rebuilt from the slices along each axis
            instead of their merge.

        Returns
        -------
        ndarray, float32
            (n_frames, S, S, S), the three axes' reconstructions merged (spectrally
            with a distortion map, else their mean), or (n_frames, 3, S, S, S) with
            ``per_axis``.
        """
        tokens = torch.as_tensor(np.asarray(tokens, dtype=np.float32)).to(self.device_)
        if tokens.ndim != 3 or tuple(tokens.shape[1:]) != (self.n_tokens_, self.token_dim_):
            raise DataError(
                f"Tokens must be (n_frames, {self.n_tokens_}, {self.token_dim_}) for this "
                f"tokenizer (f{self.factor_} c{self.channels_}), got {tuple(tokens.shape)}."
            )
        latents = tokens_to_latents(tokens, self.factor_, self.channels_)
        flat = latents.reshape(-1, *latents.shape[3:])
        decoded = torch.cat(
            [self.autoencoder.decode(batch).sample for batch in flat.split(self.batch_size)]
        )
        volumes = slices_to_frames(decoded, len(tokens))
        if per_axis:
            merged = volumes
        elif self.weights_ is None:
            merged = volumes.mean(dim=1)
        else:
            merged = merge_axes(volumes, self.weights_)
        return merged.float().cpu().numpy()

    def encode_store(
        self,
        frames_path: str | os.PathLike,
        output: str | os.PathLike,
        *,
        chunk_frames: int = 4,
        params: dict[str, Any] | None = None,
        inputs: list[str | os.PathLike] = (),
        extra: dict[str, Any] | None = None,
        progress_bar: bool | None = None,
    ) -> dict[str, Any]:
        """Encode a frames store into a token store, streaming chunks of frames.

        Parameters
        ----------
        frames_path : path-like
            A frames store (see :func:`neuroai.tokenizers.frames.write_frames`).
        output : path-like
            Destination ``.npy``: (n_frames, n_tokens_, token_dim_) float16.
        chunk_frames : int
            Frames encoded at a time.
        params, inputs, extra
            Recorded in the provenance record (``frames_path`` is always an input).
        progress_bar : bool | None
            See :func:`neuroai.progress`.

        Returns
        -------
        dict
            The provenance ``extra``: layout, n_frames, TR, frames record.

        Raises
        ------
        DataError
            When the frames are not S^3, or a latent exceeds the float16 range.
        """
        from neuroai.io.store import write_artifact
        from neuroai.tokenizers.frames import load_frames

        check_positive("chunk_frames", chunk_frames)
        frames, frames_record = load_frames(frames_path)
        n_frames = len(frames)
        self._check_frames(frames[:1])
        shape = (n_frames, self.n_tokens_, self.token_dim_)

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                store = NpyStream(handle, shape, np.float16)
                starts = range(0, n_frames, chunk_frames)
                for start in progress(starts, desc="tokens", enabled=progress_bar):
                    tokens = self.encode(frames[start : start + chunk_frames])
                    peak = float(np.abs(tokens).max())
                    if not np.isfinite(peak) or peak > FLOAT16_MAX:
                        raise DataError(
                            f"Frames {start}.. of {frames_path} give latents of magnitude "
                            f"{peak:.3g}, beyond float16; the autoencoder does not suit these inputs."
                        )
                    store.write(tokens)
                store.close()

        frames_extra = frames_record.get("extra", {})
        record = {
            "layout": self.layout(),
            "shape": list(shape),
            "dtype": "float16",
            "frame_order": "runs in order, then time (as in the frames store)",
            "n_frames": n_frames,
            "tr": frames_extra.get("tr"),
            "device": str(self.device_),
            **(extra or {}),
        }
        write_artifact(
            output,
            _write,
            stage=TOKENS_STAGE,
            params=params or {},
            inputs=[frames_path, *inputs],
            extra=record,
        )
        logger.info("Wrote %s: %d frames x %d tokens x %d", output, *shape)
        return record


@dataclass(frozen=True)
class TokenStore:
    """A subject's token store, memory-mapped.

    Attributes
    ----------
    tokens : ndarray, shape (n_frames, n_tokens, token_dim), float16
    tr : float
        Repetition time in seconds (frames are TR apart within a run).
    layout : dict
        Factor, latent channels, token and feature index formulas.
    record : dict
        The whole provenance record.
    path : Path
    """

    tokens: np.ndarray
    tr: float
    layout: dict
    record: dict
    path: Path


def read_token_store(path: str | os.PathLike, *, mmap: bool = True) -> TokenStore:
    """Open a token store written by :meth:`VolumeTokenizer.encode_store`, checked."""
    from neuroai.io.store import check_artifact

    record = check_artifact(path, stage=TOKENS_STAGE)
    tokens = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    extra = record.get("extra", {})
    layout = extra.get("layout", {})
    expected = (layout.get("n_tokens"), layout.get("token_dim"))
    if tokens.ndim != 3 or tokens.dtype != np.float16 or tuple(tokens.shape[1:]) != expected:
        raise DataError(
            f"{path} holds {tokens.shape} {tokens.dtype}; its record describes "
            f"(n_frames, {expected[0]}, {expected[1]}) float16."
        )
    return TokenStore(
        tokens=tokens, tr=extra.get("tr"), layout=layout, record=record, path=Path(path)
    )
