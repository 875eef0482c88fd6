"""Write the run's HTML report from the finished artifacts.

Datasets come from their data cards, the stages from the provenance records
upstream of the report's inputs, and each domain's section from its summaries;
nothing is recomputed. The report is one self-contained HTML file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from neuroai import get_logger
from neuroai.datasets import load_cards
from neuroai.reports.run_report import build_run_report
from pipelines._stage import execute, stage_parser

logger = get_logger("stage.report")


def run(
    output: str | Path,
    *,
    cards: list[str | Path],
    sections: dict[str, list[str | Path]] | None = None,
    title: str = "neuroai report",
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the report.

    Parameters
    ----------
    output : path-like
        Destination ``index.html``.
    cards : list of path-like
        Data cards of the datasets used.
    sections : dict | None
        Section name (see ``neuroai.reports.sections.REGISTRY``) to the
        artifacts it is drawn from, for example
        ``{"static_fc": ["results/fmri/demo_regions/group_fc_summary.json"]}``.
    title : str
        Page title.
    config : dict | None
        The workflow configuration, shown verbatim.
    """
    config_text = yaml.safe_dump(config or {}, sort_keys=False, default_flow_style=False)
    path = build_run_report(
        output,
        title=title,
        cards=load_cards(cards),
        config_text=config_text,
        sections=sections,
    )
    logger.info("Wrote the report to %s", path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.report")
    parser.add_argument("--output", required=True, help="destination index.html")
    args = parser.parse_args(argv)
    execute(args, run, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
