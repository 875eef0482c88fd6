"""Embedding tables: one row per subject, run, recording, window or case, for every family.

A foundation model's embeddings are written as one Parquet table per (model, dataset),
``embeddings.parquet``: identity columns first, then any ``participants.tsv`` columns
joined on ``subject``, then the embedding itself as float32 columns ``e000``,
``e001``, ... (one per feature). The identity columns are those that exist for the
modality, in this order:

==========  ===============================================================
``level``   what a row stands for: ``window``, ``recording``, ``run``,
            ``subject`` or ``case``
``subject`` the participant, spelled as ``participants.tsv`` spells it
            (``sub-01``) when the dataset has one
``session`` EEG session (stores that know it)
``run``     fMRI run key (``sub-01_task-rest``)
``recording`` EEG recording key
``window``  EEG window number within its store (``-1`` on recording rows)
==========  ===============================================================

One function per family computes the rows from the artifacts the workflow writes
(:func:`embed_patch_store` for EEGFormer, :func:`embed_token_stores` for TABLeT,
:func:`embed_graph_runs` for dFC-GNN, :func:`embed_volumes` for DSD), each returning
``(identity, values)``; :func:`embedding_table` lines them up with the participants and
:func:`read_embeddings` reads a written table back as a DataFrame.

Arrays that the pipeline did not write (no provenance record beside them) are
*external inputs*: :func:`neuroai.io.read_input_array` reads them without unpickling and
their checksum goes into the provenance of what is written from them; an array that has a
record must still match it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from neuroai._logging import get_logger
from neuroai.errors import ArtifactError, ConfigError, DataError

logger = get_logger(__name__)

#: Identity columns, in table order (only those that exist are written).
IDENTITY_COLUMNS = ("level", "subject", "session", "run", "recording", "window", "split")
#: What each family embeds from and the level of its rows.
FAMILY_INPUTS = {
    "eegformer": "an EEG patch store (--store) or .npy windows (--inputs)",
    "tablet": "a token-store index (--index) or .npy token arrays (--inputs)",
    "dfc_gnn": "a graph dataset (--graphs)",
    "dsd": "a Decathlon dataset.json (--dataset) or NIfTI volumes (--inputs)",
}
_EMBEDDING = re.compile(r"^e\d{3,}$")


def embedding_columns(n: int) -> list[str]:
    """Names of ``n`` embedding columns: ``e000``, ``e001``, ... (wider past 999)."""
    width = max(3, len(str(n - 1)))
    return [f"e{i:0{width}d}" for i in range(n)]


def encoder_family(model) -> str:
    """The family of a model's encoder (a probe's encoder for fine-tuned heads)."""
    family = getattr(model, "family", "")
    if family == "probe":
        return getattr(model.encoder, "family", family)
    return family


# -- tables ----------------------------------------------------------------------------


def _participant_key(subjects: Sequence[str], ids: set[str]) -> list[str | None]:
    """Each subject as ``participants.tsv`` spells it (``01`` -> ``sub-01``), or None."""
    out = []
    for s in subjects:
        s = str(s)
        out.append(s if s in ids else f"sub-{s}" if f"sub-{s}" in ids else None)
    return out


def embedding_table(identity, values: np.ndarray, participants=None):
    """Identity columns, participants' columns and float32 embedding columns in one table.

    Parameters
    ----------
    identity : pandas.DataFrame
        One row per embedding; columns among :data:`IDENTITY_COLUMNS` (others, such as
        a stored ``label``, are kept after them).
    values : ndarray, shape (n_rows, embed_dim)
        The embeddings.
    participants : pandas.DataFrame | None
        ``participants.tsv`` (``participant_id`` and label columns): its columns are
        joined on ``subject`` and ``subject`` is spelled as its ``participant_id``.
        Rows follow the participants' order (then their own order).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        When the row counts differ, or a subject is missing from ``participants``.
    """
    import pandas as pd

    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] != len(identity):
        raise DataError(
            f"{len(identity)} identity rows for embeddings of shape {values.shape}; "
            "expected one embedding vector per row."
        )
    table = identity.reset_index(drop=True).copy()
    ordered = [c for c in IDENTITY_COLUMNS if c in table] + [
        c for c in table if c not in IDENTITY_COLUMNS
    ]
    table = table[ordered]
    order = np.arange(len(table))
    if participants is not None and "subject" in table:
        people = participants.astype({"participant_id": str}).reset_index(drop=True)
        ids = list(people["participant_id"])
        keys = _participant_key(table["subject"], set(ids))
        missing = sorted({str(s) for s, k in zip(table["subject"], keys, strict=True) if k is None})
        if missing:
            raise DataError(
                f"Subjects {missing[:5]} are not in participants.tsv (participant_id "
                f"{ids[:5]}...); give the participants table of this dataset."
            )
        table["subject"] = keys
        extra = [c for c in people if c != "participant_id" and c not in table]
        joined = people.set_index("participant_id")[extra].loc[keys].reset_index(drop=True)
        table = pd.concat([table, joined], axis=1)
        rank = {pid: i for i, pid in enumerate(ids)}
        order = np.lexsort((np.arange(len(table)), [rank[k] for k in keys]))
    table = table.iloc[order].reset_index(drop=True)
    columns = embedding_columns(values.shape[1])
    embedded = pd.DataFrame(values[order], columns=columns)
    return pd.concat([table, embedded], axis=1)


def embedding_matrix(table) -> np.ndarray:
    """The ``e000...`` columns of an embedding table as a float32 array ``(n_rows, F)``."""
    columns = [c for c in table.columns if _EMBEDDING.match(str(c))]
    if not columns:
        raise DataError("The table has no embedding columns (e000, e001, ...).")
    return table[columns].to_numpy(np.float32)


def save_embeddings(path: str | os.PathLike, table, **provenance) -> Path:
    """Write an embedding table as Parquet, atomically, with its provenance record."""
    from neuroai.io import write_artifact

    if Path(path).suffix != ".parquet":
        raise ConfigError(
            f"Embeddings are written as a Parquet table: name the output {Path(path).stem}"
            f".parquet, not {Path(path).name}."
        )

    def _write(tmp: Path) -> None:
        table.to_parquet(tmp, index=False, engine="pyarrow")

    return write_artifact(path, _write, **provenance)


def read_embeddings(path: str | os.PathLike, *, level: str | None = None, verify: str = "size"):
    """Read an ``embeddings.parquet`` written by the embed stage (checked against its record).

    Parameters
    ----------
    path : path-like
        The table.
    level : str | None
        Keep only the rows of this level (``"recording"``, ``"window"``, ...).
    verify : {"size", "checksum", "none"}
        How hard to check the file against its provenance record.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    from neuroai.io import check_artifact

    check_artifact(path, stage="embed", verify=verify)
    table = pd.read_parquet(path, engine="pyarrow")
    if level is not None:
        if level not in set(table.get("level", [])):
            raise DataError(
                f"{path} has no rows of level {level!r}; it has "
                f"{sorted(set(table.get('level', [])))}."
            )
        table = table[table["level"] == level].reset_index(drop=True)
    return table


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _mean_by(values: np.ndarray, groups: Sequence) -> tuple[list, np.ndarray]:
    """Mean of ``values`` rows per group, groups in order of first appearance."""
    keys = list(dict.fromkeys(groups))
    position = {k: i for i, k in enumerate(keys)}
    owner = np.array([position[g] for g in groups])
    sums = np.zeros((len(keys), values.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, values)
    return keys, (sums / np.bincount(owner, minlength=len(keys))[:, None]).astype(np.float32)


# -- EEGFormer ---------------------------------------------------------------------------


@torch.no_grad()
def embed_windows(model, windows, *, batch_size: int = 32) -> np.ndarray:
    """``model.embed`` of EEG windows ``(n, C, S, P)`` in batches: ``(n, embed_dim)`` float32."""
    device = _device(model)
    out = [
        model.embed(torch.from_numpy(np.array(windows[s], dtype=np.float32)).to(device))
        .float()
        .cpu()
        .numpy()
        for s in _batches(len(windows), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)


def with_recordings(identity, values: np.ndarray):
    """Window rows plus one row per recording (the mean of its windows), recordings first.

    Parameters
    ----------
    identity : pandas.DataFrame
        One row per window, with a ``recording`` column.
    values : ndarray, shape (n_windows, embed_dim)

    Returns
    -------
    identity : pandas.DataFrame
        ``level`` (``recording``, then ``window``), ``window`` (-1 on recording rows),
        ``n_windows``.
    values : ndarray, shape (n_recordings + n_windows, embed_dim)
    """
    import pandas as pd

    keys, means = _mean_by(values, list(identity["recording"]))
    first = identity.drop_duplicates("recording").set_index("recording").loc[keys].reset_index()
    recordings = first.assign(level="recording", window=-1)
    recordings["n_windows"] = identity.groupby("recording").size().loc[keys].to_numpy()
    windows = identity.assign(level="window", n_windows=1)
    table = pd.concat([recordings, windows], ignore_index=True)
    return table, np.concatenate([means, values])


@torch.no_grad()
def embed_patch_store(model, store: str | os.PathLike, *, batch_size: int = 32):
    """EEGFormer embeddings of every window of a patch store, and of every recording.

    A recording's embedding is the mean of its windows' embeddings.

    Parameters
    ----------
    model : NeuroModel
        An EEGFormer (or a probe on one) built for the store's layout.
    store : path-like
        Patch store folder (``results/eeg/<dataset>/store``).
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    identity : pandas.DataFrame
        ``level`` (``recording`` rows first, then ``window``), ``subject``, ``session``,
        ``recording``, ``window``, ``split``, ``label``, ``start_s``, ``n_windows``.
    values : ndarray, shape (n_recordings + n_windows, embed_dim)
    """
    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.eeg.store import open_patch_store

    index = open_patch_store(store).index
    dataset = EEGPatchDataset([store])
    device = _device(model)
    parts = []
    for rows in _batches(len(dataset), batch_size):
        x = torch.stack([dataset[i]["spectrum"].float() for i in range(rows.start, rows.stop)])
        parts.append(model.embed(x.to(device)).float().cpu().numpy())
    values = np.concatenate(parts)
    identity = index[["subject", "session", "recording", "window", "split", "label", "start_s"]]
    identity = identity.astype({"subject": str, "session": str, "recording": str})
    # A recording whose subject the store does not know is its own subject (as in training).
    unknown = identity["subject"].isin(["", "n/a", "None", "nan"])
    identity["subject"] = identity["subject"].where(~unknown, identity["recording"])
    return with_recordings(identity, values)


# -- TABLeT ------------------------------------------------------------------------------


def _run_ranges(path: Path, n_frames: int) -> list[tuple[str, int, int]]:
    """``(run key, first frame, stop)`` of each run in a token store (one run if unknown).

    A token store's frames are its subject's runs in order (the frames stage); the
    frames store's record lists each run and the frames it kept.
    """
    from neuroai.io import read_provenance
    from neuroai.io.provenance import provenance_path

    subject_key = path.name.split("_tokens")[0]
    if not provenance_path(path).is_file():
        return [(subject_key, 0, n_frames)]
    for entry in read_provenance(path).get("inputs", []):
        frames = Path(entry.get("path", ""))
        if not provenance_path(frames).is_file():
            continue
        runs = read_provenance(frames).get("extra", {}).get("runs")
        if not runs:
            continue
        ranges, start = [], 0
        for run in runs:
            used = int(run.get("n_frames_used", 0))
            name = Path(run["path"]).name.split("_bold")[0]
            ranges.append((name, start, start + used))
            start += used
        if start == n_frames:
            return ranges
    return [(subject_key, 0, n_frames)]


@torch.no_grad()
def _token_features(model, tokens: np.ndarray, window: int, tr: float, batch_size: int):
    """CLS features ``(n_windows, D)`` of the non-overlapping windows of ``tokens`` and their starts."""
    from neuroai.training.token_data import pad_window, tile_starts

    device = _device(model)
    starts = tile_starts(int(tokens.shape[0]), window)
    out = []
    for rows in _batches(len(starts), batch_size):
        pairs = [pad_window(tokens, s, window) for s in starts[rows]]
        x = torch.from_numpy(np.stack([p[0] for p in pairs])).float().to(device)
        mask = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
        trs = torch.full((len(pairs),), float(tr), device=device)
        encoder = model.encoder if getattr(model, "family", "") == "probe" else model
        out.append(encoder.features(x, mask, trs).float().cpu().numpy())
    return np.concatenate(out), np.asarray(starts)


def embed_token_stores(
    model,
    stores: Sequence[str | os.PathLike],
    subjects: Sequence[str],
    *,
    window_frames: int,
    trs: Sequence[float | None] | None = None,
    arrays: Sequence[np.ndarray] | None = None,
    batch_size: int = 8,
):
    """TABLeT embeddings per subject and per run: the mean CLS state over windows.

    Each token store (one subject: its runs in order, then time) is cut into
    non-overlapping windows of ``window_frames`` (the last one padded and masked), as
    TABLeT's evaluation does; a subject's embedding is the mean of its windows' CLS
    states, a run's the mean over the windows that tile that run alone.

    Parameters
    ----------
    model : TABLeT
        The encoder (or a fine-tuned TABLeT, or a probe on one).
    stores : sequence of path-like
        Token stores ``(n_frames, n_tokens, token_dim)``, one per subject.
    subjects : sequence of str
        Subject of each store.
    window_frames : int
        Frames per window.
    trs : sequence of float | None
        TR in seconds per store (the model's default TR where None).
    arrays : sequence of ndarray | None
        The stores' arrays when already read (external inputs).
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    identity : pandas.DataFrame
        ``level`` (``subject`` then ``run`` rows), ``subject``, ``run``, ``n_windows``.
    values : ndarray, shape (n_subjects + n_runs, embed_dim)
    """
    import pandas as pd

    from neuroai.tokenizers import read_token_store

    if window_frames < 1:
        raise ConfigError(f"window_frames must be at least 1, got {window_frames}.")
    encoder = model.encoder if getattr(model, "family", "") == "probe" else model
    rows, values, run_rows, run_values = [], [], [], []
    for k, (path, subject) in enumerate(zip(stores, subjects, strict=True)):
        path = Path(path)
        tokens = arrays[k] if arrays is not None else read_token_store(path).tokens
        tr = (trs[k] if trs is not None else None) or encoder.config.default_tr
        tokens = np.asarray(tokens)
        features, _ = _token_features(model, tokens, window_frames, tr, batch_size)
        rows.append({"level": "subject", "subject": subject, "run": "", "n_windows": len(features)})
        values.append(features.mean(0))
        ranges = _run_ranges(path, tokens.shape[0]) if arrays is None else []
        for name, start, stop in ranges if len(ranges) > 1 else []:
            part, _ = _token_features(model, tokens[start:stop], window_frames, tr, batch_size)
            run_rows.append(
                {"level": "run", "subject": subject, "run": name, "n_windows": len(part)}
            )
            run_values.append(part.mean(0))
        if len(ranges) == 1:
            run_rows.append({**rows[-1], "level": "run", "run": ranges[0][0]})
            run_values.append(values[-1])
    identity = pd.DataFrame(rows + run_rows)
    return identity, np.stack(values + run_values).astype(np.float32)


# -- dFC-GNN -----------------------------------------------------------------------------


def _graph_labels(meta: dict, arrays) -> dict[str, list]:
    """Per-run label columns of a graph dataset, decoded."""
    out = {}
    for column, info in meta.get("labels", {}).items():
        values = np.asarray(arrays[f"label_{column}"])
        if info.get("type") == "categorical":
            categories = list(info["categories"])
            out[column] = [categories[v] if 0 <= v < len(categories) else "" for v in values]
        else:
            out[column] = [float(v) for v in values]
    return out


def embed_graph_runs(
    model,
    graphs: str | os.PathLike,
    *,
    crop_windows: int,
    max_crops: int | None = 8,
    density: float | None = None,
    batch_size: int = 16,
):
    """dFC-GNN embeddings per run: the mean over evenly spread crops of the encoder's embedding.

    Computed by :func:`neuroai.training.graph_finetune.embed_runs` (what the probes
    of the dFC-GNN stages read).

    Returns
    -------
    identity : pandas.DataFrame
        ``level`` (``run``), ``subject``, ``run`` and the dataset's label columns.
    values : ndarray, shape (n_runs, embed_dim)
    """
    import pandas as pd

    from neuroai.fmri.graph_dataset import GraphArrays
    from neuroai.training.graph_finetune import embed_runs

    arrays = GraphArrays(graphs)
    runs = arrays.meta["runs"]
    values = embed_runs(
        model,
        graphs,
        list(range(len(runs))),
        length=crop_windows,
        max_crops=max_crops,
        density=density,
        batch_size=batch_size,
    )
    identity = pd.DataFrame(
        {
            "level": "run",
            "subject": [str(r["subject"]) for r in runs],
            "run": [str(r["key"]) for r in runs],
            **_graph_labels(arrays.meta, arrays),
        }
    )
    return identity, np.asarray(values, dtype=np.float32)


# -- DSD ---------------------------------------------------------------------------------


@torch.no_grad()
def embed_volumes(
    model, files: Sequence[str | os.PathLike], *, splits: Sequence[str] | None = None
):
    """DSD embeddings per case: bottleneck features averaged over the volume.

    Each NIfTI volume is preprocessed as the model was trained (its ``config.json``
    ``data`` entry), as :func:`neuroai.models.inputs.read_model_input` does.

    Returns
    -------
    identity : pandas.DataFrame
        ``level`` (``case``), ``subject`` (the case id) and ``split`` when given.
    values : ndarray, shape (n_cases, embed_dim)
    """
    import pandas as pd

    from neuroai.models.inputs import read_model_input

    device = _device(model)
    ids, values = [], []
    for path in files:
        item = read_model_input(path, model)
        ids.append(item.id)
        values.append(model.embed(item.items.to(device)).float().cpu().numpy()[0])
    identity = pd.DataFrame({"level": "case", "subject": ids})
    if splits is not None:
        identity["split"] = list(splits)
    if not values:
        raise DataError("No volumes to embed.")
    return identity, np.stack(values).astype(np.float32)


def check_family(model, folder: str | os.PathLike, wanted: str) -> None:
    """Refuse a model folder whose family does not embed the given kind of input."""
    family = encoder_family(model)
    if family != wanted:
        raise ArtifactError(
            f"The model folder {folder} holds a {family!r} model, but the input given is for "
            f"{wanted!r} ({FAMILY_INPUTS.get(wanted, wanted)}). A {family!r} model embeds "
            f"{FAMILY_INPUTS.get(family, 'its own inputs')}."
        )


__all__ = [
    "FAMILY_INPUTS",
    "IDENTITY_COLUMNS",
    "check_family",
    "embed_graph_runs",
    "embed_patch_store",
    "embed_token_stores",
    "embed_volumes",
    "embed_windows",
    "embedding_columns",
    "embedding_matrix",
    "embedding_table",
    "encoder_family",
    "read_embeddings",
    "save_embeddings",
    "with_recordings",
]


def __getattr__(name: str):
    if name == "read_input_array":
        warnings.warn(
            "neuroai.evaluation.embeddings.read_input_array moved to "
            "neuroai.io.read_input_array (one rule for external inputs in every stage); its "
            "second value is now the file's description (a dict) or None. The old name will "
            "be removed.",
            FutureWarning,
            stacklevel=2,
        )
        from neuroai.io.external import read_input_array

        return read_input_array
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
