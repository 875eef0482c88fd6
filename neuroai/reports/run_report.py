"""The run report: what ran, on which data, with what settings, and the results.

The report reads finished artifacts and their provenance records; it never
recomputes features or retrains anything to draw a figure.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neuroai.datasets.cards import DataCard
from neuroai.io.provenance import library_versions, lineage
from neuroai.reports import figures
from neuroai.reports.html import Page, Section, badge, figure, pre, table, text


def datasets_section(cards: Sequence[DataCard]) -> Section:
    """Datasets used, from their data cards, with their nature shown plainly."""
    section = Section("datasets", "Datasets")
    rows = []
    for card in cards:
        counts = ", ".join(f"{k}: {v}" for k, v in (card.get("counts") or {}).items())
        sampling = ", ".join(f"{k}: {v}" for k, v in (card.get("sampling") or {}).items())
        rows.append(
            (
                card.name,
                card["title"],
                badge(card.nature),
                card["modality"],
                counts,
                sampling,
                card["license"],
            )
        )
    section.add(
        table(
            rows,
            ["name", "title", "nature", "modality", "counts", "sampling", "license"],
            raw_columns=[2],
        )
    )
    for card in cards:
        section.add(f"<h3>{card.name}</h3>", text(card["description"].strip()))
        if card.get("how_made"):
            section.add(text("How it was made: " + card["how_made"].strip()))
        limits = "".join(f"<li>{_esc(item)}</li>" for item in card["limitations"])
        section.add(f"<p><b>Known limitations</b></p><ul>{limits}</ul>")
        section.add(text("Intended use: " + card["intended_use"].strip(), cls="note"))
    return section


def _esc(value: object) -> str:
    import html

    return html.escape(str(value))


def stages_section(records: Sequence[tuple[Path, dict]]) -> Section:
    """One row per stage: how many artifacts, with which parameters, when.

    Parameters
    ----------
    records : sequence of (path, record)
        Provenance records, for example from :func:`neuroai.io.provenance.lineage`.
    """
    by_stage: dict[str, list[dict]] = defaultdict(list)
    for _, record in records:
        by_stage[record["stage"]].append(record)
    rows = []
    for stage, items in by_stage.items():
        params = sorted({json.dumps(r["params"], sort_keys=True) for r in items})
        shown = "; ".join(params[:3]) + (f" (+{len(params) - 3} more)" if len(params) > 3 else "")
        created = sorted(r["created"] for r in items)
        rows.append(
            (stage, len(items), shown, created[0], created[-1], items[-1]["neuroai_version"])
        )
    section = Section("stages", "Stages run")
    section.add(
        text("From the provenance record of every artifact upstream of this report.", cls="note"),
        table(rows, ["stage", "artifacts", "parameters", "first made", "last made", "neuroai"]),
    )
    return section


def connectivity_section(groups: Sequence[tuple[np.ndarray, dict]]) -> Section:
    """Group-mean static FC per dataset and the distribution of edge values per group.

    Parameters
    ----------
    groups : sequence of (mean, summary)
        Output of :func:`neuroai.fmri.group.summarize_connectivity` per dataset,
        with ``dataset`` and ``kind`` added to the summary.
    """
    section = Section("static-fc", "Static functional connectivity")
    for mean, summary in groups:
        dataset, kind = summary["dataset"], summary.get("kind", "connectivity")
        section.add(
            f"<h3>{_esc(dataset)}</h3>",
            text(f"{summary['n_runs']} runs, {summary['n_regions']} regions, kind: {kind}."),
            figure(
                figures.connectivity_matrix(mean, title=f"{dataset}: group-mean {kind}"),
                caption=f"Group-mean {kind} over {summary['n_runs']} runs of {dataset}.",
            ),
            figure(
                figures.edge_histograms(
                    np.asarray(summary["bin_edges"]),
                    {g: np.asarray(v["counts"]) for g, v in summary["groups"].items()},
                    title=f"{dataset}: edge values by {summary.get('group_by') or 'group'}",
                    xlabel=kind,
                ),
                caption="Distribution of upper-triangle connectivity values, per group.",
            ),
        )
        rows = [
            (g, v["n_runs"], f"{v['mean_edge']:.3f}", f"{v['sd_edge']:.3f}")
            for g, v in summary["groups"].items()
        ]
        section.add(
            table(rows, [summary.get("group_by") or "group", "runs", "mean edge", "sd edge"])
        )
    return section


def config_section(config_text: str) -> Section:
    """The configuration, verbatim."""
    return Section("config", "Configuration").add(pre(config_text))


def system_section() -> Section:
    """Machine and library versions."""
    rows = [
        ("platform", platform.platform()),
        ("machine", platform.machine()),
        ("cpu count", os.cpu_count()),
    ]
    rows += [(name, ver) for name, ver in library_versions().items()]
    return Section("system", "System and library versions").add(table(rows, ["item", "value"]))


def build_run_report(
    path: str | os.PathLike,
    *,
    title: str,
    cards: Sequence[DataCard],
    artifacts: Sequence[str | os.PathLike],
    config_text: str,
    connectivity: Sequence[tuple[np.ndarray, dict]] = (),
) -> Path:
    """Write the run report to ``path`` (a self-contained HTML file).

    Parameters
    ----------
    path : path-like
        Destination ``index.html``.
    title : str
        Page title.
    cards : sequence of DataCard
        The datasets used.
    artifacts : sequence of path-like
        The report's input artifacts; their lineage fills "Stages run".
    config_text : str
        The configuration, shown verbatim.
    connectivity : sequence of (mean, summary)
        Group FC summaries per dataset.
    """
    from neuroai import __version__

    page = Page(title=title, subtitle=f"neuroai {__version__}")
    page.sections.append(datasets_section(cards))
    page.sections.append(stages_section(lineage(artifacts)))
    if connectivity:
        page.sections.append(connectivity_section(connectivity))
    page.sections.append(config_section(config_text))
    page.sections.append(system_section())
    return page.write(path)
