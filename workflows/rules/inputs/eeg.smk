# Input, params and target functions of the rules in ../eeg.smk.
import shlex

EEG_BUILDER = "eeg_simulation"
EEG_DEMO_KEYS = (
    "n_recordings",
    "duration_s",
    "sfreq",
    "abnormal_fraction",
    "eval_fraction",
    "line_freq",
    "seed",
)


def _eeg_build(name):
    build = dataset_config(name).get("build")
    if build is not None and build["builder"] != EEG_BUILDER:
        raise ConfigError(
            f"Dataset {name!r} is listed under eeg.datasets but is built by "
            f"{build['builder']!r}; EEG datasets are built by {EEG_BUILDER!r} or read from a root."
        )
    return build


def _eeg_index(name):
    """Recording key -> {"path", "meta", "inputs"} of an EEG dataset, known at parse time."""
    return dataset_index("eeg", name, lambda: _walk_eeg(name))


def _walk_eeg(name):
    from dataclasses import asdict

    from neuroai.eeg.layouts import LAYOUTS, index_eeg_recordings
    from neuroai.eeg.recording import RecordingMeta, recording_inputs

    entry = dataset_config(name)
    build = _eeg_build(name)
    if build is not None:
        from neuroai.datasets.eeg_demo import demo_plan

        options = {k: build[k] for k in ("abnormal_fraction", "eval_fraction", "seed") if k in build}
        root = dataset_root(name)
        paths = [f"{root}/{item.relpath}" for item in demo_plan(build.get("n_recordings", 40), **options)]
        return {
            Path(path).stem: {
                "path": path,
                "meta": asdict(RecordingMeta.from_path(path)),  # labels from the TUAB-like folders
                "inputs": [f"{root}/recordings.tsv"],
            }
            for path in paths
        }

    if entry["layout"] not in LAYOUTS:
        raise ConfigError(
            f"Dataset {name!r} has layout {entry['layout']!r}; EEG datasets need one of {LAYOUTS}."
        )
    recordings = index_eeg_recordings(
        entry["root"],
        entry["layout"],
        label_column=entry.get("label_column"),
        subjects=entry.get("subjects"),
        labels=entry.get("labels"),
        dataset=name,
    )
    return {
        r.key: {
            "path": str(r.path),
            "meta": asdict(r.meta),
            "inputs": [str(p) for p in recording_inputs(r.path)],
        }
        for r in recordings
    }


EEG = {name: _eeg_index(name) for name in config.get("eeg", {}).get("datasets", [])}


def _eeg_recording(wildcards):
    recordings = EEG.get(wildcards.dataset)
    if recordings is None or wildcards.recording not in recordings:
        raise ConfigError(
            f"EEG recording {wildcards.recording!r} is not part of dataset {wildcards.dataset!r}."
        )
    return recordings[wildcards.recording]


def eeg_demo_params(wildcards):
    build = _eeg_build(wildcards.dataset) or {}
    return json.dumps({k: build[k] for k in EEG_DEMO_KEYS if k in build}, sort_keys=True)


def eeg_recording_inputs(wildcards):
    return _eeg_recording(wildcards)["inputs"]


def eeg_recording_path(wildcards):
    return _eeg_recording(wildcards)["path"]


def eeg_recording_meta(wildcards):
    return json.dumps(_eeg_recording(wildcards)["meta"], sort_keys=True)


def eeg_recordings_dir(wildcards):
    return f"{RESULTS}/eeg/{wildcards.dataset}/recordings"


#: eeg keys that choose jobs or the store's form, not what a recording's store holds.
EEG_STORE_KEYS = ("store", "max_open_shards")


def eeg_params():
    """The eeg section as the EEG stages' --params (without the keys that choose jobs or
    the store's form)."""
    return stage_params("eeg", drop=("datasets", "batch_size", "on_error", *EEG_STORE_KEYS))


def eeg_sharded():
    """eeg.store is shards: the dataset's store lists the recordings' stores and reads them
    in place (neuroai.eeg.shards), so they are kept."""
    return config.get("eeg", {}).get("store", "copy") == "shards"


def eeg_kept(path):
    """The output flag of a recording store or batch folder: temporary (removed once the
    dataset's store has copied it), or none, kept as a shard of a sharded store."""
    return directory(path) if eeg_sharded() else temp(directory(path))


def eeg_store_form(wildcards):
    """eeg_store's form arguments: none for a copied store (eeg.store: copy)."""
    if not eeg_sharded():
        return ""
    return f"--form shards --max-open-shards {int(config['eeg'].get('max_open_shards', 64))}"


def eeg_store_inputs(wildcards):
    folder = eeg_recordings_dir(wildcards)
    keys = list(EEG[wildcards.dataset])
    return {
        "stores": [f"{folder}/{key}_patches" for key in keys],
        "qcs": [f"{folder}/{key}_qc.json" for key in keys],
    }


def eeg_batch_lines(dataset, keys):
    """A batch's list file for eeg_recording_batch: one JSON object a line (key, path, meta)."""
    recordings = EEG[dataset]
    return [
        json.dumps({"key": key, "path": recordings[key]["path"], "meta": recordings[key]["meta"]}, sort_keys=True)
        for key in keys
    ]


def eeg_batch_inputs(dataset, keys):
    """The files the recordings of a batch read."""
    return [path for key in keys for path in EEG[dataset][key]["inputs"]]


def eeg_store_files(dataset):
    """Every recording's patch store (in its batch folder), in the dataset's order."""
    return [f"{run_folder('eeg_recording', dataset, key)}/{key}_patches" for key in EEG[dataset]]


def eeg_store_batch_inputs(wildcards):
    """eeg_store_batches reads the batch folders, through a list of the stores in them,
    and the dataset's failures table (the recordings left out, for the summary)."""
    return {
        "batches": batch_folders("eeg_recording", wildcards.dataset),
        "stores_list": path_list("eeg_store_batches", "stores").format(dataset=wildcards.dataset),
        "failures": failures_table(wildcards.dataset),
    }


def eeg_store_list_inputs(wildcards):
    return {"stores": batch_folders("eeg_recording", wildcards.dataset)}


def eeg_per_recording_datasets():
    """The EEG datasets eeg_store builds (those eeg_store_batches does not): a regex."""
    names = [] if batch_size("eeg_recording") else list(EEG)
    return "|".join(names) if names else "(?!x)x"


def eeg_batched_datasets():
    names = list(EEG) if batch_size("eeg_recording") else []
    return "|".join(names) if names else "(?!x)x"


def eeg_dataset_root(wildcards):
    return dataset_root(wildcards.dataset)


def eeg_layout(wildcards):
    return dataset_config(wildcards.dataset)["layout"]


def eeg_patient_namespace(name):
    """Who a dataset's subjects are across datasets (neuroai.eeg.patients): its
    patient_namespace, else tuh for a TUH dataset on disk, else its own name."""
    from neuroai.eeg.patients import default_patient_namespace

    entry = dataset_config(name)
    declared = entry.get("patient_namespace")
    return default_patient_namespace(
        name, entry["layout"], patient_namespace=declared, built="build" in entry
    )


def eeg_patients(wildcards):
    return eeg_patient_namespace(wildcards.dataset)


def eeg_index_args(wildcards):
    """Indexing options of a dataset as eeg_store arguments."""
    entry = dataset_config(wildcards.dataset)
    args = []
    if entry.get("label_column") and not entry.get("labels"):  # labels: in the meta
        args.append(f"--label-column {shlex.quote(entry['label_column'])}")
    if entry.get("subjects"):
        args.append("--subjects " + " ".join(shlex.quote(s) for s in entry["subjects"]))
    return " ".join(args)


def eeg_report_inputs():
    return [f"{RESULTS}/eeg/{name}/summary.json" for name in EEG]


REPORT_SECTIONS["eeg"] = eeg_report_inputs
