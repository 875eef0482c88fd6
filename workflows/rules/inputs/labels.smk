# Labels tables (datasets.<name>.labels, docs/labels.md): checked while the workflow is
# parsed, with every fine-tuning task against the labels that exist; the rule in
# ../labels.smk merges them into participants.tsv for the fMRI stages; EEG datasets apply
# theirs when they are indexed (inputs/eeg.smk).

EEG_LAYOUTS = ("tuh", "bids_eeg", "eeg_files")


def source_participants(dataset):
    """The dataset's own participants.tsv, or [] when it has none."""
    path = Path(dataset_root(dataset)) / "participants.tsv"
    if "build" in dataset_config(dataset) or path.exists():
        return str(path)
    return []


def labelled_participants(dataset):
    """The merged participants.tsv of an fMRI dataset with a labels table (rule
    dataset_labels), else None; EEG datasets apply their tables to the recordings."""
    entry = dataset_config(dataset)
    if entry.get("labels") and entry["layout"] not in EEG_LAYOUTS:
        return f"{RESULTS}/labels/{dataset}/participants.tsv"
    return None


def _labels_known(name):
    """The dataset's items a labels table may name (a DataFrame), or None when not indexed."""
    import pandas as pd

    entry = dataset_config(name)
    if entry["layout"] == "bold_volumes":
        return pd.DataFrame({"subject": list(_volume_subjects(name))})
    if entry["layout"] in ("region_timeseries", *VOLUME_LAYOUTS):
        subjects = sorted({key.split("_", 1)[0][4:] for key in _index_runs(name)})
        return pd.DataFrame({"subject": subjects})
    return None


def _label_sources(name):
    """{where: columns} of a dataset's labels, and whether that is all of them."""
    from neuroai.datasets.labels import (
        LAYOUT_IDENTITIES,
        label_columns,
        participant_columns,
        read_labels,
    )

    entry = dataset_config(name)
    # A built dataset's participants.tsv is a workflow output: its columns are known only
    # once the job that writes it has run, so what a file there holds now is not evidence
    # (it may be a stale or placeholder file); such a dataset is never "complete".
    sources, complete = {}, "build" not in entry
    participants = source_participants(name)
    if participants and Path(participants).is_file():
        sources["participants.tsv"] = participant_columns(participants)
    if entry.get("labels"):
        if entry["layout"] not in LAYOUT_IDENTITIES:
            raise ConfigError(
                f"datasets.{name}.labels: layout {entry['layout']!r} takes no labels table "
                f"(layouts that do: {', '.join(LAYOUT_IDENTITIES)})."
            )
        if entry["layout"] in EEG_LAYOUTS and "build" in entry:
            raise ConfigError(
                f"datasets.{name}.labels: labels tables apply to EEG datasets read from a "
                "root; the built demo EEG takes its labels from its folders."
            )
        known = None if entry["layout"] in EEG_LAYOUTS else _labels_known(name)
        table = read_labels(entry["labels"], layout=entry["layout"], known=known, dataset=name)
        sources[f"labels table {entry['labels']}"] = label_columns(table)
    return sources, complete


def check_labels():
    """Every used dataset's labels table, and every fine-tuning task against the labels
    that exist (participants.tsv, labels tables, EEG recording labels): `snakemake -n`
    fails at once on a task with nothing to learn from."""
    from neuroai.datasets.labels import check_task_labels

    names = used_datasets()
    found = {name: _label_sources(name) for name in names}
    check_task_labels(
        config,
        sources={name: sources for name, (sources, _) in found.items()},
        complete={name: complete for name, (_, complete) in found.items()},
        recording_labels={
            name: [r["meta"].get("label") for r in recordings.values()]
            for name, recordings in EEG.items()
        },
    )


def dataset_labels_inputs(wildcards):
    inputs = {"labels": dataset_config(wildcards.dataset)["labels"]}
    participants = source_participants(wildcards.dataset)
    if participants:
        inputs["participants"] = participants
    return inputs


def dataset_layout(wildcards):
    return dataset_config(wildcards.dataset)["layout"]


def dataset_labels_participants_arg(wildcards, input):
    return f"--participants {input.participants}" if "participants" in input.keys() else ""


# Once, by the main process (the job processes a cluster executor starts parse this file again).
if workflow.is_main_process:
    check_labels()
