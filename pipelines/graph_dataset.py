"""Graph dataset of a cohort: every run's window graphs, labels from participants.tsv.

Reads the dynamic FC of every run of a dataset (and its region time series, for
time-series node features), sparsifies each window, and writes one on-disk
graph dataset folder (format neuroai.graphs/1, arrays read lazily by
neuroai.fmri.GraphWindowDataset), plus a JSON summary for the report (graph
density, dynamic-FC variability per run) and the group-mean variability matrix
(the standard deviation of each edge over windows, averaged over runs).

Each run's graphs are built by compute_run(), one run after the other here, or on a
Dask scheduler (--scheduler tcp://host:8786, else DASK_SCHEDULER_ADDRESS) with the
same results; this process writes them in the order of the runs, one at a time.

The dynamic FC may be your own (n_windows x n_regions x n_regions .npy, no provenance
record), and so may the time series: such a file is read as an external input (its
checksum in extra.external_inputs); the regions of your dynamic FC are its time series'
header, and its windowing is the windowing parameter.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError
from neuroai.fmri.dynamic import connectivity_variability
from neuroai.fmri.graph_dataset import write_graph_dataset
from neuroai.fmri.graphs import WindowGraphs, window_graphs
from neuroai.io import (
    external_inputs,
    has_record,
    load_input_array,
    read_provenance,
    read_region_timeseries,
    save_array,
    save_json,
)
from neuroai.io.bids import participants_table
from neuroai.pipelines._batch import RunResults, where_runs
from neuroai.pipelines._stage import PathList, execute, stage_parser
from neuroai.running import RunningMoments

logger = get_logger("stage.graph_dataset")
SUFFIX = "_dfc.npy"
WINDOWING = ("window", "step", "kind", "fisher_z")
#: The dynamic_fc stage's defaults, for the windowing of external dynamic FC.
WINDOWING_DEFAULTS = {"kind": "correlation", "fisher_z": False}
DFC = "a dynamic FC array (n_windows, n_regions, n_regions)"


def _run_key(path: Path) -> str:
    name = Path(path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(path).stem


def _degrees(graphs) -> np.ndarray:
    """Node degree in each window graph, shape (n_windows, n_regions)."""
    window = np.repeat(np.arange(graphs.n_windows), np.diff(graphs.window_ptr))
    flat = window * graphs.n_regions + graphs.edge_index[0].astype(np.int64)
    counts = np.bincount(flat, minlength=graphs.n_windows * graphs.n_regions)
    return counts.reshape(graphs.n_windows, graphs.n_regions)


@dataclass
class RunGraphs:
    """One run's window graphs and the numbers the summary takes from it.

    Attributes
    ----------
    graphs : WindowGraphs
        The run's window graphs.
    variability : ndarray, shape (n_regions, n_regions)
        Standard deviation of each edge over the run's windows.
    degrees : ndarray, shape (n_windows, n_regions)
        Node degree in each window graph.
    density : ndarray, shape (n_windows,)
        Edge density of each window graph.
    summary : dict
        The run's entry in the summary's ``runs``.
    """

    graphs: WindowGraphs
    variability: np.ndarray
    degrees: np.ndarray
    density: np.ndarray
    summary: dict


def compute_run(
    paths: tuple[Path, Path],
    *,
    windowing: dict,
    method: str,
    density: float,
    threshold: float | None,
    absolute: bool,
    node_features: list[str] | tuple[str, ...],
) -> RunGraphs | None:
    """The per-run task: one run's dynamic FC (and time series) to its window graphs.

    Parameters
    ----------
    paths : tuple of Path
        The run's ``*_dfc.npy`` (n_windows x n_regions x n_regions) and
        ``*_timeseries.tsv`` (n_timepoints x n_regions); absolute on a Dask worker.
    windowing : dict
        ``window`` and ``step`` (in TRs), ``kind``, ``fisher_z`` of the dynamic FC.
    method, density, threshold, absolute, node_features
        See :func:`run`.

    Returns
    -------
    RunGraphs | None
        ``None`` for a run without a window (its time series is not read).
    """
    dfc_path, ts_path = paths
    # Ours (checked against its record) or the user's (checked as an external input); the
    # caller records the external ones once for the whole dataset.
    dfc = load_input_array(dfc_path, stage="dynamic_fc", ndim=3, square=True, what=DFC)
    if dfc.shape[0] == 0:
        return None
    ts = read_region_timeseries(ts_path).data if "timeseries" in node_features else None
    graphs = window_graphs(
        dfc,
        method=method,
        density=density,
        threshold=threshold,
        absolute=absolute,
        features=node_features,
        ts=ts,
        window=windowing["window"],
        step=windowing["step"],
    )
    spread = connectivity_variability(dfc)
    window_density = graphs.density()
    off = ~np.eye(spread.shape[0], dtype=bool)
    summary = {
        "n_windows": int(dfc.shape[0]),
        "mean_edge_sd": float(spread[off].mean()),
        "density_mean": float(window_density.mean()),
        "density": window_density.round(5).tolist(),
    }
    return RunGraphs(graphs, spread, _degrees(graphs), window_density, summary)


def _given_windowing(windowing: dict | None) -> dict | None:
    """The ``windowing`` parameter with its defaults, checked (None when not given)."""
    if windowing is None:
        return None
    unknown = sorted(set(windowing) - set(WINDOWING))
    if unknown:
        raise ConfigError(f"windowing has unknown keys {unknown}; it takes {', '.join(WINDOWING)}.")
    for key in ("window", "step"):
        value = windowing.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"windowing needs {key!r}, a positive whole number of TRs; got {value!r}."
            )
    return {**WINDOWING_DEFAULTS, **windowing}


def _run_layout(dfc_path: Path, ts_path: Path, windowing: dict | None) -> tuple[dict, list, str]:
    """A run's windowing, region names and reason to have no window.

    From its dynamic FC's record when it has one (a stage wrote it); otherwise (an external
    input) the ``windowing`` parameter and the header of its time series.
    """
    if has_record(dfc_path):
        record = read_provenance(dfc_path)
        this = {k: record["params"][k] for k in WINDOWING}
        return this, record["extra"]["regions"], record["extra"].get("skipped", "no window")
    if windowing is None:
        raise ConfigError(
            f"{dfc_path} has no provenance record (a dynamic FC of your own): give the "
            "windowing it was computed with, windowing={'window': ..., 'step': ...} in TRs "
            "(kind and fisher_z default to 'correlation' and false)."
        )
    if not ts_path.is_file():
        raise DataError(f"Region time series {ts_path} does not exist.")
    with open(ts_path, encoding="utf-8") as handle:  # the region names only
        regions = handle.readline().rstrip("\n").split("\t")
    return windowing, regions, "no window"


def _layout(
    dynamic_fc: list[str | Path], timeseries: list[str | Path], windowing: dict | None
) -> tuple[dict, list[str]]:
    """Windowing and region names of the dataset: the windowing parameter when given, else
    the first run's dynamic-FC record; the first run's regions."""
    if not dynamic_fc:
        raise DataError("No dynamic FC runs were given to build the graph dataset from.")
    this, regions, _ = _run_layout(Path(dynamic_fc[0]), Path(timeseries[0]), windowing)
    return windowing or this, regions


def run(
    dynamic_fc: list[str | Path],
    timeseries: list[str | Path],
    output: str | Path,
    summary_output: str | Path,
    variability_output: str | Path,
    *,
    dataset: str,
    participants: str | Path | None = None,
    method: str = "global",
    density: float = 0.3,
    threshold: float | None = None,
    absolute: bool = True,
    node_features: list[str] | tuple[str, ...] = ("identity", "timeseries"),
    label_columns: list[str] | None = None,
    windowing: dict | None = None,
    scheduler: str | None = None,
) -> Path:
    """Build a dataset's graph dataset and its dynamic-FC summary.

    Parameters
    ----------
    dynamic_fc : list of path-like
        ``*_dfc.npy`` artifacts of the dynamic_fc stage (one per run), or dynamic FC of
        your own (n_windows x n_regions x n_regions ``.npy``, no provenance record): read
        as external inputs, their checksums recorded in ``extra.external_inputs``.
    timeseries : list of path-like
        The runs' ``*_timeseries.tsv``, in the same order.
    output : path-like
        Destination folder of the graph dataset.
    summary_output : path-like
        Destination JSON summary.
    variability_output : path-like
        Destination ``.npy``: mean over runs of each edge's standard deviation
        over windows (n_regions x n_regions).
    dataset : str
        Dataset name (recorded in the summary).
    participants : path-like | None
        ``participants.tsv`` whose columns become per-run labels.
    method, density, threshold, absolute
        Sparsification (see :func:`neuroai.fmri.sparsify`).
    node_features : sequence of str
        ``connectivity``, ``identity``, ``timeseries`` (see :func:`neuroai.fmri.node_features`).
    label_columns : list of str | None
        Columns of participants.tsv to keep (all by default).
    windowing : dict | None
        ``window`` and ``step`` (in TRs), and optionally ``kind`` and ``fisher_z``
        (default ``"correlation"`` and False), of dynamic FC of your own; needed when a
        file has no provenance record. A stage-made file's record must agree with it.
    scheduler : str | None
        Where the runs' graphs are built: a Dask scheduler address
        (``tcp://host:8786``); ``None`` or ``""``: the address in
        ``DASK_SCHEDULER_ADDRESS`` if set, else this process, one run after the other.
        It does not change the results.

    Returns
    -------
    Path
        ``output``.
    """
    if len(dynamic_fc) != len(timeseries):
        raise DataError(
            f"Got {len(dynamic_fc)} dynamic FC files but {len(timeseries)} time series."
        )
    given_windowing = _given_windowing(windowing)
    windowing, regions = _layout(dynamic_fc, timeseries, given_windowing)
    # Files of the user's (no provenance record), hashed once, before anything is written.
    external = external_inputs([*dynamic_fc, *timeseries])
    subjects, excluded, run_summary = {}, {}, {}
    totals = {"variability": None, "windows": 0, "edges": 0}
    degrees = RunningMoments((len(regions),))  # over all windows, per region
    densities = RunningMoments()  # over all windows

    # Workers may run elsewhere: the task reads absolute paths, and the error of a run is
    # raised here naming its files as given. Labels by position: a run key may repeat.
    labels = [f"{i}:{_run_key(Path(path))}" for i, path in enumerate(dynamic_fc)]
    runs = dict(zip(labels, zip(dynamic_fc, timeseries, strict=True), strict=True))
    results = RunResults(
        compute_run,
        {label: (Path(d).absolute(), Path(t).absolute()) for label, (d, t) in runs.items()},
        scheduler=where_runs(scheduler),
        given={label: t if Path(d).is_absolute() else d for label, (d, t) in runs.items()},
        desc="graphs",
        windowing=windowing,
        method=method,
        density=density,
        threshold=threshold,
        absolute=absolute,
        node_features=node_features,
    )

    def run_graphs():
        """Each run's window graphs in turn, its statistics added to the running totals:
        one run's result is taken at a time, in the order of the runs."""
        for label, (dfc_path, ts_path) in runs.items():
            key = _run_key(Path(dfc_path))
            this, run_regions, skipped = _run_layout(Path(dfc_path), Path(ts_path), given_windowing)
            if this != windowing or run_regions != regions:
                raise DataError(
                    f"{dfc_path} was made with {this} and {len(run_regions)} regions, unlike "
                    f"the other runs ({windowing}, {len(regions)} regions): every run of a "
                    "graph dataset must share the windowing and the atlas."
                )
            result = results.take(label)
            if result is None:
                excluded[key] = skipped
                logger.warning("Leaving %s out of the graph dataset: %s", key, excluded[key])
                continue
            subjects[key] = key.split("_", 1)[0][4:]
            if totals["variability"] is None:
                totals["variability"] = np.zeros(result.variability.shape)
            totals["variability"] += result.variability
            totals["windows"] += result.graphs.n_windows
            totals["edges"] += result.graphs.edge_weight.size
            degrees.add(result.degrees)
            densities.add(result.density)
            run_summary[key] = result.summary
            graphs, result = result.graphs, None  # only the graphs held while written
            yield key, graphs
        if not run_summary:
            raise DataError(f"No run of {dataset} has a window: the graph dataset would be empty.")

    table = participants_table(participants) if participants else None
    sparsity = {"method": method, "density": density, "threshold": threshold, "absolute": absolute}
    params = {
        "dataset": dataset,
        **sparsity,
        "node_features": list(node_features),
        "label_columns": label_columns,
    }
    if given_windowing is not None:  # recorded only when given: former records unchanged
        params["windowing"] = given_windowing
    inputs = [*map(Path, dynamic_fc), *map(Path, timeseries)] + (
        [Path(participants)] if participants else []
    )
    with results:
        write_graph_dataset(
            output,
            run_graphs(),
            subjects=subjects,
            regions=regions,
            windowing=windowing,
            sparsity=sparsity,
            participants=table,
            label_columns=label_columns,
            excluded=excluded,
            params=params,
            inputs=inputs,
            extra={"external_inputs": external},
        )
    n_runs = len(run_summary)
    mean_variability = totals["variability"] / n_runs
    provenance = {
        "stage": "graph_dataset",
        "params": params,
        "inputs": inputs,
        "extra": {"external_inputs": external},
    }
    save_array(variability_output, mean_variability, **provenance)
    summary = {
        "dataset": dataset,
        "n_runs": n_runs,
        "n_regions": len(regions),
        "windowing": windowing,
        "sparsity": sparsity,
        "node_features": list(node_features),
        "excluded_runs": excluded,
        "n_windows": int(totals["windows"]),
        "n_edges": int(totals["edges"] // 2),
        "density": {
            "mean": float(densities.mean_),
            "sd": float(densities.sd_),
            "min": float(densities.min_),
            "max": float(densities.max_),
        },
        "degree": {
            "mean": degrees.mean_.round(4).tolist(),
            "sd": degrees.sd_.round(4).tolist(),
        },
        "regions": list(regions),
        "runs": run_summary,
        "graph_dataset": str(output),
    }
    save_json(summary_output, summary, **provenance)
    logger.info(
        "Wrote the graph dataset of %s: %d runs, %d windows",
        dataset,
        n_runs,
        summary["n_windows"],
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.graph_dataset")
    parser.add_argument(
        "--dynamic-fc",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or *_dfc.npy files",
    )
    parser.add_argument(
        "--timeseries",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or *_timeseries.tsv files",
    )
    parser.add_argument("--output", required=True, help="destination folder")
    parser.add_argument("--summary-output", required=True)
    parser.add_argument("--variability-output", required=True)
    parser.add_argument("--participants", default=None, help="participants.tsv with the labels")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default DASK_SCHEDULER_ADDRESS, "
        "else one run after the other in this process",
    )
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.dynamic_fc,
        args.timeseries,
        args.output,
        args.summary_output,
        args.variability_output,
        participants=args.participants,
        scheduler=args.scheduler,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
