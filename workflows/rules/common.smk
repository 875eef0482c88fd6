# Helpers shared by the rules: paths, dataset runs, and each stage's config slice.
import json
import os
import sys
from pathlib import Path

from neuroai.cluster import DISTRIBUTED, SINGLE_GPU, GpuLayout, check_site, gpu_resources
from neuroai.errors import ConfigError, did_you_mean


envvars:
    "PATH",


# Rules call `python -m neuroai.pipelines.<stage>`: put the interpreter that runs Snakemake
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


def relocatable(path):
    """``path`` relative to the working directory when it lies inside it, else as given.

    Rule inputs are compared as strings between runs: a path inside the project folder
    (the demo's bundled tokenizer in an editable install, a data card in the repository)
    written relative to it stays the same when the folder is copied or moved, so a moved
    project re-runs nothing."""
    path = Path(path)
    if path.is_absolute():
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(path)
    return str(path)


def repo_path(path):
    """A config path: absolute, relative to the working directory, or to the repository."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return relocatable(path)
    return relocatable(REPO / path)


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


def _jsonable(value):
    """Paths as strings, recursively: an index as its manifest stores it."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dataset_index(kind, name, build):
    """A dataset's index (run or recording key -> files), walked once per workflow run.

    The main Snakemake process walks the dataset (``build()``) and writes the result to
    ``.snakemake/neuroai/manifests/<dataset>.<kind>.json`` beside Snakemake's own state
    (rewritten only when it changed); the job processes that a cluster executor starts,
    each of which parses this Snakefile again, read that manifest instead of walking the
    dataset again: on a shared file system a 10,000-subject walk per job would cost more
    than the jobs."""
    manifest = Path(".snakemake") / "neuroai" / "manifests" / f"{name}.{kind}.json"
    if not workflow.is_main_process and manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8"))
    index = _jsonable(build())
    if workflow.is_main_process:
        text = json.dumps(index, indent=1, sort_keys=True) + "\n"
        if not manifest.is_file() or manifest.read_text(encoding="utf-8") != text:
            manifest.parent.mkdir(parents=True, exist_ok=True)
            partial = manifest.with_name(f".{manifest.name}.{os.getpid()}.tmp")
            partial.write_text(text, encoding="utf-8")
            partial.replace(manifest)
    return index


def _index_runs(name):
    """Run key -> time-series path of a dataset, known at parse time (see dataset_index)."""
    return dataset_index("runs", name, lambda: _walk_runs(name))


def _walk_runs(name):
    """Run key -> time-series path of a dataset, from its folder or its builder."""
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
    """participants.tsv of a dataset (its labels table merged in, labels.smk), or []."""
    return labelled_participants(dataset) or source_participants(dataset)


def used_datasets():
    """Every dataset that some config section lists under its `datasets` key."""
    names = []
    for section in config.values():
        if isinstance(section, dict) and isinstance(section.get("datasets"), list):
            names.extend(section["datasets"])
    return list(dict.fromkeys(names))


def datasets_arg(names):
    """``--datasets NAME=CARD ...``: the datasets behind an evaluated model and the file
    name of each one's data card, for the model cards an evaluation stage writes (file
    names only, so a moved project or another install changes nothing)."""
    pairs = [f"{n}={Path(dataset_config(n)['card']).name}" for n in dict.fromkeys(names)]
    return " ".join(["--datasets", *pairs]) if pairs else ""


def check_data_cards():
    """Every used dataset's data card, validated while the workflow is parsed: a missing
    field or a misspelled key fails `snakemake -n` at once, naming the card and the field,
    instead of the report rule failing after all the processing."""
    from neuroai.datasets import load_card

    for name in used_datasets():
        load_card(repo_path(dataset_config(name)["card"]))


check_data_cards()


def profile_resources(name=None):
    """The profile's default resources (``name=None``) or one rule's set-resources, as
    the strings the user wrote (Snakemake keeps both; a job process receives the same)."""
    settings = workflow.resource_settings
    if name is None:
        return dict(arg.split("=", 1) for arg in settings.default_resources.args)
    overrides = settings.overwrite_resources.get(name, {})
    return {key: getattr(value, "orig_arg", value) for key, value in overrides.items()}


def gpu_layout(name):
    return GpuLayout.from_settings(name, profile_resources(), profile_resources(name))


def _gpu_resource(name):
    def value(wildcards, rulename):
        return gpu_resources(gpu_layout(rulename)).get(name)

    return value


# The resources of every GPU job (`**GPU` in its resources), computed from the profile's
# gpu_launch / nodes / gpus_per_node / cpus_per_gpu / gpu_partition / gpu_model; the
# shell starts with {resources.launch}. See neuroai/cluster.py.
GPU = {
    name: _gpu_resource(name)
    for name in (
        "launch",
        "gpu",
        "gpu_model",
        "gres",
        "nodes",
        "tasks",
        "tasks_per_node",
        "tasks_per_gpu",
        "mpi",
        "cpus_per_task",
        "slurm_partition",
    )
}


def check_cluster():
    """Before the first job is sent (not on a dry run): the SLURM settings against the
    cluster's own answers (sinfo, scontrol, sacctmgr); see hooks.smk."""
    gpu_rules = {job.rule.name for job in workflow.dag.needrun_jobs()} & set(
        DISTRIBUTED + SINGLE_GPU
    )
    defaults = profile_resources()
    if defaults.get("gpu_launch", "local").strip("'\"") != "srun":
        return
    check_site(
        {name: gpu_layout(name) for name in gpu_rules},
        account=defaults.get("slurm_account", "").strip("'\""),
        partition=defaults.get("slurm_partition", "").strip("'\""),
        where="the profile (workflows/profiles/slurm/config.v8+.yaml, default-resources)",
    )


def dask_scheduler(wildcards):
    """The Dask scheduler cohort stages send their runs to: config dask.scheduler, else
    DASK_SCHEDULER_ADDRESS, else "" (the stage computes them itself, one after the other).
    Rules take it as a resource, not a param: where runs are computed does not change
    their results, so a new address re-runs none of their jobs."""
    return config.get("dask", {}).get("scheduler") or os.environ.get("DASK_SCHEDULER_ADDRESS", "")


# Report section name -> function returning the artifacts the section is drawn
# from (see neuroai.reports.sections.REGISTRY); each domain's inputs file adds its own.
REPORT_SECTIONS = {}


def given_pretrained(family, expect_keys=(), expect=None, section=None):
    """The folder of ``<section>.pretrained`` (checked now, before any job), or None.

    A family given a pretrained folder skips its own pretraining: its downstream rules
    take the folder instead. The folder must hold a ``family`` model whose weights
    match its config, whose input-size fields (``expect_keys``) equal those the
    config's ``<section>.model.options`` sets, and whose fields in ``expect`` (a
    mapping the caller derives from other config keys) equal those values. ``section``
    is the config section when it is not named after the family (segmentation: dsd).
    """
    section = section or family
    folder = config.get(section, {}).get("pretrained")
    if not folder:
        return None
    if folder not in _CHECKED_PRETRAINED:
        from neuroai.errors import ArtifactError
        from neuroai.models import check_pretrained

        options = config.get(section, {}).get("model", {}).get("options", {})
        wanted = {key: options[key] for key in expect_keys if key in options}
        try:
            check_pretrained(folder, family=family, expect={**wanted, **(expect or {})})
        except ArtifactError as exc:
            raise ConfigError(f"{section}.pretrained: {exc}") from exc
        _CHECKED_PRETRAINED.add(folder)
    return str(folder)


_CHECKED_PRETRAINED = set()


include: "inputs/demo.smk"
include: "inputs/fmri.smk"
include: "inputs/eeg.smk"
include: "inputs/eegformer.smk"
include: "inputs/segmentation.smk"
include: "inputs/tokens.smk"
include: "inputs/dfc_gnn.smk"
include: "inputs/tablet.smk"
include: "inputs/inference.smk"
include: "inputs/report.smk"
include: "inputs/lists.smk"


# After the includes: the inputs files define what _index_runs calls for some layouts.
RUNS = {name: _index_runs(name) for name in config.get("static_fc", {}).get("datasets", [])}


# Labels tables checked and every fine-tuning task against its labels (docs/labels.md).
include: "inputs/labels.smk"
