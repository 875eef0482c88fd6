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
with random contrast and brightness, scaled to [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuroai.datasets._private import package_folder
from neuroai.errors import DataError
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
        seed: int = 0,
        names: tuple[str, ...] = PHOTOGRAPHS,
    ) -> None:
        self.crop_size = check_positive("crop_size", crop_size)
        self.max_crop = max(check_positive("max_crop", max_crop), crop_size)
        self.grayscale_prob = float(grayscale_prob)
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
            crop = (crop - 0.5) * self._uniform(0.7, 1.3) + 0.5 + self._uniform(-0.15, 0.15)
            crops.append(crop.clamp(0.0, 1.0))
        return torch.stack(crops) * 2.0 - 1.0
