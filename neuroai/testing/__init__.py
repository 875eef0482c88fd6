"""Tiny, seeded, synthetic data for tests.

Dimensions are deliberately unequal (7 regions, 53 time points ...) so that a
swapped axis fails loudly, and every generator takes a ``seed``.
"""

from neuroai.testing.bold import (
    bids_dataset,
    bold_image,
    fmriprep_confounds,
    fmriprep_dataset,
    label_atlas,
    prob_atlas,
)
from neuroai.testing.browser import check_page, check_site, find_chromium, report_text
from neuroai.testing.eeg import eeg_signals, tuh_edf, tuh_raw
from neuroai.testing.generators import (
    connectivity_matrices,
    correlated_timeseries,
    region_timeseries_dataset,
)
from neuroai.testing.graphs import graph_dataset
from neuroai.testing.patch_store import tiny_patch_store
from neuroai.testing.scheduler import dask_processes
from neuroai.testing.segmentation import hippocampus_like_case, hippocampus_like_dataset
from neuroai.testing.token_store import write_token_store
from neuroai.testing.volumes import (
    lattice_affine,
    lattice_bold_image,
    tiny_autoencoder_config,
    torch_threads,
    write_bold_run,
)

__all__ = [
    "bids_dataset",
    "bold_image",
    "check_page",
    "check_site",
    "connectivity_matrices",
    "correlated_timeseries",
    "dask_processes",
    "eeg_signals",
    "fmriprep_confounds",
    "fmriprep_dataset",
    "find_chromium",
    "graph_dataset",
    "hippocampus_like_case",
    "hippocampus_like_dataset",
    "label_atlas",
    "lattice_affine",
    "lattice_bold_image",
    "prob_atlas",
    "region_timeseries_dataset",
    "report_text",
    "tiny_autoencoder_config",
    "torch_threads",
    "tuh_edf",
    "tiny_patch_store",
    "tuh_raw",
    "write_bold_run",
    "write_token_store",
]
