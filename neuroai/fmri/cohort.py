"""Whole cohorts in one call, on a Dask cluster, and cohorts cut into batches.

:func:`process_cohort` runs the per-run work (region time series, static and
dynamic FC) for every run of a cohort as independent tasks on a
``dask.distributed`` client: a local cluster by default (or the scheduler that
``DASK_SCHEDULER_ADDRESS`` names), or any scheduler (``scheduler="tcp://host:8786"``,
or a ``dask_jobqueue.SLURMCluster``'s address), or the caller's own ``Client``.
``scheduler="sequential"`` runs the same tasks in this process, one after the other.
:func:`map_runs` is that machinery for any per-run task (:func:`region_static_fc`
is the static FC stage's).

Results are exactly the sequential ones: each task computes with one BLAS
thread (parallelism comes from running many runs at once), so the floating
point operations and their order do not depend on where the task ran.

:func:`assign_batches` cuts a cohort into batches of about ``batch_size`` runs
(the workflow's batched per-run stages), so that adding runs changes few batches.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroai._logging import get_logger, progress
from neuroai.errors import ConfigError, DataError

if TYPE_CHECKING:
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
    """A dask.distributed client for ``scheduler``, and whether it is ours to close."""
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        if address:
            return _connect(address, "DASK_SCHEDULER_ADDRESS"), True
        cluster = LocalCluster(
            n_workers=n_workers or min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        return Client(cluster), True
    if isinstance(scheduler, str):
        return _connect(scheduler, "the scheduler argument"), True
    if hasattr(scheduler, "submit") and hasattr(scheduler, "gather"):
        return scheduler, False
    if hasattr(scheduler, "scheduler_address"):
        return Client(scheduler), True
    raise ConfigError(
        "scheduler must be None (DASK_SCHEDULER_ADDRESS, else a local cluster), 'sequential', "
        f"a scheduler address ('tcp://host:8786'), a dask Client or a cluster object; got "
        f"{scheduler!r}."
    )


def _connect(address: str, where: str):
    from dask.distributed import Client

    try:
        return Client(address)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"No Dask scheduler answers at {address!r} (from {where}): {exc}. Start one "
            "(`dask scheduler`, or dask-jobqueue's SLURMCluster) and give its address, or "
            "unset it to compute here."
        ) from exc


def _one_thread(task: Callable, item: Any, options: Mapping[str, Any]) -> Any:
    """``task(item, **options)`` with one BLAS thread (the same result on any worker)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return task(item, **options)


def map_runs(
    task: Callable,
    items: Mapping[str, Any],
    *,
    scheduler=None,
    n_workers: int | None = None,
    shared: Mapping[str, Any] | None = None,
    progress_bar: bool | None = None,
    desc: str = "runs",
    **options: Any,
) -> Iterator[tuple[str, Any]]:
    """``task(item, **shared, **options)`` for every run, in order, here or on Dask.

    Each call computes with one BLAS thread, so a run gives the same result
    bytes wherever it ran. Results are yielded in the order of ``items`` as they
    are ready, and the caller's reference is the only one kept: a caller that
    writes each result before taking the next holds one at a time.

    Parameters
    ----------
    task : callable
        A module-level function (Dask workers import it by name).
    items : mapping
        Run key to the task's first argument (a path, a ``BoldRun``).
    scheduler : None, "sequential", str, Client or cluster
        ``"sequential"``: in this process, one run after the other. ``None``: the
        scheduler ``DASK_SCHEDULER_ADDRESS`` names, else a local cluster of
        ``n_workers`` single-threaded processes. A scheduler address
        (``"tcp://host:8786"``), a ``dask.distributed.Client`` or a cluster object
        (``dask_jobqueue.SLURMCluster``): that cluster.
    n_workers : int | None
        Workers of the local cluster (``scheduler=None``, no address set).
    shared : mapping | None
        Keyword arguments common to every run (an atlas), sent to each worker once.
    progress_bar : bool | None
        See :func:`neuroai.progress`.
    desc : str
        Label of the progress bar.
    **options
        More keyword arguments of ``task``.

    Yields
    ------
    key : str
    result
        ``task``'s return value.

    Raises
    ------
    DataError
        The first failing run's error (in the order of ``items``), naming the run;
        any other exception of a task is re-raised with a note naming the run.
    """
    keys = list(items)
    if scheduler == "sequential":
        options = {**(shared or {}), **options}
        for key in progress(keys, desc=desc, enabled=progress_bar):
            yield key, _call(key, _one_thread, task, items[key], options)
        return
    client, owned = _client(scheduler, n_workers)
    futures: dict[str, Any] = {}
    try:
        sent = {
            name: client.scatter(value, broadcast=True) for name, value in (shared or {}).items()
        }
        arguments = {**sent, **options}
        for key in keys:
            futures[key] = client.submit(_one_thread, task, items[key], arguments, pure=False)
        for key in progress(keys, desc=desc, enabled=progress_bar):
            yield key, _call(key, futures.pop(key).result)
    finally:
        if futures:
            client.cancel(list(futures.values()))
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def _call(key: str, function: Callable, *args: Any) -> Any:
    try:
        return function(*args)
    except DataError as exc:
        raise DataError(f"Run {key} failed: {exc}") from exc
    except Exception as exc:
        exc.add_note(f"(while processing run {key})")
        raise


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
    options = {"kind": kind, "dynamic": dynamic, "timeseries_options": timeseries_options}
    results = map_runs(
        process_run,
        runs,
        scheduler=scheduler,
        n_workers=n_workers,
        shared={"atlas": atlas},
        progress_bar=progress_bar,
        desc="cohort",
        **options,
    )
    return dict(results)


@dataclass
class RegionFC:
    """Static FC of one run of region time series, and the facts its record keeps.

    Attributes
    ----------
    matrix : ndarray, shape (n_regions, n_regions)
        Connectivity (float64); rows and columns of zero-variance regions are 0.
    n_timepoints, n_regions : int
    tr : float
        Repetition time in seconds.
    regions : list of str
    zero_variance_regions : list of str
        Regions whose signal is constant (their connectivity is undefined).
    """

    matrix: np.ndarray
    n_timepoints: int
    n_regions: int
    tr: float
    regions: list[str] = field(default_factory=list)
    zero_variance_regions: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """The facts for the provenance record's ``extra`` (everything but the matrix)."""
        return {
            "n_timepoints": self.n_timepoints,
            "n_regions": self.n_regions,
            "tr": self.tr,
            "regions": self.regions,
            "zero_variance_regions": self.zero_variance_regions,
        }


def region_static_fc(
    timeseries: str | os.PathLike, *, kind: str = "correlation", fisher_z: bool = False
) -> RegionFC:
    """The static FC task: one ``*_timeseries.tsv`` file to its connectivity matrix.

    Parameters
    ----------
    timeseries : path-like
        Region time series (n_timepoints x n_regions) with its JSON sidecar
        (:func:`neuroai.io.read_region_timeseries`).
    kind, fisher_z
        See :func:`neuroai.fmri.connectivity`.

    Returns
    -------
    RegionFC
        Zero-variance regions get rows and columns of 0 (and are listed).
    """
    from neuroai.fmri.connectivity import connectivity, zero_variance_regions
    from neuroai.io.regions import read_region_timeseries

    run = read_region_timeseries(timeseries)
    flat = zero_variance_regions(run.data)
    matrix = connectivity(run.data, kind=kind, fisher_z=fisher_z)
    if flat.size:
        matrix[flat, :] = 0.0
        matrix[:, flat] = 0.0
    return RegionFC(
        matrix,
        n_timepoints=run.n_timepoints,
        n_regions=run.n_regions,
        tr=run.tr,
        regions=run.regions,
        zero_variance_regions=[run.regions[i] for i in flat],
    )


def batch_count(n_runs: int, batch_size: int) -> int:
    """Number of batches of a cohort: ``ceil(n_runs / batch_size)``, at least 1."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive number of runs; got {batch_size!r}.")
    return max(1, math.ceil(n_runs / batch_size))


def batch_of(key: str, n_batches: int) -> int:
    """The batch of run ``key`` among ``n_batches``: linear hashing of a stable hash.

    With ``2**level <= n_batches < 2**(level + 1)``, a key goes to ``h % 2**(level + 1)``,
    or to ``h % 2**level`` when that is not below ``n_batches`` (``h``: the key's
    BLAKE2b hash, the same in every process and on every machine). Going from ``n`` to
    ``n + 1`` batches splits one batch (``n - 2**level``) into itself and batch ``n``,
    and moves no other key (Litwin's linear hashing); batches hold between about half
    and twice ``n_runs / n_batches`` runs.
    """
    if n_batches < 1:
        raise ConfigError(f"n_batches must be at least 1; got {n_batches!r}.")
    h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")
    level = n_batches.bit_length() - 1
    batch = h % (2 ** (level + 1))
    return batch if batch < n_batches else h % (2**level)


def assign_batches(keys: Iterable[str], batch_size: int) -> dict[int, list[str]]:
    """Cut a cohort's runs into batches of about ``batch_size`` runs.

    The batch of a run depends only on its key and on the number of batches,
    ``ceil(n_runs / batch_size)`` (:func:`batch_of`). Adding or removing runs changes
    only the batches they belong to while that number stays the same; when it grows by
    one, one more batch is split in two. So a cohort that grows re-runs a few batches,
    not all of them.

    Parameters
    ----------
    keys : iterable of str
        Run keys (unique).
    batch_size : int
        Target runs per batch (batches hold between about half and twice as many).

    Returns
    -------
    dict
        Batch number to its run keys (in the order of ``keys``), for the batches that
        have runs, in increasing batch number.
    """
    keys = list(keys)
    n_batches = batch_count(len(keys), batch_size)
    batches: dict[int, list[str]] = {}
    for key in keys:
        batches.setdefault(batch_of(key, n_batches), []).append(key)
    return dict(sorted(batches.items()))
