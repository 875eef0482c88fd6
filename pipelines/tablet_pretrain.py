"""Pretrain a TABLeT encoder by masked token modelling on fMRI volume-token stores.

Reads one or more token-store indexes (index.tsv of the tokens_summary stage; cohorts
with different TRs pool, the TR embedding tells them apart), leaves out each cohort's
test subjects (the split the fine-tuning and evaluation stages share), and trains the
encoder with the masked_tokens objective (half of the real tokens hidden behind a learned
mask token, a linear decoder, MSE on normalised tokens, masked tokens only) on one random
window per subject per epoch. Writes the best encoder as a pretrained folder, the
learning history, a summary with example reconstructions of a validation window, and
``splits.tsv`` (which subjects it pretrained and validated on, which it left out).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import ConfigError
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.tablet_pretrain")
STAGE = "tablet_pretrain"


def tablet_config(model: dict[str, Any], **fixed: Any):
    """The TABLeT config of a ``model`` params slice (preset, positional, options).

    Precedence: ``fixed`` (what the data or a pretrained encoder dictates), then
    ``positional``, then ``options``, then the preset: ``positional`` absent keeps the
    preset's (``paper``: none, as released).
    """
    from neuroai.models import model_config

    options = dict(model.get("options", {}))
    if model.get("positional"):
        options["positional"] = model["positional"]
    options.update(fixed)
    return model_config("tablet", model.get("preset", "demo"), **options)


def indexed_split(split: dict[str, Any] | None, split_index: int = 0) -> dict[str, Any]:
    """The :func:`~neuroai.training.split_token_cohort` parameters of split ``split_index``.

    Split k is drawn with the seed ``seed + k`` (``seed`` 0 when absent): deterministic
    from the configured seed, and split 0 is the configured split itself.
    """
    params = dict(split or {})
    index = int(split_index)
    if index < 0:
        raise ConfigError(f"split_index must be 0 or more, got {split_index}.")
    params["seed"] = int(params.get("seed", 0)) + index
    return params


def split_record(
    indexes: list[str | Path], frames, split: dict[str, Any], split_index: int, splits_path
):
    """What a pretrained encoder's config.json says of the subjects it read.

    ``{"params", "index", "splits_file", "read": {dataset: [subjects]}, "left_out":
    {dataset: [subjects]}}``: ``read`` holds the pretraining and validation subjects (both
    shaped the encoder: the validation loss chose its weights), ``left_out`` the test ones.
    """
    read: dict[str, list[str]] = {}
    left_out: dict[str, list[str]] = {}
    for row in frames.itertuples(index=False):
        target = left_out if row.split == "test" else read
        target.setdefault(str(row.dataset), []).append(str(row.subject))
    return {
        "params": dict(split),
        "index": int(split_index),
        "splits_file": str(splits_path),
        "indexes": [str(i) for i in indexes],
        "read": {k: sorted(set(v)) for k, v in read.items()},
        "left_out": {k: sorted(set(v)) for k, v in left_out.items()},
    }


def cohort_splits(index: str | Path, table, chosen, names=("train", "val", "test")):
    """The ``splits.tsv`` rows of one token cohort: ``dataset`` (the folder of its index),
    ``subject``, ``recording`` (the token store's file name), ``split``.

    ``names`` renames train / val / test (pretraining calls its training part ``pretrain``).
    """
    from neuroai.evaluation import splits_table

    stores = {
        pid: Path(path).name
        for pid, path in zip(table["participant_id"], table["tokens"], strict=True)
    }
    parts = ("train", "val", "test")
    return splits_table(
        {name: getattr(chosen, part) for name, part in zip(names, parts, strict=True)},
        recordings=stores,
        dataset=Path(index).parent.name,
    )


def cohort(indexes: list[str | Path], split: dict[str, Any]) -> dict[str, Any]:
    """Token stores and TRs of the train / val subjects of every index (test left out),
    and the ``splits.tsv`` rows of all of them (``splits``)."""
    import pandas as pd

    from neuroai.training import read_token_index, split_token_cohort

    parts: dict[str, Any] = {"train": [], "val": [], "train_tr": [], "val_tr": [], "test": []}
    frames = []
    for index in indexes:
        table = read_token_index(index)
        chosen = split_token_cohort(table, **split)
        rows = table.set_index("participant_id")
        for part in ("train", "val"):
            ids = getattr(chosen, part)
            parts[part] += list(rows.loc[ids, "tokens"])
            parts[f"{part}_tr"] += [float(t) for t in rows.loc[ids, "tr"]]
        parts["test"] += list(chosen.test)
        frames.append(cohort_splits(index, table, chosen, names=("pretrain", "val", "test")))
    parts["splits"] = pd.concat(frames, ignore_index=True)
    return parts


def run(
    index: list[str | Path],
    model_output: str | Path,
    history_output: str | Path,
    summary_output: str | Path,
    reconstructions_output: str | Path,
    *,
    model: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    splits_output: str | Path | None = None,
    split_index: int = 0,
) -> Path | None:
    """Pretrain and write the encoder, its history, a summary, reconstructions and splits.

    Parameters
    ----------
    index : list of path-like
        Token-store indexes (index.tsv), one per cohort.
    model_output : path-like
        Pretrained folder of the best encoder (lowest validation loss).
    history_output : path-like
        Learning history table.
    summary_output : path-like
        JSON: steps, losses, the mean-prediction baseline (MSE 1 on normalised tokens),
        parameter count, subjects.
    reconstructions_output : path-like
        ``(3, K, F)`` float16: a validation frame's normalised tokens, their
        reconstruction (last weights) and the mask (1 where hidden).
    model : dict | None
        ``preset``, ``positional`` and ``options`` (further TABLeT config fields).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields.
    data : dict | None
        ``window_frames`` (256 in TABLeT) and ``mask_ratio`` (0.5).
    split : dict | None
        :func:`~neuroai.training.split_token_cohort` parameters.
    run_dir : path-like | None
        Run folder (checkpoints, logs); ``<model_output>/../run`` by default.
    splits_output : path-like | None
        ``splits.tsv`` to write: ``dataset``, ``subject``, ``recording``, ``split``
        (``pretrain``, ``val``, ``test``: every subject of every index);
        ``<model_output>/../splits.tsv`` by default.
    split_index : int
        Which of the random splits (``tablet.splits``) to leave out: split k is drawn with
        the seed ``split["seed"] + k`` (:func:`indexed_split`).
    """
    import numpy as np
    import pandas as pd
    import torch

    from neuroai.io import save_array, save_json, save_table, write_artifact
    from neuroai.models import build_model
    from neuroai.models.objectives.base import create_objective
    from neuroai.training import (
        PretrainModule,
        TokenWindowDataModule,
        TokenWindows,
        TrainConfig,
        fit,
        gpu_policy,
        seed_everything,
    )

    model, data = dict(model or {}), dict(data or {})
    split = indexed_split(split, split_index)
    window = int(data.get("window_frames", 256))
    ratio = float(data.get("mask_ratio", 0.5))
    parts = cohort(index, split)
    splits_output = Path(splits_output or Path(model_output).parent / "splits.tsv")
    first = TokenWindows(parts["train"][:1], window=window, trs=parts["train_tr"][:1])
    config = tablet_config(model, n_tokens=first.shape[0], token_dim=first.shape[1])
    train_config = TrainConfig.from_dict(
        gpu_policy(training, model.get("preset", "demo")), source="tablet pretraining"
    )
    seed_everything(train_config.seed)
    objective = create_objective("masked_tokens", build_model("tablet", config), mask_ratio=ratio)
    datamodule = TokenWindowDataModule(
        parts["train"],
        parts["val"],
        window=window,
        train_trs=parts["train_tr"],
        val_trs=parts["val_tr"],
        mask_ratio=ratio,
        batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
        val_batch_size=train_config.batch_size,
    )
    logger.info(
        "Masked token modelling on %d training / %d validation subjects (%d test subjects left out)",
        len(parts["train"]),
        len(parts["val"]),
        len(parts["test"]),
    )
    run_dir = Path(run_dir) if run_dir else Path(model_output).parent / "run"
    metadata = {
        "tablet": {"stage": STAGE, "data": {"window_frames": window, "mask_ratio": ratio}},
        "split": split_record(index, parts["splits"], split, split_index, splits_output),
        "splits": str(splits_output),
    }
    result = fit(
        PretrainModule(objective, train_config),
        datamodule,
        train_config,
        run_dir,
        metadata=metadata,
    )
    if not result.is_global_zero:
        return None
    params = {
        "model": model,
        "training": training or {},
        "data": data,
        "split": split,
        "split_index": int(split_index),
    }
    inputs = [*index]
    write_artifact(
        model_output,
        lambda tmp: shutil.copytree(result.best, tmp, dirs_exist_ok=True),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={"best_step": result.best_step, "steps": result.steps},
        directory=True,
    )
    history = pd.DataFrame(result.history)
    history.insert(0, "positional", config.positional)
    save_table(history_output, history, stage=STAGE, params=params, inputs=inputs)
    save_table(
        splits_output,
        parts["splits"],
        stage=STAGE,
        params=params,
        inputs=inputs,
    )

    # Reconstructions of the validation windows by the objective's last weights (the
    # decoder and mask token are not exported).
    objective.eval()
    windows = TokenWindows(
        parts["val"] or parts["train"][:1],
        window=window,
        mode="all",
        trs=parts["val_tr"] or parts["train_tr"][:1],
        mask_ratio=ratio,
    )
    hidden_mse, visible_mse, example = [], [], None
    with torch.no_grad():
        for i in range(len(windows)):
            item = windows.get_item(i, train_config.seed + i)
            batch = {k: v[None] if torch.is_tensor(v) else v for k, v in item.items()}
            out = objective.reconstruct(batch)
            error = (out["prediction"] - out["target"]).pow(2).mean(-1)[0]
            hidden, real = out["mask"][0], out["real"][0]
            hidden_mse.append(float(error[hidden].mean()))
            if (real & ~hidden).any():
                visible_mse.append(float(error[real & ~hidden].mean()))
            if example is None:
                frame = int(hidden.any(1).float().argmax())
                example = np.stack(
                    [
                        out["target"][0, frame].numpy(),
                        out["prediction"][0, frame].numpy(),
                        np.broadcast_to(hidden[frame].numpy()[:, None], out["target"].shape[2:]),
                    ]
                ).astype(np.float16)
    save_array(reconstructions_output, example, stage=STAGE, params=params, inputs=inputs)
    losses = history.dropna(subset=["train/loss"]) if "train/loss" in history else history
    summary = {
        "objective": "masked_tokens",
        "loss": "MSE on normalised tokens, hidden tokens only",
        "mask_ratio": ratio,
        "window_frames": window,
        "positional": config.positional,
        "n_parameters": objective.encoder.parameter_count(),
        "steps": result.steps,
        "best_step": result.best_step,
        "best_val_loss": result.best_score,
        "first_train_loss": float(losses["train/loss"].iloc[0]) if len(losses) else None,
        "last_train_loss": float(losses["train/loss"].iloc[-1]) if len(losses) else None,
        "val_hidden_mse": float(np.mean(hidden_mse)),
        "val_visible_mse": float(np.mean(visible_mse)) if visible_mse else None,
        "mean_prediction_mse": 1.0,
        "n_train": len(parts["train"]),
        "n_val": len(parts["val"]),
        "test_left_out": parts["test"],
        "split_index": int(split_index),
    }
    save_json(summary_output, summary, stage=STAGE, params=params, inputs=inputs)
    logger.info(
        "Validation MSE on hidden tokens %.3f (predicting the mean: 1.0); wrote %s",
        summary["val_hidden_mse"],
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tablet_pretrain", threads=True)
    parser.add_argument("--index", nargs="+", required=True, help="token-store index.tsv files")
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--summary-output", required=True, help="summary .json")
    parser.add_argument("--reconstructions-output", required=True, help="example .npy")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.index,
        args.model_output,
        args.history_output,
        args.summary_output,
        args.reconstructions_output,
        run_dir=args.run_dir,
        splits_output=args.splits_output,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
