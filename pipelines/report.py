"""Write the run's HTML report from the finished artifacts.

Datasets come from their data cards, the stages and the pipeline flow from the
provenance records upstream of the report's inputs, run time and memory from
Snakemake's benchmark files, and each model's, domain's and dataset's page from
its summaries; nothing is recomputed. The report is one folder of
self-contained HTML pages, entered through ``index.html``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from neuroai import get_logger
from neuroai.datasets import load_card
from neuroai.pipelines._stage import execute, stage_parser
from neuroai.reports.run_report import build_run_report

logger = get_logger("stage.report")


def run(
    output: str | Path,
    *,
    datasets: dict[str, str | Path],
    sections: dict[str, list[str | Path]] | None = None,
    title: str = "neuroai report",
    config: dict[str, Any] | None = None,
    benchmarks: str | Path | None = None,
) -> Path:
    """Write the report.

    Parameters
    ----------
    output : path-like
        Destination folder; its ``index.html`` is the entry page.
    datasets : dict
        The workflow's dataset key to the path of its data card.
    sections : dict | None
        Section name (see ``neuroai.reports.sections.REGISTRY``) to the
        artifacts it is drawn from, for example
        ``{"static_fc": ["results/fmri/demo_regions/group_fc_summary.json"]}``.
    title : str
        Page title.
    config : dict | None
        The workflow configuration, shown verbatim.
    benchmarks : path-like | None
        Snakemake's benchmark folder (run time and memory per rule).

    Returns
    -------
    Path
        The report's ``index.html``.
    """
    config_text = yaml.safe_dump(config or {}, sort_keys=False, default_flow_style=False)
    path = build_run_report(
        output,
        title=title,
        cards={key: load_card(path) for key, path in datasets.items()},
        config_text=config_text,
        sections=sections,
        benchmarks=benchmarks,
    )
    logger.info("Wrote the report to %s", path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.report")
    parser.add_argument("--output", required=True, help="destination folder (index.html inside)")
    args = parser.parse_args(argv)
    execute(args, run, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
