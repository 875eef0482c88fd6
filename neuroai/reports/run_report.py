"""The run report: what ran, on which data, with what settings, and the results.

The report reads finished artifacts and their provenance records; it never
recomputes features or retrains anything to draw a figure.
"""

from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from neuroai.datasets.cards import DataCard
from neuroai.io.provenance import library_versions, lineage
from neuroai.reports.html import Page, Section, badge, pre, table, text


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
    config_text: str,
    sections: Mapping[str, Sequence[str | os.PathLike]] | None = None,
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
    config_text : str
        The configuration, shown verbatim.
    sections : mapping | None
        Section name (a key of :data:`neuroai.reports.sections.REGISTRY`) to
        its artifacts. Their lineage fills "Stages run".
    """
    from neuroai import __version__
    from neuroai.reports.sections import render

    sections = dict(sections or {})
    page = Page(title=title, subtitle=f"neuroai {__version__}")
    page.sections.append(datasets_section(cards))
    artifacts = [p for paths in sections.values() for p in paths]
    page.sections.append(stages_section(lineage(artifacts)))
    for name, paths in sections.items():
        page.sections.extend(render(name, paths))
    page.sections.append(config_section(config_text))
    page.sections.append(system_section())
    return page.write(path)
