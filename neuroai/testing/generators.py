"""Generators of tiny synthetic data (see :mod:`neuroai.testing`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.io.regions import write_region_timeseries


def correlated_timeseries(
    n_timepoints: int = 53,
    n_regions: int = 7,
    *,
    seed: int = 0,
    n_factors: int = 3,
    offset: float = 100.0,
) -> np.ndarray:
    """Region time series with a low-rank shared structure plus noise.

    Parameters
    ----------
    n_timepoints, n_regions : int
        Shape of the result.
    seed : int
        Random seed.
    n_factors : int
        Number of shared latent signals (gives non-trivial correlations).
    offset : float
        Constant added (BOLD is not centred).

    Returns
    -------
    ndarray, shape (n_timepoints, n_regions)
    """
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_timepoints, n_factors))
    loadings = rng.standard_normal((n_factors, n_regions))
    noise = rng.standard_normal((n_timepoints, n_regions))
    scales = rng.uniform(0.5, 3.0, size=n_regions)
    return offset + (latent @ loadings + noise) * scales


def connectivity_matrices(n_runs: int = 5, n_regions: int = 7, *, seed: int = 0) -> np.ndarray:
    """Correlation matrices of independent synthetic runs, shape (n_runs, n, n)."""
    mats = []
    for i in range(n_runs):
        ts = correlated_timeseries(41 + 3 * i, n_regions, seed=seed + i)
        mats.append(np.corrcoef(ts, rowvar=False))
    return np.stack(mats)


def region_timeseries_dataset(
    root: str | os.PathLike,
    *,
    subjects: Sequence[str] = ("01", "02", "03"),
    sessions: Sequence[str] | None = None,
    n_timepoints: int = 53,
    n_regions: int = 7,
    tr: float = 2.0,
    sites: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Write a BIDS-derivatives dataset of region time series.

    Returns
    -------
    dict
        Run key to the TSV path written, sorted by key.
    """
    root = Path(root)
    regions = [f"region{i:02d}" for i in range(n_regions)]
    runs: dict[str, Path] = {}
    rows = []
    for index, subject in enumerate(subjects):
        for session in sessions or [None]:
            folder = root / f"sub-{subject}"
            entities = f"sub-{subject}"
            if session is not None:
                folder = folder / f"ses-{session}"
                entities += f"_ses-{session}"
            key = f"{entities}_task-rest_atlas-test"
            path = folder / "func" / f"{key}_timeseries.tsv"
            data = correlated_timeseries(
                n_timepoints, n_regions, seed=seed + 17 * index + len(runs)
            )
            write_region_timeseries(path, data, tr=tr, regions=regions, stage="synthetic")
            runs[key] = path
        site = sites[index % len(sites)] if sites else "siteA"
        rows.append(f"sub-{subject}\t{site}")
    (root / "participants.tsv").write_text(
        "participant_id\tsite\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return dict(sorted(runs.items()))
