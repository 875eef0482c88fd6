"""A cohort of recordings: the Dask cohort API, the cohort store and its summary.

:func:`process_cohort` processes many recordings in parallel on Dask (a local
cluster by default, or any ``dask.distributed`` scheduler: an address, a
``Client``, a ``dask_jobqueue.SLURMCluster``'s client) and concatenates them
into one patch store. The workflow does the same with one job per recording
and one cohort job; both end in :func:`build_cohort_store`, which writes the
cohort store, a summary for the report (window counts, channel coverage and
interpolations, power spectra per class) and a few example traces.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroai._logging import get_logger
from neuroai.eeg.layouts import EEGRecording
from neuroai.eeg.montages import montage_electrodes
from neuroai.eeg.params import EEGParams
from neuroai.eeg.patches import reconstruct_time
from neuroai.eeg.recording import save_recording
from neuroai.eeg.store import MISSING, concatenate_stores, open_patch_store
from neuroai.errors import ConfigError, NeuroaiError, check_option
from neuroai.io.store import load_json, save_array, save_json

logger = get_logger(__name__)
LOCAL_SCHEDULERS = ("synchronous", "threads", "processes")
#: Seconds of each example trace kept for the report.
EXAMPLE_SECONDS = 10.0


@dataclass(frozen=True)
class CohortResult:
    """Where :func:`process_cohort` wrote the cohort.

    Attributes
    ----------
    store, summary, examples : Path
        The cohort patch store, its summary JSON and example traces (.npy).
    failed : dict
        Recording key -> error message, for recordings skipped with ``on_error="skip"``.
    """

    store: Path
    summary: Path
    examples: Path
    failed: dict[str, str]


def recording_outputs(folder: str | os.PathLike, key: str) -> tuple[Path, Path]:
    """A recording's patch store and QC summary in a recordings folder:
    ``<folder>/<key>_patches`` and ``<folder>/<key>_qc.json``."""
    return Path(folder) / f"{key}_patches", Path(folder) / f"{key}_qc.json"


def _process_one(recording: EEGRecording, out_dir: str, params: EEGParams, on_error: str):
    store, qc = recording_outputs(Path(out_dir) / "recordings", recording.key)
    try:
        save_recording(recording.path, store, qc, params=params, meta=recording.meta)
    except NeuroaiError as exc:
        if on_error == "raise":
            raise
        logger.error("Skipping %s: %s", recording.path, exc)
        return recording.key, str(exc)
    return recording.key, None


def _compute(tasks: list, scheduler):
    import dask

    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        return list(dask.compute(*tasks, scheduler=scheduler))
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        workers = max(1, min(len(tasks), os.cpu_count() or 1))
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            return list(client.gather(client.compute(tasks)))
    if isinstance(scheduler, str):
        with Client(scheduler) as client:
            return list(client.gather(client.compute(tasks)))
    if isinstance(scheduler, Client):
        return list(scheduler.gather(scheduler.compute(tasks)))
    raise ConfigError(
        f"Invalid value for the 'scheduler' parameter: {scheduler!r}. Use None (a local "
        f"cluster), one of {LOCAL_SCHEDULERS}, a scheduler address ('tcp://host:8786') or a "
        "dask.distributed Client."
    )


def process_cohort(
    recordings: Sequence[EEGRecording],
    out_dir: str | os.PathLike,
    *,
    params: EEGParams,
    scheduler=None,
    on_error: str = "raise",
    stage: str = "eeg_cohort",
    patient_namespace: str | None = None,
) -> CohortResult:
    """Process recordings in parallel on Dask and build the cohort store.

    Parameters
    ----------
    recordings : sequence of EEGRecording
        From :func:`neuroai.eeg.index_eeg_recordings`.
    out_dir : path-like
        Output folder: ``recordings/<key>_patches`` and ``<key>_qc.json`` per
        recording, then ``store/``, ``summary.json`` and ``examples.npy``.
    params : EEGParams
    scheduler : None | str | dask.distributed.Client
        ``None`` starts a local cluster (one single-threaded worker per core);
        ``"synchronous"``, ``"threads"`` or ``"processes"`` use Dask's local
        schedulers; an address (``"tcp://host:8786"``) or a ``Client`` uses that
        cluster.
    on_error : {"raise", "skip"}
        What a recording that neuroai refuses (bad input) does to the cohort:
        stop it, or be left out, logged and listed in the summary.
    stage : str
        Stage name for the provenance.
    patient_namespace : str | None
        The cohort store's patient namespace (:mod:`neuroai.eeg.patients`; ``"tuh"`` for a
        TUH corpus); None: the store is its own namespace.
    """
    import dask

    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    if not recordings:
        raise ConfigError("process_cohort needs at least one recording.")
    out_dir = Path(out_dir)
    # Task keys are hashes of the arguments, so tasks of different calls never collide.
    tasks = [dask.delayed(_process_one)(rec, str(out_dir), params, on_error) for rec in recordings]
    results = _compute(tasks, scheduler)
    failed = {key: error for key, error in results if error is not None}
    done = [rec for rec in recordings if rec.key not in failed]
    if not done:
        raise NeuroaiError(
            f"Every recording failed; the first error: {next(iter(failed.values()))}"
        )
    outputs = [recording_outputs(out_dir / "recordings", rec.key) for rec in done]
    stores, qcs = [s for s, _ in outputs], [q for _, q in outputs]
    paths = build_cohort_store(
        stores,
        qcs,
        out_dir / "store",
        out_dir / "summary.json",
        out_dir / "examples.npy",
        stage=stage,
        params=params.to_dict(),
        failed=failed,
        patient_namespace=patient_namespace,
    )
    return CohortResult(*paths, failed=failed)


def build_cohort_store(
    stores: Sequence[str | os.PathLike],
    qc_paths: Sequence[str | os.PathLike],
    store_output: str | os.PathLike,
    summary_output: str | os.PathLike,
    examples_output: str | os.PathLike,
    *,
    stage: str,
    params: Mapping[str, Any],
    dataset: str | None = None,
    failed: Mapping[str, str] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    form: str = "copy",
    max_open_shards: int | None = None,
    patient_namespace: str | None = None,
) -> tuple[Path, Path, Path]:
    """Concatenate per-recording stores and summarise the cohort for the report.

    Parameters
    ----------
    stores, qc_paths : sequence of path-like
        Per-recording patch stores and QC summaries, in the same order.
    store_output, summary_output, examples_output : path-like
        The cohort store, its summary (JSON) and example traces
        (.npy, shape (n_examples, n_channels, n_samples), preprocessed units).
    stage, params : provenance of the three artifacts.
    dataset : str | None
        Name shown in the report.
    failed : mapping | None
        Recordings left out, with their errors.
    inputs : sequence of path-like
        Further inputs to record in the summary's provenance (a dataset manifest).
    form : {"copy", "shards"}
        Copy the stores into one, or write a sharded store that reads them in place
        (they must then be kept; see :mod:`neuroai.eeg.shards`).
    max_open_shards : int | None
        With ``form="shards"``: the shards its readers keep open (``None``: 64).
    patient_namespace : str | None
        The store's patient namespace (``store.json["patients"]``, see
        :mod:`neuroai.eeg.patients`); None: the store is its own namespace.
    """
    from neuroai.eeg.shards import STORE_FORMS

    check_option("form", form, STORE_FORMS)
    if len(stores) != len(qc_paths):
        raise ConfigError(f"{len(stores)} stores but {len(qc_paths)} QC summaries.")
    concatenate_stores(
        stores,
        store_output,
        stage=stage,
        params=params,
        sharded=form == "shards",
        max_open_shards=max_open_shards,
        patient_namespace=patient_namespace,
    )
    store = open_patch_store(store_output)
    qcs = [load_json(path) for path in qc_paths]
    summary, examples = summarize_cohort(qcs, store)
    summary["dataset"] = dataset or Path(store_output).parent.name
    summary["failed"] = dict(failed or {})
    save_array(
        examples_output,
        examples,
        stage=stage,
        params=params,
        inputs=[store_output],
        extra={"examples": summary["examples"]},
    )
    save_json(
        summary_output,
        summary,
        stage=stage,
        params=params,
        inputs=[store_output, *qc_paths, *inputs],
    )
    logger.info(
        "Cohort store %s: %d recordings, %d windows", store_output, len(qcs), summary["n_windows"]
    )
    return Path(store_output), Path(summary_output), Path(examples_output)


def _class_name(label: str | None) -> str:
    return label if label and label != MISSING else "unlabelled"


def summarize_cohort(qcs: Sequence[Mapping[str, Any]], store) -> tuple[dict, np.ndarray]:
    """What the report shows about a cohort, from per-recording QC and the store.

    Returns
    -------
    summary : dict
        ``n_recordings``, ``n_windows``, ``windows`` (counts by reason, summed),
        ``recordings`` (one row per recording), ``coverage`` (per channel:
        recordings where it was present and where it was interpolated),
        ``psd`` (``freqs`` and, per class, the mean channel power in uV^2/Hz),
        ``events`` (windows per annotation label), ``classes`` (recordings and
        windows per recording label), ``store`` (layout), ``examples``.
    examples : ndarray, shape (n_examples, n_channels, n_samples)
        One kept window per class (the first ``EXAMPLE_SECONDS``), in the units
        of the preprocessed signal.
    """
    totals: dict[str, int] = defaultdict(int)
    coverage: dict[str, dict[str, int]] = {}
    events: dict[str, int] = defaultdict(int)
    psd_sum: dict[str, np.ndarray] = {}
    psd_count: dict[str, int] = defaultdict(int)
    classes: dict[str, dict[str, int]] = {}
    freqs: list[float] = []
    rows = []
    for qc in qcs:
        report = qc["channels"]
        label = _class_name(qc["recording"].get("label"))
        for key, value in qc["windows"].items():
            totals[key] += int(value)
        wanted = set(montage_electrodes(report["montage"])) if report["montage"] else None
        for name in report["found"]:
            if (wanted is not None and name not in wanted) or name in report["interpolated"]:
                continue
            coverage.setdefault(name, {"present": 0, "interpolated": 0})["present"] += 1
        for name in report["interpolated"]:
            coverage.setdefault(name, {"present": 0, "interpolated": 0})["interpolated"] += 1
        for key, value in qc["events"].items():
            events[key] += int(value)
        entry = classes.setdefault(label, {"recordings": 0, "windows": 0})
        entry["recordings"] += 1
        entry["windows"] += int(qc["windows"]["kept"])
        if qc["psd"]["power"]:
            power = np.asarray(qc["psd"]["power"], dtype=float)
            freqs = qc["psd"]["freqs"]
            psd_sum[label] = psd_sum.get(label, 0) + power
            psd_count[label] += 1
        rows.append(
            {
                "recording": qc["recording"]["key"],
                "label": label,
                "split": qc["recording"].get("split") or MISSING,
                "duration_s": round(float(qc["duration_s"]), 2),
                "windows": qc["windows"],
                "interpolated": report["interpolated"],
                "dropped": sorted(report["dropped"]),
                "events": qc["events"],
                "psd": qc["psd"]["power"],
            }
        )
    examples, example_meta = _examples(store)
    summary = {
        "n_recordings": len(qcs),
        "n_windows": len(store),
        "windows": dict(totals),
        "recordings": rows,
        "coverage": dict(sorted(coverage.items())),
        "montage": qcs[0]["channels"]["montage"] if qcs else None,
        "psd": {
            "freqs": freqs,
            "classes": {k: (psd_sum[k] / psd_count[k]).tolist() for k in sorted(psd_sum)},
        },
        "events": dict(sorted(events.items())),
        "classes": dict(sorted(classes.items())),
        "store": {
            key: store.header[key]
            for key in (
                "n_rows",
                "n_patches",
                "patch_len",
                "segments",
                "sfreq",
                "window_s",
                "dtype",
            )
        },
        "examples": example_meta,
    }
    return summary, examples


def _examples(store) -> tuple[np.ndarray, list[dict]]:
    """The middle kept window of the first recording of each class (first seconds)."""
    index = store.index
    if len(index) == 0:
        return np.zeros((0, 0, 0), dtype=np.float32), []
    n_samples = min(store.layout.window_samples, int(EXAMPLE_SECONDS * store.header["sfreq"]))
    chosen = []
    for label in sorted(index["label"].unique()):
        first = index[index["label"] == label]["recording"].iloc[0]
        windows = index.index[(index["label"] == label) & (index["recording"] == first)]
        chosen.append(int(windows[len(windows) // 2]))
    n_channels = max(int(index["n_channels"].iat[i]) for i in chosen)
    examples = np.full((len(chosen), n_channels, n_samples), np.nan, dtype=np.float32)
    meta = []
    for k, window in enumerate(chosen):
        rows = store.rows(window)
        signal = reconstruct_time(store.patches[rows], store.stats[rows], store.layout)
        examples[k, : signal.shape[0]] = signal[:, :n_samples]
        meta.append(
            {
                "window": window,
                "recording": str(index["recording"].iat[window]),
                "label": _class_name(str(index["label"].iat[window])),
                "start_s": float(index["start_s"].iat[window]),
                "events": str(index["events"].iat[window]),
                "channels": store.channels(window),
                "sfreq": store.header["sfreq"],
            }
        )
    return examples, meta
