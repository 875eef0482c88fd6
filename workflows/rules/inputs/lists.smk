# ---- List files of per-subject inputs, for cohort rules ----
# Snakemake hands a rule's shell command to bash as one argument, and Linux limits one
# argument to 128 KiB: about a thousand result paths. Rules that read every subject of a
# dataset therefore pass each group of per-subject inputs as a list file, one path per line
# (the stages expand `@file`; see neuroai.pipelines._stage.PathList), and keep the files themselves
# as inputs so that the DAG is unchanged.
from types import SimpleNamespace

#: (rule, input group) -> the rule's input function; the group is a key of what it returns.
PATH_LIST_INPUTS = {
    ("group_fc", "fc"): group_fc_inputs,
    ("dfc_gnn_finetune", "static_fc"): dfc_gnn_static_fc_inputs,
    ("dfc_gnn_evaluate", "timeseries"): dfc_gnn_timeseries_inputs,
    ("graph_dataset", "dfc"): graph_dataset_inputs,
    ("graph_dataset", "timeseries"): graph_dataset_inputs,
    ("tokens_summary", "qc"): tokens_summary_inputs,
    ("tokens_summary", "tokens"): tokens_summary_inputs,
    ("tokens_summary", "examples"): tokens_summary_inputs,
    ("eeg_store_batches", "stores"): eeg_store_list_inputs,
}


#: (rule, input group) -> the paths its list file names, where the input function gives
#: the batch folders they lie in rather than the files (see batch_deps).
PATH_LIST_MEMBERS = {
    ("group_fc", "fc"): static_fc_files,
    ("dfc_gnn_finetune", "static_fc"): static_fc_files,
    ("graph_dataset", "dfc"): dynamic_fc_files,
    ("graph_dataset", "timeseries"): fmri_timeseries_paths,
    ("eeg_store_batches", "stores"): eeg_store_files,
}


def path_list(rule_name, group):
    """The list file of one input group of a cohort rule (a path with {dataset} left open)."""
    if (rule_name, group) not in PATH_LIST_INPUTS:
        raise ValueError(f"No path list is defined for {rule_name}/{group}.")
    return f"{RESULTS}/lists/{rule_name}/{group}/{{dataset}}.txt"


def path_list_paths(wildcards):
    """What a list file depends on: every list group of its rule (files, or the batch
    folders they lie in), so that all the lists of a rule leave out the same failed runs."""
    inputs = PATH_LIST_INPUTS[(wildcards.rule_name, wildcards.group)]
    given = inputs(SimpleNamespace(dataset=wildcards.dataset))
    groups = [g for (r, g) in PATH_LIST_INPUTS if r == wildcards.rule_name and g in given]
    return batch_deps(p for g in groups for p in _as_list(given[g]))


def _as_list(paths):
    return [paths] if isinstance(paths, (str, Path)) else list(paths)


def path_list_members(wildcards, input):
    """What the list file names: the group's paths (the files inside batch folders, see
    PATH_LIST_MEMBERS), less the runs that a batch left out (its failures.tsv)."""
    members = PATH_LIST_MEMBERS.get((wildcards.rule_name, wildcards.group))
    if members:
        paths = members(wildcards.dataset)
    else:
        inputs = PATH_LIST_INPUTS[(wildcards.rule_name, wildcards.group)]
        paths = _as_list(inputs(SimpleNamespace(dataset=wildcards.dataset))[wildcards.group])
    return without_failed(paths, list(input))


def write_path_list(paths, output, log):
    """The path_list rule's job: the paths, one per line, and a line of log."""
    Path(output).write_text("".join(f"{path}\n" for path in paths), encoding="utf-8")
    Path(log).write_text(f"{len(paths)} paths listed in {output}\n", encoding="utf-8")


# ---- Batches of runs: one job per batch of a per-run stage (docs/cohort_batches.md) ----
import re

#: Batched per-run stage -> (config section, domain folder, folder of its per-run outputs).
BATCHED_STAGES = {
    "fmri_timeseries": ("fmri_timeseries", "fmri", "timeseries"),
    "static_fc": ("static_fc", "fmri", "static_fc"),
    "dynamic_fc": ("dynamic_fc", "fmri", "dynamic_fc"),
    "eeg_recording": ("eeg", "eeg", "recordings"),
}
#: Config keys of a stage section that choose jobs, not results (kept out of --params).
BATCH_KEYS = ("datasets", "batch_size", "on_error")
#: The per-run files of batched stages, by suffix: a listed path's run key is its name
#: without the suffix (how a list leaves out the runs that failed).
RUN_SUFFIXES = ("_timeseries.tsv", "_connectivity.npy", "_dfc.npy", "_patches", "_qc.json")


def batch_size(stage):
    """<section>.batch_size of a batched stage: 0 (the default) runs one job per run."""
    return config.get(BATCHED_STAGES[stage][0], {}).get("batch_size", 0)


def on_error(stage):
    """<section>.on_error of a batched stage: "fail" (the default) or "skip"."""
    return config.get(BATCHED_STAGES[stage][0], {}).get("on_error", "fail")


def stage_runs(stage, dataset):
    """The run keys a stage computes for a dataset, in the dataset's order."""
    if stage == "fmri_timeseries":
        return list(volume_runs(dataset))
    if stage == "static_fc":
        return list(RUNS[dataset])
    if stage == "dynamic_fc":
        return list(fmri_runs(dataset))
    return list(EEG[dataset])


_BATCHES = {}


def stage_batches(stage, dataset):
    """Batch number -> run keys of a batched stage (neuroai.fmri.cohort.assign_batches)."""
    if (stage, dataset) not in _BATCHES:
        from neuroai.fmri.cohort import assign_batches

        _BATCHES[stage, dataset] = assign_batches(stage_runs(stage, dataset), batch_size(stage))
    return _BATCHES[stage, dataset]


def stage_folder(stage, dataset):
    _, domain, folder = BATCHED_STAGES[stage]
    return f"{RESULTS}/{domain}/{dataset}/{folder}"


def batch_folder(stage, dataset, batch):
    return f"{stage_folder(stage, dataset)}/batch-{batch}"


def batch_folders(stage, dataset):
    """Every batch folder of a batched stage for a dataset."""
    return [batch_folder(stage, dataset, k) for k in stage_batches(stage, dataset)]


def run_folder(stage, dataset, run):
    """Where a run's files are: the stage's folder, or its batch's folder in it."""
    if not batch_size(stage):
        return stage_folder(stage, dataset)
    if (stage, dataset) not in _BATCH_OF:
        batches = stage_batches(stage, dataset)
        _BATCH_OF[stage, dataset] = {key: k for k, keys in batches.items() for key in keys}
    return batch_folder(stage, dataset, _BATCH_OF[stage, dataset][run])


_BATCH_OF = {}
_IN_BATCH = re.compile(
    re.escape(str(RESULTS)) + r"[/](?:fmri|eeg)[/][a-z0-9_]+[/][a-z_]+[/]batch-[0-9]+(?=[/])"
)


def batch_deps(paths):
    """The inputs that reading ``paths`` needs: each path, or the batch folder it lies in
    (Snakemake cannot depend on a file inside another rule's folder output)."""
    deps = []
    for path in paths:
        match = _IN_BATCH.match(str(path))
        deps.append(match.group(0) if match else str(path))
    return list(dict.fromkeys(deps))


def batch_members(stage, wildcards):
    """The paths in one batch's list file (the rule's @file of its inputs)."""
    batches = stage_batches(stage, wildcards.dataset) if batch_size(stage) else {}
    batch = int(wildcards.batch)
    if batch not in batches:
        section = BATCHED_STAGES[stage][0]
        raise ConfigError(
            f"Batch {batch} of {stage} of {wildcards.dataset!r} has no run "
            f"({section}.batch_size is {batch_size(stage)}; batches with runs: "
            f"{', '.join(map(str, batches)) or 'none'})."
        )
    return BATCH_LIST_LINES[stage](wildcards.dataset, batches[batch])


def batch_list_lines(wildcards):
    """The lines of a batch's list file, as one string (a param: a new member re-writes it)."""
    return "".join(f"{line}\n" for line in batch_members(wildcards.stage, wildcards))


def batch_list(stage):
    """The list file of one batch of ``stage`` ({dataset} and {batch} left open)."""
    return f"{RESULTS}/lists/batches/{stage}/{{dataset}}/batch-{{batch}}.txt"


def batch_inputs(stage):
    """Input function of a batch rule: its list file and what its runs read."""

    def inputs(wildcards):
        return {
            "members": batch_list(stage).format(**wildcards),
            "data": batch_deps(BATCH_INPUTS[stage](wildcards.dataset, batch_runs(stage, wildcards))),
        }

    return inputs


def batch_runs(stage, wildcards):
    batch_members(stage, wildcards)  # the error for a batch without runs
    return stage_batches(stage, wildcards.dataset)[int(wildcards.batch)]


def write_lines(text, output, log):
    """The batch_list rule's job: the text, and a line of log."""
    Path(output).write_text(text, encoding="utf-8")
    Path(log).write_text(f"{text.count(chr(10))} lines in {output}\n", encoding="utf-8")


def failed_runs(folders):
    """Run key -> failures.tsv rows, read from batch folders (those that are batches)."""
    from neuroai.pipelines._batch import read_failures

    failed = {}
    for folder in folders:
        if _IN_BATCH.match(f"{folder}/"):
            for row in read_failures(folder):
                failed.setdefault(row["run"], []).append(row)
    return failed


def run_of(path):
    """The run key of a per-run file of a batched stage (its name less the suffix)."""
    name = Path(path).name
    for suffix in RUN_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def without_failed(paths, folders):
    """``paths`` less those of runs that failed in any of the batch ``folders``."""
    failed = failed_runs(folders)
    return [p for p in paths if run_of(p) not in failed] if failed else list(paths)


def write_failures_table(folders, output, log):
    """The failures rule's job: every batch's failures.tsv rows in one table."""
    from neuroai.pipelines._batch import FAILURE_COLUMNS

    rows = [row for rows in failed_runs(folders).values() for row in rows]
    lines = ["\t".join(FAILURE_COLUMNS)] + ["\t".join(r[c] for c in FAILURE_COLUMNS) for r in rows]
    tmp = Path(f"{output}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(output)
    Path(log).write_text(f"{len(rows)} failed runs listed in {output}\n", encoding="utf-8")


def stage_datasets(stage):
    """The datasets a batched stage runs on."""
    if stage == "fmri_timeseries":
        used = config.get("static_fc", {}).get("datasets", []) + config.get("dynamic_fc", {}).get(
            "datasets", []
        )
        used += config.get("fmri_timeseries", {}).get("datasets", [])
        return [d for d in dict.fromkeys(used) if dataset_config(d)["layout"] in VOLUME_LAYOUTS]
    return list(config.get(BATCHED_STAGES[stage][0], {}).get("datasets", []))


def failures_inputs(wildcards):
    """Every batch folder of every batched stage that runs on the dataset."""
    return [
        folder
        for stage in BATCHED_STAGES
        if batch_size(stage) and wildcards.dataset in stage_datasets(stage)
        for folder in batch_folders(stage, wildcards.dataset)
    ]


def failures_table(dataset):
    """The per-dataset table of the runs that batches left out (on_error: skip)."""
    return f"{RESULTS}/failures/{dataset}.tsv"


def failures_dep(dataset):
    """{"failures": the dataset's failures table} when a batched stage may leave runs of
    it out (on_error: skip), else {}: cohort rules depend on it, so it is always made."""
    skipping = [
        s for s in BATCHED_STAGES if on_error(s) == "skip" and dataset in stage_datasets(s)
    ]
    return {"failures": failures_table(dataset)} if skipping else {}


def check_batches():
    """Batch settings that cannot work, refused while the workflow is parsed."""
    for stage, (section, _, _) in BATCHED_STAGES.items():
        if on_error(stage) == "skip" and not batch_size(stage):
            raise ConfigError(
                f"{section}.on_error is 'skip' but {section}.batch_size is 0: only batched "
                f"stages leave failed runs out. Set {section}.batch_size (for example 100), "
                "or on_error: fail."
            )
    if not batch_size("fmri_timeseries"):
        return
    for stage in ("static_fc", "dynamic_fc"):
        section = BATCHED_STAGES[stage][0]
        volume = [d for d in stage_datasets(stage) if dataset_config(d)["layout"] in VOLUME_LAYOUTS]
        if volume and not batch_size(stage):
            raise ConfigError(
                f"fmri_timeseries.batch_size is set, so the region time series of "
                f"{', '.join(volume)} are written in batch folders, which only batched stages "
                f"read: set {section}.batch_size too (it may differ)."
            )


def _timeseries_of_runs(dataset, runs):
    return [RUNS[dataset][run] for run in runs]


def _fmri_timeseries_of_runs(dataset, runs):
    return [fmri_runs(dataset)[run] for run in runs]


def _run_keys(dataset, runs):
    return list(runs)


#: Batched stage -> (dataset, run keys) -> the lines of a batch's list file.
BATCH_LIST_LINES = {
    "fmri_timeseries": _run_keys,
    "static_fc": _timeseries_of_runs,
    "dynamic_fc": _fmri_timeseries_of_runs,
    "eeg_recording": eeg_batch_lines,
}
#: Batched stage -> (dataset, run keys) -> the files the runs read.
BATCH_INPUTS = {
    "fmri_timeseries": fmri_timeseries_batch_inputs,
    "static_fc": _timeseries_of_runs,
    "dynamic_fc": _fmri_timeseries_of_runs,
    "eeg_recording": eeg_batch_inputs,
}


check_batches()


def failures_report_inputs():
    """The failures table of every dataset a batched stage may leave runs of out."""
    datasets = [d for stage in BATCHED_STAGES for d in stage_datasets(stage)]
    return [
        failures_dep(d)["failures"] for d in dict.fromkeys(datasets) if failures_dep(d)
    ]


REPORT_SECTIONS["failures"] = failures_report_inputs
