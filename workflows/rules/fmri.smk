# fMRI: static functional connectivity per run, and its group summary per dataset.

rule static_fc:
    """Static functional connectivity of one run (n_regions x n_regions .npy)."""
    input:
        timeseries_of,
    output:
        f"{RESULTS}/fmri/{{dataset}}/static_fc/{{run}}_connectivity.npy",
    params:
        cfg=stage_params("static_fc"),
    log:
        f"{RESULTS}/logs/static_fc/{{dataset}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/static_fc/{{dataset}}/{{run}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipelines.static_fc --timeseries {input:q} --output {output:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule group_fc:
    """Group-mean static FC and edge statistics per group (site) of one dataset."""
    input:
        unpack(group_fc_inputs),
    output:
        mean=f"{RESULTS}/fmri/{{dataset}}/group_fc_mean.npy",
        summary=f"{RESULTS}/fmri/{{dataset}}/group_fc_summary.json",
    params:
        cfg=group_fc_params,
        participants=group_fc_participants_arg,
    log:
        f"{RESULTS}/logs/group_fc/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/group_fc/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipelines.group_fc --connectivity {input.fc:q} "
        "--mean-output {output.mean:q} --summary-output {output.summary:q} "
        "{params.participants} --params {params.cfg:q} --log {log:q} --no-progress"
