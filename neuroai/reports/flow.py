"""The pipeline flow as it actually ran: a graph of stages from provenance.

Each artifact's provenance record names its stage and its inputs; an edge
``stage(input) -> stage(artifact)`` for every input that has a record gives the
stage graph of the run. It is drawn in layers from sources to the report.
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from neuroai.io.provenance import SUFFIX, find_record, resolve_input


def stage_graph(
    records: Iterable[tuple[Path, dict]],
) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Stages (with artifact counts) and the edges between them.

    Parameters
    ----------
    records : iterable of (path, record)
        Provenance records, for example from :func:`neuroai.io.provenance.lineage`.

    Returns
    -------
    counts : dict
        Stage name to number of artifacts it made.
    edges : set of (str, str)
        ``(upstream stage, downstream stage)``.
    """
    records = list(records)
    # Inputs that are themselves in ``records`` need no second read of their record.
    known = {Path(path).resolve(): record["stage"] for path, record in records}
    counts: dict[str, int] = defaultdict(int)
    edges: set[tuple[str, str]] = set()
    for _, record in records:
        stage = record["stage"]
        counts[stage] += 1
        for item in record.get("inputs", []):
            path = resolve_input(item["path"], record)
            upstream = known.get(path.resolve()) or _maker(path)
            if upstream is not None and upstream != stage:
                edges.add((upstream, stage))
    return dict(counts), edges


#: Folders above an input searched for the stage that made it.
MAX_LEVELS = 6


def _maker(path: Path) -> str | None:
    """The stage that made ``path``: from its own record, else from the folder it lies in.

    Files inside a folder artifact (a patch store, a model folder) have no
    record of their own, and a dataset builder records its index files but not
    every image it writes; the nearest folder above with a record (its own, or
    one of the files it holds) names the stage.
    """
    record = find_record(path)
    if record is not None:
        return record["stage"]
    for parent in [p for p in path.parents if p.name][:MAX_LEVELS]:
        stage = _folder_maker(parent)
        if stage is not None:
            return stage
    return None


@functools.lru_cache(maxsize=4096)
def _folder_maker(folder: Path) -> str | None:
    record = find_record(folder)
    if record is not None:
        return record["stage"]
    if not folder.is_dir():
        return None
    for sidecar in sorted(folder.glob("*" + SUFFIX)):
        record = find_record(sidecar.with_name(sidecar.name[: -len(SUFFIX)]))
        if record is not None:
            return record["stage"]
    return None


def _layers(nodes: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node (sources in layer 0)."""
    parents = defaultdict(set)
    for a, b in edges:
        parents[b].add(a)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset = frozenset()) -> int:
        if node in layer:
            return layer[node]
        if node in seen:  # a cycle would be a bug upstream; do not recurse forever
            return 0
        value = 1 + max((depth(p, seen | {node}) for p in parents[node]), default=-1)
        layer[node] = value
        return value

    for node in nodes:
        depth(node)
    return layer


def _order_by_parents(columns: dict[int, list[str]], edges: set[tuple[str, str]]) -> None:
    """Sort each column by the mean row of its parents (barycentre), so fewer edges cross."""
    row: dict[str, float] = {n: i for i, n in enumerate(columns.get(0, []))}
    for col in sorted(columns)[1:]:

        def centre(node: str) -> tuple[float, str]:
            parents = [row[a] for a, b in edges if b == node and a in row]
            return (sum(parents) / len(parents) if parents else float("inf"), node)

        columns[col].sort(key=centre)
        row.update({n: i for i, n in enumerate(columns[col])})


def flow_figure(
    counts: dict[str, int], edges: set[tuple[str, str]], *, final: str = "report"
) -> Figure:
    """Draw the stage graph left to right, one column per layer.

    Parameters
    ----------
    counts : dict
        Stage name to artifact count (shown in each box).
    edges : set of (str, str)
        Stage dependencies.
    final : str
        A stage drawn last, downstream of every sink (the report itself).
    """
    nodes = sorted(counts)
    edges = set(edges)
    if final and final not in counts:
        sinks = [n for n in nodes if not any(a == n for a, _ in edges)]
        nodes.append(final)
        edges |= {(s, final) for s in sinks}
    layer = _layers(nodes, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: (layer[n], n)):
        columns[layer[node]].append(node)
    _order_by_parents(columns, edges)
    n_cols = max(columns) + 1 if columns else 1
    n_rows = max((len(v) for v in columns.values()), default=1)
    fig = Figure(figsize=(max(6.0, 2.3 * n_cols), max(2.0, 0.9 * n_rows + 0.6)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.6, n_cols - 0.4)
    ax.set_ylim(-0.6, n_rows - 0.4)
    ax.axis("off")
    position = {}
    for col, members in columns.items():
        offset = (n_rows - len(members)) / 2
        for row, node in enumerate(members):
            position[node] = (col, n_rows - 1 - (row + offset))
    for a, b in sorted(edges):
        if a in position and b in position:
            (xa, ya), (xb, yb) = position[a], position[b]
            ax.add_patch(
                FancyArrowPatch(
                    (xa + 0.44, ya),
                    (xb - 0.44, yb),
                    arrowstyle="-|>",
                    mutation_scale=14,
                    shrinkA=0,
                    shrinkB=0,
                    color="#5a6b7b",
                    lw=1.2,
                )
            )
    for node, (x, y) in position.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.42, y - 0.22),
                0.84,
                0.44,
                boxstyle="round,pad=0.02",
                fc="#e8eef4",
                ec="#17324d",
            )
        )
        label = (
            node
            if node not in counts
            else f"{node}\n{counts[node]} artifact" + ("s" if counts[node] != 1 else "")
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=8)
    return fig


def stage_runtime_table(benchmark_dir: str | os.PathLike) -> list[dict]:
    """Run time and peak memory per rule from Snakemake's benchmark files.

    Parameters
    ----------
    benchmark_dir : path-like
        The ``benchmarks`` folder; each rule writes ``<rule>/.../*.tsv`` or
        ``<rule>.tsv`` with the columns ``s`` (seconds) and ``max_rss`` (MB).

    Returns
    -------
    list of dict
        One row per rule: ``rule``, ``jobs``, ``total_s``, ``max_s``,
        ``max_rss_mb``, sorted by total time, longest first.
    """
    import csv

    root = Path(benchmark_dir)
    rows: dict[str, dict] = {}
    if not root.is_dir():
        return []
    for path in sorted(root.rglob("*.tsv")):
        rule = path.relative_to(root).parts[0]
        rule = rule[: -len(".tsv")] if rule.endswith(".tsv") else rule
        with open(path, encoding="utf-8") as handle:
            for entry in csv.DictReader(handle, delimiter="\t"):
                seconds = _number(entry.get("s"))
                rss = _number(entry.get("max_rss"))
                row = rows.setdefault(
                    rule, {"rule": rule, "jobs": 0, "total_s": 0.0, "max_s": 0.0, "max_rss_mb": 0.0}
                )
                row["jobs"] += 1
                row["total_s"] += seconds
                row["max_s"] = max(row["max_s"], seconds)
                row["max_rss_mb"] = max(row["max_rss_mb"], rss)
    return sorted(rows.values(), key=lambda r: -r["total_s"])


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0  # Snakemake writes "NA" where it could not measure
