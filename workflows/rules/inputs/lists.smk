# ---- List files of per-subject inputs, for cohort rules ----
# Snakemake hands a rule's shell command to bash as one argument, and Linux limits one
# argument to 128 KiB: about a thousand result paths. Rules that read every subject of a
# dataset therefore pass each group of per-subject inputs as a list file, one path per line
# (the stages expand `@file`; see neuroai.pipelines._stage.PathList), and keep the files themselves
# as inputs so that the DAG is unchanged.
from types import SimpleNamespace

#: (rule, input group) -> the rule's input function; the group is a key of what it returns.
PATH_LIST_INPUTS = {
    ("group_fc", "fc"): group_fc_inputs,
    ("dfc_gnn_finetune", "static_fc"): dfc_gnn_static_fc_inputs,
    ("dfc_gnn_evaluate", "timeseries"): dfc_gnn_timeseries_inputs,
    ("graph_dataset", "dfc"): graph_dataset_inputs,
    ("graph_dataset", "timeseries"): graph_dataset_inputs,
    ("tokens_summary", "qc"): tokens_summary_inputs,
    ("tokens_summary", "tokens"): tokens_summary_inputs,
    ("tokens_summary", "examples"): tokens_summary_inputs,
}


#: (rule, input group) -> the paths its list file names, where they are not the inputs
#: themselves: batched static FC depends on batch folders and lists the runs' files in them.
PATH_LIST_MEMBERS = {
    ("group_fc", "fc"): static_fc_files,
    ("dfc_gnn_finetune", "static_fc"): static_fc_files,
}


def path_list(rule_name, group):
    """The list file of one input group of a cohort rule (a path with {dataset} left open)."""
    if (rule_name, group) not in PATH_LIST_INPUTS:
        raise ValueError(f"No path list is defined for {rule_name}/{group}.")
    return f"{RESULTS}/lists/{rule_name}/{group}/{{dataset}}.txt"


def path_list_paths(wildcards):
    inputs = PATH_LIST_INPUTS[(wildcards.rule_name, wildcards.group)]
    return inputs(SimpleNamespace(dataset=wildcards.dataset))[wildcards.group]


def path_list_members(wildcards, input):
    """What the list file names: the inputs, or the files inside them (PATH_LIST_MEMBERS)."""
    members = PATH_LIST_MEMBERS.get((wildcards.rule_name, wildcards.group))
    return members(wildcards.dataset) if members else list(input)


def write_path_list(paths, output, log):
    """The path_list rule's job: the paths, one per line, and a line of log."""
    Path(output).write_text("".join(f"{path}\n" for path in paths), encoding="utf-8")
    Path(log).write_text(f"{len(paths)} paths listed in {output}\n", encoding="utf-8")
