# Input, params and report functions of the rules in ../tablet.smk.

TABLET = config.get("tablet", {})
#: The positional flag each preset builds (``neuroai.models.tablet.PRESETS``), written out
#: so the workflow parses without importing torch; tests/test_tablet_positional.py checks
#: that they agree.
TABLET_PRESET_POSITIONAL = {"demo": "rope", "paper": "none", "recommended": "rope"}


def _tablet_positional():
    """The main positional flag: ``tablet.model.positional`` when the user sets it, else
    ``model.options.positional``, else the preset's (``paper``: none, as released)."""
    model = TABLET.get("model", {})
    options = model.get("options", {})
    return model.get("positional") or options.get("positional") or (
        TABLET_PRESET_POSITIONAL[model.get("preset", "demo")]
    )


#: The main positional flag (names the variants: pretrained-<flag>, scratch-<flag>).
TABLET_POSITIONAL = _tablet_positional()
#: ``tablet.pretrained``: an encoder folder that replaces every cohort's masked token
#: pretraining (checked now; built for the main positional flag).
TABLET_PRETRAINED = given_pretrained(
    "tablet",
    ("n_tokens", "token_dim"),
    {"positional": TABLET_POSITIONAL} if TABLET.get("model") else None,
)


def tablet_splits():
    """Split indices 0 .. tablet.splits - 1 (split k: seed tablet.split.seed + k)."""
    return list(range(int(TABLET.get("splits", 1))))


def tablet_index(wildcards):
    """The token-store index of a cohort (the tokens_summary stage)."""
    if wildcards.dataset not in config["tokens"]["datasets"]:
        raise ConfigError(
            f"tablet.datasets lists {wildcards.dataset!r}, which is not under tokens.datasets: "
            "TABLeT reads the token stores that stage makes."
        )
    return f"{RESULTS}/tokens/{wildcards.dataset}/index.tsv"


def tablet_variants(task):
    """Variant names of a task: <init>-<positional> for the main runs and the ablation."""
    settings = TABLET["tasks"][task]
    positional = TABLET_POSITIONAL
    names = [f"{init}-{positional}" for init in settings.get("variants", ["pretrained", "scratch"])]
    ablation = TABLET.get("ablation", {})
    if ablation.get("task") is not None and ablation.get("task") == task:
        names += [f"scratch-{p}" for p in ablation.get("positional", [])]
    return list(dict.fromkeys(names))


def tablet_pretrain_params(wildcards):
    params = {k: TABLET[k] for k in ("data", "split")}
    params["model"] = dict(TABLET["model"], positional=wildcards.positional)
    params["training"] = TABLET["pretraining"]
    params["split_index"] = int(wildcards.split)
    return json.dumps(params, sort_keys=True)


def tablet_pretrain_flags():
    """Positional flags pretrained: the main one, and the ablation's when asked; none
    when ``tablet.pretrained`` gives the encoder."""
    if TABLET_PRETRAINED:
        return []
    flags = [TABLET_POSITIONAL]
    ablation = TABLET.get("ablation", {})
    if ablation.get("pretraining"):
        flags += list(ablation.get("positional", []))
    return list(dict.fromkeys(flags))


def tablet_finetune_inputs(wildcards):
    inputs = {"index": tablet_index(wildcards)}
    if wildcards.variant.startswith("pretrained-"):
        flag = wildcards.variant.split("-", 1)[1]
        inputs["pretrained"] = TABLET_PRETRAINED or (
            f"{RESULTS}/tablet/{wildcards.dataset}/split-{wildcards.split}/pretrain/{flag}/encoder"
        )
    return inputs


def tablet_pretrained_arg(wildcards, input):
    return f"--pretrained {input.pretrained}" if "pretrained" in input.keys() else ""


def tablet_finetune_params(wildcards):
    if wildcards.task not in TABLET.get("tasks", {}):
        raise ConfigError(f"Task {wildcards.task!r} is not listed under tablet.tasks.")
    task = {k: v for k, v in TABLET["tasks"][wildcards.task].items() if k != "variants"}
    model = dict(TABLET["model"], positional=wildcards.variant.split("-", 1)[1])
    params = {
        "task": {"name": wildcards.task, **task},
        "model": model,
        "training": TABLET["finetuning"],
        "data": {"window_frames": TABLET["data"]["window_frames"]},
        "split": TABLET["split"],
        "split_index": int(wildcards.split),
    }
    return json.dumps(params, sort_keys=True)


def tablet_models(dataset):
    return [
        f"{RESULTS}/tablet/{dataset}/split-{k}/{task}/{variant}/model"
        for k in tablet_splits()
        for task in TABLET.get("tasks", {})
        for variant in tablet_variants(task)
    ]


def tablet_evaluate_inputs(wildcards):
    models = tablet_models(wildcards.dataset)
    return {
        "index": tablet_index(wildcards),
        "models": models,
        "splits": [str(Path(m).parent / "splits.tsv") for m in models],
    }


def tablet_datasets_arg(wildcards):
    return datasets_arg([wildcards.dataset])


def tablet_evaluate_params():
    params = {"window_frames": TABLET.get("data", {}).get("window_frames", 256)}
    params.update(TABLET.get("evaluation", {}))
    params["n_bootstrap"] = params.pop("n_bootstrap", 1000)
    return json.dumps(params, sort_keys=True)


def tablet_report_inputs():
    """The evaluation of every split; pretraining and fine-tuning curves of split 0."""
    paths = []
    for dataset in TABLET.get("datasets", []):
        paths += [
            f"{RESULTS}/tablet/{dataset}/{n}" for n in ("metrics.json", "predictions.tsv", "evaluated")
        ]
        folder = f"{RESULTS}/tablet/{dataset}/split-0"
        for flag in tablet_pretrain_flags():
            paths += [f"{folder}/pretrain/{flag}/{name}" for name in ("summary.json", "history.tsv")]
        if not TABLET_PRETRAINED:
            main = TABLET_POSITIONAL
            paths.append(f"{folder}/pretrain/{main}/reconstructions.npy")
        paths += [
            f"{folder}/{task}/{variant}/history.tsv"
            for task in TABLET.get("tasks", {})
            for variant in tablet_variants(task)
        ]
    return paths


REPORT_SECTIONS["tablet"] = tablet_report_inputs
