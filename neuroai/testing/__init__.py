"""Tiny, seeded, synthetic data for tests.

Dimensions are deliberately unequal (7 regions, 53 time points ...) so that a
swapped axis fails loudly, and every generator takes a ``seed``.
"""

from neuroai.testing.eeg import eeg_signals, tuh_edf, tuh_raw
from neuroai.testing.generators import (
    connectivity_matrices,
    correlated_timeseries,
    region_timeseries_dataset,
)

__all__ = [
    "connectivity_matrices",
    "correlated_timeseries",
    "eeg_signals",
    "region_timeseries_dataset",
    "tuh_edf",
    "tuh_raw",
]
