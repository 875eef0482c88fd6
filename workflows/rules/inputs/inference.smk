# Input, params and report functions of the rules in ../inference.smk (embed, predict).
#
# Two kinds of model name fill the {model} wildcard of results/embeddings/{model}/{dataset}:
# a family name (eegformer, tablet, dfc_gnn, dsd: the encoder that family pretrains here, or
# the folder its `pretrained:` key gives), for every dataset the family trains on when
# embed.trained is true (the default); or a name under embed.models / predict.models.
import shlex
from types import SimpleNamespace

#: Family -> (option of the embed stage, what it reads).
EMBED_SOURCES = {
    "eegformer": "store",
    "tablet": "index",
    "dfc_gnn": "graphs",
    "dsd": "dataset",
}
#: Results folder prefix of a model this workflow trains -> its family.
_TRAINED_PREFIX = {
    "segmentation": "dsd",
    "eegformer": "eegformer",
    "tablet": "tablet",
    "dfc_gnn": "dfc_gnn",
}


def _dsd_variant():
    variants = SEGMENTATION.get("variants", [])
    return "dsd" if "dsd" in variants else (variants[-1] if variants else "dsd")


def trained_encoders():
    """Family -> (dataset -> pretrained folder) for every dataset a family trains on."""
    out = {}
    if EEGFORMER.get("datasets"):
        # Pretrained on, and fine-tuned on (a transfer task's dataset, for instance).
        tuned = [d for t in EEGFORMER.get("tasks", {}).values() for d in t.get("datasets", [])]
        names = dict.fromkeys([*EEGFORMER["datasets"], *tuned])
        out["eegformer"] = {d: eegformer_model("compound") for d in names}
    if TABLET.get("datasets"):
        flag = TABLET_POSITIONAL
        # The encoder of split 0 (tablet.splits pretrains one per split).
        out["tablet"] = {
            d: TABLET_PRETRAINED or f"{RESULTS}/tablet/{d}/split-0/pretrain/{flag}/encoder"
            for d in TABLET["datasets"]
        }
    if DFC_GNN.get("datasets"):
        out["dfc_gnn"] = {
            d: DFC_GNN_PRETRAINED or f"{RESULTS}/dfc_gnn/{d}/pretrained/model"
            for d in DFC_GNN["datasets"]
        }
    if SEGMENTATION.get("datasets"):
        out["dsd"] = {
            d: SEGMENTATION_PRETRAINED or f"{RESULTS}/segmentation/{d}/{_dsd_variant()}/model"
            for d in SEGMENTATION["datasets"]
        }
    return out


def model_folder(location):
    """A pretrained folder: an existing folder, ``segmentation`` (the given
    ``segmentation.pretrained``), or a model this workflow trains (under results/)."""
    if location == "segmentation":
        if not SEGMENTATION_PRETRAINED:
            raise ConfigError(
                "A model location 'segmentation' names segmentation.pretrained, which is not "
                "set: give that folder, or a trained variant such as 'segmentation/<dataset>/dsd'."
            )
        return SEGMENTATION_PRETRAINED
    path = Path(location)
    if path.is_absolute() or (path / "config.json").exists():
        return str(path)
    return f"{RESULTS}/{location}/model"


def _named_family(section, name):
    """Family of a model named under <section>.models (read from its folder's config.json,
    or from the results folder it will be trained into)."""
    location = config[section]["models"][name]
    if location == "segmentation":
        return "dsd"
    folder = Path(model_folder(location))
    if (folder / "config.json").is_file():
        document = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        family = document.get("model")
        if family == "probe":
            family = document.get("config", {}).get("encoder", family)
        return family
    family = _TRAINED_PREFIX.get(Path(location).parts[0])
    if family is None:
        raise ConfigError(
            f"{section}.models.{name}: {location!r} is neither a model folder (config.json and "
            f"model.safetensors) nor a model this workflow trains ({', '.join(_TRAINED_PREFIX)}/...)."
        )
    return family


def _check_names(section):
    clash = sorted(set(config.get(section, {}).get("models", {})) & set(EMBED_SOURCES))
    if clash:
        raise ConfigError(
            f"{section}.models names {clash}, which are family names the workflow uses for "
            "its own encoders (results/embeddings/<family>/...); choose other names."
        )


_check_names("embed")


def _embed_model_and_family(wildcards):
    trained = trained_encoders() if config.get("embed", {}).get("trained", True) else {}
    if wildcards.model in trained:
        folders = trained[wildcards.model]
        if wildcards.dataset not in folders:
            raise ConfigError(
                f"{wildcards.model} trains on {', '.join(folders)}, not {wildcards.dataset!r}."
            )
        return folders[wildcards.dataset], wildcards.model
    models = config.get("embed", {}).get("models", {})
    if wildcards.model not in models:
        raise ConfigError(
            f"Model {wildcards.model!r} is neither a family embedding its training data nor "
            f"listed under embed.models.{did_you_mean(wildcards.model, [*models, *trained])}"
        )
    return model_folder(models[wildcards.model]), _named_family("embed", wildcards.model)


def _embed_source(family, dataset):
    """What the embed stage reads for a dataset: the family's artifact of it."""
    if family == "eegformer":
        return _eegformer_stores([dataset], "embed")[0]
    if family == "tablet":
        return tablet_index(SimpleNamespace(dataset=dataset))
    if family == "dfc_gnn":
        return dfc_gnn_graphs(SimpleNamespace(dataset=dataset))
    if family == "dsd":
        return decathlon_json(dataset)
    raise ConfigError(f"Family {family!r} has no embed route; families: {', '.join(EMBED_SOURCES)}.")


def _participants_for(family, dataset):
    """participants.tsv joined to a table: the region datasets' (built or on disk), an EEG
    dataset's when it has one on disk (a token index carries its participants already)."""
    if family == "dfc_gnn":
        return participants_of(dataset)
    if family == "eegformer" and "build" not in dataset_config(dataset):
        path = Path(dataset_root(dataset)) / "participants.tsv"
        return str(path) if path.is_file() else []
    return []


def embed_inputs(wildcards):
    folder, family = _embed_model_and_family(wildcards)
    inputs = {"model": folder, "source": _embed_source(family, wildcards.dataset)}
    if _participants_for(family, wildcards.dataset):
        inputs["participants"] = _participants_for(family, wildcards.dataset)
    return inputs


def embed_source_arg(wildcards, input):
    _, family = _embed_model_and_family(wildcards)
    arg = f"--{EMBED_SOURCES[family]} {shlex.quote(input.source)}"
    if "participants" in input.keys():
        arg += f" --participants {shlex.quote(input.participants)}"
    return arg


def embed_params(wildcards):
    _, family = _embed_model_and_family(wildcards)
    settings = config.get("embed", {})
    params = {"batch_size": settings.get("batch_size", 16)}
    if family == "dsd":
        params["split"] = settings.get("split", "all")
    if family == "tablet":
        params["window_frames"] = TABLET.get("data", {}).get("window_frames")
    if family == "dfc_gnn":
        data = DFC_GNN.get("data", {})
        params.update(crop_windows=data.get("crop_windows"), max_crops=data.get("eval_crops"))
    return json.dumps({k: v for k, v in params.items() if v is not None}, sort_keys=True)


def embed_outputs():
    """Every embedding table the configuration asks for."""
    settings = config.get("embed", {})
    paths = []
    if settings.get("trained", True):
        for family, folders in trained_encoders().items():
            paths += [f"{RESULTS}/embeddings/{family}/{d}/embeddings.parquet" for d in folders]
    paths += [
        f"{RESULTS}/embeddings/{model}/{dataset}/embeddings.parquet"
        for model in settings.get("models", {})
        for dataset in settings.get("datasets", [])
    ]
    return list(dict.fromkeys(paths))


# -- predict (a fine-tuned model applied to a Decathlon dataset) --------------------------


def inference_model(wildcards):
    models = config.get("predict", {}).get("models", {})
    if wildcards.model in models:
        return model_folder(models[wildcards.model])
    raise ConfigError(
        f"Model {wildcards.model!r} is not listed under predict.models."
        f"{did_you_mean(wildcards.model, models)}"
    )


def inference_dataset(wildcards):
    return decathlon_json(wildcards.dataset)


def inference_params(section):
    return json.dumps({"split": config.get(section, {}).get("split", "test")}, sort_keys=True)


def predict_outputs():
    settings = config.get("predict", {})
    return [
        f"{RESULTS}/predictions/{model}/{dataset}/index.tsv"
        for model in settings.get("models", {})
        for dataset in settings.get("datasets", [])
    ]


def fine_tuned_models():
    """(family, dataset, task) -> fine-tuned folder, for every task a family fine-tunes:
    EEGFormer's full fine-tuning (else its first mode), TABLeT's pretrained variant of
    the main positional flag (split 0), dFC-GNN's final probe."""
    out = {}
    for task, settings in EEGFORMER.get("tasks", {}).items():
        modes = settings.get("modes", ["probe", "finetune", "scratch"])
        mode = "finetune" if "finetune" in modes else modes[0]
        for d in settings.get("datasets", []):
            out[("eegformer", d, task)] = f"{RESULTS}/eegformer/{task}/models/{mode}"
    if TABLET.get("datasets"):
        for task in TABLET.get("tasks", {}):
            variants = tablet_variants(task)
            main = f"pretrained-{TABLET_POSITIONAL}"
            variant = main if main in variants else variants[0]
            for d in TABLET["datasets"]:
                out[("tablet", d, task)] = f"{RESULTS}/tablet/{d}/split-0/{task}/{variant}/model"
    for d in DFC_GNN.get("datasets", []):
        for task in DFC_GNN.get("finetune", {}).get("tasks", {}):
            out[("dfc_gnn", d, task)] = f"{RESULTS}/dfc_gnn/{d}/tasks/{task}/model"
    return out


def _fine_tuned(wildcards):
    key = (wildcards.model, wildcards.dataset, wildcards.task)
    models = fine_tuned_models()
    if key not in models:
        raise ConfigError(
            f"No fine-tuned {wildcards.model} model for task {wildcards.task!r} on "
            f"{wildcards.dataset!r}; configured: {', '.join('/'.join(k) for k in models)}."
        )
    return models[key]


def predict_table_inputs(wildcards):
    folder = _fine_tuned(wildcards)
    # EEGFormer's modes share one output, the models folder; the job depends on that.
    model = str(Path(folder).parent) if wildcards.model == "eegformer" else folder
    inputs = {"model": model, "source": _embed_source(wildcards.model, wildcards.dataset)}
    if _participants_for(wildcards.model, wildcards.dataset):
        inputs["participants"] = _participants_for(wildcards.model, wildcards.dataset)
    return inputs


def predict_table_args(wildcards, input):
    arg = f"--model {shlex.quote(_fine_tuned(wildcards))} "
    arg += f"--{EMBED_SOURCES[wildcards.model]} {shlex.quote(input.source)}"
    if "participants" in input.keys():
        arg += f" --participants {shlex.quote(input.participants)}"
    return arg


def predict_table_outputs():
    if not config.get("predict", {}).get("trained", False):
        return []
    return [
        f"{RESULTS}/predictions/{family}/{dataset}/{task}/predictions.tsv"
        for family, dataset, task in fine_tuned_models()
    ]


def inference_report_inputs():
    return embed_outputs() + predict_outputs() + predict_table_outputs()


REPORT_SECTIONS["inference"] = inference_report_inputs
