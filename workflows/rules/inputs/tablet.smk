# Input, params and report functions of the rules in ../tablet.smk.

TABLET = config.get("tablet", {})
#: ``tablet.pretrained``: an encoder folder that replaces every cohort's masked token
#: pretraining (checked now; built for the main positional flag).
TABLET_PRETRAINED = given_pretrained(
    "tablet",
    ("n_tokens", "token_dim"),
    {"positional": TABLET["model"]["positional"]} if TABLET.get("model") else None,
)


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
    positional = TABLET["model"]["positional"]
    names = [f"{init}-{positional}" for init in settings.get("variants", ["pretrained", "scratch"])]
    ablation = TABLET.get("ablation", {})
    if ablation.get("task") is not None and ablation.get("task") == task:
        names += [f"scratch-{p}" for p in ablation.get("positional", [])]
    return list(dict.fromkeys(names))


def tablet_pretrain_params(wildcards):
    params = {k: TABLET[k] for k in ("data", "split")}
    params["model"] = dict(TABLET["model"], positional=wildcards.positional)
    params["training"] = TABLET["pretraining"]
    return json.dumps(params, sort_keys=True)


def tablet_pretrain_flags():
    """Positional flags pretrained: the main one, and the ablation's when asked; none
    when ``tablet.pretrained`` gives the encoder."""
    if TABLET_PRETRAINED:
        return []
    flags = [TABLET["model"]["positional"]]
    ablation = TABLET.get("ablation", {})
    if ablation.get("pretraining"):
        flags += list(ablation.get("positional", []))
    return list(dict.fromkeys(flags))


def tablet_finetune_inputs(wildcards):
    inputs = {"index": tablet_index(wildcards)}
    if wildcards.variant.startswith("pretrained-"):
        flag = wildcards.variant.split("-", 1)[1]
        inputs["pretrained"] = TABLET_PRETRAINED or (
            f"{RESULTS}/tablet/{wildcards.dataset}/pretrain/{flag}/encoder"
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
    }
    return json.dumps(params, sort_keys=True)


def tablet_models(dataset):
    return [
        f"{RESULTS}/tablet/{dataset}/{task}/{variant}/model"
        for task in TABLET.get("tasks", {})
        for variant in tablet_variants(task)
    ]


def tablet_evaluate_inputs(wildcards):
    return {"index": tablet_index(wildcards), "models": tablet_models(wildcards.dataset)}


def tablet_evaluate_params():
    params = {"window_frames": TABLET.get("data", {}).get("window_frames", 256)}
    params.update(TABLET.get("evaluation", {}))
    params["n_bootstrap"] = params.pop("n_bootstrap", 1000)
    return json.dumps(params, sort_keys=True)


def tablet_report_inputs():
    paths = []
    for dataset in TABLET.get("datasets", []):
        folder = f"{RESULTS}/tablet/{dataset}"
        paths += [f"{folder}/metrics.json", f"{folder}/predictions.tsv"]
        for flag in tablet_pretrain_flags():
            paths += [f"{folder}/pretrain/{flag}/{name}" for name in ("summary.json", "history.tsv")]
        if not TABLET_PRETRAINED:
            main = TABLET["model"]["positional"]
            paths.append(f"{folder}/pretrain/{main}/reconstructions.npy")
        paths += [
            f"{folder}/{task}/{variant}/history.tsv"
            for task in TABLET.get("tasks", {})
            for variant in tablet_variants(task)
        ]
    return paths


REPORT_SECTIONS["tablet"] = tablet_report_inputs
