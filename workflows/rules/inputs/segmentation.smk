# Input, params and report functions of the rules in ../segmentation.smk (those of
# ../inference.smk are in inference.smk).

import shlex

SEGMENTATION = config.get("segmentation", {})
#: ``segmentation.pretrained``: a trained DSD folder evaluated (and named ``segmentation``
#: under embed/predict.models) instead of training the variants (checked now).
SEGMENTATION_PRETRAINED = given_pretrained(
    "dsd", ("in_channels", "out_channels"), section="segmentation"
)


def decathlon_json(dataset):
    """dataset.json of a Decathlon-layout dataset (built by the workflow or on disk)."""
    entry = dataset_config(dataset)
    if entry.get("layout") != "decathlon":
        raise ConfigError(
            f"Dataset {dataset!r} has layout {entry.get('layout')!r}; segmentation needs 'decathlon'."
        )
    return f"{dataset_root(dataset)}/dataset.json"


def demo_tissue_params(wildcards):
    build = demo_build(wildcards)
    if build.get("builder") != "mni152_tissue":
        raise ConfigError(f"Dataset {wildcards.dataset!r} is not built by 'mni152_tissue'.")
    keys = ("n_train", "n_test", "seed")
    return json.dumps({k: build[k] for k in keys if k in build}, sort_keys=True)


def segmentation_dataset(wildcards):
    return decathlon_json(wildcards.dataset)


def segmentation_variants():
    """Names of the evaluated models: the variants trained here, or ``pretrained`` alone
    when ``segmentation.pretrained`` gives the model (no variant is trained)."""
    if SEGMENTATION_PRETRAINED:
        return ["pretrained"]
    return list(SEGMENTATION.get("variants", []))


def segmentation_train_params(wildcards):
    keys = ("model", "training", "data", "split")
    return json.dumps({k: SEGMENTATION[k] for k in keys if k in SEGMENTATION}, sort_keys=True)


def segmentation_evaluate_inputs(wildcards):
    folder = f"{RESULTS}/segmentation/{wildcards.dataset}"
    if SEGMENTATION_PRETRAINED:
        return {
            "dataset": decathlon_json(wildcards.dataset),
            "models": [SEGMENTATION_PRETRAINED],
            "histories": [],
        }
    return {
        "dataset": decathlon_json(wildcards.dataset),
        "models": [f"{folder}/{v}/model" for v in segmentation_variants()],
        "histories": [f"{folder}/{v}/history.tsv" for v in segmentation_variants()],
        "splits": [f"{folder}/{v}/splits.tsv" for v in segmentation_variants()],
    }


def segmentation_evaluated_args(wildcards, input):
    """The split files (none for a given model) and the dataset's card."""
    splits = " ".join(shlex.quote(str(p)) for p in input.get("splits", []))
    option = f"--splits {splits}" if splits else ""
    return f"{option} {datasets_arg([wildcards.dataset])}"


def segmentation_evaluate_params():
    return json.dumps(SEGMENTATION.get("evaluation", {}), sort_keys=True)


def segmentation_report_inputs():
    return [
        f"{RESULTS}/segmentation/{d}/{name}"
        for d in SEGMENTATION.get("datasets", [])
        for name in ("metrics.json", "per_case.tsv", "evaluated")
    ]


REPORT_SECTIONS["segmentation"] = segmentation_report_inputs
