"""Apply a fine-tuned model to new data: a predictions table, or label maps.

Segmentation models (volumes in, class logits per voxel out) write a label map per
input in the input image's own space (predicted on the training grid, resampled back
with nearest neighbours) and an index table. The other families write one table of
predictions lined up with participants.tsv, as the embedding tables are
(docs/embeddings.md): a fine-tuned EEGFormer probe per window and per recording of an
EEG patch store (--store), a fine-tuned TABLeT per subject of a token-store index
(--index), a fine-tuned dFC-GNN probe per run of a graph dataset (--graphs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger, progress
from neuroai.errors import ConfigError, DataError
from neuroai.io import check_inputs, save_array, save_table, write_artifact
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.predict")
STAGE = "predict"


def _label_map_in_input_space(labels: np.ndarray, affine: np.ndarray, original: Path):
    import nibabel as nib
    from nilearn.image import resample_to_img

    predicted = nib.Nifti1Image(labels.astype(np.uint8), affine)
    reference = nib.load(original)
    if reference.ndim == 4:
        from nilearn.image import index_img

        reference = index_img(reference, 0)
    resampled = resample_to_img(
        predicted, reference, interpolation="nearest", force_resample=True, copy_header=True
    )
    return nib.Nifti1Image(np.rint(resampled.get_fdata()).astype(np.uint8), reference.affine)


def _load(model, device):
    from neuroai.models import load_pretrained

    return load_pretrained(model, map_location=stage_device(device))


def _predict_table(
    net,
    model,
    output,
    *,
    store,
    index,
    graphs,
    inputs,
    dataset,
    participants,
    crop_windows,
    max_crops,
    batch_size,
) -> Path:
    """The predictions table of a fine-tuned EEGFormer, TABLeT or dFC-GNN model."""
    from neuroai.evaluation import embeddings as emb
    from neuroai.evaluation import predictions as pred
    from neuroai.io import save_table
    from neuroai.pipelines.embed import SOURCES, _participants

    given = {k: v for k, v in {"store": store, "index": index, "graphs": graphs}.items() if v}
    family = emb.encoder_family(net)
    if inputs is not None or dataset is not None or len(given) != 1:
        raise ConfigError(
            f"{model} holds a fine-tuned {family!r} model: give exactly one of store (EEG patch "
            "store), index (token-store index.tsv) or graphs (graph dataset)."
        )
    ((kind, source),) = given.items()
    emb.check_family(net, model, SOURCES[kind])
    info = pred.fine_tuned_info(net, model, family)
    people = _participants(participants)
    try:
        if kind == "store":
            identity, outputs = pred.predict_patch_store(net, source, batch_size=batch_size)
        elif kind == "index":
            from neuroai.training import read_token_index

            table = read_token_index(source)
            identity, outputs = pred.predict_token_stores(
                net,
                list(table["tokens"]),
                list(table["participant_id"]),
                trs=[float(t) for t in table["tr"]],
                batch_size=batch_size,
            )
            if people is None:
                drop = ("tokens", "n_frames", "tr")
                people = table[[c for c in table.columns if c not in drop]]
        else:
            data = info.get("data", {})
            identity, outputs = pred.predict_graph_runs(
                net,
                source,
                crop_windows=int(crop_windows or data.get("crop_windows", 12)),
                max_crops=int(max_crops or data.get("eval_crops", 8)),
                batch_size=batch_size,
            )
    except DataError as exc:
        raise DataError(f"Model folder {model} ({family}): {exc}") from exc
    frame = pred.prediction_table(identity, outputs, people)
    model_files = [Path(model) / "config.json", Path(model) / "model.safetensors"]
    people_file = [Path(participants)] if participants is not None else []
    save_table(
        output,
        frame,
        stage=STAGE,
        params={"family": family, "batch_size": batch_size, "crop_windows": crop_windows},
        inputs=[Path(source), *people_file, *model_files],
        extra={"family": family, "task": frame["task"].iloc[0] if len(frame) else None},
    )
    logger.info("Predicted %d rows of %s with %s (%s)", len(frame), source, family, model)
    return Path(output)


def run(
    model: str | Path,
    output: str | Path,
    *,
    inputs: list[str | Path] | None = None,
    dataset: str | Path | None = None,
    store: str | Path | None = None,
    index: str | Path | None = None,
    graphs: str | Path | None = None,
    participants: str | Path | None = None,
    split: str = "test",
    crop_windows: int | None = None,
    max_crops: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
) -> Path:
    """Predict with ``model`` and write the predictions table (or label maps and their index).

    Parameters
    ----------
    model : path-like
        Pretrained folder of a fine-tuned model.
    output : path-like
        For a segmentation model: the index table (``id``, ``path``, ``prediction``,
        ``n_items``, voxel counts per class), label maps beside it. Otherwise the
        predictions table (``.tsv``): identity columns, participants' columns, ``task``
        and the outputs (see :mod:`neuroai.evaluation.predictions`).
    inputs, dataset, split : optional
        Segmentation inputs: NIfTI files, or a Decathlon ``dataset.json`` and its split.
        Volumes the pipeline did not write are external inputs: their checksums are
        recorded in ``extra.external_inputs`` of the label maps and the index.
    store, index, graphs : path-like | None
        The input of the other families, as in :func:`neuroai.pipelines.embed.run`.
    participants : path-like | None
        ``participants.tsv`` whose columns are joined on ``subject``.
    crop_windows, max_crops : int | None
        dFC-GNN windows per crop and crops per run (default: the model's settings).
    batch_size : int
        Items per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """
    from neuroai.evaluation.embeddings import encoder_family

    net = _load(model, device)
    if encoder_family(net) != "dsd":
        return _predict_table(
            net,
            model,
            output,
            store=store,
            index=index,
            graphs=graphs,
            inputs=inputs,
            dataset=dataset,
            participants=participants,
            crop_windows=crop_windows,
            max_crops=max_crops,
            batch_size=batch_size,
        )
    if store is not None or index is not None or graphs is not None:
        raise ConfigError(
            f"{model} holds a segmentation (dsd) model: give it NIfTI inputs or a Decathlon "
            "dataset, not a patch store, token index or graph dataset."
        )
    index_output = output
    import nibabel as nib

    # Imported here so that `--help` answers without loading torch.
    import pandas as pd
    import torch

    from neuroai.models.inputs import batched, dataset_inputs, read_model_input

    if (inputs is None) == (dataset is None):
        raise ConfigError("Give either inputs (files) or a dataset (dataset.json), not both.")
    files = [Path(p) for p in inputs] if inputs is not None else dataset_inputs(dataset, split)
    device = stage_device(device)
    model_files = [Path(model) / "config.json", Path(model) / "model.safetensors"]
    out_dir = Path(index_output).parent
    params = {"split": split, "batch_size": batch_size, "model": net.family}
    # Inputs the pipeline did not write (no provenance record) are checked before anything
    # is written, and their checksums named in the record of every prediction made from them.
    external = {item["path"]: item for item in check_inputs(files)}
    rows = []
    for path in progress(files, desc="predict"):
        described = [external[str(path)]] if str(path) in external else []
        item = read_model_input(path, net)
        with torch.no_grad():
            outputs = torch.cat(
                [net.predict(b.to(device)).float().cpu() for b in batched(item.items, batch_size)]
            )
        row = {"id": item.id, "path": str(path), "n_items": int(outputs.shape[0])}
        if item.affine is not None and outputs.ndim == 5:
            labels = outputs.argmax(1)[0].numpy()
            image = _label_map_in_input_space(labels, item.affine, path)
            target = out_dir / f"{item.id}_prediction.nii.gz"
            write_artifact(
                target,
                lambda tmp, image=image: nib.save(image, tmp),
                stage=STAGE,
                params=params,
                inputs=[path, *model_files],
                extra={"external_inputs": described},
            )
            counts = np.bincount(np.asarray(image.dataobj).ravel(), minlength=outputs.shape[1])
            row.update({f"voxels_class{k}": int(v) for k, v in enumerate(counts)})
        else:
            values = outputs.reshape(outputs.shape[0], -1).numpy()
            target = out_dir / f"{item.id}_prediction.npy"
            save_array(
                target,
                values,
                stage=STAGE,
                params=params,
                inputs=[path, *model_files],
                extra={"level": item.level, "external_inputs": described},
            )
            row["predicted_class"] = int(values.mean(axis=0).argmax())
        row["prediction"] = str(target)
        rows.append(row)
    save_table(
        index_output,
        pd.DataFrame(rows),
        stage=STAGE,
        params=params,
        inputs=[*files, *model_files],
        extra={"external_inputs": list(external.values())},
    )
    logger.info("Predicted %d inputs with %s", len(rows), net.family)
    return Path(index_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.predict", threads=True)
    parser.add_argument("--model", required=True, help="pretrained model folder")
    parser.add_argument(
        "--output",
        "--index-output",
        dest="output",
        required=True,
        help="predictions .tsv (segmentation: the index .tsv) to write",
    )
    parser.add_argument("--inputs", nargs="+", default=None, help="NIfTI files (segmentation)")
    parser.add_argument("--dataset", default=None, help="or a Decathlon dataset.json")
    parser.add_argument("--store", default=None, help="EEG patch store (EEGFormer)")
    parser.add_argument("--index", default=None, help="token-store index.tsv (TABLeT)")
    parser.add_argument("--graphs", default=None, help="graph dataset folder (dFC-GNN)")
    parser.add_argument("--participants", default=None, help="participants.tsv to join")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.model,
        args.output,
        inputs=args.inputs,
        dataset=args.dataset,
        store=args.store,
        index=args.index,
        graphs=args.graphs,
        participants=args.participants,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
