"""A tiny on-disk graph dataset (format ``neuroai.graphs/1``) for tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.testing.generators import correlated_timeseries


def graph_dataset(
    path: str | os.PathLike,
    *,
    n_timepoints: Sequence[int] = (49, 58, 52, 61, 46, 55),
    n_regions: int = 7,
    window: int = 10,
    step: int = 3,
    density: float = 0.4,
    sites: Sequence[str] = ("a", "b"),
    seed: int = 0,
    run_files: str | os.PathLike | None = None,
) -> Path:
    """Write a graph dataset of ``len(n_timepoints)`` synthetic runs, one per subject.

    Runs of different lengths (so different window counts), identity and time-series
    node features, labels ``site`` (categorical, alternating over ``sites``; runs of
    site ``b`` get a stronger shared signal, so the label is learnable) and ``age``
    (numeric).

    Parameters
    ----------
    path : path-like
        Destination folder of the graph dataset.
    n_timepoints : sequence of int
        Length of each run in TRs (one run per subject).
    n_regions, window, step, density
        Regions (nodes), sliding window and step in TRs, edge density of each window.
    sites : sequence of str
        Site labels, assigned in turn.
    seed : int
        Seed of the time series and ages.
    run_files : path-like | None
        Also write each run's region time series (``<key>_timeseries.tsv``, TR 2 s) and
        static FC (``<key>_connectivity.npy``, shape (n_regions, n_regions)) into this
        folder, as the fMRI stages name them.

    Returns
    -------
    Path
        The dataset folder.
    """
    import pandas as pd

    from neuroai.fmri.dynamic import dynamic_connectivity
    from neuroai.fmri.graph_dataset import write_graph_dataset
    from neuroai.fmri.graphs import window_graphs
    from neuroai.io import save_array, write_region_timeseries

    runs, subjects, rows = {}, {}, []
    regions = [f"region{r}" for r in range(n_regions)]
    rng = np.random.default_rng(seed)
    for i, length in enumerate(n_timepoints):
        site = sites[i % len(sites)]
        ts = correlated_timeseries(length, n_regions, seed=seed + i, n_factors=1 + 2 * (i % 2))
        dfc = dynamic_connectivity(ts, window=window, step=step)
        key = f"sub-{i:02d}_task-rest"
        runs[key] = window_graphs(
            dfc,
            density=density,
            features=("timeseries", "identity"),
            ts=ts,
            window=window,
            step=step,
        )
        subjects[key] = f"{i:02d}"
        if run_files is not None:
            folder = Path(run_files)
            write_region_timeseries(folder / f"{key}_timeseries.tsv", ts, tr=2.0, regions=regions)
            fc = np.corrcoef(ts.T).astype(np.float32)
            save_array(folder / f"{key}_connectivity.npy", fc, stage="synthetic")
        rows.append(
            {"participant_id": f"sub-{i:02d}", "site": site, "age": 20 + rng.integers(0, 50)}
        )
    return write_graph_dataset(
        path,
        runs,
        subjects=subjects,
        regions=regions,
        windowing={"window": window, "step": step, "kind": "correlation", "fisher_z": False},
        sparsity={"method": "global", "density": density, "threshold": None, "absolute": True},
        participants=pd.DataFrame(rows),
        stage="synthetic",
    )
