"""fMRI report sections: static functional connectivity."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.io import load_array, load_json
from neuroai.reports import figures
from neuroai.reports.html import Section, figure, table, text


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
        section.add(
            f"<h3>{html.escape(dataset)}</h3>",
            text(f"{summary['n_runs']} runs, {summary['n_regions']} regions, kind: {kind}."),
            figure(
                figures.connectivity_matrix(mean, title=f"{dataset}: group-mean {kind}"),
                caption=f"Group-mean {kind} over {summary['n_runs']} runs of {dataset}.",
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
