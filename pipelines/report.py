"""Write the run's HTML report from the finished artifacts.

Datasets come from their data cards, the stages from the provenance records
upstream of the report's inputs, the figures from the group summaries; nothing
is recomputed. The report is one self-contained HTML file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from neuroai import get_logger
from neuroai.datasets import load_cards
from neuroai.io import load_array, load_json
from neuroai.reports.run_report import build_run_report
from pipelines._stage import execute, stage_parser

logger = get_logger("stage.report")


def run(
    output: str | Path,
    *,
    cards: list[str | Path],
    group_fc: list[str | Path] = (),
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
    group_fc : list of path-like
        ``*_summary.json`` artifacts of the group FC stage (the matching
        ``*_mean.npy`` is read from beside each).
    title : str
        Page title.
    config : dict | None
        The workflow configuration, shown verbatim.
    """
    connectivity = []
    artifacts: list[Path] = []
    for summary_path in map(Path, group_fc):
        mean_path = summary_path.with_name(summary_path.name.replace("_summary.json", "_mean.npy"))
        summary = load_json(summary_path, stage="group_fc")
        connectivity.append((load_array(mean_path, stage="group_fc"), summary))
        artifacts += [summary_path, mean_path]
    config_text = yaml.safe_dump(config or {}, sort_keys=False, default_flow_style=False)
    path = build_run_report(
        output,
        title=title,
        cards=load_cards(cards),
        artifacts=artifacts,
        config_text=config_text,
        connectivity=connectivity,
    )
    logger.info("Wrote the report to %s", path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m pipelines.report")
    parser.add_argument("--output", required=True, help="destination index.html")
    parser.add_argument("--cards", nargs="+", required=True, help="data card YAML files")
    parser.add_argument("--group-fc", nargs="*", default=[], help="group FC *_summary.json files")
    args = parser.parse_args(argv)
    execute(args, run, args.output, cards=args.cards, group_fc=args.group_fc)


if __name__ == "__main__":
    main(sys.argv[1:])
