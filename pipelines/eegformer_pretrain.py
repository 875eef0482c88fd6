"""Pretrain EEGFormer (VQ-VAE objective) on one or more EEG patch stores at once.

Compound pretraining: the windows of every store given (TUAB + TUAR + a BIDS cohort
...) are served as one dataset; the stores must share the sampling rate, window,
patch layout and channels, which also fix the model's input size. Only the training
recordings are used, optionally only those with given recording labels (normal
recordings for anomaly detection); a few training subjects are kept for validation.
The test patients are chosen store by store (neuroai.training.eeg_data.recording_split),
the same way every fine-tuning task on these stores chooses them with the same split
settings, and a patient is matched across datasets that share patient ids (the TUH
corpora, neuroai.eeg.patients); the test patients of the downstream stores that are not
pretrained on (``downstream``) are held out too: no downstream test patient is
pretrained on, through any dataset. ``transductive=True`` (named,
opt-in) pretrains on the test recordings too, without their labels. Resumes an
interrupted run from its run folder; writes the best weights (lowest validation loss)
as a pretrained folder, the learning history and ``splits.tsv`` (the split of every
recording: pretrain, val, test).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import DataError
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.eegformer_pretrain")
STAGE = "eegformer_pretrain"


def run(
    stores: list[str | Path],
    model_output: str | Path,
    history_output: str | Path,
    *,
    model: dict[str, Any] | None = None,
    objective: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    transductive: bool = False,
    downstream: list[str | Path] | None = None,
    splits_output: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> Path | None:
    """Pretrain EEGFormer on ``stores`` and write the best weights and the history.

    Parameters
    ----------
    stores : list of path-like
        Patch-store folders (``results/eeg/<dataset>/store``), trained on together.
    model_output : path-like
        Pretrained folder to write (the whole VQ-VAE: encoder, codebook, decoder).
    history_output : path-like
        Learning history table (loss terms, codebook perplexity and usage per step).
    model : dict | None
        ``preset`` (demo, small, base, large, paper) and ``options`` (further
        :class:`~neuroai.models.eegformer.EEGFormerConfig` fields); the input size
        comes from the stores.
    objective : dict | None
        Settings of the ``vqvae`` objective (``beta``, ``reconstruction``).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields.
    split : dict | None
        ``n_val`` (validation recordings), ``test_fraction`` (of a store's subjects
        when it has no held-out split), ``seed``: give the fine-tuning tasks the same.
    labels : list of str | None
        Pretrain only on recordings with these labels (``["normal"]``).
    transductive : bool
        Pretrain on the test recordings too (without labels). Downstream test
        patients are then seen in pretraining, on purpose; recorded in the model.
    downstream : list of path-like | None
        Patch stores of the downstream tasks that are not pretrained on: their test
        patients (chosen with the same ``split``) are held out of pretraining too, which
        matters when they share patients with ``stores`` (TUAB tested, TUSZ pretrained).
    splits_output : path-like | None
        ``splits.tsv`` to write; ``<model_output>/../splits.tsv`` by default.
    run_dir : path-like | None
        Run folder (checkpoints, logs); ``<model_output>/../run`` by default.

    Returns
    -------
    Path | None
        ``model_output`` (None on the other processes of a distributed run).
    """
    # Imported here so that `--help` answers without loading torch and Lightning.
    import pandas as pd

    from neuroai.io import save_table, write_artifact
    from neuroai.models import build_model, model_config
    from neuroai.models.objectives import create_objective
    from neuroai.training import PretrainModule, TrainConfig, fit, gpu_policy, seed_everything
    from neuroai.training.eeg_data import (
        EEGWindowDataModule,
        patients_of,
        recording_split,
        rows_of,
        split_frame,
        store_layout,
        window_table,
    )

    stores = [Path(s) for s in stores]
    model = dict(model or {})
    split_params = dict(split or {})
    layout = store_layout(stores)
    table = window_table(stores)
    resolved = {s.resolve() for s in stores}
    downstream = [Path(s) for s in downstream or [] if Path(s).resolve() not in resolved]
    others = window_table(downstream) if downstream else None
    chosen = recording_split(table, downstream=others, **split_params)
    held_out = [] if transductive else chosen.test
    if transductive:
        logger.warning(
            "Transductive pretraining: the %d test recordings are pretrained on too (without "
            "labels); downstream test patients are not unseen.",
            len(chosen.test),
        )
    candidates = None
    if labels:
        candidates = table.index[table["label"].isin(labels)].to_numpy()
        if candidates.size == 0:
            raise DataError(
                f"No window of {[str(s) for s in stores]} has a recording label in {labels}; "
                f"labels found: {sorted(set(table['label']))}."
            )
    train_rows = rows_of(table, chosen.train + (chosen.test if transductive else []), candidates)
    val_rows = rows_of(table, chosen.val, candidates)
    used = {
        "train": table.loc[train_rows, "recording"].unique().tolist(),
        "val": table.loc[val_rows, "recording"].unique().tolist(),
        "test": held_out,
    }
    shape = {k: layout[k] for k in ("n_chans", "n_times", "sfreq", "patch_len", "patch_stride")}
    config = model_config(
        "eegformer", model.get("preset", "demo"), **{**dict(model.get("options", {})), **shape}
    )
    train_config = TrainConfig.from_dict(
        gpu_policy(training, model.get("preset", "demo")), source="eegformer pretraining"
    )
    run_dir = Path(run_dir) if run_dir else Path(model_output).parent / "run"
    seed_everything(train_config.seed)
    network = build_model("eegformer", config)
    wrapped = create_objective("vqvae", network, **dict(objective or {}))
    datamodule = EEGWindowDataModule(
        stores,
        train_rows,
        val_rows,
        batch_size=train_config.batch_size,
        val_batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
    )
    metadata = {
        "task": "pretraining",
        "stores": [str(s) for s in stores],
        "labels": list(labels or []),
        "channels": layout["channels"],
        "split": {
            "params": split_params,
            **used,
            "patients": patients_of(table, used["train"] + used["val"]),
        },
        "downstream": [str(s) for s in downstream],
        "transductive": bool(transductive),
        "n_windows": {"train": int(train_rows.size), "val": int(val_rows.size)},
    }
    logger.info(
        "Pretraining EEGFormer (%s, %d parameters) on %d windows of %d recordings from %d "
        "store(s); %d validation windows",
        model.get("preset", "demo"),
        network.parameter_count(),
        train_rows.size,
        table.loc[train_rows, "recording"].nunique(),
        len(stores),
        val_rows.size,
    )
    result = fit(
        PretrainModule(wrapped, train_config), datamodule, train_config, run_dir, metadata=metadata
    )
    if not result.is_global_zero:
        return None
    params = {
        "model": model,
        "objective": objective or {},
        "training": training or {},
        "split": split_params,
        "labels": list(labels or []),
        "transductive": bool(transductive),
    }
    extra = {
        "best_score": result.best_score,
        "best_step": result.best_step,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "world_size": result.world_size,
        "n_parameters": network.parameter_count(),
        "n_windows": metadata["n_windows"],
    }
    store_files = [s / "store.json" for s in stores + downstream]
    write_artifact(
        model_output,
        lambda tmp: shutil.copytree(result.best, tmp, dirs_exist_ok=True),
        stage=STAGE,
        params=params,
        inputs=store_files,
        extra=extra,
        directory=True,
    )
    history = pd.DataFrame(result.history)
    history.insert(0, "corpus", "+".join(s.parent.name for s in stores))
    save_table(history_output, history, stage=STAGE, params=params, inputs=store_files)
    splits = split_frame(table, {"pretrain": used["train"], "val": used["val"], "test": held_out})
    save_table(
        splits_output or Path(model_output).parent / "splits.tsv",
        splits,
        stage=STAGE,
        params=params,
        inputs=store_files,
    )
    logger.info(
        "Best validation loss %.4f at step %d; wrote %s",
        result.best_score if result.best_score is not None else float("nan"),
        result.best_step,
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eegformer_pretrain", threads=True)
    parser.add_argument("--stores", nargs="+", required=True, help="patch-store folders")
    parser.add_argument(
        "--downstream-stores",
        nargs="*",
        default=None,
        help="stores of the tasks not pretrained on, whose test patients are held out too",
    )
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.stores,
        args.model_output,
        args.history_output,
        downstream=args.downstream_stores,
        splits_output=args.splits_output,
        run_dir=args.run_dir,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
