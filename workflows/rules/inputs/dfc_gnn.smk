# Input, params and report functions of the rules in ../dfc_gnn.smk.
import shlex

DFC_GNN = config.get("dfc_gnn", {})
#: ``dfc_gnn.pretrained``: an encoder folder that replaces every dataset's pretraining
#: (checked now). The graph dataset sets the node count and features, so only sizes the
#: config's model.options names are compared here; the stages check the rest.
DFC_GNN_PRETRAINED = given_pretrained("dfc_gnn", ("n_regions", "in_features", "n_identity"))


def dfc_gnn_model(wildcards):
    """The pretrained encoder of a dataset: the given ``dfc_gnn.pretrained``, else its own."""
    return DFC_GNN_PRETRAINED or f"{RESULTS}/dfc_gnn/{wildcards.dataset}/pretrained/model"


def _dfc_gnn_common():
    return {k: DFC_GNN[k] for k in ("model", "data") if k in DFC_GNN}


def dfc_gnn_holdout():
    """The family's held-out test subjects, as pretraining and every task draw them: by
    default stratified by the labels of the classification tasks (docs/dfc_gnn.md)."""
    holdout = dict(DFC_GNN.get("holdout", {}))
    if holdout.get("stratify") is None:
        tasks = DFC_GNN.get("finetune", {}).get("tasks", {}).values()
        labels = {t["label"] for t in tasks if t.get("task", "classification") == "classification"}
        holdout["stratify"] = sorted(labels)
    return {"holdout": holdout, "transductive": bool(DFC_GNN.get("transductive", False))}


def dfc_gnn_graphs(wildcards):
    if wildcards.dataset not in config.get("dynamic_fc", {}).get("datasets", []):
        raise ConfigError(
            f"dfc_gnn needs the graph dataset of {wildcards.dataset!r}: list it under "
            "dynamic_fc.datasets too."
        )
    return f"{RESULTS}/fmri/{wildcards.dataset}/graphs"


def dfc_gnn_pretrain_params():
    values = {**_dfc_gnn_common(), **DFC_GNN.get("pretrain", {}), **dfc_gnn_holdout()}
    return json.dumps(values, sort_keys=True)


def dfc_gnn_task(wildcards):
    tasks = DFC_GNN.get("finetune", {}).get("tasks", {})
    if wildcards.dfc_task not in tasks:
        raise ConfigError(
            f"dfc_gnn task {wildcards.dfc_task!r} is not configured.{did_you_mean(wildcards.dfc_task, tasks)} "
            f"Tasks: {', '.join(tasks)}."
        )
    return tasks[wildcards.dfc_task]


def _dfc_gnn_methods():
    return DFC_GNN.get("finetune", {}).get("methods", [])


def dfc_gnn_finetune_inputs(wildcards):
    dfc_gnn_task(wildcards)
    inputs = {
        "graphs": dfc_gnn_graphs(wildcards),
        "pretrained": dfc_gnn_model(wildcards),
    }
    if "static_fc" in _dfc_gnn_methods():
        if wildcards.dataset not in RUNS:
            raise ConfigError(
                f"The static_fc baseline of dfc_gnn needs the static FC of {wildcards.dataset!r}: "
                "list it under static_fc.datasets, or drop static_fc from dfc_gnn.finetune.methods."
            )
        inputs.update(dfc_gnn_static_fc_inputs(wildcards))
        inputs["static_fc_list"] = path_list("dfc_gnn_finetune", "static_fc").format(
            dataset=wildcards.dataset
        )
    return inputs


def dfc_gnn_static_fc_inputs(wildcards):
    """The static FC of every run of the dataset (the static-FC baseline's inputs)."""
    return {"static_fc": static_fc_outputs(wildcards.dataset)}


def dfc_gnn_static_fc_arg(wildcards, input):
    """The baseline's matrices as a list file: the command line does not grow with the cohort."""
    if "static_fc_list" not in input.keys():
        return ""
    return f"--static-fc @{shlex.quote(str(input.static_fc_list))}"


def dfc_gnn_finetune_params(wildcards):
    section = DFC_GNN.get("finetune", {})
    task = dfc_gnn_task(wildcards)
    values = {k: v for k, v in section.items() if k != "tasks"}
    if "data" in DFC_GNN:
        values["data"] = DFC_GNN["data"]
    values.update(name=wildcards.dfc_task, **task, **dfc_gnn_holdout())
    return json.dumps(values, sort_keys=True)


def dfc_gnn_evaluate_inputs(wildcards):
    folder = f"{RESULTS}/dfc_gnn/{wildcards.dataset}"
    tasks = DFC_GNN.get("finetune", {}).get("tasks", {})
    inputs = {
        "graphs": dfc_gnn_graphs(wildcards),
        "pretrained": dfc_gnn_model(wildcards),
        "predictions": [f"{folder}/tasks/{task}/predictions.tsv" for task in tasks],
        "task_models": [f"{folder}/tasks/{task}/model" for task in tasks],
        "splits": [f"{folder}/tasks/{task}/splits.tsv" for task in tasks],
        **dfc_gnn_timeseries_inputs(wildcards),
        "timeseries_list": path_list("dfc_gnn_evaluate", "timeseries").format(
            dataset=wildcards.dataset
        ),
    }
    if not DFC_GNN_PRETRAINED:  # a given encoder's pretraining history is not ours to read
        inputs["history"] = f"{folder}/pretrained/history.tsv"
    return inputs


def dfc_gnn_evaluated_args(wildcards, input):
    """The task models and split files, and the dataset's card, for the evaluated copies."""
    if not list(input.task_models):
        return datasets_arg([wildcards.dataset])
    models = " ".join(shlex.quote(str(p)) for p in input.task_models)
    splits = " ".join(shlex.quote(str(p)) for p in input.splits)
    return f"--task-models {models} --splits {splits} {datasets_arg([wildcards.dataset])}"


def dfc_gnn_history_arg(wildcards, input):
    return f"--history {shlex.quote(str(input.history))}" if "history" in input.keys() else ""


def dfc_gnn_timeseries_inputs(wildcards):
    """Every run's region time series (fingerprinting's static-FC reference)."""
    return {"timeseries": list(fmri_runs(wildcards.dataset).values())}


def dfc_gnn_evaluate_params():
    values = {**DFC_GNN.get("evaluate", {})}
    if "data" in DFC_GNN:
        values["data"] = DFC_GNN["data"]
    return json.dumps(values, sort_keys=True)


def dfc_gnn_report_inputs():
    return [
        f"{RESULTS}/dfc_gnn/{d}/{name}"
        for d in DFC_GNN.get("datasets", [])
        for name in ("metrics.json", "evaluated")
    ]


REPORT_SECTIONS["dfc_gnn"] = dfc_gnn_report_inputs
