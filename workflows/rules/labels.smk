# Labels tables of fMRI datasets merged into participants.tsv (the stages' labels);
# functions and the parse-time checks in inputs/labels.smk, docs/labels.md.


rule dataset_labels:
    """participants.tsv with the dataset's labels table over it (the fMRI stages' labels)."""
    input:
        unpack(dataset_labels_inputs),
    output:
        f"{RESULTS}/labels/{{dataset}}/participants.tsv",
    params:
        participants=dataset_labels_participants_arg,
        layout=dataset_layout,
    log:
        f"{RESULTS}/logs/dataset_labels/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dataset_labels/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.dataset_labels --labels {input.labels:q} "
        "--output {output:q} {params.participants} --layout {params.layout} "
        "--dataset {wildcards.dataset} --log {log:q} --no-progress"
