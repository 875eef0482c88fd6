"""Fine-tune EEGFormer on one downstream task: probe, fine-tuning, scratch, published baselines.

The task (abnormal, artifacts, slowing, seizure, as the TUH subsets define them; see
neuroai.eeg.tasks) gives each window of the task's patch stores a target. Every mode
trains a head on the encoder with the same seed, data and step budget:

- ``probe``: a linear head on the frozen pretrained encoder;
- ``finetune``: the pretrained encoder and the head trained together;
- ``scratch``: the same architecture from random weights, trained in full;
- ``eegnet``: the published compact baseline EEGNet-8,2 (neuroai.models.eegnet) on the
  windows' time patches, from random weights, its classifier the same head;
- ``braindecode.<ClassName>``: a published network as braindecode implements it
  (``braindecode.ShallowFBCSPNet``, ``braindecode.EEGNetv4``, ``braindecode.Deep4Net``
  ...; neuroai.models.braindecode_models), on the time patches, from random weights, its
  final layer replaced by the same head (needs ``pip install "neuroai[braindecode]"``).

A task whose stores are not among the pretraining's is a *transfer* task (pretrained on
corpus A, fine-tuned and tested on dataset B, no recording shared): the metadata says so
(``transfer``), as EEGFormer's headline experiment (TUH to the Neonate dataset) is one.

Training uses the training recordings, model selection (lowest validation loss) the
validation recordings, and each mode's best model predicts every window of the
held-out test subjects' recordings (the stores' own eval split when they have one;
splits by subject, see neuroai.training.eeg_data.recording_split). A pretrained model
that saw a test subject is refused unless it was pretrained transductively on purpose.
Writes the models (one pretrained folder per mode), the window predictions, the
learning histories and ``splits.tsv`` (train, val, test of every recording used);
neuroai.evaluation turns the predictions into metrics (eegformer_evaluate).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger
from neuroai.errors import ConfigError, check_option
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.eegformer_finetune")
STAGE = "eegformer_finetune"
MODES = ("probe", "finetune", "scratch", "eegnet")


def _probabilities(outputs, multilabel: bool) -> np.ndarray:
    """Positive-class probability ``(n,)`` (binary) or per-class ``(n, K)`` (multi-label)."""
    import torch

    if multilabel:
        return torch.sigmoid(outputs).numpy()
    return torch.softmax(outputs, dim=1)[:, 1].numpy()


def _seen_in_pretraining(table, document, test, pretrained, split_params, task) -> list[str]:
    """Test subjects of the task that the pretrained model was pretrained on (see run)."""
    from neuroai.training.eeg_data import seen_test_subjects

    pretraining = document.get("split")
    if pretraining is None:
        logger.warning(
            "%s records no pretraining split: whether it saw task %s's test subjects is unknown",
            pretrained,
            task,
        )
        return []
    seen = seen_test_subjects(table, pretraining, test)
    if seen and not document.get("transductive"):
        raise ConfigError(
            f"Task {task}: {len(seen)} test patients ({', '.join(seen[:5])}) were pretrained on "
            f"by {pretrained}. Fine-tune with the same split settings as the pretraining "
            f"(pretraining: {pretraining.get('params')}, this task: {split_params}). If the "
            "pretraining read them through another dataset of the same patient namespace (the "
            "TUH corpora share one), pretrain with this task's stores as downstream stores "
            "(eegformer_pretrain --downstream-stores; the workflow does so for every task "
            "under eegformer.tasks). Or pretrain with transductive=True to allow it on purpose."
        )
    if seen:
        logger.warning(
            "Task %s: %d test subjects were pretrained on (transductive pretraining)",
            task,
            len(seen),
        )
    return seen


def eegnet_config(layout: dict[str, Any]) -> dict[str, Any]:
    """EEGNet-8,2's config for windows of the stores' ``layout`` (``store_layout``)."""
    return {
        "n_chans": int(layout["n_chans"]),
        "n_times": int(layout["n_times"]),
        "patch_len": int(layout["patch_len"]),
        "patch_stride": int(layout["patch_stride"]),
        "sfreq": float(layout["sfreq"]),
    }


def _transfer(document: dict[str, Any], stores: list[Path]) -> dict[str, Any] | None:
    """``{"pretrained_on", "tested_on"}`` datasets when no task store was pretrained on.

    The pretrained folder's metadata names its stores (``stores``); a store is known by
    its folder's parent name (``results/eeg/<dataset>/store``). None when the task
    shares a store with the pretraining (the within-corpus protocol) or when the
    pretrained folder does not say what it read (weights from elsewhere).
    """
    pretrained_on = [Path(s) for s in document.get("stores") or []]
    if not pretrained_on:
        return None
    resolved = {p.resolve() for p in pretrained_on}
    if any(Path(s).resolve() in resolved for s in stores):
        return None
    return {
        "pretrained_on": sorted({p.parent.name for p in pretrained_on}),
        "tested_on": sorted({Path(s).parent.name for s in stores}),
    }


def run(
    stores: list[str | Path],
    pretrained: str | Path,
    models_output: str | Path,
    predictions_output: str | Path,
    history_output: str | Path,
    *,
    task: str,
    definition: dict[str, Any] | None = None,
    modes: list[str] | None = None,
    training: dict[str, Any] | None = None,
    split: dict[str, Any] | None = None,
    encoder_lr_scale: float = 1.0,
    head: dict[str, Any] | None = None,
    batch_size: int = 32,
    device: str = "auto",
    splits_output: str | Path | None = None,
    run_dir: str | Path | None = None,
) -> Path | None:
    """Train every mode on ``task`` and write models, test predictions and histories.

    Parameters
    ----------
    stores : list of path-like
        Patch stores holding the task's labelled windows.
    pretrained : path-like
        Pretrained EEGFormer folder (from ``eegformer_pretrain``).
    models_output : path-like
        Folder to write, with one pretrained folder per mode (``<mode>/``).
    predictions_output : path-like
        Window predictions on the test recordings (``mode``, ``recording``,
        ``target``/``target_<class>``, ``score``/``score_<class>`` ...).
    history_output : path-like
        Learning histories of the modes.
    task : str
        Task name (:data:`neuroai.eeg.tasks.TUH_TASKS` or a new one).
    definition : dict | None
        Fields of the task to change or define (``kind``, ``positive``,
        ``negative``, ``classes``, ``aggregate``).
    modes : list of str | None
        Among ``probe``, ``finetune``, ``scratch``, ``eegnet`` and
        ``braindecode.<ClassName>`` (the first four by default).
    training : dict | None
        :class:`~neuroai.training.TrainConfig` fields (one budget for every mode).
    split : dict | None
        ``n_val``, ``test_fraction``, ``seed`` (see ``recording_split``); those of the
        pretraining, so that its test subjects are this task's.
    encoder_lr_scale : float
        Learning rate of the encoder relative to the head when it trains.
    head : dict | None
        ``hidden`` (0: linear) and ``dropout`` of the head.
    batch_size : int
        Windows per forward pass when predicting.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` for the predictions.
    splits_output : path-like | None
        ``splits.tsv`` to write; ``<models_output>/../splits.tsv`` by default.
    run_dir : path-like | None
        Parent of the modes' run folders; ``<models_output>/../run`` by default.

    Raises
    ------
    ConfigError
        When the pretrained model was pretrained on a test subject of the task (and
        not transductively on purpose).

    Returns
    -------
    Path | None
        ``predictions_output`` (None on the other processes of a distributed run).
    """
    # Imported here so that `--help` answers without loading torch and Lightning.
    import pandas as pd
    import torch

    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.eeg.tasks import make_task, task_targets
    from neuroai.io import save_table, write_artifact
    from neuroai.models import build_model, load_pretrained, read_pretrained_config
    from neuroai.models.braindecode_models import (
        baseline_config,
        is_braindecode_mode,
        network_class,
        network_name,
    )
    from neuroai.models.probe import ProbeModel
    from neuroai.training import FineTuneModule, TrainConfig, fit, seed_everything
    from neuroai.training.eeg_data import (
        EEGWindowDataModule,
        iterate_windows,
        recording_split,
        rows_of,
        split_frame,
        store_layout,
        window_table,
    )

    modes = list(modes or MODES)
    for mode in modes:
        if is_braindecode_mode(mode):
            network_class(network_name(mode))  # installed, and a network it has
        else:
            check_option("mode", mode, MODES)
    if len(set(modes)) != len(modes):
        raise ConfigError(f"Modes are listed twice: {modes}.")
    stores = [Path(s) for s in stores]
    definition_ = make_task(task, definition)
    split_params = dict(split or {})
    head = dict(head or {})
    layout = store_layout(stores)
    document = read_pretrained_config(pretrained)
    if document["model"] != "eegformer":
        raise ConfigError(f"{pretrained} holds a {document['model']!r} model, not 'eegformer'.")
    shape = {k: layout[k] for k in ("n_chans", "n_times", "patch_len", "patch_stride")}
    differ = {k: (document["config"][k], v) for k, v in shape.items() if document["config"][k] != v}
    if differ:
        raise ConfigError(
            f"The pretrained model {pretrained} was built for other windows than the stores "
            f"{[str(s) for s in stores]}: (model, stores) {differ}. Fine-tune on stores made "
            "with the same EEG parameters and montage."
        )
    table = window_table(stores)
    targets = task_targets(definition_, table)
    if targets.dropped_classes:
        logger.warning(
            "Task %s: classes %s never occur in these stores and are left out",
            task,
            targets.dropped_classes,
        )
    chosen = recording_split(table, **split_params)
    seen = _seen_in_pretraining(table, document, chosen.test, pretrained, split_params, task)
    transfer = _transfer(document, stores)
    position = {int(r): i for i, r in enumerate(targets.rows)}
    train_rows = rows_of(table, chosen.train, targets.rows)
    val_rows = rows_of(table, chosen.val, targets.rows)
    test_rows = rows_of(table, chosen.test, targets.rows)
    if not train_rows.size or not test_rows.size:
        raise ConfigError(
            f"Task {task}: {train_rows.size} training and {test_rows.size} test windows; "
            "both are needed (check the stores' splits and the task's labels)."
        )

    def target_of(rows):
        return targets.targets[[position[int(r)] for r in rows]]

    multilabel = definition_.multilabel
    n_outputs = len(targets.classes) if multilabel else 2
    train_config = TrainConfig.from_dict(training or {}, source=f"eegformer fine-tuning ({task})")
    run_root = Path(run_dir) if run_dir else Path(models_output).parent / "run"
    device = stage_device(device)
    base = EEGPatchDataset(stores)
    metadata = {
        "task": task,
        "definition": definition_.to_dict(),
        "classes": targets.classes,
        "dropped_classes": targets.dropped_classes,
        "stores": [str(s) for s in stores],
        "pretrained": str(pretrained),
        "split": {"params": split_params, **chosen.to_dict()},
        "test_subjects_pretrained_on": len(seen),
        "transfer": transfer,
    }
    results, frames, histories = {}, [], []
    for mode in modes:
        part = "spectrum" if mode in ("probe", "finetune", "scratch") else "time"
        seed_everything(train_config.seed)
        if mode == "scratch":
            encoder = build_model("eegformer", document["config"])
        elif mode == "eegnet":
            encoder = build_model("eegnet", eegnet_config(layout))
        elif is_braindecode_mode(mode):
            encoder = build_model("braindecode", baseline_config(network_name(mode), layout))
        else:
            encoder = load_pretrained(pretrained)
        seed_everything(train_config.seed)  # the same head in every mode
        probe = ProbeModel.from_encoder(
            encoder,
            n_outputs=n_outputs,
            task="multilabel" if multilabel else "classification",
            freeze=mode == "probe",
            hidden=int(head.get("hidden", 0)),
            dropout=float(head.get("dropout", 0.0)),
        )
        datamodule = EEGWindowDataModule(
            stores,
            train_rows,
            val_rows,
            train_targets=target_of(train_rows),
            val_targets=target_of(val_rows) if val_rows.size else None,
            batch_size=train_config.batch_size,
            val_batch_size=train_config.batch_size,
            seed=train_config.seed,
            num_workers=train_config.num_workers,
            part=part,
        )
        logger.info(
            "%s / %s: %d trainable of %d parameters; %d training, %d validation, %d test windows",
            task,
            mode,
            probe.parameter_count(trainable_only=True),
            probe.parameter_count(),
            train_rows.size,
            val_rows.size,
            test_rows.size,
        )
        result = fit(
            FineTuneModule(probe, train_config, encoder_lr_scale=encoder_lr_scale),
            datamodule,
            train_config,
            run_root / mode,
            metadata={**metadata, "mode": mode},
        )
        if not result.is_global_zero:
            continue
        results[mode] = result
        history = pd.DataFrame(result.history)
        history.insert(0, "mode", mode)
        histories.append(history)
        best = load_pretrained(result.best, map_location=device)
        scores = []
        with torch.no_grad():
            for _, patches in iterate_windows(base, test_rows, batch_size, part=part):
                scores.append(_probabilities(best(patches.to(device)).float().cpu(), multilabel))
        scores = np.concatenate(scores)
        frame = table.loc[test_rows, ["store", "window", "recording", "subject", "start_s"]]
        frame = frame.reset_index(names="row")
        frame.insert(0, "mode", mode)
        y = target_of(test_rows)
        if multilabel:
            for k, name in enumerate(targets.classes):
                frame[f"target_{name}"] = y[:, k].astype(int)
                frame[f"score_{name}"] = scores[:, k]
        else:
            frame["target"] = y
            frame["score"] = scores
        frames.append(frame)
    if not results:
        return None
    params = {
        "task": task,
        "definition": definition or {},
        "modes": modes,
        "training": training or {},
        "split": split_params,
        "encoder_lr_scale": encoder_lr_scale,
        "head": head,
    }
    inputs = [*(s / "store.json" for s in stores), Path(pretrained) / "config.json"]

    def write_models(tmp: Path) -> None:
        for mode, result in results.items():
            shutil.copytree(result.best, tmp / mode)

    extra = {
        "task": definition_.to_dict(),
        "classes": targets.classes,
        "positives": targets.positives(),
        "test_subjects_pretrained_on": len(seen),
        "transfer": transfer,
        "modes": {
            m: {"best_step": r.best_step, "best_score": r.best_score, "steps": r.steps}
            for m, r in results.items()
        },
    }
    write_artifact(
        models_output,
        write_models,
        stage=STAGE,
        params=params,
        inputs=inputs,
        extra=extra,
        directory=True,
    )
    save_table(
        history_output,
        pd.concat(histories, ignore_index=True),
        stage=STAGE,
        params=params,
        inputs=inputs,
    )
    save_table(
        predictions_output,
        pd.concat(frames, ignore_index=True),
        stage=STAGE,
        params=params,
        inputs=[*inputs, Path(models_output)],
        extra=extra,
    )
    parts = {
        name: table.loc[rows, "recording"].unique().tolist()
        for name, rows in (("train", train_rows), ("val", val_rows), ("test", test_rows))
    }
    save_table(
        splits_output or Path(models_output).parent / "splits.tsv",
        split_frame(table, parts),
        stage=STAGE,
        params=params,
        inputs=inputs,
    )
    logger.info("Task %s: wrote %s", task, predictions_output)
    return Path(predictions_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eegformer_finetune", threads=True)
    parser.add_argument("--stores", nargs="+", required=True, help="patch-store folders")
    parser.add_argument("--pretrained", required=True, help="pretrained EEGFormer folder")
    parser.add_argument("--task", required=True, help="abnormal, artifacts, slowing, seizure ...")
    parser.add_argument("--models-output", required=True, help="folder of the modes' models")
    parser.add_argument("--predictions-output", required=True, help="test predictions .tsv")
    parser.add_argument("--history-output", required=True, help="learning histories .tsv")
    parser.add_argument("--splits-output", default=None, help="splits.tsv to write")
    parser.add_argument("--run-dir", default=None, help="parent of the modes' run folders")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.stores,
        args.pretrained,
        args.models_output,
        args.predictions_output,
        args.history_output,
        task=args.task,
        splits_output=args.splits_output,
        run_dir=args.run_dir,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
