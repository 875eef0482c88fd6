"""Runs left out: the report section of each dataset's failures table (``on_error: skip``).

A batched stage told to skip bad inputs lists each run it left out (the run, the stage and
the error) in ``results/failures/<dataset>.tsv``; the cohort steps leave those runs out.
This section puts that list on the dataset's page, so that what a result does not cover is
read beside it, not found later in a log.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from neuroai.reports.html import Section, table, text

#: Rows shown per dataset; the rest are counted (the table on disk has them all).
MAX_ROWS = 200


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def failed_runs(paths: Sequence[str | Path]) -> set[str]:
    """Every run key listed in the failures tables ``paths``."""
    return {row["run"] for path in paths for row in _rows(Path(path)) if row.get("run")}


def render_failures(paths: Sequence[str | Path]) -> list[Section]:
    """One section per failures table, on its dataset's page."""
    sections = []
    for path in map(Path, paths):
        dataset = path.stem
        rows = _rows(path)
        section = Section(
            f"failures-{dataset}",
            f"Runs left out: {dataset}",
            page=(f"dataset-{dataset}", f"Dataset {dataset}"),
        )
        if not rows:
            section.add(
                text(
                    f"No run of {dataset} was left out: every input passed the batched stages "
                    f"(on_error: skip; the list is {path}).",
                    cls="note",
                )
            )
            sections.append(section)
            continue
        stages = sorted({r.get("stage", "") for r in rows})
        section.add(
            text(
                f"{len(rows)} run(s) of {dataset} failed in {', '.join(stages)} and were left "
                "out of everything downstream (on_error: skip). Each error names the file and "
                f"the fix; the full list is {path}. Fix the inputs and run again: only their "
                "batches re-run.",
                cls="note",
            ),
            table(
                [
                    (r.get("run", ""), r.get("stage", ""), r.get("error", ""))
                    for r in rows[:MAX_ROWS]
                ],
                ["run", "stage", "error"],
            ),
        )
        if len(rows) > MAX_ROWS:
            section.add(text(f"... and {len(rows) - MAX_ROWS} more (see {path}).", cls="note"))
        sections.append(section)
    return sections
