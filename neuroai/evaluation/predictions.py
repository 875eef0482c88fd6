"""Prediction tables of fine-tuned models on new data, lined up as the embedding tables are.

Each function applies one family's fine-tuned model to the artifact the workflow
makes of a dataset and returns ``(identity, outputs)``: the identity columns of
:mod:`neuroai.evaluation.embeddings` (``level``, ``subject``, ``run``, ``recording``,
``window``) and the outputs as columns, following the protocol each family's own
evaluation uses:

- EEGFormer (a probe, fine-tuned or from scratch, on the encoder): per window, the
  positive-class probability ``score`` (or ``score_<class>`` per class of a multi-label
  task); per recording, their mean.
- TABLeT (a fine-tuned TABLeT): per subject, the mean logit over non-overlapping
  windows, as ``output`` (``probability`` = its sigmoid for classification; the value
  in the label's units for regression).
- dFC-GNN (a probe on the encoder): per run, the mean class probabilities over crops
  (``p_<class>``) or the mean predicted value in the label's units (``output``).

``predicted`` is the class (or value) each row is assigned. Tables go through
:func:`neuroai.evaluation.embeddings.embedding_table`'s participants join via
:func:`prediction_table`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from neuroai.errors import ArtifactError
from neuroai.evaluation.embeddings import IDENTITY_COLUMNS, _participant_key


def _device(model) -> torch.device:
    return next(model.parameters()).device


def fine_tuned_info(model, folder: str | os.PathLike, family: str) -> dict:
    """The task record of a fine-tuned model folder, refused when it is not one."""
    info = getattr(model, "pretrained_info", {}) or {}
    if family == "tablet":
        record = info.get("tablet", {})
        if record.get("stage") != "tablet_finetune":
            raise ArtifactError(
                f"{folder} is not a fine-tuned TABLeT (tablet_finetune stage): predict needs "
                "a model with a task head; embed a pretrained encoder instead."
            )
        return record
    if getattr(model, "family", "") != "probe" or "task" not in info:
        raise ArtifactError(
            f"{folder} holds no fine-tuned {family} model (a probe with a task): predict needs "
            "a model with a task head (the fine-tuning stage's output); embed an encoder instead."
        )
    return info


@torch.no_grad()
def predict_patch_store(probe, store: str | os.PathLike, *, batch_size: int = 32):
    """A fine-tuned EEGFormer probe on every window of a patch store, and per recording."""
    import pandas as pd

    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.eeg.store import open_patch_store

    index = open_patch_store(store).index
    dataset = EEGPatchDataset([store])
    info = probe.pretrained_info
    multilabel = probe.config.task == "multilabel"
    device = _device(probe)
    scores = []
    for start in range(0, len(dataset), batch_size):
        rows = range(start, min(start + batch_size, len(dataset)))
        x = torch.stack([dataset[i]["spectrum"].float() for i in rows]).to(device)
        out = probe(x).float().cpu()
        scores.append(torch.sigmoid(out) if multilabel else torch.softmax(out, dim=1)[:, 1:2])
    scores = torch.cat(scores).numpy()
    classes = list(info.get("classes", []))
    names = [f"score_{c}" for c in classes] if multilabel else ["score"]
    windows = index[["subject", "session", "recording", "window", "split", "label"]].astype(
        {"subject": str, "session": str, "recording": str}
    )
    windows = windows.assign(level="window", task=info["task"])
    outputs = pd.DataFrame(scores, columns=names)
    recordings = windows.drop_duplicates("recording").assign(level="recording", window=-1)
    means = outputs.groupby(windows["recording"].to_numpy(), sort=False).mean()
    means = means.loc[recordings["recording"]].reset_index(drop=True)
    identity = pd.concat([recordings, windows], ignore_index=True)
    outputs = pd.concat([means, outputs], ignore_index=True)
    if not multilabel:  # classes: [negative, positive] (or the positive one alone)
        positive = classes[-1] if classes else "positive"
        negative = classes[0] if len(classes) == 2 else f"not {positive}"
        outputs["predicted"] = np.where(outputs["score"] >= 0.5, positive, negative)
    return identity, outputs


@torch.no_grad()
def predict_token_stores(
    model,
    stores: Sequence[str | os.PathLike],
    subjects: Sequence[str],
    *,
    trs: Sequence[float] | None = None,
    batch_size: int = 8,
):
    """A fine-tuned TABLeT per subject: the mean logit over non-overlapping windows."""
    import pandas as pd

    from neuroai.tokenizers import read_token_store
    from neuroai.training.token_data import pad_window, tile_starts

    record = model.pretrained_info["tablet"]
    task, window = record["task"], int(record["data"]["window_frames"])
    device = _device(model)
    rows, outputs = [], []
    for k, (path, subject) in enumerate(zip(stores, subjects, strict=True)):
        tokens = np.asarray(read_token_store(Path(path)).tokens)
        tr = trs[k] if trs is not None and task.get("use_tr", True) else model.config.default_tr
        starts = tile_starts(len(tokens), window)
        logits = []
        for first in range(0, len(starts), batch_size):
            pairs = [pad_window(tokens, s, window) for s in starts[first : first + batch_size]]
            x = torch.from_numpy(np.stack([p[0] for p in pairs])).float().to(device)
            mask = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
            trs_ = torch.full((len(pairs),), float(tr), device=device)
            logits.append(model(x, mask, trs_)[:, 0].float().cpu().numpy())
        mean = float(np.concatenate(logits).mean())
        rows.append({"level": "subject", "subject": subject, "task": task["name"]})
        if task["kind"] == "classification":
            probability = 1 / (1 + np.exp(-mean))
            positive = task["positive"]
            outputs.append(
                {
                    "output": mean,
                    "probability": probability,
                    "predicted": positive if mean > 0 else f"not {positive}",
                    "n_windows": len(starts),
                }
            )
        else:
            value = mean * task["std"] + task["mean"]
            outputs.append({"output": value, "predicted": value, "n_windows": len(starts)})
    return pd.DataFrame(rows), pd.DataFrame(outputs)


def predict_graph_runs(
    probe,
    graphs: str | os.PathLike,
    *,
    crop_windows: int,
    max_crops: int | None = 8,
    batch_size: int = 16,
):
    """A fine-tuned dFC-GNN probe per run: mean class probabilities (or values) over crops."""
    import pandas as pd

    from neuroai.evaluation.embeddings import _graph_labels
    from neuroai.fmri.graph_dataset import GraphArrays
    from neuroai.training.graph_finetune import predict_runs

    info = probe.pretrained_info
    arrays = GraphArrays(graphs)
    runs = arrays.meta["runs"]
    out = predict_runs(
        probe,
        graphs,
        list(range(len(runs))),
        length=crop_windows,
        max_crops=max_crops,
        batch_size=batch_size,
    )
    identity = pd.DataFrame(
        {
            "level": "run",
            "subject": [str(r["subject"]) for r in runs],
            "run": [str(r["key"]) for r in runs],
            "task": info["task"],
            **_graph_labels(arrays.meta, arrays),
        }
    )
    if info.get("target") == "classification":
        classes = [str(c) for c in info.get("classes") or range(out.shape[1])]
        outputs = pd.DataFrame(out, columns=[f"p_{c}" for c in classes])
        outputs["predicted"] = [classes[i] for i in out.argmax(1)]
    else:
        value = out * float(info.get("target_scale", 1.0)) + float(info.get("target_shift", 0.0))
        outputs = pd.DataFrame({"output": value, "predicted": value})
    return identity, outputs


def prediction_table(identity, outputs, participants=None):
    """Identity columns, participants' columns, then the outputs; rows as participants.tsv."""
    import pandas as pd

    table = identity.reset_index(drop=True)
    ordered = [c for c in IDENTITY_COLUMNS if c in table] + [
        c for c in table if c not in IDENTITY_COLUMNS
    ]
    table = pd.concat([table[ordered], outputs.reset_index(drop=True)], axis=1)
    if participants is None or "subject" not in table:
        return table
    from neuroai.errors import DataError

    people = participants.astype({"participant_id": str}).reset_index(drop=True)
    ids = list(people["participant_id"])
    keys = _participant_key(table["subject"], set(ids))
    missing = sorted({str(s) for s, k in zip(table["subject"], keys, strict=True) if k is None})
    if missing:
        raise DataError(f"Subjects {missing[:5]} are not in participants.tsv.")
    table["subject"] = keys
    extra = [c for c in people if c != "participant_id" and c not in table]
    joined = people.set_index("participant_id")[extra].loc[keys].reset_index(drop=True)
    at = len(ordered)
    table = pd.concat([table.iloc[:, :at], joined, table.iloc[:, at:]], axis=1)
    rank = {pid: i for i, pid in enumerate(ids)}
    order = np.lexsort((np.arange(len(table)), [rank[k] for k in keys]))
    return table.iloc[order].reset_index(drop=True)


__all__ = [
    "fine_tuned_info",
    "predict_graph_runs",
    "predict_patch_store",
    "predict_token_stores",
    "prediction_table",
]
