"""fMRI: region time series, functional connectivity."""

from neuroai.fmri.connectivity import KINDS, connectivity, cov_to_corr, prec_to_partial

__all__ = ["KINDS", "connectivity", "cov_to_corr", "prec_to_partial"]
