"""Fine-tune TABLeT on a subject label of a token cohort (from a pretrained encoder or scratch).

Classification of a binary label (BCE with logits, positive-class weight n_neg / n_pos of
the training split) or regression of a continuous one (targets z-scored on the training
split, L1 loss). Each epoch draws one random window of ``window_frames`` frames per
training subject (shorter runs padded and masked); validation uses every non-overlapping
window. AdamW (weight decay 0.01) with a cosine schedule after a linear warm-up by
default. The split is the one the pretraining and evaluation stages share. Writes the
selected model as a pretrained folder (its config.json records the task, the class
coding or the target scaling), the learning history and ``splits.tsv`` (the subjects
of train, val and test). ``training.select`` picks the
weights: ``best`` (default), those of the lowest validation loss; ``last``, those of the
last step, as the TABLeT paper tests (its released ``train.py`` tests once, after the
last epoch).

The encoder must not have read a test subject: its config.json records the subjects its
pretraining read (``tablet_pretrain``), and an encoder that read one of this split's test
subjects is refused (DataError). An encoder that records no split (weights from elsewhere)
is accepted with a warning that leakage cannot be checked. ``split_index`` k fine-tunes on
split k of ``tablet.splits`` (seed ``split.seed + k``), as its pretraining left out.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError, check_option
from neuroai.pipelines._stage import execute, stage_parser

logger = get_logger("stage.tablet_finetune")
STAGE = "tablet_finetune"
KINDS = ("classification", "regression")
#: TABLeT config fields that define the network (taken from a pretrained encoder).
ENCODER_FIELDS = (
    "n_tokens",
    "token_dim",
    "d_model",
    "depth",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "mlp_dim",
    "bias",
    "positional",
    "rope_theta",
    "tr_embedding",
    "embed_norm",
    "final_norm",
    "default_tr",
)
SELECT = ("best", "last")


def seen_in_pretraining(
    document: dict[str, Any],
    dataset: str,
    test: list[str],
    *,
    pretrained: str | Path,
    model_output: str | Path,
    split: dict[str, Any],
    split_index: int,
) -> list[str] | None:
    """Check that the encoder in ``pretrained`` read none of the ``test`` subjects.

    Parameters
    ----------
    document : dict
        The encoder's config.json (:func:`neuroai.models.read_pretrained_config`).
    dataset : str
        The fine-tuning cohort (the folder of its index.tsv), as the pretraining names it.
    test : list of str
        The test subjects of this fine-tuning.
    pretrained, model_output : path-like
        The encoder folder and the folder fine-tuning writes (named in the error).
    split : dict
        This fine-tuning's split settings; ``split_index`` its index (named in the error).

    Returns
    -------
    list of str | None
        ``[]`` when the record shows no overlap; None when the encoder records no split
        (then a warning says that leakage cannot be checked).

    Raises
    ------
    DataError
        When the encoder's pretraining read a test subject of this cohort.
    """
    record = document.get("split")
    if not isinstance(record, dict) or not isinstance(record.get("read"), dict):
        logger.warning(
            "%s records no pretraining split (weights from elsewhere?): whether it read the "
            "%d test subjects of %s cannot be checked, so leakage cannot be ruled out",
            pretrained,
            len(test),
            dataset,
        )
        return None
    seen = sorted(set(map(str, test)) & set(map(str, record["read"].get(dataset, []))))
    if seen:
        raise DataError(
            f"The encoder {pretrained} was pretrained on {len(seen)} of the {len(test)} test "
            f"subjects of {dataset} that fine-tuning into {model_output} would test on "
            f"({', '.join(seen[:5])}{', ...' if len(seen) > 5 else ''}): its scores would "
            f"leak. The encoder read split {record.get('index', 0)} with "
            f"{record.get('params')} (recorded in {record.get('splits_file')}); this is split "
            f"{split_index} with {split}. Fine-tune with the split the encoder was pretrained "
            "on (the same tablet.split settings and split index), or pretrain an encoder "
            "that leaves these subjects out."
        )
    return seen


def encode_targets(values, kind: str, *, positive: str | None, train_rows):
    """Targets for training and how to read predictions back.

    Parameters
    ----------
    values : pandas.Series
        The label column of the whole index.
    kind : {"classification", "regression"}
    positive : str | None
        The positive class of a binary label (the second in sorted order when None).
    train_rows : sequence of bool
        Rows of the training subjects (the z-scoring and the class weight use them only).

    Returns
    -------
    targets : ndarray, shape (n_subjects,), float
        0/1 or z-scored values.
    coding : dict
        ``{"positive": ..., "negative": ..., "pos_weight": ...}`` or
        ``{"mean": ..., "std": ...}`` (in the label's units).
    """
    import numpy as np

    check_option("task kind", kind, KINDS)
    train_rows = np.asarray(train_rows, bool)
    if kind == "classification":
        labels = values.astype(str)
        classes = sorted(labels.unique())
        if len(classes) != 2:
            raise DataError(
                f"Column {values.name!r} has {len(classes)} classes {classes}; TABLeT's "
                "classification head is binary."
            )
        positive = str(positive) if positive is not None else classes[1]
        if positive not in classes:
            raise ConfigError(
                f"positive {positive!r} is not a value of {values.name!r}: {classes}."
            )
        targets = (labels == positive).to_numpy(float)
        n_pos = targets[train_rows].sum()
        n_neg = train_rows.sum() - n_pos
        if n_pos == 0 or n_neg == 0:
            raise DataError(f"The training split has only one class of {values.name!r}.")
        negative = [c for c in classes if c != positive][0]
        return targets, {"positive": positive, "negative": negative, "pos_weight": n_neg / n_pos}
    numbers = values.astype(float).to_numpy()
    if np.isnan(numbers).any():
        raise DataError(f"Column {values.name!r} has missing values; give every subject one.")
    mean, std = float(numbers[train_rows].mean()), float(numbers[train_rows].std())
    if std == 0:
        raise DataError(f"Column {values.name!r} is constant on the training split.")
    return (numbers - mean) / std, {"mean": mean, "std": std}


def run(
    index: str | Path,
    model_output: str | Path,
    history_output: str | Path,
    *,
    pretrained: str | Path | None = None,
    task: dict[str, Any] | None = None,
    variant: str = "scratch",
    model: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    splits_output: str | Path | None = None,
    split_index: int = 0,
) -> Path | None:
    """Fine-tune one variant on one task; write the selected model, the history, the splits.

    Parameters
    ----------
    index : path-like
        The cohort's token-store index.tsv.
    model_output, history_output : path-like
        Pretrained folder of the selected model; history table.
    pretrained : path-like | None
        Encoder folder from ``tablet_pretrain`` (its matching weights initialise the
        model); None trains from scratch.
    task : dict | None
        ``name``, ``column`` (of index.tsv), ``kind`` ("classification" or
        "regression"), ``positive`` (class coded 1), ``use_tr`` (false: every subject
        gets the model's default TR, for labels confounded with TR such as the demo's site).
    variant : str
        Name of the variant (``pretrained-rope``, ``scratch-none``...), recorded.
    model, training, data, split : dict | None
        As in :func:`neuroai.pipelines.tablet_pretrain.run`; ``data`` holds ``window_frames``;
        ``training`` may hold ``select``: ``"best"`` (default: the weights of the best
        validation score, ``monitor``) or ``"last"`` (the weights after ``max_steps``,
        the paper's protocol).
    run_dir : path-like | None
        Run folder; ``<model_output>/../run`` by default.
    splits_output : path-like | None
        ``splits.tsv`` to write: ``dataset``, ``subject``, ``recording``, ``split``
        (``train``, ``val``, ``test``); ``<model_output>/../splits.tsv`` by default.
    split_index : int
        Which of the random splits (``tablet.splits``): split k is drawn with the seed
        ``split["seed"] + k`` (:func:`~neuroai.pipelines.tablet_pretrain.indexed_split`).

    Raises
    ------
    DataError
        When ``pretrained`` records a pretraining that read a test subject of this split
        (:func:`seen_in_pretraining`).
    """
    import pandas as pd

    from neuroai.io import save_table, write_artifact
    from neuroai.models import build_model, read_pretrained_config
    from neuroai.pipelines.tablet_pretrain import cohort_splits, indexed_split, tablet_config
    from neuroai.tokenizers import read_token_store
    from neuroai.training import (
        SupervisedModule,
        TokenWindowDataModule,
        TrainConfig,
        fit,
        read_token_index,
        seed_everything,
        split_token_cohort,
    )

    task, model, data = dict(task or {}), dict(model or {}), dict(data or {})
    split = indexed_split(split, split_index)
    column, kind = task.get("column"), task.get("kind", "classification")
    table = read_token_index(index)
    if column not in table.columns:
        raise ConfigError(
            f"task column {column!r} is not in {index} (columns: {', '.join(table.columns)})."
        )
    chosen = split_token_cohort(table, **split)
    ids = list(table["participant_id"])
    targets, coding = encode_targets(
        table[column],
        kind,
        positive=task.get("positive"),
        train_rows=[i in chosen.train for i in ids],
    )
    rows = {pid: i for i, pid in enumerate(ids)}
    window = int(data.get("window_frames", 256))
    fixed = {"task": kind, "n_outputs": 1}
    if kind == "classification":
        fixed["pos_weight"] = float(coding["pos_weight"])
    leakage_checked = None
    if pretrained:
        document = read_pretrained_config(pretrained)
        leakage_checked = (
            seen_in_pretraining(
                document,
                Path(index).parent.name,
                list(chosen.test),
                pretrained=pretrained,
                model_output=model_output,
                split=split,
                split_index=split_index,
            )
            is not None
        )
        # The network is the encoder's: every structural field comes from its config
        # (a field an older encoder lacks keeps the default it was trained with).
        encoder = document["config"]
        for key in ENCODER_FIELDS:
            if key in encoder:
                fixed[key] = encoder[key]
    else:
        shape = read_token_store(table["tokens"].iloc[0]).tokens.shape
        fixed.update(n_tokens=int(shape[1]), token_dim=int(shape[2]))
    config = tablet_config(model, **fixed)
    values = dict(training or {})
    select = values.pop("select", "best")
    check_option("training.select", select, SELECT)
    values["init_from"] = str(pretrained) if pretrained else None
    train_config = TrainConfig.from_dict(values, source="tablet fine-tuning")
    seed_everything(train_config.seed)
    network = build_model("tablet", config)

    use_tr = bool(task.get("use_tr", True))

    def part(name):
        chosen_ids = getattr(chosen, name)
        return (
            [table["tokens"].iloc[rows[i]] for i in chosen_ids],
            [float(targets[rows[i]]) for i in chosen_ids],
            [float(table["tr"].iloc[rows[i]]) if use_tr else config.default_tr for i in chosen_ids],
        )

    (train_paths, train_y, train_tr), (val_paths, val_y, val_tr) = part("train"), part("val")
    datamodule = TokenWindowDataModule(
        train_paths,
        val_paths,
        window=window,
        train_targets=train_y,
        val_targets=val_y,
        train_trs=train_tr,
        val_trs=val_tr,
        batch_size=train_config.batch_size,
        seed=train_config.seed,
        num_workers=train_config.num_workers,
        val_batch_size=train_config.batch_size,
    )
    metadata = {
        "tablet": {
            "stage": STAGE,
            "task": {
                "name": task.get("name", column),
                "column": column,
                "kind": kind,
                "use_tr": use_tr,
                **coding,
            },
            "variant": variant,
            "select": select,
            "pretrained": str(pretrained) if pretrained else None,
            "data": {"window_frames": window},
            "split": {"params": split, "index": int(split_index), **chosen.to_dict()},
            # None: from scratch; False: the encoder records no split (not checkable).
            "leakage_checked": leakage_checked,
        }
    }
    logger.info(
        "%s (%s, %s): %d training / %d validation subjects, %d test held out",
        task.get("name", column),
        kind,
        variant,
        len(train_paths),
        len(val_paths),
        len(chosen.test),
    )
    run_dir = Path(run_dir) if run_dir else Path(model_output).parent / "run"
    result = fit(
        SupervisedModule(network, train_config),
        datamodule,
        train_config,
        run_dir,
        metadata=metadata,
    )
    if not result.is_global_zero:
        return None
    params = {
        "task": task,
        "variant": variant,
        "model": model,
        "training": training or {},
        "data": data,
        "split": split,
        "split_index": int(split_index),
    }
    inputs = [index, *([pretrained] if pretrained else [])]
    chosen_folder = result.last if select == "last" else result.best
    write_artifact(
        model_output,
        lambda tmp: shutil.copytree(chosen_folder, tmp, dirs_exist_ok=True),
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra={
            "select": select,
            "selected_step": result.steps if select == "last" else result.best_step,
            "best_step": result.best_step,
            "steps": result.steps,
            "best_score": result.best_score,
        },
        directory=True,
    )
    history = pd.DataFrame(result.history)
    history.insert(0, "variant", variant)
    history.insert(0, "task", task.get("name", column))
    save_table(history_output, history, stage=STAGE, params=params, inputs=inputs)
    save_table(
        splits_output or Path(model_output).parent / "splits.tsv",
        cohort_splits(index, table, chosen),
        stage=STAGE,
        params=params,
        inputs=inputs,
    )
    logger.info(
        "Best %s %.4f at step %d; wrote the %s weights (step %d) to %s",
        train_config.monitor,
        result.best_score or float("nan"),
        result.best_step,
        select,
        result.steps if select == "last" else result.best_step,
        model_output,
    )
    return Path(model_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tablet_finetune", threads=True)
    parser.add_argument("--index", required=True, help="token-store index.tsv")
    parser.add_argument("--pretrained", default=None, help="pretrained encoder folder")
    parser.add_argument("--model-output", required=True, help="pretrained folder to write")
    parser.add_argument("--history-output", required=True, help="learning history .tsv")
    parser.add_argument("--variant", default="scratch", help="variant name (recorded)")
    parser.add_argument("--run-dir", default=None, help="run folder (checkpoints, logs)")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.index,
        args.model_output,
        args.history_output,
        pretrained=args.pretrained,
        variant=args.variant,
        run_dir=args.run_dir,
        splits_output=args.splits_output,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
