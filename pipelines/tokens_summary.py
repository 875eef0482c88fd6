"""Summarise a dataset's token stores: QC per subject, the store index for TABLeT, report examples.

Writes summary.json (layout, tokenizer, QC per subject and over the cohort,
compression), index.tsv (one row per subject: token store path relative to the
index, n_frames, TR, participants.tsv labels such as site, QC numbers) and
examples.npy (example slices of up to one subject per site, for the report).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neuroai import get_logger
from neuroai.errors import ProvenanceError
from neuroai.io import load_array, load_json, read_provenance, save_array, save_json, save_table
from neuroai.pipelines._stage import PathList, execute, stage_parser
from neuroai.tokenizers.qc import describe

logger = get_logger("stage.tokens_summary")
TOKENS_SUFFIX = "_tokens.npy"


def _subject(path: Path) -> str:
    return Path(path).name.split("_", 1)[0]


def _tokenizer_info(tokens: Path) -> dict[str, Any]:
    """How the autoencoder behind a token store was made (from the folder's provenance)."""
    from neuroai.tokenizers.autoencoder import BUNDLED_DIR

    folder = Path(read_provenance(tokens)["extra"]["tokenizer"])
    info: dict[str, Any] = {"path": str(folder), "bundled": folder.resolve() == BUNDLED_DIR}
    try:
        record = read_provenance(folder)
    except ProvenanceError:  # published weights copied by hand carry no record
        return {**info, "source": "weights folder without provenance (published weights)"}
    extra = record.get("extra", {})
    info.update(
        source=record["stage"],
        params=record.get("params", {}),
        n_parameters=extra.get("n_parameters"),
        final_loss=extra.get("final_loss"),
        steps=extra.get("steps"),
        seconds=extra.get("seconds"),
        data=extra.get("data"),
    )
    earlier = extra.get("init_from")
    if earlier:  # continued from an earlier checkpoint: say how long that one trained
        info.update(
            earlier_steps=earlier.get("total_steps", earlier.get("steps")),
            earlier_seconds=earlier.get("seconds"),
            total_steps=extra.get("total_steps"),
        )
    return info


def run(
    qc: list[str | Path],
    tokens: list[str | Path],
    examples: list[str | Path],
    summary_output: str | Path,
    index_output: str | Path,
    examples_output: str | Path,
    *,
    dataset: str,
    participants: str | Path | None = None,
    group_by: str | None = "site",
) -> tuple[Path, Path, Path]:
    """Summarise the token stores of one dataset.

    Parameters
    ----------
    qc, tokens, examples : list of path-like
        Per subject, in the same order: QC JSON, token store, example slices.
    summary_output, index_output, examples_output : path-like
        Destinations: summary.json, index.tsv, examples.npy
        ((n_examples, 3 axes, 3 kinds, S, S) float16).
    dataset : str
        Dataset name.
    participants : path-like | None
        participants.tsv whose columns label the subjects in the index.
    group_by : str | None
        Column of participants.tsv; examples show the first subject of each group.
    """
    qc_paths, token_paths = [Path(p) for p in qc], [Path(p) for p in tokens]
    if not (len(qc_paths) == len(token_paths) == len(examples)) or not qc_paths:
        raise ValueError("qc, tokens and examples must list the same subjects, at least one.")
    table = pd.read_csv(participants, sep="\t", dtype=str) if participants else None
    labels = table.set_index("participant_id") if table is not None else None
    rows, subjects = [], []
    for qc_path, token_path in zip(qc_paths, token_paths, strict=True):
        metrics = load_json(qc_path, stage="tokens_qc")
        extra = read_provenance(token_path)["extra"]
        subject = _subject(token_path)
        row: dict[str, Any] = {
            "participant_id": subject,
            "tokens": os.path.relpath(token_path, Path(index_output).parent),
            "n_frames": extra["n_frames"],
            "n_tokens": extra["layout"]["n_tokens"],
            "token_dim": extra["layout"]["token_dim"],
            "tr": extra["tr"],
        }
        if labels is not None and subject in labels.index:
            row.update(labels.loc[subject].to_dict())
        row.update(
            qc_spatial_r=metrics["spatial_correlation"]["mean"],
            qc_psnr_db=metrics["psnr_db"]["mean"],
            qc_temporal_r=metrics["temporal_correlation"]["median"],
            qc_region_r=(metrics.get("region_correlation") or {}).get("median"),
        )
        rows.append(row)
        subjects.append(
            {
                "subject": subject,
                **{k: v for k, v in row.items() if k.startswith("qc_")},
                "qc": metrics,
            }
        )
    index = pd.DataFrame(rows)
    group = group_by if group_by in index.columns else None
    chosen = (list(index.groupby(group, sort=False).head(1).index) if group else [0])[:3]
    stack = np.stack([load_array(examples[i], stage="tokens_qc") for i in chosen])
    first = read_provenance(token_paths[0])["extra"]
    summary = {
        "dataset": dataset,
        "n_subjects": len(rows),
        "layout": first["layout"],
        "dtype": first["dtype"],
        "frame_order": first["frame_order"],
        "tokenizer": _tokenizer_info(token_paths[0]),
        "compression": load_json(qc_paths[0], stage="tokens_qc")["compression"],
        "axis_merge": load_json(qc_paths[0], stage="tokens_qc").get("axis_merge", "mean"),
        "cohort": {
            key: describe([np.nan if r[key] is None else r[key] for r in rows])
            for key in ("qc_spatial_r", "qc_psnr_db", "qc_temporal_r", "qc_region_r")
        },
        "group_by": group,
        "examples": [
            {"subject": rows[i]["participant_id"], "group": rows[i].get(group) if group else None}
            for i in chosen
        ],
        "subjects": subjects,
    }
    inputs = [*qc_paths, *token_paths, *[Path(p) for p in examples]]
    inputs += [Path(participants)] if participants else []
    params = {"dataset": dataset, "group_by": group_by}
    save_json(summary_output, summary, stage="tokens_summary", params=params, inputs=inputs)
    save_table(index_output, index, stage="tokens_summary", params=params, inputs=inputs)
    save_array(examples_output, stack, stage="tokens_summary", params=params, inputs=inputs)
    logger.info("Summarised %d token stores of %s", len(rows), dataset)
    return Path(summary_output), Path(index_output), Path(examples_output)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.tokens_summary")
    parser.add_argument(
        "--qc", nargs="+", action=PathList, required=True, help="@list.txt or per-subject QC .json"
    )
    parser.add_argument(
        "--tokens",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or per-subject token stores",
    )
    parser.add_argument(
        "--examples",
        nargs="+",
        action=PathList,
        required=True,
        help="@list.txt or per-subject example slices",
    )
    parser.add_argument("--summary-output", required=True)
    parser.add_argument("--index-output", required=True)
    parser.add_argument("--examples-output", required=True)
    parser.add_argument("--participants", default=None, help="participants.tsv with labels")
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.qc,
        args.tokens,
        args.examples,
        args.summary_output,
        args.index_output,
        args.examples_output,
        participants=args.participants,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
