"""Write foundation-model embeddings: one float16 array per subject, recording or window.

Loads a pretrained folder (any registered model), reads each input (NIfTI volumes
preprocessed as in training, or .npy artifacts: one item, or a stack of windows) and
writes <id>_embedding.npy (n_items x embed_dim, float16) with a provenance record,
plus an index table. Inputs are files, or the images of a Decathlon dataset's split.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuroai import get_logger, progress
from neuroai.errors import ConfigError
from neuroai.io import save_array, save_table
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.embed")
STAGE = "embed"


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
    """Embed every input with ``model`` and write the arrays and their index.

    Parameters
    ----------
    model : path-like
        Pretrained folder (``config.json`` + ``model.safetensors``).
    index_output : path-like
        Index table (``id``, ``path``, ``embedding``, ``n_items``, ``embed_dim``,
        ``level``); the arrays go beside it as ``<id>_embedding.npy``.
    inputs : list of path-like | None
        Input files (NIfTI or .npy).
    dataset : path-like | None
        Or a Decathlon ``dataset.json`` whose ``split`` images are embedded.
    split : {"training", "test", "all"}
        Which images of ``dataset``.
    batch_size : int
        Items per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """
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
    for path in progress(files, desc="embed"):
        item = read_model_input(path, net)
        with torch.no_grad():
            parts = [
                net.embed(batch.to(device)).float().cpu()
                for batch in batched(item.items, batch_size)
            ]
        embedding = torch.cat(parts).numpy().astype(np.float16)
        target = out_dir / f"{item.id}_embedding.npy"
        save_array(
            target,
            embedding,
            stage=STAGE,
            params=params,
            inputs=[path, *model_files],
            extra={
                "model": net.family,
                "level": item.level,
                "n_items": int(embedding.shape[0]),
                "embed_dim": int(embedding.shape[1]),
            },
        )
        rows.append(
            {
                "id": item.id,
                "path": str(path),
                "embedding": str(target),
                "n_items": embedding.shape[0],
                "embed_dim": embedding.shape[1],
                "level": item.level,
            }
        )
    save_table(
        index_output, pd.DataFrame(rows), stage=STAGE, params=params, inputs=[*files, *model_files]
    )
    logger.info("Embedded %d inputs with %s (%d dims)", len(rows), net.family, net.embed_dim)
    return Path(index_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.embed", threads=True)
    parser.add_argument("--model", required=True, help="pretrained model folder")
    parser.add_argument("--index-output", required=True, help="index .tsv to write")
    parser.add_argument("--inputs", nargs="*", default=None, help="input files (NIfTI or .npy)")
    parser.add_argument("--dataset", default=None, help="or a Decathlon dataset.json")
    args = parser.parse_args(argv)
    execute(args, run, args.model, args.index_output, inputs=args.inputs, dataset=args.dataset)


if __name__ == "__main__":
    main(sys.argv[1:])
