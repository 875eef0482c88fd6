"""The cohort patch store of an EEG dataset, from its per-recording stores.

Indexes the dataset (as the workflow did), concatenates the recordings' patch
stores from the recordings folder (checking they were made with the same
parameters) and writes the cohort summary (window counts, channel coverage and
interpolations, power spectra per class) and example traces for the report. The store
records the dataset's patient namespace (neuroai.eeg.patients: ``tuh`` for the TUH
corpora, which share patient ids), which the EEGFormer splits read. The
command line names the dataset and folders, not every recording, so it stays short
for cohorts of any size.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroai.eeg.cohort import build_cohort_store, recording_outputs
from neuroai.eeg.layouts import index_eeg_recordings
from neuroai.eeg.params import EEGParams
from neuroai.eeg.patients import default_patient_namespace
from neuroai.errors import DataError
from neuroai.io import check_artifact, provenance_path
from neuroai.pipelines._stage import PathList, execute, stage_parser

_D = EEGParams()


def run(
    root: str | Path,
    recordings_dir: str | Path,
    store: str | Path,
    summary: str | Path,
    examples: str | Path,
    *,
    dataset: str | None = None,
    layout: str = "tuh",
    label_column: str | None = None,
    subjects: list[str] | None = None,
    patient_namespace: str | None = None,
    stores: list[str] | None = None,
    failures: str | Path | None = None,
    montage: str | None = _D.montage,
    missing_channels: str = _D.missing_channels,
    max_interpolated: float = _D.max_interpolated,
    reference: str | None = _D.reference,
    line_freq: float | None = _D.line_freq,
    l_freq: float = _D.l_freq,
    h_freq: float = _D.h_freq,
    sfreq: float = _D.sfreq,
    clip_uv: float | None = _D.clip_uv,
    normalize: str = _D.normalize,
    window_s: float = _D.window_s,
    stride_s: float = _D.stride_s,
    reject_flat_uv: float = _D.reject_flat_uv,
    reject_saturation_uv: float = _D.reject_saturation_uv,
    event_min_overlap_s: float = _D.event_min_overlap_s,
    patch_len: int = _D.patch_len,
    patch_stride: int = _D.patch_stride,
    dtype: str = _D.dtype,
    form: str = "copy",
    max_open_shards: int | None = None,
) -> Path:
    """Concatenate per-recording stores into the cohort store and summarise it.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    recordings_dir : path-like
        Folder of the per-recording outputs (``<key>_patches`` and ``<key>_qc.json``).
    store, summary, examples : path-like
        Destinations: the cohort store folder, ``summary.json``, ``examples.npy``.
    dataset : str | None
        Dataset name (for the report).
    layout, label_column, subjects
        How to index the dataset (see :func:`neuroai.eeg.index_eeg_recordings`).
    patient_namespace : str | None
        The dataset's patient namespace (the workflow's ``datasets.<name>.patient_namespace``);
        None: ``tuh`` for the ``tuh`` layout, else the dataset's own
        (:func:`neuroai.eeg.patients.default_patient_namespace`). Written into the store's
        header unless it is the dataset's own name (a store without one is its own).
    stores : list of str | None
        The recordings' patch stores (``<key>_patches``, with ``<key>_qc.json`` beside),
        when they are not all in ``recordings_dir`` (batch folders); the dataset is then
        not indexed.
    failures : path-like | None
        A failures table (``run``, ``stage``, ``error``; the workflow's
        ``failures/<dataset>.tsv``): recordings left out, named in the summary.
    montage, missing_channels, ..., dtype
        The parameters the recordings must have been processed with (see
        :class:`neuroai.eeg.EEGParams`).
    form : {"copy", "shards"}
        The store's form (the workflow's ``eeg.store``): the recordings' stores copied into
        one, or a sharded store that lists them and reads them in place.
    max_open_shards : int | None
        With ``form="shards"``: the shards its readers keep open (``eeg.max_open_shards``).

    Returns
    -------
    Path
        ``store``.
    """
    # The keyword arguments named like EEGParams fields are the stage's --params.
    params = EEGParams.from_mapping(
        {name: value for name, value in locals().items() if name in EEGParams.field_names()}
    ).to_dict()
    if stores is not None:
        outputs = [
            recording_outputs(Path(s).parent, Path(s).name[: -len("_patches")]) for s in stores
        ]
    else:
        found = index_eeg_recordings(root, layout, label_column=label_column, subjects=subjects)
        outputs = [recording_outputs(recordings_dir, r.key) for r in found]
    missing = [str(s) for s, _ in outputs if not s.exists()]
    if missing:
        raise DataError(
            f"{len(missing)} recordings of {root} have no patch store yet (first: {missing[0]}). "
            "Run the eeg_recording stage for them first."
        )
    stores = [s for s, _ in outputs]
    qcs = [q for _, q in outputs]
    for path in stores:
        check_artifact(path, stage="eeg_recording", params=params)
    manifest = Path(root) / "recordings.tsv"  # the demo builder's, with its provenance
    name = dataset or Path(store).parent.name
    namespace = default_patient_namespace(name, layout, patient_namespace=patient_namespace)
    if namespace == name:  # its own namespace, which a store without the key is
        namespace = None
    build_cohort_store(
        stores,
        qcs,
        store,
        summary,
        examples,
        stage="eeg_store",
        params=params,
        dataset=dataset,
        failed=_read_failures(failures) if failures else None,
        inputs=[manifest] if provenance_path(manifest).is_file() else [],
        form=form,
        max_open_shards=max_open_shards,
        patient_namespace=namespace,
    )
    return Path(store)


def _read_failures(path: str | Path) -> dict[str, str]:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return {row["run"]: row["error"] for row in csv.DictReader(handle, delimiter="\t")}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(__doc__, "python -m neuroai.pipelines.eeg_store")
    parser.add_argument("--root", required=True, help="the dataset folder")
    parser.add_argument(
        "--recordings-dir", required=True, help="folder of <key>_patches and <key>_qc.json"
    )
    parser.add_argument("--store", required=True, help="destination cohort store folder")
    parser.add_argument("--summary", required=True, help="destination summary.json")
    parser.add_argument("--examples", required=True, help="destination examples.npy")
    parser.add_argument("--dataset", default=None, help="dataset name")
    parser.add_argument("--layout", default="tuh", help="tuh, bids_eeg or eeg_files")
    parser.add_argument("--label-column", default=None, help="participants.tsv label column")
    parser.add_argument("--subjects", nargs="*", default=None, help="keep only these subjects")
    parser.add_argument(
        "--patient-namespace", default=None, help="patients shared with: tuh (TUH layout default)"
    )
    parser.add_argument(
        "--stores", nargs="+", action=PathList, default=None, help="@list of <key>_patches stores"
    )
    parser.add_argument("--failures", default=None, help="failures table of left-out recordings")
    parser.add_argument(
        "--form", default="copy", choices=("copy", "shards"), help="copied or sharded store"
    )
    parser.add_argument(
        "--max-open-shards", type=int, default=None, help="shards a reader keeps open"
    )
    args = parser.parse_args(argv)
    execute(
        args,
        run,
        args.root,
        args.recordings_dir,
        args.store,
        args.summary,
        args.examples,
        dataset=args.dataset,
        layout=args.layout,
        label_column=args.label_column,
        subjects=args.subjects,
        patient_namespace=args.patient_namespace,
        stores=args.stores,
        failures=args.failures,
        form=args.form,
        max_open_shards=args.max_open_shards,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
