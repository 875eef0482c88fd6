# Input, params and target functions of the rules in ../demo.smk.


def demo_build(wildcards):
    build = dataset_config(wildcards.dataset).get("build")
    if build is None:
        raise ConfigError(f"Dataset {wildcards.dataset!r} has no 'build' section to build it from.")
    return build


def demo_run_params(wildcards):
    return json.dumps({"max_timepoints": demo_build(wildcards)["max_timepoints"]})


def demo_participants_params(wildcards):
    build = demo_build(wildcards)
    keys = ("sites", "max_subjects_per_site", "max_timepoints")
    return json.dumps({k: build[k] for k in keys}, sort_keys=True)


def demo_root(wildcards):
    return dataset_root(wildcards.dataset)
