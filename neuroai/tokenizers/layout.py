"""The token layout: frames to 2D slices, and per-axis latents to cube tokens (TABLeT).

A frame of S^3 voxels (S = 96) is cut into slices along each of its three
axes. Axis ``a``'s slice ``i`` is ``frame.select(a, i)``, an S x S image whose
rows and columns are the two remaining axes in increasing order (axis 0:
(y, z); axis 1: (x, z); axis 2: (x, y)). Each slice is replicated to 3 channels
and encoded by the 2D autoencoder to C channels on an L x L grid, L = S / f,
where f is the autoencoder's downsampling factor. Per frame and axis that gives
latents of shape (S, C, L, L); for DC-AE f32c32, (96, 32, 3, 3).

The latents are regrouped into one token per cube of f^3 voxels, as TABLeT does:
the frame's S^3 voxels form an L x L x L grid of cubes, cube (bx, by, bz)
covering voxels ``[bx*f, (bx+1)*f) x [by*f, ...) x [bz*f, ...)``. Its token
gathers, for each axis, the f slices that cross the cube along that axis at the
latent position of the cube's other two coordinates:

====  ====================================  =====================
axis  slices of the cube                    latent position (u, v)
====  ====================================  =====================
0     i = bx*f + s, s = 0..f-1              (by, bz)
1     j = by*f + s                          (bx, bz)
2     k = bz*f + s                          (bx, by)
====  ====================================  =====================

Token index: ``t = (bx * L + by) * L + bz`` (C order over x, y, z).
Feature index inside a token: ``d = (axis * f + s) * C + c`` (axis, then the
slice within the cube, then the latent channel). So a frame gives
``n_tokens = (S / f)^3`` tokens of ``token_dim = 3 * f * C`` values:

=============  ===========  ==========
f, C           tokens       token_dim
=============  ===========  ==========
32, 32 (DC-AE) 27           3072
32, C          27           96 * C
16, C          216          48 * C
8, C           1728         24 * C
=============  ===========  ==========

The layout is lossless (:func:`tokens_to_latents` inverts
:func:`latents_to_tokens` exactly) and holds the same number of values as the
latents: 27 x 3072 = 3 x 96 x 32 x 3 x 3 = 82,944 per frame for f32c32, against
96^3 = 884,736 voxels.
"""

from __future__ import annotations

import torch
from einops import rearrange

from neuroai.errors import ConfigError

# einops patterns from axis a's latents (frames, slices, C, L, L) to (frames, bx, by, bz, f*C).
_TO_CUBES = (
    "n (bx s) c by bz -> n bx by bz (s c)",
    "n (by s) c bx bz -> n bx by bz (s c)",
    "n (bz s) c bx by -> n bx by bz (s c)",
)
_FROM_CUBES = tuple(" -> ".join(reversed(p.split(" -> "))) for p in _TO_CUBES)


def token_shape(size: int, factor: int, channels: int) -> tuple[int, int]:
    """(n_tokens, token_dim) of one frame of ``size``^3 voxels.

    Parameters
    ----------
    size : int
        Frame voxels per side (96).
    factor : int
        The autoencoder's spatial downsampling factor f (32 for DC-AE f32c32).
    channels : int
        Latent channels C (32 for DC-AE f32c32).

    Raises
    ------
    ConfigError
        When ``size`` is not a multiple of ``factor``.
    """
    if size % factor:
        raise ConfigError(
            f"Frames of {size}^3 voxels cannot be cut into cubes of {factor}^3: the "
            f"autoencoder's downsampling factor ({factor}) must divide the frame size. "
            f"For 96^3 frames use f in 2, 4, 8, 16, 32."
        )
    return (size // factor) ** 3, 3 * factor * channels


def frames_to_slices(frames: torch.Tensor) -> torch.Tensor:
    """Cut frames into 3-channel slices along all three axes.

    Parameters
    ----------
    frames : Tensor, shape (n_frames, S, S, S)

    Returns
    -------
    Tensor, shape (n_frames * 3 * S, 3, S, S)
        Ordered by frame, then axis, then slice index; the 3 channels are
        copies of the slice (an expanded view, no copy).
    """
    if frames.ndim != 4 or len(set(frames.shape[1:])) != 1:
        raise ValueError(f"frames must be (n_frames, S, S, S), got {tuple(frames.shape)}.")
    size = frames.shape[1]
    views = [frames.movedim(axis + 1, 1) for axis in range(3)]
    slices = torch.stack(views, dim=1).reshape(-1, 1, size, size)
    return slices.expand(-1, 3, -1, -1)


def slices_to_frames(slices: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Stack decoded slices back into one volume per frame and axis.

    Parameters
    ----------
    slices : Tensor, shape (n_frames * 3 * S, channels, S, S)
        In the order of :func:`frames_to_slices`; the channels are averaged.
    n_frames : int

    Returns
    -------
    Tensor, shape (n_frames, 3, S, S, S)
        ``[:, a]`` is the volume rebuilt from the slices along axis ``a``, in
        the frame's own (x, y, z) voxel order.
    """
    size = slices.shape[-1]
    stacked = slices.mean(dim=1).reshape(n_frames, 3, size, size, size)
    return torch.stack([stacked[:, a].movedim(1, a + 1) for a in range(3)], dim=1)


def latents_to_tokens(latents: torch.Tensor, factor: int) -> torch.Tensor:
    """Regroup per-axis slice latents into one token per f^3 cube.

    Parameters
    ----------
    latents : Tensor, shape (n_frames, 3, S, C, L, L)
        Axis ``a``'s latents of slices 0..S-1, L = S / f.
    factor : int
        The downsampling factor f.

    Returns
    -------
    Tensor, shape (n_frames, L^3, 3 * f * C)
        See the module docstring for the token and feature order.
    """
    n, axes, size, channels, side, side2 = latents.shape
    if axes != 3 or side != side2 or side * factor != size:
        raise ValueError(
            f"latents must be (n_frames, 3, S, C, S/f, S/f) with f = {factor}, "
            f"got {tuple(latents.shape)}."
        )
    cubes = [rearrange(latents[:, a], _TO_CUBES[a], s=factor) for a in range(3)]
    return rearrange(torch.cat(cubes, dim=-1), "n bx by bz d -> n (bx by bz) d")


def tokens_to_latents(tokens: torch.Tensor, factor: int, channels: int) -> torch.Tensor:
    """Invert :func:`latents_to_tokens`.

    Parameters
    ----------
    tokens : Tensor, shape (n_frames, L^3, 3 * f * C)
    factor : int
        The downsampling factor f.
    channels : int
        Latent channels C.

    Returns
    -------
    Tensor, shape (n_frames, 3, S, C, L, L)
    """
    n, n_tokens, dim = tokens.shape
    side = round(n_tokens ** (1 / 3))
    if side**3 != n_tokens or dim != 3 * factor * channels:
        raise ValueError(
            f"tokens must be (n_frames, L^3, 3 * f * C) with f = {factor}, C = {channels}; "
            f"got {tuple(tokens.shape)}."
        )
    cubes = rearrange(tokens, "n (bx by bz) d -> n bx by bz d", bx=side, by=side)
    per_axis = cubes.split(factor * channels, dim=-1)
    return torch.stack(
        [rearrange(per_axis[a], _FROM_CUBES[a], s=factor, c=channels) for a in range(3)], dim=1
    )
