"""Whole cohorts in one call, on a Dask cluster.

:func:`process_cohort` runs the per-run work (region time series, static and
dynamic FC) for every run of a cohort as independent tasks on a
``dask.distributed`` client: a local cluster by default, or any scheduler
(``scheduler="tcp://host:8786"``, or a ``dask_jobqueue.SLURMCluster``'s
address), or the caller's own ``Client``. ``scheduler="sequential"`` runs the
same tasks in this process, one after the other.

Results are exactly the sequential ones: each task computes with one BLAS
thread (parallelism comes from running many runs at once), so the floating
point operations and their order do not depend on where the task ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.errors import ConfigError, DataError
from neuroai.fmri.atlas import Atlas
from neuroai.io.bids import BoldRun

logger = get_logger(__name__)


@dataclass
class CohortResult:
    """One run's outputs.

    Attributes
    ----------
    timeseries : ndarray, shape (n_timepoints, n_regions)
        Cleaned region time series.
    regions : list of str
    tr : float
        Repetition time in seconds.
    connectivity : ndarray, shape (n_regions, n_regions)
        Static FC (``kind`` of :func:`process_cohort`).
    dynamic : ndarray, shape (n_windows, n_regions, n_regions) | None
        Dynamic FC, or ``None`` when not asked or the run is shorter than the window.
    """

    timeseries: np.ndarray
    regions: list[str]
    tr: float
    connectivity: np.ndarray
    dynamic: np.ndarray | None = None


def process_run(
    run: BoldRun,
    atlas: Atlas,
    *,
    kind: str = "correlation",
    dynamic: Mapping | None = None,
    timeseries_options: Mapping | None = None,
) -> CohortResult:
    """The per-run task: time series, static FC and (optionally) dynamic FC.

    Parameters
    ----------
    run : BoldRun
        The run.
    atlas : Atlas
        The parcellation.
    kind : str
        Static FC kind (:func:`neuroai.fmri.connectivity`).
    dynamic : mapping | None
        Options of :func:`neuroai.fmri.dynamic_connectivity` (``window``,
        ``step``, ``kind``, ``fisher_z``); ``None`` skips dynamic FC.
    timeseries_options : mapping | None
        Options of :func:`neuroai.fmri.run_timeseries.run_timeseries`.
    """
    from threadpoolctl import threadpool_limits

    from neuroai.fmri.connectivity import connectivity, zero_variance_regions
    from neuroai.fmri.dynamic import dynamic_connectivity
    from neuroai.fmri.run_timeseries import run_timeseries

    with threadpool_limits(limits=1):
        result = run_timeseries(run, atlas, qc=False, **dict(timeseries_options or {}))
        ts = result.timeseries
        flat = zero_variance_regions(ts)
        fc = connectivity(ts, kind)
        fc[flat, :] = 0.0
        fc[:, flat] = 0.0
        dfc = None
        if dynamic is not None:
            window = int(dynamic.get("window", 50))
            if ts.shape[0] >= window:
                options = dict(dynamic)
                options.setdefault("dtype", np.float32)
                options["window"] = window
                dfc = dynamic_connectivity(ts, **options)
            else:
                logger.warning(
                    "%s: %d volumes, fewer than the window of %d; no dynamic FC.",
                    run.key,
                    ts.shape[0],
                    window,
                )
    return CohortResult(ts, result.regions, result.tr, fc, dfc)


def _client(scheduler, n_workers):
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers or min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        return Client(cluster), True
    if isinstance(scheduler, str):
        return Client(scheduler), True
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        return scheduler, False
    if hasattr(scheduler, "scheduler_address"):
        return Client(scheduler), True
    raise ConfigError(
        "scheduler must be None (a local cluster), 'sequential', a scheduler address "
        f"('tcp://host:8786'), a dask Client or a cluster object; got {scheduler!r}."
    )


def process_cohort(
    runs: Mapping[str, BoldRun],
    atlas: Atlas,
    *,
    kind: str = "correlation",
    dynamic: Mapping | None = None,
    timeseries_options: Mapping | None = None,
    scheduler=None,
    n_workers: int | None = None,
    progress_bar: bool | None = None,
) -> dict[str, CohortResult]:
    """Process every run of a cohort, in parallel on Dask.

    Parameters
    ----------
    runs : mapping
        Run key to :class:`~neuroai.io.bids.BoldRun` (from
        :func:`neuroai.io.index_bold_runs`).
    atlas : Atlas
        The parcellation, shared by all runs.
    kind, dynamic, timeseries_options
        See :func:`process_run`.
    scheduler : None, "sequential", str, Client or cluster
        Where tasks run (see the module docstring).
    n_workers : int | None
        Workers of the local cluster (``scheduler=None``).
    progress_bar : bool | None
        See :func:`neuroai.progress`.

    Returns
    -------
    dict
        Run key to :class:`CohortResult`, in the order of ``runs``.

    Raises
    ------
    DataError
        The first failing run's error, naming the run.
    """
    if not runs:
        raise DataError("The cohort has no run to process.")
    keys = list(runs)
    options = {"kind": kind, "dynamic": dynamic, "timeseries_options": timeseries_options}
    if scheduler == "sequential":
        return {
            key: process_run(runs[key], atlas, **options)
            for key in progress(keys, desc="cohort", enabled=progress_bar)
        }
    client, owned = _client(scheduler, n_workers)
    try:
        atlas_future = client.scatter(atlas, broadcast=True)
        futures = {
            key: client.submit(process_run, runs[key], atlas_future, pure=False, **options)
            for key in keys
        }
        results = {}
        for key in progress(keys, desc="cohort", enabled=progress_bar):
            try:
                results[key] = futures[key].result()
            except DataError as exc:
                raise DataError(f"Run {key} failed: {exc}") from exc
        return results
    finally:
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
