# Input, params and target functions of the rules in ../report.smk.


def report_inputs(wildcards):
    return {
        "cards": [repo_path(dataset_config(name)["card"]) for name in used_datasets()],
        "group_fc": [f"{RESULTS}/fmri/{name}/group_fc_summary.json" for name in used_datasets()],
        "group_fc_mean": [f"{RESULTS}/fmri/{name}/group_fc_mean.npy" for name in used_datasets()],
    }


def report_params():
    return json.dumps({"title": config["report"]["title"], "config": config}, sort_keys=True)
