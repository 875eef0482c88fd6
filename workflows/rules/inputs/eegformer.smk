# Input, params and report functions of the rules in ../eegformer.smk.

EEGFORMER = config.get("eegformer", {})
EEGFORMER_TASKS = list(EEGFORMER.get("tasks", {}))
EEGFORMER_CORPORA = ("compound", "normal")
#: ``eegformer.pretrained``: a folder that replaces the compound pretraining (checked now).
EEGFORMER_PRETRAINED = given_pretrained("eegformer", ("n_chans", "n_times", "sfreq"))


def _check_baseline_networks():
    """Every ``braindecode.<ClassName>`` mode: braindecode installed and has that network."""
    for task, spec in EEGFORMER.get("tasks", {}).items():
        for mode in spec.get("modes", []):
            if mode.startswith("braindecode."):
                from neuroai.models.braindecode_models import network_class, network_name

                try:
                    network_class(network_name(mode))
                except ConfigError as exc:
                    raise ConfigError(f"eegformer.tasks.{task}.modes: {mode}: {exc}") from exc


_check_baseline_networks()


def _eegformer_stores(datasets, what):
    """Patch stores of EEG datasets (built by the eeg rules)."""
    known = config.get("eeg", {}).get("datasets", [])
    for name in datasets:
        if name not in known:
            raise ConfigError(
                f"eegformer.{what} uses dataset {name!r}, which is not listed under eeg.datasets "
                f"(its patch store is EEGFormer's input).{did_you_mean(name, known)}"
            )
    return [f"{RESULTS}/eeg/{name}/store" for name in datasets]


def _eegformer_corpus(corpus):
    if corpus == "normal":
        return EEGFORMER.get("anomaly", {}).get("datasets", []), "anomaly.datasets"
    return EEGFORMER.get("datasets", []), "datasets"


def eegformer_pretrain_inputs(wildcards):
    """The corpus' stores, and (compound) the downstream stores it does not read that share
    a patient namespace with one it reads: their test patients are held out of pretraining."""
    datasets = _eegformer_corpus(wildcards.corpus)
    downstream = []
    if wildcards.corpus == "compound":
        read = set(datasets[0])
        namespaces = {eeg_patient_namespace(name) for name in read}
        uses = [name for task in EEGFORMER.get("tasks", {}).values() for name in task["datasets"]]
        uses += EEGFORMER.get("interpretation", {}).get("datasets", [])
        downstream = [
            name
            for name in dict.fromkeys(uses)
            if name not in read and eeg_patient_namespace(name) in namespaces
        ]
    return {
        "stores": _eegformer_stores(*datasets),
        "downstream": _eegformer_stores(downstream, "tasks"),
    }


def eegformer_pretrain_params(wildcards):
    keys = ("model", "objective", "split", "transductive")
    params = {k: EEGFORMER[k] for k in keys if k in EEGFORMER}
    params["training"] = dict(EEGFORMER.get("pretraining", {}))
    if wildcards.corpus == "normal":
        anomaly = EEGFORMER.get("anomaly", {})
        params["training"].update(anomaly.get("pretraining", {}))
        params["labels"] = anomaly.get("normal", ["normal"])
    return json.dumps(params, sort_keys=True)


def eegformer_model(corpus):
    """The pretrained folder of ``corpus``; the given ``eegformer.pretrained`` for compound."""
    if corpus == "compound" and EEGFORMER_PRETRAINED:
        return EEGFORMER_PRETRAINED
    return f"{RESULTS}/eegformer/pretrain/{corpus}/model"


def _eegformer_task(wildcards):
    tasks = EEGFORMER.get("tasks", {})
    if wildcards.task not in tasks:
        raise ConfigError(f"EEGFormer task {wildcards.task!r} is not under eegformer.tasks.")
    return tasks[wildcards.task]


def eegformer_finetune_inputs(wildcards):
    return {
        "stores": _eegformer_stores(_eegformer_task(wildcards)["datasets"], "tasks"),
        "pretrained": eegformer_model("compound"),
    }


def eegformer_finetune_params(wildcards):
    settings = _eegformer_task(wildcards)
    definition = {k: v for k, v in settings.items() if k not in ("datasets", "modes")}
    params = {
        "definition": definition,
        "modes": settings.get("modes", ["probe", "finetune", "scratch"]),
        "training": EEGFORMER.get("finetuning", {}),
        "split": EEGFORMER.get("split", {}),
        "encoder_lr_scale": EEGFORMER.get("encoder_lr_scale", 1.0),
        "head": EEGFORMER.get("head", {}),
    }
    return json.dumps(params, sort_keys=True)


def eegformer_task_folder(wildcards):
    return f"{RESULTS}/eegformer/{wildcards.task}"


def eegformer_task_datasets(wildcards):
    return datasets_arg(_eegformer_task(wildcards)["datasets"])


def eegformer_evaluate_params():
    return json.dumps(EEGFORMER.get("evaluation", {}), sort_keys=True)


def eegformer_anomaly_inputs(wildcards):
    return {
        "stores": _eegformer_stores(EEGFORMER.get("anomaly", {}).get("datasets", []), "anomaly.datasets"),
        "pretrained": eegformer_model("normal"),
    }


def eegformer_anomaly_params():
    anomaly = EEGFORMER.get("anomaly", {})
    params = {k: anomaly[k] for k in ("normal", "abnormal") if k in anomaly}
    params["split"] = EEGFORMER.get("split", {})
    params.update(EEGFORMER.get("evaluation", {}))
    return json.dumps(params, sort_keys=True)


def eegformer_interpret_inputs(wildcards):
    datasets = EEGFORMER.get("interpretation", {}).get("datasets", [])
    return {
        "stores": _eegformer_stores(datasets, "interpretation.datasets"),
        "pretrained": eegformer_model("compound"),
    }


def eegformer_interpret_params():
    params = {k: v for k, v in EEGFORMER.get("interpretation", {}).items() if k != "datasets"}
    params["split"] = EEGFORMER.get("split", {})
    return json.dumps(params, sort_keys=True)


def eegformer_report_inputs():
    """Every EEGFormer artifact the report draws, for the configured parts."""
    folder = f"{RESULTS}/eegformer"
    paths = []
    if EEGFORMER.get("datasets"):
        if not EEGFORMER_PRETRAINED:
            paths.append(f"{folder}/pretrain/compound/history.tsv")
        for task in EEGFORMER_TASKS:
            paths += [f"{folder}/{task}/{name}" for name in ("metrics.json", "recordings.tsv", "history.tsv", "evaluated")]
        if EEGFORMER.get("interpretation", {}).get("datasets"):
            paths.append(f"{folder}/interpret/codes.json")
    if EEGFORMER.get("anomaly", {}).get("datasets"):
        paths += [f"{folder}/pretrain/normal/history.tsv", f"{folder}/anomaly/anomaly.json"]
    return paths


REPORT_SECTIONS["eegformer"] = eegformer_report_inputs
