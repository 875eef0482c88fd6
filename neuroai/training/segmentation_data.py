"""Segmentation data: Decathlon cases through MONAI transforms, cached.

Preprocessing (deterministic, cached once per case by MONAI's ``CacheDataset``):
load, channel first, orientation (RAS), resampling to ``spacing`` (trilinear for
images, nearest for labels), intensity scaling of each channel to [0, 1] between its
0.5th and 99.5th percentiles, and a crop to the foreground (voxels above a threshold
after scaling, with a margin).

Training augmentation (random, reseeded per item from the run's seed): padding to the
patch size, ``num_samples`` random patches per volume centred on foreground or
background with equal probability, flips along each axis, 90-degree rotations in the
plane of two equal patch axes, and an intensity shift. Validation and evaluation use
whole preprocessed volumes with sliding-window inference.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neuroai.errors import check_option
from neuroai.io.decathlon import DecathlonCase
from neuroai.models.base import INPUTS, TARGET
from neuroai.models.config import JsonConfig
from neuroai.training.datamodules import EngineDataModule

KEYS = (INPUTS, TARGET)


@dataclass
class SegmentationDataConfig(JsonConfig):
    """Preprocessing and augmentation of 3D segmentation data.

    Attributes
    ----------
    spacing : tuple of float | None
        Voxel size to resample to (mm); None keeps each image's own.
    orientation : str
        Axis codes to reorient to.
    intensity : {"percentile", "minmax", "zscore"}
        Per-channel scaling: 0.5-99.5 percentiles to [0, 1] (clipped), min-max to
        [0, 1], or zero mean and unit variance over the non-zero voxels.
    crop_foreground : bool
        Crop each volume to the bounding box of its voxels above
        ``foreground_threshold`` after scaling (plus ``margin`` voxels).
    foreground_threshold : float
        Intensity (after scaling) above which a voxel counts as foreground; raise it
        above the background noise level of noisy images.
    margin : int
        Margin of the foreground crop (voxels).
    num_samples : int
        Random patches per volume in a training batch.
    pos, neg : float
        Relative odds of centring a patch on foreground or background.
    flip_prob : float
        Probability of a flip along each axis.
    rot90_prob : float
        Probability of a random 90-degree rotation.
    shift_offset, shift_prob : float
        Intensity shift range (in scaled units) and its probability.
    cache : {"memory", "disk", "none"}
        MONAI ``CacheDataset`` (memory), ``PersistentDataset`` (disk) or no cache.
    cache_dir : str | None
        Folder of the disk cache.
    """

    spacing: tuple[float, ...] | None = (2.0, 2.0, 2.0)
    orientation: str = "RAS"
    intensity: str = "percentile"
    crop_foreground: bool = True
    foreground_threshold: float = 0.0
    margin: int = 2
    num_samples: int = 2
    pos: float = 1.0
    neg: float = 1.0
    flip_prob: float = 0.5
    rot90_prob: float = 0.1
    shift_offset: float = 0.1
    shift_prob: float = 0.5
    cache: str = "memory"
    cache_dir: str | None = None

    def validate(self) -> None:
        check_option("intensity", self.intensity, ("percentile", "minmax", "zscore"))
        check_option("cache", self.cache, ("memory", "disk", "none"))


class _Above:
    """``x > threshold`` as a picklable callable (MONAI ``select_fn`` in worker processes)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, x):
        return x > self.threshold


def preprocessing(config: SegmentationDataConfig, *, with_label: bool = True) -> list:
    """The deterministic MONAI transforms (see the module docstring)."""
    from monai import transforms as T

    keys = list(KEYS) if with_label else [INPUTS]
    steps = [
        T.LoadImaged(keys=keys, image_only=True, ensure_channel_first=True),
        T.Orientationd(keys=keys, axcodes=config.orientation),
    ]
    if config.spacing is not None:
        modes = ("bilinear", "nearest") if with_label else ("bilinear",)
        steps.append(T.Spacingd(keys=keys, pixdim=tuple(config.spacing), mode=modes))
    if config.intensity == "percentile":
        steps.append(
            T.ScaleIntensityRangePercentilesd(
                keys=INPUTS,
                lower=0.5,
                upper=99.5,
                b_min=0.0,
                b_max=1.0,
                clip=True,
                channel_wise=True,
            )
        )
    elif config.intensity == "minmax":
        steps.append(T.ScaleIntensityd(keys=INPUTS, minv=0.0, maxv=1.0, channel_wise=True))
    else:
        steps.append(T.NormalizeIntensityd(keys=INPUTS, nonzero=True, channel_wise=True))
    if config.crop_foreground:
        steps.append(
            T.CropForegroundd(
                keys=keys,
                source_key=INPUTS,
                select_fn=_Above(config.foreground_threshold),
                margin=config.margin,
                allow_smaller=True,
            )
        )
    steps.append(T.EnsureTyped(keys=keys, dtype=None))
    return steps


def training_augmentation(config: SegmentationDataConfig, roi_size: Sequence[int]) -> list:
    """The random MONAI transforms of training (see the module docstring)."""
    from monai import transforms as T

    roi = tuple(int(s) for s in roi_size)
    keys = list(KEYS)
    steps = [
        T.SpatialPadd(keys=keys, spatial_size=roi),
        T.RandCropByPosNegLabeld(
            keys=keys,
            label_key=TARGET,
            spatial_size=roi,
            pos=config.pos,
            neg=config.neg,
            num_samples=config.num_samples,
            image_key=INPUTS,
            image_threshold=0.0,
        ),
    ]
    steps += [T.RandFlipd(keys=keys, prob=config.flip_prob, spatial_axis=axis) for axis in range(3)]
    square = [(a, b) for a in range(3) for b in range(a + 1, 3) if roi[a] == roi[b]]
    if square and config.rot90_prob > 0:
        steps.append(
            T.RandRotate90d(keys=keys, prob=config.rot90_prob, max_k=3, spatial_axes=square[0])
        )
    if config.shift_prob > 0:
        steps.append(
            T.RandShiftIntensityd(keys=INPUTS, offsets=config.shift_offset, prob=config.shift_prob)
        )
    steps.append(T.EnsureTyped(keys=keys, track_meta=False))
    return steps


def case_dicts(cases: Sequence[DecathlonCase]) -> list[dict]:
    """MONAI data dicts (``inputs``, ``target``, ``id``) of labelled cases."""
    return [{INPUTS: str(c.image), TARGET: str(c.label), "id": c.id} for c in cases]


def _dataset(data: list[dict], transform, config: SegmentationDataConfig):
    from monai.data import CacheDataset, Dataset, PersistentDataset

    if config.cache == "memory":
        return CacheDataset(
            data, transform=transform, cache_rate=1.0, num_workers=0, progress=False
        )
    if config.cache == "disk":
        cache_dir = Path(config.cache_dir or ".monai_cache")
        cache_dir.mkdir(parents=True, exist_ok=True)
        return PersistentDataset(data, transform=transform, cache_dir=cache_dir)
    return Dataset(data, transform=transform)


class SegmentationDataModule(EngineDataModule):
    """Patches of labelled volumes for training, whole volumes for validation.

    Parameters
    ----------
    train_cases, val_cases : sequence of DecathlonCase
        Labelled cases (``val_cases`` may be empty).
    roi_size : sequence of int
        Patch size (the model's ``roi_size``).
    config : SegmentationDataConfig
        Preprocessing and augmentation.
    batch_size : int
        Volumes per training batch (each gives ``config.num_samples`` patches).
    seed : int
        Seed of the order and of the augmentations.
    num_workers : int or "auto"
        Loader worker processes (see :meth:`EngineDataModule.loader_options`).
    """

    def __init__(
        self,
        train_cases: Sequence[DecathlonCase],
        val_cases: Sequence[DecathlonCase],
        *,
        roi_size: Sequence[int],
        config: SegmentationDataConfig,
        batch_size: int = 2,
        seed: int = 0,
        num_workers: int | str = 0,
    ) -> None:
        from monai.data import list_data_collate

        super().__init__(
            batch_size=batch_size, seed=seed, num_workers=num_workers, collate_fn=list_data_collate
        )
        self.train_cases = list(train_cases)
        self.val_cases = list(val_cases)
        self.roi_size = tuple(roi_size)
        self.config = config
        self._train = None
        self._val = None

    def train_dataset(self):
        from monai.transforms import Compose

        if self._train is None:
            transform = Compose(
                preprocessing(self.config) + training_augmentation(self.config, self.roi_size)
            )
            self._train = _dataset(case_dicts(self.train_cases), transform, self.config)
        return self._train

    def val_dataset(self):
        from monai.transforms import Compose, EnsureTyped

        if not self.val_cases:
            return None
        if self._val is None:
            transform = Compose(
                [*preprocessing(self.config), EnsureTyped(keys=list(KEYS), track_meta=False)]
            )
            self._val = _dataset(case_dicts(self.val_cases), transform, self.config)
        return self._val

    @property
    def has_validation(self) -> bool:
        return bool(self.val_cases)


def preprocess_case(
    case: DecathlonCase, config: SegmentationDataConfig, *, with_label: bool = True
) -> dict:
    """One case preprocessed as in training (MetaTensors that keep their affine)."""
    from monai.transforms import Compose

    data = {INPUTS: str(case.image), "id": case.id}
    if with_label and case.label is not None:
        data[TARGET] = str(case.label)
    return Compose(preprocessing(config, with_label=TARGET in data))(data)


def default_cache_dir(run_dir: str | os.PathLike) -> str:
    """Where a run keeps its disk cache."""
    return str(Path(run_dir) / "cache")
