# Input, params and target functions of the rules in ../fmri.smk.


def static_fc_outputs(dataset):
    return [
        f"{RESULTS}/fmri/{dataset}/static_fc/{run}_connectivity.npy" for run in RUNS[dataset]
    ]


def group_fc_inputs(wildcards):
    inputs = {"fc": static_fc_outputs(wildcards.dataset)}
    participants = participants_of(wildcards.dataset)
    if participants:
        inputs["participants"] = participants
    return inputs


def group_fc_participants_arg(wildcards, input):
    return f"--participants {input.participants}" if "participants" in input.keys() else ""


def group_fc_params(wildcards):
    return json.dumps({"dataset": wildcards.dataset, "group_by": config["group_fc"]["group_by"]})


def static_fc_report_inputs():
    return [f"{RESULTS}/fmri/{name}/group_fc_summary.json" for name in RUNS]


REPORT_SECTIONS["static_fc"] = static_fc_report_inputs
