# ---- List files of per-subject inputs, for cohort rules (see inputs/lists.smk) ----


rule path_list:
    """The paths of one input group of a cohort rule, one per line, in the rule's order."""
    input:
        path_list_paths,
    output:
        f"{RESULTS}/lists/{{rule_name}}/{{group}}/{{dataset}}.txt",
    log:
        f"{RESULTS}/logs/path_list/{{rule_name}}/{{group}}/{{dataset}}.log",
    wildcard_constraints:
        rule_name="|".join(sorted({r for r, _ in PATH_LIST_INPUTS})),
        group="|".join(sorted({g for _, g in PATH_LIST_INPUTS})),
    localrule: True
    run:
        write_path_list(path_list_members(wildcards, input), output[0], log[0])


rule batch_list:
    """The runs of one batch of a batched per-run stage, one a line (the batch's @file)."""
    output:
        f"{RESULTS}/lists/batches/{{stage}}/{{dataset}}/batch-{{batch}}.txt",
    params:
        lines=batch_list_lines,
    log:
        f"{RESULTS}/logs/batch_list/{{stage}}/{{dataset}}/batch-{{batch}}.log",
    wildcard_constraints:
        stage="|".join(BATCHED_STAGES),
        batch="[0-9]+",
    localrule: True
    run:
        write_lines(params.lines, output[0], log[0])


rule batch_failures:
    """A dataset's runs that batches left out (on_error: skip): run, stage, error."""
    input:
        failures_inputs,
    output:
        f"{RESULTS}/failures/{{dataset}}.tsv",
    log:
        f"{RESULTS}/logs/batch_failures/{{dataset}}.log",
    localrule: True
    run:
        write_failures_table(input, output[0], log[0])
