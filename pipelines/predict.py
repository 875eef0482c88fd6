"""Apply a fine-tuned model to new data.

Segmentation models (volumes in, class logits per voxel out) write a label map per
input in the input image's own space (predicted on the training grid, resampled back
with nearest neighbours); other models write the outputs per item (n_items x
n_outputs, float32) and, per recording, the mean output over its windows. An index
table lists everything, with provenance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger, progress
from neuroai.errors import ConfigError
from neuroai.io import save_array, save_table, write_artifact
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


def run(
    model: str | Path,
    index_output: str | Path,
    *,
    inputs: list[str | Path] | None = None,
    dataset: str | Path | None = None,
    split: str = "test",
    batch_size: int = 8,
    device: str = "auto",
) -> Path:
    """Predict every input with ``model`` and write the outputs and their index.

    Parameters
    ----------
    model : path-like
        Pretrained folder of a fine-tuned model.
    index_output : path-like
        Index table (``id``, ``path``, ``prediction``, ``n_items``, and for
        classifiers ``predicted_class`` from the mean output over windows).
    inputs, dataset, split, batch_size, device
        As in :func:`neuroai.pipelines.embed.run`.
    """
    import nibabel as nib

    # Imported here so that `--help` answers without loading torch.
    import pandas as pd
    import torch

    from neuroai.models import load_pretrained
    from neuroai.models.inputs import batched, dataset_inputs, read_model_input

    if (inputs is None) == (dataset is None):
        raise ConfigError("Give either inputs (files) or a dataset (dataset.json), not both.")
    files = [Path(p) for p in inputs] if inputs is not None else dataset_inputs(dataset, split)
    device = stage_device(device)
    net = load_pretrained(model, map_location=device)
    model_files = [Path(model) / "config.json", Path(model) / "model.safetensors"]
    out_dir = Path(index_output).parent
    params = {"split": split, "batch_size": batch_size, "model": net.family}
    rows = []
    for path in progress(files, desc="predict"):
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
                extra={"level": item.level},
            )
            row["predicted_class"] = int(values.mean(axis=0).argmax())
        row["prediction"] = str(target)
        rows.append(row)
    save_table(
        index_output, pd.DataFrame(rows), stage=STAGE, params=params, inputs=[*files, *model_files]
    )
    logger.info("Predicted %d inputs with %s", len(rows), net.family)
    return Path(index_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.predict", threads=True)
    parser.add_argument("--model", required=True, help="pretrained model folder")
    parser.add_argument("--index-output", required=True, help="index .tsv to write")
    parser.add_argument("--inputs", nargs="*", default=None, help="input files (NIfTI or .npy)")
    parser.add_argument("--dataset", default=None, help="or a Decathlon dataset.json")
    args = parser.parse_args(argv)
    execute(args, run, args.model, args.index_output, inputs=args.inputs, dataset=args.dataset)


if __name__ == "__main__":
    main(sys.argv[1:])
