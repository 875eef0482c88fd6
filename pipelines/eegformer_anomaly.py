"""Anomaly detection with EEGFormer pretrained on normal recordings only.

The model (eegformer_pretrain with labels [normal]) is applied to the normal
training windows, whose code frequencies are the reference, and to every window of
the held-out test recordings, normal and abnormal. Each window gets three scores:
reconstruction error, quantisation error and code rarity under the normal reference
(neuroai.evaluation.anomaly); a recording's score is its windows' mean. Writes the
window scores and anomaly.json: AUROC and AUPRC of abnormal against normal for every
score, at window and recording level, with bootstrap intervals over patients.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from neuroai import get_logger
from neuroai.errors import ConfigError, DataError
from neuroai.pipelines._stage import execute, stage_device, stage_parser

logger = get_logger("stage.eegformer_anomaly")
STAGE = "eegformer_anomaly"


def run(
    stores: list[str | Path],
    pretrained: str | Path,
    scores_output: str | Path,
    metrics_output: str | Path,
    *,
    normal: list[str] | None = None,
    abnormal: list[str] | None = None,
    split: dict[str, Any] | None = None,
    batch_size: int = 32,
    device: str = "auto",
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Path:
    """Score the test windows and recordings and write the scores and ``anomaly.json``.

    Parameters
    ----------
    stores : list of path-like
        Patch stores with recording labels (TUAB-like).
    pretrained : path-like
        EEGFormer pretrained on normal recordings only.
    scores_output : path-like
        Window scores (``recording``, ``subject``, ``label``, ``abnormal``,
        ``start_s``, one column per score).
    metrics_output : path-like
        ``anomaly.json``.
    normal, abnormal : list of str | None
        Recording labels of each group (``["normal"]``, ``["abnormal"]``).
    split : dict | None
        As in pretraining (the same split puts the same recordings in test).
    batch_size : int
        Windows per forward pass.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    n_bootstrap, confidence, seed
        Bootstrap resamples, interval coverage, random seed.
    """
    # Imported here so that `--help` answers without loading torch.
    from neuroai.eeg.dataset import EEGPatchDataset
    from neuroai.evaluation.anomaly import (
        SCORES,
        anomaly_metrics,
        anomaly_scores,
        normal_reference,
    )
    from neuroai.evaluation.codebook import run_codebook
    from neuroai.evaluation.windows import aggregate_recordings
    from neuroai.io import save_json, save_table
    from neuroai.models import load_pretrained
    from neuroai.training.eeg_data import recording_split, rows_of, window_table

    normal, abnormal = list(normal or ["normal"]), list(abnormal or ["abnormal"])
    if set(normal) & set(abnormal):
        raise ConfigError(
            f"Labels {sorted(set(normal) & set(abnormal))} are both normal and abnormal."
        )
    stores = [Path(s) for s in stores]
    device = stage_device(device)
    model = load_pretrained(pretrained, map_location=device)
    info = model.pretrained_info
    trained_on = info.get("labels") or []
    if not trained_on or set(trained_on) - set(normal):
        logger.warning(
            "%s was pretrained on recordings labelled %s, not on normal recordings only: the "
            "scores measure novelty against all of them.",
            pretrained,
            trained_on or "(all labels)",
        )
    table = window_table(stores)
    chosen = recording_split(table, **dict(split or {}))
    is_normal = table["label"].isin(normal).to_numpy()
    is_abnormal = table["label"].isin(abnormal).to_numpy()
    reference_rows = rows_of(table, chosen.train, np.flatnonzero(is_normal))
    test_rows = rows_of(table, chosen.test, np.flatnonzero(is_normal | is_abnormal))
    if not reference_rows.size:
        raise DataError(
            f"No normal training windows (labels {normal}) in {[str(s) for s in stores]}."
        )
    base = EEGPatchDataset(stores)
    reference = run_codebook(model, base, reference_rows, batch_size=batch_size, device=device)
    tested = run_codebook(model, base, test_rows, batch_size=batch_size, device=device)
    scores = anomaly_scores(tested, normal_reference(reference))
    frame = table.loc[test_rows, ["store", "recording", "subject", "label", "events", "start_s"]]
    frame = frame.reset_index(names="row")
    frame["abnormal"] = is_abnormal[test_rows].astype(int)
    for name in SCORES:
        frame[name] = scores[name]
    recordings = frame["recording"].astype(str).to_numpy()
    metrics = anomaly_metrics(
        scores,
        frame["abnormal"].to_numpy(),
        recordings,
        subjects=frame["subject"].astype(str).to_numpy(),
        n_resamples=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    per_recording = {}
    for name in SCORES:
        ids, y_rec, s_rec = aggregate_recordings(recordings, frame["abnormal"], scores[name])
        per_recording[name] = {
            "recordings": ids,
            "abnormal": y_rec.tolist(),
            "score": s_rec.tolist(),
        }
    params = {
        "normal": normal,
        "abnormal": abnormal,
        "split": dict(split or {}),
        "n_bootstrap": n_bootstrap,
        "confidence": confidence,
        "seed": seed,
    }
    inputs = [*(s / "store.json" for s in stores), Path(pretrained) / "config.json"]
    save_table(scores_output, frame, stage=STAGE, params=params, inputs=inputs)
    document = {
        "task": "anomaly",
        "pretrained": str(pretrained),
        "pretrained_on": trained_on,
        "stores": [str(s) for s in stores],
        "normal": normal,
        "abnormal": abnormal,
        "n_reference_windows": int(reference_rows.size),
        "n_windows": int(test_rows.size),
        "n_recordings": {
            "normal": int(frame.loc[frame["abnormal"] == 0, "recording"].nunique()),
            "abnormal": int(frame.loc[frame["abnormal"] == 1, "recording"].nunique()),
        },
        "scores": {
            "reconstruction": "mean squared error of the reconstructed spectral patches",
            "reconstruction_z": "reconstruction error per channel in SDs of the normal windows'",
            "quantization": "mean squared distance of the encoded patches to their codes",
            "code_rarity": "mean -log frequency of the window's codes in normal training windows",
        },
        "bootstrap": {
            "n_resamples": n_bootstrap,
            "confidence": confidence,
            "seed": seed,
            "method": "percentile",
            "unit": "subject",
        },
        "metrics": metrics,
        "recording_scores": per_recording,
        "artifacts": {"scores": str(scores_output)},
    }
    save_json(metrics_output, document, stage=STAGE, params=params, inputs=[*inputs, scores_output])
    for name in SCORES:
        auroc = metrics[name]["recording"]["auroc"]
        logger.info(
            "%s: recording AUROC %.3f [%.3f, %.3f]",
            name,
            auroc["estimate"],
            auroc["ci_low"],
            auroc["ci_high"],
        )
    return Path(metrics_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eegformer_anomaly", threads=True)
    parser.add_argument("--stores", nargs="+", required=True, help="patch-store folders")
    parser.add_argument("--pretrained", required=True, help="EEGFormer pretrained on normal EEG")
    parser.add_argument("--scores-output", required=True, help="window scores .tsv")
    parser.add_argument("--metrics-output", required=True, help="anomaly.json to write")
    args = parser.parse_args(argv)
    execute(args, run, args.stores, args.pretrained, args.scores_output, args.metrics_output)


if __name__ == "__main__":
    main(sys.argv[1:])
