# Helpers shared by the rules: paths, dataset runs, and each stage's config slice.
import json
import os
import sys
from pathlib import Path

from neuroai.errors import ConfigError, did_you_mean


envvars:
    "PATH",


# Rules call `python -m pipelines.<stage>`: put the interpreter that runs Snakemake
# first on PATH, so jobs use the same environment even when it is not activated
# (with --sdm conda, the rule's conda environment comes first instead).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
REPO = Path(workflow.basedir)
RESULTS = config["results"]
ENV = "../envs/neuroai.yaml"


wildcard_constraints:
    dataset="[a-z0-9_]+",
    subject="[A-Za-z0-9]+",
    run="sub-[A-Za-z0-9]+[A-Za-z0-9_\\-]*",


def repo_path(path):
    """A config path: absolute, relative to the working directory, or to the repository."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(REPO / path)


def stage_params(section, drop=("datasets",)):
    """The stage's slice of the config as JSON (what the stage receives as --params)."""
    values = {k: v for k, v in config.get(section, {}).items() if k not in drop}
    return json.dumps(values, sort_keys=True)


def dataset_config(name):
    datasets = config["datasets"]
    if name not in datasets:
        raise ConfigError(
            f"Dataset {name!r} is used but not defined under 'datasets'."
            f"{did_you_mean(name, datasets)} Defined: {', '.join(datasets)}."
        )
    return datasets[name]


def dataset_root(name):
    entry = dataset_config(name)
    if "build" in entry:
        return f"{RESULTS}/datasets/{name}"
    return entry["root"]


def _index_runs(name):
    """Run key -> time-series path of a dataset, known at parse time."""
    entry = dataset_config(name)
    if entry["layout"] in VOLUME_LAYOUTS:  # 4D BOLD: parcellated by rules in fmri.smk
        return volume_timeseries(name)
    if "build" in entry:
        from neuroai.datasets.neurolib_regions import run_path, select_subjects

        build = entry["build"]
        subjects = select_subjects(build["sites"], build["max_subjects_per_site"])
        wanted = set(entry.get("subjects") or [s.label for s in subjects])
        paths = [run_path(dataset_root(name), s.label) for s in subjects if s.label in wanted]
        return {p.name[: -len("_timeseries.tsv")]: str(p) for p in paths}
    from neuroai.io.regions import index_region_runs

    runs = index_region_runs(entry["root"], subjects=entry.get("subjects"))
    return {key: str(path) for key, path in runs.items()}


def timeseries_of(wildcards):
    runs = RUNS[wildcards.dataset]
    if wildcards.run not in runs:
        raise ConfigError(f"Run {wildcards.run!r} is not part of dataset {wildcards.dataset!r}.")
    return runs[wildcards.run]


def participants_of(dataset):
    """participants.tsv of a dataset, or [] when it has none."""
    path = Path(dataset_root(dataset)) / "participants.tsv"
    if "build" in dataset_config(dataset) or path.exists():
        return str(path)
    return []


def used_datasets():
    """Every dataset that some config section lists under its `datasets` key."""
    names = []
    for section in config.values():
        if isinstance(section, dict) and isinstance(section.get("datasets"), list):
            names.extend(section["datasets"])
    return list(dict.fromkeys(names))


# Report section name -> function returning the artifacts the section is drawn
# from (see neuroai.reports.sections.REGISTRY); each domain's inputs file adds its own.
REPORT_SECTIONS = {}


include: "inputs/demo.smk"
include: "inputs/fmri.smk"
include: "inputs/eeg.smk"
include: "inputs/eegformer.smk"
include: "inputs/segmentation.smk"
include: "inputs/tokens.smk"
include: "inputs/dfc_gnn.smk"
include: "inputs/tablet.smk"
include: "inputs/report.smk"
include: "inputs/lists.smk"


# After the includes: the inputs files define what _index_runs calls for some layouts.
RUNS = {name: _index_runs(name) for name in config.get("static_fc", {}).get("datasets", [])}
