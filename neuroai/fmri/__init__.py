"""fMRI: BIDS runs to cleaned region time series, static and dynamic FC, graphs.

``extract_timeseries`` streams 4D images through an atlas; ``clean`` and
``load_confounds`` denoise as nilearn does; ``connectivity`` and
``GroupConnectivity`` estimate static FC (tangent space included);
``dynamic_connectivity`` computes sliding-window FC; ``window_graphs`` and the
on-disk ``GraphWindowDataset`` turn it into PyTorch Geometric graphs;
``process_cohort`` runs whole cohorts on Dask.
"""

from neuroai.fmri.atlas import Atlas, load_atlas
from neuroai.fmri.cleaning import clean
from neuroai.fmri.cohort import CohortResult, process_cohort, process_run
from neuroai.fmri.confounds import load_confounds
from neuroai.fmri.connectivity import (
    GROUP_KINDS,
    KINDS,
    GroupConnectivity,
    connectivity,
    geometric_mean,
    tangent_connectivity,
)
from neuroai.fmri.dynamic import connectivity_variability, dynamic_connectivity, window_starts
from neuroai.fmri.extraction import AtlasMasker, Extraction, extract_timeseries
from neuroai.fmri.graph_dataset import GraphArrays, write_graph_dataset
from neuroai.fmri.graphs import WindowGraphs, node_features, sparsify, window_graphs
from neuroai.fmri.qc import framewise_displacement
from neuroai.fmri.run_timeseries import RunTimeseries, run_timeseries

__all__ = [
    "Atlas",
    "AtlasMasker",
    "CohortResult",
    "Extraction",
    "GROUP_KINDS",
    "GraphArrays",
    "GraphWindowDataset",
    "GroupConnectivity",
    "KINDS",
    "RunTimeseries",
    "WindowGraphs",
    "clean",
    "connectivity",
    "connectivity_variability",
    "cov_to_corr",
    "dynamic_connectivity",
    "extract_timeseries",
    "framewise_displacement",
    "geometric_mean",
    "load_atlas",
    "load_confounds",
    "node_features",
    "prec_to_partial",
    "process_cohort",
    "process_run",
    "run_timeseries",
    "sparsify",
    "tangent_connectivity",
    "window_graphs",
    "window_starts",
    "write_graph_dataset",
]


def __getattr__(name: str):
    # GraphWindowDataset subclasses torch_geometric's Dataset: built on first use so
    # that `import neuroai.fmri` does not import torch.
    if name == "GraphWindowDataset":
        from neuroai.fmri import graph_dataset

        return graph_dataset.GraphWindowDataset
    if name in ("cov_to_corr", "prec_to_partial"):
        # nilearn's own functions (imported on first use: nilearn.connectome is slow to import).
        from nilearn import connectome

        return getattr(connectome, name)
    if name == "RegionExtractor":  # deprecated alias of AtlasMasker (warns)
        from neuroai.fmri import extraction

        return extraction.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
