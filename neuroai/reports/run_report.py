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
from neuroai.io.atomic import atomic_path
from neuroai.io.provenance import library_versions, lineage
from neuroai.reports.flow import flow_figure, stage_graph, stage_runtime_table
from neuroai.reports.html import Page, Section, badge, details, figure, link, pre, table, text


def datasets_section(
    cards: Mapping[str, DataCard], *, pages: Mapping[str, object] | None = None
) -> Section:
    """Datasets used, from their data cards, with their nature shown plainly.

    Parameters
    ----------
    cards : mapping
        The workflow's dataset key to the data card describing it (several keys
        may share a card, for example one source read at two levels).
    pages : mapping | None
        The report's pages by slug; a dataset whose ``dataset-<key>`` page
        exists (its group QC) links to it.
    """
    section = Section("datasets", "Datasets")
    pages = pages or {}
    rows = []
    for key, card in cards.items():
        counts = ", ".join(f"{k}: {v}" for k, v in (card.get("counts") or {}).items())
        sampling = ", ".join(f"{k}: {v}" for k, v in (card.get("sampling") or {}).items())
        slug = f"dataset-{key}"
        rows.append(
            (
                link(f"{slug}.html", key) if slug in pages else _esc(key),
                card.name,
                badge(card.nature),
                card["modality"],
                counts,
                sampling,
                card["license"],
            )
        )
    section.add(
        text(
            "Real data are recordings as published; derived data are computed from real "
            "recordings; semi-synthetic data mix real and generated parts; simulated data come "
            "from a model. A linked dataset has a group QC page.",
            cls="note",
        ),
        table(
            rows,
            ["dataset", "card", "nature", "modality", "counts", "sampling", "license"],
            raw_columns=[0, 2],
        ),
    )
    seen = set()
    for card in cards.values():
        if card.name in seen:
            continue
        seen.add(card.name)
        parts = [text(card["description"].strip())]
        if card.get("how_made"):
            parts.append(text("How it was made: " + card["how_made"].strip()))
        limits = "".join(f"<li>{_esc(item)}</li>" for item in card["limitations"])
        parts.append(f"<p><b>Known limitations</b></p><ul>{limits}</ul>")
        parts.append(text("Intended use: " + card["intended_use"].strip(), cls="note"))
        section.add(
            f"<h3>{_esc(card.name)} {badge(card.nature)}</h3>",
            text(card["title"]),
            details("Data card: description, how it was made, limitations", *parts),
        )
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
    n_lines = config_text.count("\n") + 1
    return Section("config", "Configuration").add(
        details(f"The run's configuration, verbatim ({n_lines} lines of YAML)", pre(config_text))
    )


def system_section() -> Section:
    """Machine and library versions."""
    rows = [
        ("platform", platform.platform()),
        ("machine", platform.machine()),
        ("cpu count", os.cpu_count()),
    ]
    rows += [(name, ver) for name, ver in library_versions().items()]
    return Section("system", "System and library versions").add(table(rows, ["item", "value"]))


def pages_section(pages: Mapping[str, tuple[str, list[Section]]]) -> Section:
    """Links to every page of the report, with the sections each holds."""
    section = Section("pages", "Pages")
    items = "".join(
        f"<li>{link(f'{slug}.html', title)}: "
        + _esc("; ".join(s.title for s in sections))
        + "</li>"
        for slug, (title, sections) in pages.items()
    )
    section.add(f"<ul>{items}</ul>" if items else text("No stage sections in this run."))
    return section


def _model_folders(records: Sequence[tuple[Path, dict]]) -> list[Path]:
    """Model folders (``config.json`` + ``README.md``) among or just inside the artifacts."""
    from neuroai.io.provenance import resolve_input

    paths: list[Path] = []
    for path, record in records:  # the artifacts, and what each read (records or not)
        paths.append(path)
        paths += [resolve_input(item["path"], record) for item in record.get("inputs", [])]
    candidates: list[Path] = []
    for path in paths:
        if path.name == "config.json":
            candidates.append(path.parent)  # a pretrained folder named by its config
        elif path.is_dir():
            candidates.append(path)
            candidates += sorted(child for child in path.iterdir() if child.is_dir())
    found, seen = [], set()
    for folder in candidates:
        key = folder.resolve()
        if key in seen or not (folder / "README.md").is_file():
            continue
        if (folder / "config.json").is_file():
            seen.add(key)
            found.append(folder)
    return sorted(found, key=str)


def _model_row(folder: Path, report_folder: str | os.PathLike) -> tuple[str, str, str, str]:
    try:
        document = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = {}
    model = str(document.get("model", "?"))
    if model == "probe":
        model = f"{(document.get('config') or {}).get('encoder', '?')} + head"
    from neuroai.models.card import task_and_mode

    what = ", ".join(v for v in task_and_mode(document) if v) or str(document.get("preset") or "")
    heldout = document.get("heldout")
    if isinstance(heldout, dict):
        metrics = heldout.get("metrics") or {}
        first = next(iter(metrics.items()), None)
        score = (
            f"{first[0]} {first[1]['estimate']:.3f} [{first[1].get('ci_low', float('nan')):.3f}, "
            f"{first[1].get('ci_high', float('nan')):.3f}] ({heldout.get('n_test', '?')} "
            f"{heldout.get('unit', 'subjects')})"
            if first and isinstance(first[1], dict) and "estimate" in first[1]
            else "no metric"
        )
    else:
        score = "none (as trained: validation score only)"
    href = Path(os.path.relpath(folder / "README.md", Path(report_folder))).as_posix()
    return (f"{model} ({what})" if what else model, str(folder), score, link(href, "model card"))


def model_cards_section(
    records: Sequence[tuple[Path, dict]], report_folder: str | os.PathLike
) -> Section:
    """Links to the model card (``README.md``) of every model folder behind the report."""
    section = Section("model-cards", "Model cards")
    folders = _model_folders(records)
    if not folders:
        return section.add(text("No model folder is upstream of this report.", cls="note"))
    section.add(
        text(
            "Every model folder the run wrote or read carries a model card (README.md: family, "
            "preset and size, training data with its data cards and split file, steps, "
            "objective, intended use, limitations, weights checksum). Training stages export "
            "before any test subject is scored; each evaluation stage then writes an evaluated "
            "copy of every model it scored (same weights, in its evaluated/ folder) whose card "
            "adds the held-out test metrics with bootstrap intervals: those are the folders to "
            "share. The first held-out metric is shown here; the card lists them all.",
            cls="note",
        ),
        table(
            [_model_row(folder, report_folder) for folder in folders],
            ["model", "folder", "held-out metric", "card"],
            raw_columns=[3],
        ),
    )
    return section


def flow_section(records: Sequence[tuple[Path, dict]]) -> Section:
    """The pipeline as it ran: the stage graph drawn from provenance."""
    counts, edges = stage_graph(records)
    section = Section("flow", "Pipeline flow")
    section.add(
        text(
            "Stages of this run and how artifacts flowed between them, read from the provenance "
            "record of every artifact upstream of the report (so it shows what ran, including "
            "artifacts reused from earlier runs). Each box counts the artifacts a stage made.",
            cls="note",
        )
    )
    if counts:
        section.add(figure(flow_figure(counts, edges), caption="Stage graph of the run."))
    return section


def runtime_section(benchmarks: str | os.PathLike | None) -> Section:
    """Run time and peak memory per rule, from Snakemake's benchmark files."""
    section = Section("runtime", "Run time and memory")
    rows = stage_runtime_table(benchmarks) if benchmarks else []
    if not rows:
        return section.add(text("No benchmark files found for this run.", cls="note"))
    total = sum(r["total_s"] for r in rows)
    section.add(
        text(
            f"From the benchmark file each rule's jobs write (wall seconds and peak resident "
            f"memory of the job's processes); {sum(r['jobs'] for r in rows)} jobs, "
            f"{total:.0f} s of job time in all. Jobs that ran in parallel overlap, so the sum "
            "exceeds the wall time of the run; the report's own job is not in it.",
            cls="note",
        ),
        table(
            [
                (
                    r["rule"],
                    r["jobs"],
                    f"{r['total_s']:.1f}",
                    f"{r['max_s']:.1f}",
                    f"{r['max_rss_mb']:.0f}",
                )
                for r in rows
            ],
            ["rule", "jobs", "total s", "longest job s", "peak memory MB"],
        ),
    )
    return section


#: Page of each registered section: ``(slug, title)``. Sections not listed get
#: a page of their own named after them; a renderer may also choose the page
#: (``Section.page``), as the per-dataset QC renderers do.
PAGES = {
    "static_fc": ("fmri", "fMRI connectivity"),
    "dynamic_fc": ("fmri", "fMRI connectivity"),
    "eegformer": ("eegformer", "EEGFormer"),
    "segmentation": ("segmentation", "Segmentation"),
    "tokens": ("tokens", "Volume tokens"),
    "tablet": ("tablet", "TABLeT"),
    "dfc_gnn": ("dfc-gnn", "Dynamic-FC graph network"),
}


def _page_of(name: str, section: Section) -> tuple[str, str]:
    if section.page is not None:
        return section.page
    return PAGES.get(name, (name.replace("_", "-"), name.replace("_", " ")))


def _without_failed_runs(
    sections: dict[str, Sequence[str | os.PathLike]],
) -> dict[str, list[str | os.PathLike]]:
    """The sections less the per-run artifacts of runs a batch left out (``on_error: skip``).

    The workflow lists every run's QC files when it is parsed, before any batch has run;
    a run that then fails is named in its dataset's failures table (the ``failures``
    section) and its files are never written. Those files are dropped here, and the run is
    shown on its dataset's page instead.
    """
    from neuroai.reports.sections.failures import failed_runs

    failed = failed_runs(sections.get("failures", ()))
    if not failed:
        return {name: list(paths) for name, paths in sections.items()}

    def kept(path: str | os.PathLike) -> bool:
        name = Path(path).name
        return Path(path).exists() or not any(name.startswith(f"{run}_") for run in failed)

    return {name: [p for p in paths if kept(p)] for name, paths in sections.items()}


def build_run_report(
    folder: str | os.PathLike,
    *,
    title: str,
    cards: Mapping[str, DataCard],
    config_text: str,
    sections: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    benchmarks: str | os.PathLike | None = None,
) -> Path:
    """Write the run report: a folder of self-contained HTML pages.

    ``index.html`` holds the datasets, the pipeline flow, the stages with their
    run time and memory, the configuration and the system; every model, domain
    and dataset gets a page of its own, linked from a menu on every page. Pages
    embed their figures, so the folder opens offline in any browser. The folder
    is written beside its destination and renamed into place, so an
    interrupted run never leaves a partial report.

    Parameters
    ----------
    folder : path-like
        Destination folder; ``index.html`` is its entry page.
    title : str
        Report title.
    cards : mapping
        The workflow's dataset key to its data card.
    config_text : str
        The configuration, shown verbatim.
    sections : mapping | None
        Section name (a key of :data:`neuroai.reports.sections.REGISTRY`) to
        its artifacts. Their lineage fills "Stages run" and "Pipeline flow".
    benchmarks : path-like | None
        Snakemake's benchmark folder, for run time and memory per rule.

    Returns
    -------
    Path
        The report's ``index.html``.
    """
    from neuroai import __version__
    from neuroai.reports.sections import render

    sections = _without_failed_runs(dict(sections or {}))
    subtitle = f"neuroai {__version__}"
    pages: dict[str, tuple[str, list[Section]]] = {}
    for name, paths in sections.items():
        for section in render(name, paths):
            slug, page_title = _page_of(name, section)
            pages.setdefault(slug, (page_title, []))[1].append(section)
    pages = dict(sorted(pages.items(), key=lambda item: (item[0].startswith("dataset-"), item[0])))
    links = [("index.html", "Overview")] + [(f"{slug}.html", t) for slug, (t, _) in pages.items()]
    records = lineage([p for paths in sections.values() for p in paths])
    index = Page(title=title, subtitle=subtitle, links=links, filename="index.html")
    index.sections += [
        pages_section(pages),
        datasets_section(cards, pages=pages),
        model_cards_section(records, folder),
        flow_section(records),
        stages_section(records),
        runtime_section(benchmarks),
        config_section(config_text),
        system_section(),
    ]
    with atomic_path(folder, directory=True) as tmp:
        index.write(tmp / "index.html")
        for slug, (page_title, page_sections) in pages.items():
            Page(
                title=f"{title}: {page_title}",
                subtitle=subtitle,
                sections=page_sections,
                links=links,
                filename=f"{slug}.html",
            ).write(tmp / f"{slug}.html")
    return Path(folder) / "index.html"
