# TABLeT on the fMRI volume tokens: masked token pretraining per cohort, fine-tuning per
# task and variant (pretrained or scratch, positional flag), subject-level evaluation.
# Each of the tablet.splits random splits (split-<k>) pretrains and fine-tunes on its own;
# one evaluation scores every split and their mean and sd.


rule tablet_pretrain:
    """Masked token modelling on a cohort's token stores (its test subjects left out), with
    one positional flag (the main one, and the others for the ablation)."""
    input:
        tablet_index,
    output:
        model=directory(f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/encoder"),
        history=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/history.tsv",
        summary=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/summary.json",
        reconstructions=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/reconstructions.npy",
        splits=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/splits.tsv",
    params:
        cfg=tablet_pretrain_params,
        run_dir=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/pretrain/{{positional}}/run",
    wildcard_constraints:
        positional="none|rope|spacetime",
        split=r"\d+",
    log:
        f"{RESULTS}/logs/tablet_pretrain/{{dataset}}/split-{{split}}/{{positional}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tablet_pretrain/{{dataset}}/split-{{split}}/{{positional}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.tablet_pretrain --index {input:q} "
        "--model-output {output.model:q} --history-output {output.history:q} "
        "--summary-output {output.summary:q} --reconstructions-output {output.reconstructions:q} "
        "--splits-output {output.splits:q} --run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule tablet_finetune:
    """Fine-tune one variant (pretrained-<positional> or scratch-<positional>) on one task."""
    input:
        unpack(tablet_finetune_inputs),
    output:
        model=directory(f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/{{task}}/{{variant}}/model"),
        history=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/{{task}}/{{variant}}/history.tsv",
        splits=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/{{task}}/{{variant}}/splits.tsv",
    params:
        cfg=tablet_finetune_params,
        pretrained=tablet_pretrained_arg,
        run_dir=f"{RESULTS}/tablet/{{dataset}}/split-{{split}}/{{task}}/{{variant}}/run",
    wildcard_constraints:
        variant="(pretrained|scratch)-(none|rope|spacetime)",
    log:
        f"{RESULTS}/logs/tablet_finetune/{{dataset}}/split-{{split}}/{{task}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tablet_finetune/{{dataset}}/split-{{split}}/{{task}}/{{variant}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.tablet_finetune --index {input.index:q} "
        "{params.pretrained} --model-output {output.model:q} --history-output {output.history:q} "
        "--variant {wildcards.variant} --splits-output {output.splits:q} "
        "--run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule tablet_evaluate:
    """Subject-level metrics of every fine-tuned variant on the held-out subjects of every
    split, and their mean and sd over the splits."""
    input:
        unpack(tablet_evaluate_inputs),
    output:
        metrics=f"{RESULTS}/tablet/{{dataset}}/metrics.json",
        predictions=f"{RESULTS}/tablet/{{dataset}}/predictions.tsv",
        evaluated=directory(f"{RESULTS}/tablet/{{dataset}}/evaluated"),
    params:
        cfg=tablet_evaluate_params(),
        datasets=tablet_datasets_arg,
    log:
        f"{RESULTS}/logs/tablet_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tablet_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.tablet_evaluate --index {input.index:q} --models {input.models:q} "
        "--metrics-output {output.metrics:q} --predictions-output {output.predictions:q} "
        "--splits {input.splits:q} --evaluated-output {output.evaluated:q} {params.datasets} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
