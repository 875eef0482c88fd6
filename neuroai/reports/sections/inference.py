"""Inference report section: embedding tables in 2D, and what the predict stage produced.

Each ``embeddings.parquet`` (one per model and dataset) is drawn as a PCA scatter of
its main level (subjects, recordings, runs or cases), coloured by a label the table
carries (the dataset's task label, a participants.tsv column, or the split). UMAP is
not used: it is not a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from neuroai.io import load_table, read_provenance
from neuroai.reports.html import Section, figure, table, text

PAGE = ("embeddings", "Embeddings")
#: Levels drawn, in order of preference (the first one a table has).
LEVELS = ("subject", "recording", "run", "case", "window")
#: Columns preferred as the colour label, in order.
LABELS = ("label", "site", "diagnosis", "group", "sex", "split")


def colour_column(frame) -> str | None:
    """The column to colour points by: a preferred label, else a categorical or numeric one."""
    from neuroai.evaluation.embeddings import _EMBEDDING, IDENTITY_COLUMNS

    def varies(column):
        values = frame[column].dropna().astype(str)
        values = values[~values.isin(["", "n/a", "nan"])]
        return 1 < values.nunique() < len(frame) or (
            frame[column].dtype.kind in "if" and values.nunique() > 1
        )

    candidates = [
        c
        for c in frame.columns
        if not _EMBEDDING.match(str(c))
        and c not in IDENTITY_COLUMNS
        and c not in ("n_windows", "start_s")
    ]
    for name in LABELS:
        if name in frame and varies(name):
            return name
    for column in candidates:
        if varies(column):
            return column
    return None


def embedding_scatter(frame, *, title: str) -> tuple[Figure, str | None, np.ndarray]:
    """PCA of an embedding table's rows in 2D, coloured by :func:`colour_column`.

    Returns
    -------
    fig : Figure
    label : str | None
        The colouring column.
    ratio : ndarray, shape (2,)
        Explained variance ratio of the two components.
    """
    from sklearn.decomposition import PCA

    from neuroai.evaluation.embeddings import embedding_matrix

    values = embedding_matrix(frame).astype(np.float64)
    pca = PCA(n_components=2, random_state=0)
    points = pca.fit_transform(values)
    label = colour_column(frame)
    fig = Figure(figsize=(5.2, 4.0))
    ax = fig.add_subplot()
    if label is not None and frame[label].dtype.kind in "if":
        shown = ax.scatter(points[:, 0], points[:, 1], c=frame[label], cmap="viridis", s=22)
        fig.colorbar(shown, ax=ax, label=label)
    elif label is not None:
        for value in sorted(frame[label].astype(str).unique()):
            inside = (frame[label].astype(str) == value).to_numpy()
            ax.scatter(points[inside, 0], points[inside, 1], s=22, label=value)
        ax.legend(title=label, fontsize=7, title_fontsize=8, loc="best")
    else:
        ax.scatter(points[:, 0], points[:, 1], s=22)
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% of variance)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig, label, ratio


def _render_embeddings(path: Path, section: Section) -> tuple:
    from neuroai.evaluation import read_embeddings

    frame = read_embeddings(path)
    record = read_provenance(path)
    family = record.get("extra", {}).get("family", "?")
    model, dataset = path.parent.parent.name, path.parent.name
    levels = frame["level"].value_counts()
    level = next((name for name in LEVELS if name in levels), None)
    dims = sum(1 for c in frame.columns if str(c).startswith("e") and str(c)[1:].isdigit())
    rows = ", ".join(f"{int(levels[n])} {n}s" for n in LEVELS if n in levels)
    if level is not None:
        chosen = frame[frame["level"] == level].reset_index(drop=True)
        if len(chosen) >= 3:
            fig, label, _ = embedding_scatter(
                chosen, title=f"{model} on {dataset}: {len(chosen)} {level}s"
            )
            how = f"coloured by {label}" if label else "no label to colour by"
            section.add(
                figure(
                    fig,
                    caption=(
                        f"{family} embeddings of {dataset} ({model}), one point per {level}: "
                        f"first two principal components of the {dims} embedding dimensions, "
                        f"{how}."
                    ),
                )
            )
        else:
            section.add(text(f"{model} on {dataset}: too few {level}s ({len(chosen)}) to draw."))
    return ("embed", model, dataset, family, rows, f"{dims} float32 dimensions", str(path))


def _render_predictions(path: Path) -> tuple:
    record = read_provenance(path)
    frame = load_table(path, stage=record["stage"])
    family = record.get("extra", {}).get("family", "dsd")
    if "task" in frame:  # a predictions table: results/predictions/<family>/<dataset>/<task>/
        model, dataset = path.parents[2].name, path.parents[1].name
        levels = frame["level"].value_counts()
        rows = ", ".join(f"{int(levels[n])} {n}s" for n in LEVELS if n in levels)
        content = f"task {frame['task'].iloc[0]}" if len(frame) else "empty"
        return ("predict", model, dataset, family, rows, content, str(path))
    model, dataset = path.parent.parent.name, path.parent.name
    detail = "label maps in each input's space" if "voxels_class0" in frame else "outputs per item"
    return ("predict", model, dataset, family, f"{len(frame)} inputs", detail, str(path))


def render_inference(paths: Sequence[Path]) -> list[Section]:
    """A PCA figure per embedding table and a table of every embed / predict output."""
    section = Section("inference", "Embeddings and predictions", page=PAGE)
    section.add(
        text(
            "Foundation-model embeddings written for use outside the workflow: one table per "
            "model and dataset (embeddings.parquet: identity columns lined up with "
            "participants.tsv, then the embedding; see docs/embeddings.md), drawn here in 2D "
            "by PCA. Clusters that follow a label show what the encoder separates without "
            "being trained on it; PCA shows the directions of largest variance only.",
            cls="note",
        )
    )
    rows = []
    for path in map(Path, paths):
        if path.suffix == ".parquet":
            rows.append(_render_embeddings(path, section))
        else:
            rows.append(_render_predictions(path))
    section.add(table(rows, ["stage", "model", "dataset", "family", "rows", "content", "artifact"]))
    return [section]
