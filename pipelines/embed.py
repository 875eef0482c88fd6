"""Write a foundation model's embeddings of a dataset as one table (embeddings.parquet).

Every family: EEGFormer per window and per recording (the mean of its windows) of an
EEG patch store; TABLeT per subject and per run (mean CLS state over non-overlapping
windows) of a token-store index; dFC-GNN per run of a graph dataset; DSD per case of a
Decathlon dataset. Or a list of files (--inputs): .npy arrays (EEG windows, token
arrays) or NIfTI volumes, including files the pipeline did not write (external
inputs: their checksums go into the table's provenance record).

The table holds identity columns (level, subject, session, run, recording, window,
split: those that exist), the dataset's participants.tsv columns joined on subject,
then float32 embedding columns e000, e001, ... Read it with
neuroai.evaluation.read_embeddings (a pandas DataFrame). See docs/embeddings.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.embed")
STAGE = "embed"
#: The option that gives each kind of input, and the family that embeds it.
SOURCES = {"store": "eegformer", "index": "tablet", "graphs": "dfc_gnn", "dataset": "dsd"}


def _participants(path):
    """participants.tsv with numeric columns as numbers (None when not given)."""
    import pandas as pd

    from neuroai.io import participants_table

    if path is None:
        return None
    table = participants_table(path)
    if table is None:
        raise DataError(f"The participants table {path} does not exist.")
    for column in table.columns:
        if column != "participant_id":
            converted = pd.to_numeric(table[column], errors="coerce")
            if converted.notna().sum() == table[column].replace("", None).notna().sum():
                table[column] = converted
    return table


def _file_rows(net, family: str, files: list[Path], window_frames, batch_size):
    """Identity and values of files given one by one; the external ones among them
    (:func:`neuroai.io.external_inputs`)."""
    import numpy as np
    import pandas as pd

    from neuroai.evaluation import embeddings as emb
    from neuroai.io import check_inputs, read_input_array
    from neuroai.models.inputs import input_id

    if family == "dsd":
        external = check_inputs(files)  # before any is read for the model
        identity, values = emb.embed_volumes(net, files)
        return identity, values, external
    if family not in ("eegformer", "tablet"):
        raise ConfigError(
            f"A {family!r} model embeds {emb.FAMILY_INPUTS.get(family, 'its own inputs')}, "
            "not a list of files."
        )
    arrays, external = [], []
    for path in files:
        array, described = read_input_array(path, what=f"a {family} input")
        arrays.append(array)
        if described is not None:
            external.append(described)
    if family == "tablet":
        subjects = [input_id(p).split("_tokens")[0] for p in files]
        for path, array in zip(files, arrays, strict=True):
            if array.ndim != 3:
                raise DataError(
                    f"{path} has shape {array.shape}; TABLeT takes one subject's tokens "
                    "(n_frames, n_tokens, token_dim) per file."
                )
        identity, values = emb.embed_token_stores(
            net, files, subjects, window_frames=window_frames, arrays=arrays, batch_size=batch_size
        )
        return identity, values, external
    frames, rows = [], []
    for path, array in zip(files, arrays, strict=True):
        if array.ndim == net.item_ndim:
            array = array[None]
        if array.ndim != net.item_ndim + 1:
            raise DataError(
                f"{path} has shape {array.shape}; EEGFormer takes one window "
                "(n_chans, n_patches, patch_len) or a stack of windows per file."
            )
        name = input_id(path)
        frames.append(emb.embed_windows(net, array, batch_size=batch_size))
        rows += [{"subject": name, "recording": name, "window": w} for w in range(len(array))]
    identity, values = emb.with_recordings(pd.DataFrame(rows), np.concatenate(frames))
    return identity, values, external


def run(
    model: str | Path,
    output: str | Path,
    *,
    store: str | Path | None = None,
    index: str | Path | None = None,
    graphs: str | Path | None = None,
    dataset: str | Path | None = None,
    inputs: list[str | Path] | None = None,
    participants: str | Path | None = None,
    split: str = "all",
    window_frames: int | None = None,
    crop_windows: int | None = None,
    max_crops: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
) -> Path:
    """Embed a dataset (or files) with ``model`` and write ``embeddings.parquet``.

    Parameters
    ----------
    model : path-like
        Pretrained folder (``config.json`` + ``model.safetensors``) of any family, or
        of a fine-tuned model (its encoder's embedding is written).
    output : path-like
        The table (``.parquet``).
    store, index, graphs, dataset : path-like | None
        Exactly one input: an EEG patch store (EEGFormer), a token-store
        ``index.tsv`` (TABLeT), a graph dataset (dFC-GNN), a Decathlon
        ``dataset.json`` (DSD); or ``inputs``.
    inputs : list of path-like | None
        Files: ``.npy`` EEG windows (one recording per file), ``.npy`` token arrays
        (one subject per file) or NIfTI volumes (one case per file).
    participants : path-like | None
        ``participants.tsv`` whose columns are joined on ``subject`` (a token index
        already carries its participants' columns).
    split : {"all", "training", "test"}
        Which cases of a Decathlon dataset.
    window_frames : int | None
        TABLeT frames per window (default: the model's pretraining window).
    crop_windows, max_crops : int | None
        dFC-GNN windows per crop and crops per run (default: the model's settings).
    batch_size : int
        Items per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    Path
        ``output``; read it with :func:`neuroai.evaluation.read_embeddings`.
    """
    import torch

    from neuroai.errors import check_option
    from neuroai.evaluation import embeddings as emb
    from neuroai.models import load_pretrained
    from neuroai.models.inputs import dataset_inputs

    given = {
        k: v
        for k, v in {"store": store, "index": index, "graphs": graphs, "dataset": dataset}.items()
        if v is not None
    }
    if len(given) + (inputs is not None) != 1:
        raise ConfigError(
            "Give exactly one input: store (EEG patch store), index (token-store index.tsv), "
            f"graphs (graph dataset), dataset (Decathlon dataset.json) or inputs (files); got "
            f"{', '.join(given) or 'none'}{' and inputs' if inputs is not None and given else ''}."
        )
    check_option("split", split, ("all", "training", "test"))
    net = load_pretrained(model, map_location=stage_device(device))
    family = emb.encoder_family(net)
    info = getattr(net, "pretrained_info", {}) or {}
    if family == "tablet" and window_frames is None:
        window_frames = info.get("tablet", {}).get("data", {}).get("window_frames")
        if window_frames is None:
            raise ConfigError(f"{model} records no window_frames; give window_frames.")
    if family == "dfc_gnn":
        data = info.get("data", {})
        crop_windows = crop_windows or data.get("crop_windows", 12)
        max_crops = max_crops or data.get("eval_crops", 8)
    people = _participants(participants)
    model_files = [Path(model) / "config.json", Path(model) / "model.safetensors"]
    sources, external = [], []
    try:
        with torch.no_grad():
            if inputs is not None:
                files = [Path(p) for p in inputs]
                if not files:
                    raise ConfigError("inputs lists no files.")
                identity, values, external = _file_rows(
                    net, family, files, window_frames, batch_size
                )
                sources = files
            else:
                ((kind, source),) = given.items()
                emb.check_family(net, model, SOURCES[kind])
                sources = [Path(source)]
                if kind == "store":
                    identity, values = emb.embed_patch_store(net, source, batch_size=batch_size)
                elif kind == "index":
                    from neuroai.training import read_token_index

                    table = read_token_index(source)
                    identity, values = emb.embed_token_stores(
                        net,
                        list(table["tokens"]),
                        list(table["participant_id"]),
                        window_frames=int(window_frames),
                        trs=[float(t) for t in table["tr"]],
                        batch_size=batch_size,
                    )
                    if people is None:
                        keep = ["participant_id"] + [
                            c for c in table.columns if c not in ("tokens", "n_frames", "tr")
                        ]
                        people = table[list(dict.fromkeys(keep))]
                elif kind == "graphs":
                    identity, values = emb.embed_graph_runs(
                        net,
                        source,
                        crop_windows=int(crop_windows),
                        max_crops=int(max_crops),
                        batch_size=batch_size,
                    )
                else:
                    from neuroai.io.decathlon import read_decathlon

                    parts = ["training", "test"] if split == "all" else [split]
                    decathlon = read_decathlon(source)
                    files, splits = [], []
                    for part in parts:
                        found = dataset_inputs(source, part) if decathlon.cases(part) else []
                        files += found
                        splits += [part] * len(found)
                    identity, values = emb.embed_volumes(net, files, splits=splits)
    except DataError as exc:
        raise DataError(f"Model folder {model} ({family}): {exc}") from exc
    table = emb.embedding_table(identity, values, people)
    params = {
        "family": family,
        "split": split,
        "window_frames": window_frames,
        "crop_windows": crop_windows,
        "max_crops": max_crops,
        "batch_size": batch_size,
    }
    extra = {
        "family": family,
        "model_folder": str(model),
        "embed_dim": int(values.shape[1]),
        "rows": {str(k): int(v) for k, v in table["level"].value_counts().items()},
        "external_inputs": external,
    }
    people_file = [Path(participants)] if participants is not None else []
    emb.save_embeddings(
        output,
        table,
        stage=STAGE,
        params=params,
        inputs=[*sources, *people_file, *model_files],
        extra=extra,
    )
    logger.info(
        "Embedded %s with %s: %s rows, %d dims -> %s",
        ", ".join(map(str, sources[:3])),
        family,
        extra["rows"],
        values.shape[1],
        output,
    )
    return Path(output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.embed", threads=True)
    parser.add_argument("--model", required=True, help="pretrained model folder")
    parser.add_argument("--output", required=True, help="embeddings.parquet to write")
    parser.add_argument("--store", default=None, help="EEG patch store (EEGFormer)")
    parser.add_argument("--index", default=None, help="token-store index.tsv (TABLeT)")
    parser.add_argument("--graphs", default=None, help="graph dataset folder (dFC-GNN)")
    parser.add_argument("--dataset", default=None, help="Decathlon dataset.json (DSD)")
    parser.add_argument("--inputs", nargs="+", default=None, help="files (.npy or NIfTI)")
    parser.add_argument("--participants", default=None, help="participants.tsv to join")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.model,
        args.output,
        store=args.store,
        index=args.index,
        graphs=args.graphs,
        dataset=args.dataset,
        inputs=args.inputs,
        participants=args.participants,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
