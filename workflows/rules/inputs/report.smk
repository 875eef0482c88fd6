# Input and params functions of the rule in ../report.smk.


def report_manifest():
    """Data card per dataset key and, per report section, the artifacts it is drawn from."""
    return {
        "datasets": {name: repo_path(dataset_config(name)["card"]) for name in used_datasets()},
        "sections": {name: paths() for name, paths in REPORT_SECTIONS.items() if paths()},
    }


def report_inputs(wildcards):
    manifest = report_manifest()
    paths = [p for paths in manifest["sections"].values() for p in paths]
    return list(manifest["datasets"].values()) + batch_deps(paths)  # files in batch folders


def report_params():
    params = {
        "title": config["report"]["title"],
        "config": config,
        "benchmarks": f"{RESULTS}/benchmarks",
        **report_manifest(),
    }
    return json.dumps(params, sort_keys=True)


def write_params_file(text, output, log):
    """The report_params rule's job: the JSON text, written whole, and a line of log."""
    tmp = Path(f"{output}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    Path(log).write_text(f"{len(text)} bytes of report parameters in {output}\n", encoding="utf-8")
