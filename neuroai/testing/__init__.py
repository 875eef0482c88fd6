"""Tiny, seeded, synthetic data for tests.

Dimensions are deliberately unequal (7 regions, 53 time points ...) so that a
swapped axis fails loudly, and every generator takes a ``seed``.
"""

from neuroai.testing.generators import (
    connectivity_matrices,
    correlated_timeseries,
    region_timeseries_dataset,
)
from neuroai.testing.volumes import (
    bold_image,
    lattice_affine,
    tiny_autoencoder_config,
    torch_threads,
    write_bold_run,
)

__all__ = [
    "bold_image",
    "connectivity_matrices",
    "correlated_timeseries",
    "lattice_affine",
    "region_timeseries_dataset",
    "tiny_autoencoder_config",
    "torch_threads",
    "write_bold_run",
]
