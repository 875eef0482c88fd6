"""Natural photographs that scikit-image ships, as random training crops.

The default tokenizer is trained offline on the photographs bundled inside the
``scikit-image`` package (``skimage/data``; nothing is downloaded: files that
scikit-image would fetch from the internet are not used). :data:`PHOTOGRAPHS`
lists the 16 real photographs whose documentation states they are public domain,
CC0 or free of known copyright restrictions (synthetic test images - chessboards,
colour wheel, logo, phantom, horse silhouette - and photographs without a stated
licence - moon, page, the Middlebury motorcycle pair - are left out); their
sources and licences are in ``data_cards/skimage_photographs.yaml``.

:class:`PhotoCrops` draws batches of random square crops (side between
``crop_size`` and ``max_crop``, resized to ``crop_size`` with antialiasing),
flipped and rotated by multiples of 90 degrees at random, made grey (the three
channels equal, as fMRI slices are fed) with probability ``grayscale_prob``,
with random contrast and brightness, scaled to [-1, 1]. Two optional
augmentations bring the photographs closer to what a brain slice looks like
without showing the model any brain: a Gaussian defocus (``blur_prob``) and an
elliptical aperture with black outside (``aperture_prob``; an fMRI slice is an
oval of tissue in a field of -1).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuroai.datasets._private import package_folder
from neuroai.errors import ConfigError, DataError
from neuroai.tokenizers._private import check_positive, seeded_generator

PHOTOGRAPHS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "microaneurysms.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)


def skimage_data_dir() -> Path:
    """The ``data`` folder inside the installed scikit-image, found without importing it."""
    folder = package_folder(
        "skimage",
        needed_for="Training the natural-image tokenizer (its bundled photographs)",
        install="pip install scikit-image",
    )
    return folder / "data"


def photograph_paths(names: tuple[str, ...] = PHOTOGRAPHS) -> list[Path]:
    """Paths of the bundled photographs; a clear error names any that are missing."""
    folder = skimage_data_dir()
    paths = [folder / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"scikit-image's data folder {folder} lacks {', '.join(missing)}; this "
            "scikit-image build does not ship them. Install a full scikit-image wheel."
        )
    return paths


def load_photographs(
    names: tuple[str, ...] = PHOTOGRAPHS, *, max_side: int = 512
) -> list[torch.Tensor]:
    """Read the photographs as RGB float tensors (3, H, W) in [0, 1].

    Grey photographs are repeated to 3 channels, an alpha channel is dropped,
    and images larger than ``max_side`` are shrunk so their longer side is
    ``max_side`` (the crops are small; this keeps memory and time low).
    """
    from skimage.io import imread

    images = []
    for path in photograph_paths(names):
        pixels = np.asarray(imread(path), dtype=np.float32) / 255.0
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[..., None], 3, axis=-1)
        image = torch.from_numpy(np.ascontiguousarray(pixels[..., :3])).permute(2, 0, 1)
        longest = max(image.shape[1:])
        if longest > max_side:
            size = [round(n * max_side / longest) for n in image.shape[1:]]
            image = F.interpolate(image[None], size=size, mode="area")[0]
        images.append(image.contiguous())
    return images


class PhotoCrops:
    """Random, augmented crops of the bundled photographs.

    Parameters
    ----------
    crop_size : int
        Side of the crops returned, in pixels (96: the size of fMRI slices).
    max_crop : int
        Largest side cut from a photograph before resizing to ``crop_size``.
    grayscale_prob : float
        Probability that a crop is made grey (three equal channels).
    contrast : (float, float)
        Range of the random contrast factor (about mid-grey).
    brightness : float
        Largest random brightness shift, in [0, 1] units.
    blur_prob : float
        Probability that a crop is defocused by a Gaussian of standard deviation
        drawn in [0.3, 1.5] pixels.
    aperture_prob : float
        Probability that a crop is seen through a random ellipse (centre within
        30% of the half-side from the middle, radii 30-110% of the half-side),
        black outside.
    seed : int
        Seed of the sampling.
    names : tuple of str
        Which photographs (file names in ``skimage/data``).
    """

    def __init__(
        self,
        *,
        crop_size: int = 96,
        max_crop: int = 256,
        grayscale_prob: float = 0.5,
        contrast: tuple[float, float] = (0.7, 1.3),
        brightness: float = 0.15,
        blur_prob: float = 0.0,
        aperture_prob: float = 0.0,
        seed: int = 0,
        names: tuple[str, ...] = PHOTOGRAPHS,
    ) -> None:
        self.crop_size = check_positive("crop_size", crop_size)
        self.max_crop = max(check_positive("max_crop", max_crop), crop_size)
        self.grayscale_prob = _probability("grayscale_prob", grayscale_prob)
        self.blur_prob = _probability("blur_prob", blur_prob)
        self.aperture_prob = _probability("aperture_prob", aperture_prob)
        low, high = (float(v) for v in contrast)
        if not 0 < low <= high:
            raise ConfigError(
                f"contrast must be a range (low, high) with 0 < low <= high, got {contrast!r}."
            )
        self.contrast = (low, high)
        if not 0 <= brightness <= 1:
            raise ConfigError(f"brightness must lie in [0, 1], got {brightness!r}.")
        self.brightness = float(brightness)
        self.names = tuple(names)
        self.images_ = load_photographs(self.names)
        too_small = [
            n
            for n, im in zip(self.names, self.images_, strict=True)
            if min(im.shape[1:]) < crop_size
        ]
        if too_small:
            raise DataError(f"Photographs {too_small} are smaller than crop_size {crop_size}.")
        self.generator_ = seeded_generator(seed)

    def to(self, device: str | torch.device) -> PhotoCrops:
        """Keep the photographs on ``device`` (crops are then cut there); returns self.

        On a GPU this takes the cropping off the CPU, which otherwise limits
        training speed; the draws (which photograph, where, which flips) stay
        those of the seed.
        """
        self.images_ = [image.to(device) for image in self.images_]
        return self

    def reseed(self, seed: int) -> None:
        """Restart the draws from ``seed`` (each loader worker has its own)."""
        self.generator_ = seeded_generator(seed)

    def _uniform(self, low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=self.generator_))

    def _integer(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.generator_))

    def sample(self, batch_size: int) -> torch.Tensor:
        """A batch of crops.

        Returns
        -------
        Tensor, shape (batch_size, 3, crop_size, crop_size), float32 in [-1, 1]
        """
        crops = []
        for _ in range(batch_size):
            image = self.images_[self._integer(len(self.images_))]
            height, width = image.shape[1:]
            side = self.crop_size + self._integer(
                min(self.max_crop, height, width) - self.crop_size + 1
            )
            top, left = self._integer(height - side + 1), self._integer(width - side + 1)
            crop = image[:, top : top + side, left : left + side][None]
            crop = F.interpolate(
                crop,
                size=(self.crop_size,) * 2,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
            if self._uniform(0, 1) < self.grayscale_prob:
                crop = crop.mean(dim=0, keepdim=True).expand(3, -1, -1)
            if self._uniform(0, 1) < 0.5:
                crop = crop.flip(-1)
            crop = torch.rot90(crop, self._integer(4), dims=(1, 2))
            if self.blur_prob and self._uniform(0, 1) < self.blur_prob:
                crop = gaussian_blur(crop, self._uniform(0.3, 1.5))
            crop = (crop - 0.5) * self._uniform(*self.contrast) + 0.5
            crop = (crop + self._uniform(-self.brightness, self.brightness)).clamp(0.0, 1.0)
            if self.aperture_prob and self._uniform(0, 1) < self.aperture_prob:
                crop = crop * self._aperture()
            crops.append(crop)
        return torch.stack(crops) * 2.0 - 1.0

    def _aperture(self) -> torch.Tensor:
        """A random filled ellipse on the crop grid (1 inside, 0 outside)."""
        axis = torch.linspace(-1.0, 1.0, self.crop_size, device=self.images_[0].device)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")
        centre_row, centre_col = self._uniform(-0.3, 0.3), self._uniform(-0.3, 0.3)
        radius_row, radius_col = self._uniform(0.3, 1.1), self._uniform(0.3, 1.1)
        inside = ((rows - centre_row) / radius_row) ** 2 + ((cols - centre_col) / radius_col) ** 2
        return (inside <= 1.0).to(self.images_[0].dtype)


def _probability(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise ConfigError(f"{name} is a probability and must lie in [0, 1], got {value!r}.")
    return float(value)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur a (C, H, W) image by a separable Gaussian (reflected borders, radius 3 sigma)."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[0]
    padded = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)[0]
