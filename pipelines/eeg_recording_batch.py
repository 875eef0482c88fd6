"""A batch of EEG recordings of one dataset, in one process.

Writes a folder holding, for every recording, what the per-recording stage
(neuroai.pipelines.eeg_recording) writes: its patch store <key>_patches and QC
summary <key>_qc.json, each with its provenance record, byte for byte (each
recording goes through that stage's own process_one() and the library's
write_recording(), as its run() does). The folder appears whole or not
at all (see neuroai.pipelines._batch); with on_error "skip" a recording that cannot
be read (a truncated EDF) is listed in the folder's failures.tsv instead of failing
the batch. Recordings are processed one after the other here, or on a Dask scheduler
(--scheduler tcp://host:8786, else DASK_SCHEDULER_ADDRESS) with the same results; this
process writes them.

The recordings come as a JSON-lines file, one object a line: {"key": ..., "path":
..., "meta": {...}} (meta as the per-recording stage's --meta).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from neuroai.pipelines import eeg_recording
from neuroai.pipelines._batch import (
    RunResults,
    takes_params_of,
    unique_keys,
    where_runs,
    write_batch,
)
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
    scheduler: str | None = None,
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
    scheduler : str | None
        Where the recordings are processed: a Dask scheduler address
        (``tcp://host:8786``); ``None`` or ``""``: the address in
        ``DASK_SCHEDULER_ADDRESS`` if set, else this process, one after the other. It
        does not change the results.
    on_error : {"fail", "skip"}
        See :mod:`neuroai.pipelines._batch`.
    **params
        The per-recording stage's parameters (see :class:`neuroai.eeg.EEGParams`).

    Returns
    -------
    Path
        ``output``.
    """
    from neuroai.eeg.params import EEGParams
    from neuroai.eeg.recording import RecordingMeta, write_recording

    items = read_recordings(recordings) if isinstance(recordings, (str, Path)) else recordings
    by_key = unique_keys(items, lambda item: item["key"])
    settings = EEGParams.from_mapping(params)
    scheduler = where_runs(scheduler)
    tasks = {
        key: {
            "path": Path(item["path"]).absolute(),
            "source": str(Path(item["path"])),
            "meta": (
                RecordingMeta(**item["meta"])
                if item.get("meta")
                else RecordingMeta.from_path(item["path"])
            ),
        }
        for key, item in by_key.items()
    }
    given = {key: item["path"] for key, item in by_key.items()}
    results = RunResults(
        eeg_recording.process_one,
        tasks,
        scheduler=scheduler,
        given=given,
        desc="EEG recordings",
        params=settings,
    )

    def write_run(key: str, item: dict, folder: Path) -> None:
        store, qc = recording_files(key, folder)
        write_recording(results.take(key), item["path"], store, qc, params=settings)

    with results:
        return write_batch(
            output,
            by_key,
            write_run,
            recording_files,
            stage="eeg_recording",
            params=params,
            on_error=on_error,
            extra={"scheduler": scheduler},
        )


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eeg_recording_batch")
    parser.add_argument("--recordings", required=True, help="JSON-lines list of the recordings")
    parser.add_argument("--output", required=True, help="the batch folder")
    parser.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default DASK_SCHEDULER_ADDRESS, "
        "else one recording after the other in this process",
    )
    args = parser.parse_args(argv)
    execute(args, run, args.recordings, args.output, scheduler=args.scheduler)


if __name__ == "__main__":
    main(sys.argv[1:])
