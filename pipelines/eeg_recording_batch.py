"""A batch of EEG recordings of one dataset, in one process.

Writes a folder holding, for every recording, what the per-recording stage
(neuroai.pipelines.eeg_recording) writes: its patch store <key>_patches and QC
summary <key>_qc.json, each with its provenance record, byte for byte (each
recording goes through that stage's own run()). The folder appears whole or not
at all (see neuroai.pipelines._batch); with on_error "skip" a recording that cannot
be read (a truncated EDF) is listed in the folder's failures.tsv instead of failing
the batch.

The recordings come as a JSON-lines file, one object a line: {"key": ..., "path":
..., "meta": {...}} (meta as the per-recording stage's --meta).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from neuroai.pipelines import eeg_recording
from neuroai.pipelines._batch import takes_params_of, unique_keys, write_batch
from neuroai.pipelines._stage import execute, stage_parser


def read_recordings(path: str | Path) -> list[dict]:
    """The recordings of a JSON-lines list file (key, path, meta)."""
    from neuroai.errors import DataError

    recordings = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            recordings.append({"key": item["key"], "path": item["path"], "meta": item.get("meta")})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path}, line {number}: not a recording ({exc}); each line must be a JSON "
                'object {"key": ..., "path": ..., "meta": {...}}.'
            ) from exc
    return recordings


def recording_files(key: str, folder: str | Path) -> list[Path]:
    """A recording's patch store and QC summary in a batch folder."""
    return [Path(folder) / f"{key}_patches", Path(folder) / f"{key}_qc.json"]


@takes_params_of(eeg_recording.run)
def run(
    recordings: str | Path | list[dict],
    output: str | Path,
    *,
    on_error: str = "fail",
    **params: Any,
) -> Path:
    """Process every recording of a batch and write the batch folder.

    Parameters
    ----------
    recordings : path-like or list of dict
        The JSON-lines list file, or its items (``key``, ``path``, ``meta``).
    output : path-like
        The batch folder: ``<key>_patches`` and ``<key>_qc.json`` for every recording
        written, and ``failures.tsv``.
    on_error : {"fail", "skip"}
        See :mod:`neuroai.pipelines._batch`.
    **params
        The per-recording stage's parameters (see :class:`neuroai.eeg.EEGParams`).

    Returns
    -------
    Path
        ``output``.
    """
    items = read_recordings(recordings) if isinstance(recordings, (str, Path)) else recordings
    by_key = unique_keys(items, lambda item: item["key"])

    def write_run(key: str, item: dict, folder: Path) -> None:
        store, qc = recording_files(key, folder)
        eeg_recording.run(item["path"], store, qc, meta=item["meta"], **params)

    return write_batch(
        output,
        by_key,
        write_run,
        recording_files,
        stage="eeg_recording",
        params=params,
        on_error=on_error,
    )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eeg_recording_batch")
    parser.add_argument("--recordings", required=True, help="JSON-lines list of the recordings")
    parser.add_argument("--output", required=True, help="the batch folder")
    args = parser.parse_args(argv)
    execute(args, run, args.recordings, args.output)


if __name__ == "__main__":
    main(sys.argv[1:])
