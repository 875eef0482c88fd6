# 3D segmentation: the MNI152 tissue demo, DSD / deep supervision / plain training, evaluation.


rule demo_tissue:
    """Tissue-segmentation demo in Decathlon layout, derived from nilearn's MNI152 template."""
    output:
        f"{RESULTS}/datasets/{{dataset}}/dataset.json",
    params:
        cfg=demo_tissue_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_tissue/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_tissue/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "python -m neuroai.pipelines.demo_tissue --out-dir {params.root:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule segmentation_train:
    """Train one variant (dsd, deep_supervision, plain) of the DSD model on a Decathlon task.

    Its layout (GPUs per node, nodes) comes from the profile (neuroai/cluster.py): with
    several GPUs every task runs the stage and Lightning joins them into one DDP run.
    """
    input:
        segmentation_dataset,
    output:
        model=directory(f"{RESULTS}/segmentation/{{dataset}}/{{variant}}/model"),
        history=f"{RESULTS}/segmentation/{{dataset}}/{{variant}}/history.tsv",
        splits=f"{RESULTS}/segmentation/{{dataset}}/{{variant}}/splits.tsv",
    params:
        cfg=segmentation_train_params,
        run_dir=f"{RESULTS}/segmentation/{{dataset}}/{{variant}}/run",
    log:
        f"{RESULTS}/logs/segmentation_train/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation_train/{{dataset}}/{{variant}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.segmentation_train --dataset {input:q} "
        "--model-output {output.model:q} --history-output {output.history:q} "
        "--variant {wildcards.variant} --splits-output {output.splits:q} "
        "--run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule segmentation_evaluate:
    """Dice, HD95 and mean surface distance of every variant on the held-out cases."""
    input:
        unpack(segmentation_evaluate_inputs),
    output:
        metrics=f"{RESULTS}/segmentation/{{dataset}}/metrics.json",
        per_case=f"{RESULTS}/segmentation/{{dataset}}/per_case.tsv",
        evaluated=directory(f"{RESULTS}/segmentation/{{dataset}}/evaluated"),
    params:
        cfg=segmentation_evaluate_params(),
        names=segmentation_variants(),
        evaluated=segmentation_evaluated_args,
    log:
        f"{RESULTS}/logs/segmentation_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segmentation_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        **GPU,
    shell:
        "python -m neuroai.pipelines.segmentation_evaluate --dataset {input.dataset:q} "
        "--models {input.models:q} --names {params.names} --histories {input.histories:q} "
        "--metrics-output {output.metrics:q} --per-case-output {output.per_case:q} "
        "--dataset-name {wildcards.dataset} --threads {threads} "
        "{params.evaluated} --evaluated-output {output.evaluated:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
