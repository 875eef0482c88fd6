"""Inference report section: what the embed and predict stages produced."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from neuroai.io import load_table, read_provenance
from neuroai.reports.html import Section, table, text


def render_inference(paths: Sequence[Path]) -> list[Section]:
    """One table row per embed / predict index (model, dataset, inputs, shape)."""
    rows = []
    for path in paths:
        record = read_provenance(path)
        index = load_table(path, stage=record["stage"])
        model, dataset = Path(path).parent.parent.name, Path(path).parent.name
        if record["stage"] == "embed":
            detail = f"{int(index['embed_dim'].iloc[0]) if len(index) else 0} dims, float16, level {', '.join(sorted(set(index.get('level', []))))}"
        else:
            detail = (
                "label maps in each input's space"
                if "voxels_class0" in index
                else "outputs per item"
            )
        rows.append(
            (
                record["stage"],
                model,
                dataset,
                len(index),
                int(index["n_items"].sum()) if len(index) else 0,
                detail,
                str(path),
            )
        )
    section = Section("inference", "Embeddings and predictions")
    section.add(
        text(
            "Foundation-model features and predictions written for use outside the workflow (one array per subject, recording or window, each with a provenance record).",
            cls="note",
        ),
        table(rows, ["stage", "model", "dataset", "inputs", "items", "content", "index"]),
    )
    return [section]
