"""The training engine: Lightning modules and data modules, checkpoints, DDP.

One engine trains every model family: :func:`fit` runs a :class:`SupervisedModule`,
:class:`PretrainModule` or :class:`FineTuneModule` with a data module whose loaders
are resumable, under a :class:`TrainConfig`, on one CPU, N processes (DDP) or a SLURM
allocation, and leaves ``best``/``last`` pretrained folders and a resumable checkpoint.
"""

from neuroai.training.config import TrainConfig, gpu_policy
from neuroai.training.data import ResumableLoader, ResumableSampler, SeededDataset, item_seed
from neuroai.training.datamodules import ArrayDataModule, ArrayDataset, EngineDataModule
from neuroai.training.graph_data import (
    Crop,
    GraphCropDataset,
    GraphDataConfig,
    GraphDataModule,
    collate_graphs,
)
from neuroai.training.graph_finetune import embed_runs, finetune_probe, predict_runs
from neuroai.training.launch import resolve_devices, resolve_precision, seed_everything
from neuroai.training.loading import loader_options
from neuroai.training.modules import EngineModule, FineTuneModule, PretrainModule, SupervisedModule
from neuroai.training.schedules import lr_factor
from neuroai.training.segmentation_data import (
    SegmentationDataConfig,
    SegmentationDataModule,
    preprocess_case,
)
from neuroai.training.token_data import (
    TokenWindowDataModule,
    TokenWindows,
    pad_window,
    read_token_index,
    split_token_cohort,
    tile_starts,
)
from neuroai.training.trainer import FitResult, build_trainer, fit

__all__ = [
    "ArrayDataModule",
    "ArrayDataset",
    "Crop",
    "EngineDataModule",
    "EngineModule",
    "FineTuneModule",
    "FitResult",
    "GraphCropDataset",
    "GraphDataConfig",
    "GraphDataModule",
    "PretrainModule",
    "ResumableLoader",
    "ResumableSampler",
    "SeededDataset",
    "SegmentationDataConfig",
    "SegmentationDataModule",
    "SupervisedModule",
    "TokenWindowDataModule",
    "TokenWindows",
    "TrainConfig",
    "loader_options",
    "gpu_policy",
    "build_trainer",
    "collate_graphs",
    "embed_runs",
    "finetune_probe",
    "fit",
    "item_seed",
    "lr_factor",
    "predict_runs",
    "pad_window",
    "preprocess_case",
    "read_token_index",
    "resolve_devices",
    "resolve_precision",
    "seed_everything",
    "split_token_cohort",
    "tile_starts",
]


def __getattr__(name: str):
    if name == "window_starts":  # renamed; token_data's __getattr__ warns
        from neuroai.training import token_data

        return token_data.window_starts
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
