# Input, params and target functions of the rules in ../fmri.smk.


def static_fc_params():
    """The static FC stages' parameters (kind, fisher_z): the same for a run alone or in a
    batch, so changing the batch size changes which jobs exist, not what a run gives."""
    return stage_params("static_fc", drop=BATCH_KEYS)


def batch_params(stage, params):
    """A batch rule's --params: the per-run stage's, and on_error."""
    return json.dumps({**json.loads(params), "on_error": on_error(stage)}, sort_keys=True)


def static_fc_outputs(dataset):
    """What group_fc and dfc_gnn_finetune depend on: every run's file, or (in
    batches) every batch's folder."""
    return batch_deps(static_fc_files(dataset))


def static_fc_files(dataset):
    """Every run's <run>_connectivity.npy, in the order of the runs (what list files name)."""
    return [f"{run_folder('static_fc', dataset, run)}/{run}_connectivity.npy" for run in RUNS[dataset]]


def group_fc_inputs(wildcards):
    inputs = {"fc": static_fc_outputs(wildcards.dataset), **failures_dep(wildcards.dataset)}
    participants = participants_of(wildcards.dataset)
    if participants:
        inputs["participants"] = participants
    return inputs


def group_fc_participants_arg(wildcards, input):
    return f"--participants {input.participants}" if "participants" in input.keys() else ""


def group_fc_params(wildcards):
    return json.dumps({"dataset": wildcards.dataset, "group_by": config["group_fc"]["group_by"]})


def static_fc_report_inputs():
    return [f"{RESULTS}/fmri/{name}/group_fc_summary.json" for name in RUNS]


REPORT_SECTIONS["static_fc"] = static_fc_report_inputs


# ---- 4D BOLD datasets (layouts bids, fmriprep): parcellation, dynamic FC, graphs ----

VOLUME_LAYOUTS = ("bids", "fmriprep")
BOLD_BUILDERS = ("neuropycon_bold", "nitime_bold")
_VOLUME_RUNS = {}


def _built_by(builder):
    """Regex of the dataset names built by ``builder`` (never matches when none is)."""
    names = [
        name
        for name, entry in config["datasets"].items()
        if entry.get("build", {}).get("builder") == builder
    ]
    return "|".join(names) if names else "(?!x)x"


def bold_demo_outputs(builder):
    """Files a demo builder writes (with a {dataset} wildcard), in a stable order."""
    from neuroai.datasets.bold_demos import expected_files

    files = expected_files(builder)
    return [f"{RESULTS}/datasets/{{dataset}}/{path}" for paths in files.values() for path in paths]


def demo_bold_params(wildcards):
    return json.dumps({"builder": demo_build(wildcards)["builder"]})


def volume_runs(name):
    """Run key -> {bold, confounds, mask, subdir} of a 4D dataset, known at parse time."""
    if name not in _VOLUME_RUNS:
        _VOLUME_RUNS[name] = dataset_index("bold", name, lambda: _walk_volume_runs(name))
    return _VOLUME_RUNS[name]


def _walk_volume_runs(name):
    entry = dataset_config(name)
    root = dataset_root(name)
    if "build" in entry:
        from neuroai.datasets.bold_demos import expected_runs

        runs = expected_runs(entry["build"]["builder"], root)
        wanted = entry.get("subjects")
        if wanted:
            runs = {k: v for k, v in runs.items() if k.split("_", 1)[0][4:] in wanted}
    else:
        from neuroai.io.bids import index_bold_runs

        found = index_bold_runs(
            root,
            entry["layout"],
            subjects=entry.get("subjects"),
            sessions=entry.get("sessions"),
            tasks=entry.get("tasks"),
            runs=entry.get("runs"),
            spaces=entry.get("spaces"),
            desc=entry.get("desc", "preproc"),
        )
        runs = {
            key: {"bold": run.path, "confounds": run.confounds, "mask": run.mask}
            for key, run in found.items()
        }
    if not runs:
        raise ConfigError(f"Dataset {name!r} has no BOLD run under {root} that passes its filters.")
    for key, files in runs.items():
        folders = [part for part in key.split("_")[:2] if part.startswith(("sub-", "ses-"))]
        files["subdir"] = str(Path(*folders))
    return runs


def volume_timeseries(name):
    """Run key -> region time-series path that fmri_timeseries writes (in its batch's
    folder when fmri_timeseries.batch_size is set)."""
    return {key: timeseries_file(name, key, "timeseries.tsv") for key in volume_runs(name)}


def timeseries_file(name, key, suffix):
    """One of the files fmri_timeseries writes for a run (suffix: timeseries.tsv, qc.json ...)."""
    subdir = volume_runs(name)[key]["subdir"]
    return f"{run_folder('fmri_timeseries', name, key)}/{subdir}/func/{key}_{suffix}"


def _atlas_files(name):
    from neuroai.fmri.atlas import atlas_paths

    entry = dataset_config(name)
    if not entry.get("atlas"):
        raise ConfigError(
            f"Dataset {name!r} (layout {entry['layout']}) needs an 'atlas' (labels_img, maps_img "
            "or coordinates) to be parcellated."
        )
    return [str(p) for p in atlas_paths(entry["atlas"], root=dataset_root(name)).values()]


def fmri_timeseries_inputs(wildcards):
    """What one run's fmri_timeseries job reads."""
    files = volume_runs(wildcards.dataset).get(wildcards.run)
    if files is None:
        raise ConfigError(f"Run {wildcards.run!r} is not part of dataset {wildcards.dataset!r}.")
    inputs = {"bold": str(files["bold"]), "atlas": _atlas_files(wildcards.dataset)}
    for role in ("confounds", "mask"):
        if files.get(role) is not None:
            inputs[role] = str(files[role])
    return inputs


def fmri_timeseries_params(wildcards):
    """The fmri_timeseries slice, the dataset's confound overrides, layout and atlas."""
    entry = dataset_config(wildcards.dataset)
    values = json.loads(stage_params("fmri_timeseries", drop=BATCH_KEYS))
    values.update(entry.get("confounds", {}))
    values.update(layout=entry["layout"], atlas=entry["atlas"])
    if entry["layout"] == "fmriprep":
        values["desc"] = entry.get("desc", "preproc")
    return json.dumps(values, sort_keys=True)


def fmri_timeseries_batch_params(wildcards):
    return batch_params("fmri_timeseries", fmri_timeseries_params(wildcards))


def fmri_dataset_root(wildcards):
    return dataset_root(wildcards.dataset)


_FMRI_RUNS = {}


def fmri_runs(name):
    """Run key -> region time-series path, for any dataset (region or 4D)."""
    if name not in _FMRI_RUNS:
        _FMRI_RUNS[name] = RUNS[name] if name in RUNS else _index_runs(name)
    return _FMRI_RUNS[name]


def dynamic_fc_timeseries(wildcards):
    runs = fmri_runs(wildcards.dataset)
    if wildcards.run not in runs:
        raise ConfigError(f"Run {wildcards.run!r} is not part of dataset {wildcards.dataset!r}.")
    return runs[wildcards.run]


def dynamic_fc_params():
    return stage_params("dynamic_fc", drop=BATCH_KEYS)


def fmri_timeseries_paths(dataset):
    """Every run's region time series (a dataset's files, or what fmri_timeseries writes)."""
    return list(fmri_runs(dataset).values())


def dynamic_fc_files(dataset):
    """Every run's <run>_dfc.npy, in the order of the runs (what list files name)."""
    return [f"{run_folder('dynamic_fc', dataset, run)}/{run}_dfc.npy" for run in fmri_runs(dataset)]


def fmri_timeseries_batch_inputs(dataset, runs):
    """The files the runs of a batch of fmri_timeseries read (images, confounds, atlas)."""
    paths = []
    for run in runs:
        files = volume_runs(dataset)[run]
        paths += [str(files[role]) for role in ("bold", "confounds", "mask") if files.get(role)]
    return paths + _atlas_files(dataset)


def graph_dataset_inputs(wildcards):
    inputs = {
        "dfc": batch_deps(dynamic_fc_files(wildcards.dataset)),
        "timeseries": batch_deps(fmri_timeseries_paths(wildcards.dataset)),
        **failures_dep(wildcards.dataset),
    }
    participants = participants_of(wildcards.dataset)
    if participants:
        inputs["participants"] = participants
    return inputs


def graph_dataset_participants_arg(wildcards, input):
    return f"--participants {input.participants}" if "participants" in input.keys() else ""


def graph_dataset_params(wildcards):
    values = json.loads(stage_params("graph_dataset"))
    values["dataset"] = wildcards.dataset
    return json.dumps(values, sort_keys=True)


def fmri_qc_report_inputs():
    paths = []
    for name in config.get("fmri_timeseries", {}).get("datasets", []):
        for key in volume_runs(name):
            paths += [timeseries_file(name, key, "qc.json"), timeseries_file(name, key, "carpet.npy")]
    return paths


def dynamic_fc_report_inputs():
    return [
        f"{RESULTS}/fmri/{name}/graphs_summary.json"
        for name in config.get("dynamic_fc", {}).get("datasets", [])
    ]


REPORT_SECTIONS["fmri_qc"] = fmri_qc_report_inputs
REPORT_SECTIONS["dynamic_fc"] = dynamic_fc_report_inputs
