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
