"""Graph dataset of a cohort: every run's window graphs, labels from participants.tsv.

Reads the dynamic FC of every run of a dataset (and its region time series, for
time-series node features), sparsifies each window, and writes one on-disk
graph dataset folder (format neuroai.graphs/1, arrays read lazily by
neuroai.fmri.GraphWindowDataset), plus a JSON summary for the report (graph
density, dynamic-FC variability per run) and the group-mean variability matrix
(the standard deviation of each edge over windows, averaged over runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.fmri.dynamic import connectivity_variability
from neuroai.fmri.graph_dataset import write_graph_dataset
from neuroai.fmri.graphs import window_graphs
from neuroai.io import load_array, read_provenance, read_region_timeseries, save_array, save_json
from neuroai.io.bids import participants_table
from neuroai.pipelines._stage import PathList, execute, stage_parser
from neuroai.running import RunningMoments

logger = get_logger("stage.graph_dataset")
SUFFIX = "_dfc.npy"
WINDOWING = ("window", "step", "kind", "fisher_z")


def _run_key(path: Path) -> str:
    name = Path(path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(path).stem


def _degrees(graphs) -> np.ndarray:
    """Node degree in each window graph, shape (n_windows, n_regions)."""
    window = np.repeat(np.arange(graphs.n_windows), np.diff(graphs.window_ptr))
    flat = window * graphs.n_regions + graphs.edge_index[0].astype(np.int64)
    counts = np.bincount(flat, minlength=graphs.n_windows * graphs.n_regions)
    return counts.reshape(graphs.n_windows, graphs.n_regions)


def _layout(dynamic_fc: list[str | Path]) -> tuple[dict, list[str]]:
    """Windowing and region names of the dataset, from the first run's dynamic-FC record."""
    if not dynamic_fc:
        raise DataError("No dynamic FC runs were given to build the graph dataset from.")
    record = read_provenance(dynamic_fc[0])
    return {k: record["params"][k] for k in WINDOWING}, record["extra"]["regions"]


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
) -> Path:
    """Build a dataset's graph dataset and its dynamic-FC summary.

    Parameters
    ----------
    dynamic_fc : list of path-like
        ``*_dfc.npy`` artifacts of the dynamic_fc stage (one per run).
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

    Returns
    -------
    Path
        ``output``.
    """
    if len(dynamic_fc) != len(timeseries):
        raise DataError(
            f"Got {len(dynamic_fc)} dynamic FC files but {len(timeseries)} time series."
        )
    windowing, regions = _layout(dynamic_fc)  # from the first run's record
    subjects, excluded, run_summary = {}, {}, {}
    totals = {"variability": None, "windows": 0, "edges": 0}
    degrees = RunningMoments((len(regions),))  # over all windows, per region
    densities = RunningMoments()  # over all windows

    def run_graphs():
        """Each run's window graphs in turn, its statistics added to the running totals:
        one run's dynamic FC and graphs are in memory at a time."""
        for dfc_path, ts_path in zip(dynamic_fc, timeseries, strict=True):
            key = _run_key(Path(dfc_path))
            record = read_provenance(dfc_path)
            this = {k: record["params"][k] for k in WINDOWING}
            if this != windowing or record["extra"]["regions"] != regions:
                raise DataError(
                    f"{dfc_path} was made with {this} and {len(record['extra']['regions'])} "
                    f"regions, unlike the other runs ({windowing}, {len(regions)} regions): "
                    "every run of a graph dataset must share the windowing and the atlas."
                )
            dfc = load_array(dfc_path, stage="dynamic_fc", mmap=True)
            if dfc.shape[0] == 0:
                excluded[key] = record["extra"].get("skipped", "no window")
                logger.warning("Leaving %s out of the graph dataset: %s", key, excluded[key])
                continue
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
            subjects[key] = key.split("_", 1)[0][4:]
            spread = connectivity_variability(dfc)
            if totals["variability"] is None:
                totals["variability"] = np.zeros(spread.shape)
            totals["variability"] += spread
            totals["windows"] += graphs.n_windows
            totals["edges"] += graphs.edge_weight.size
            degrees.add(_degrees(graphs))
            window_density = graphs.density()
            densities.add(window_density)
            off = ~np.eye(spread.shape[0], dtype=bool)
            run_summary[key] = {
                "n_windows": int(dfc.shape[0]),
                "mean_edge_sd": float(spread[off].mean()),
                "density_mean": float(window_density.mean()),
                "density": window_density.round(5).tolist(),
            }
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
    inputs = [*map(Path, dynamic_fc), *map(Path, timeseries)] + (
        [Path(participants)] if participants else []
    )
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
    )
    n_runs = len(run_summary)
    mean_variability = totals["variability"] / n_runs
    provenance = {"stage": "graph_dataset", "params": params, "inputs": inputs}
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
    )


if __name__ == "__main__":
    main(sys.argv[1:])
