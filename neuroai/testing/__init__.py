"""Tiny, seeded, synthetic data for tests.

Dimensions are deliberately unequal (7 regions, 53 time points ...) so that a
swapped axis fails loudly, and every generator takes a ``seed``.
"""

from neuroai.testing.generators import (
    connectivity_matrices,
    correlated_timeseries,
    region_timeseries_dataset,
)
from neuroai.testing.segmentation import hippocampus_like_case, hippocampus_like_dataset

__all__ = [
    "connectivity_matrices",
    "correlated_timeseries",
    "hippocampus_like_case",
    "hippocampus_like_dataset",
    "region_timeseries_dataset",
]
