# Embeddings and predictions of pretrained models (any family) on datasets; the input
# functions are in inputs/inference.smk.


rule embed:
    """One embedding table per (model, dataset): identity columns lined up with
    participants.tsv, then float32 columns e000... (docs/embeddings.md). {model} is a
    family (its own encoder, on a dataset it trains on) or a name under embed.models."""
    input:
        unpack(embed_inputs),
    output:
        f"{RESULTS}/embeddings/{{model}}/{{dataset}}/embeddings.parquet",
    params:
        cfg=embed_params,
        source=embed_source_arg,
    log:
        f"{RESULTS}/logs/embed/{{model}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed/{{model}}/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.embed --model {input.model:q} {params.source} "
        "--output {output:q} --threads {threads} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule predict:
    """A fine-tuned model applied to new data (label maps or per-item outputs)."""
    input:
        model=inference_model,
        dataset=inference_dataset,
    output:
        f"{RESULTS}/predictions/{{model}}/{{dataset}}/index.tsv",
    params:
        cfg=inference_params("predict"),
    log:
        f"{RESULTS}/logs/predict/{{model}}/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.predict --model {input.model:q} --dataset {input.dataset:q} "
        "--index-output {output:q} --threads {threads} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule predict_table:
    """A fine-tuned EEGFormer, TABLeT or dFC-GNN model applied to a dataset it was tuned
    on: one table of predictions lined up with participants.tsv (every recording, subject
    or run, not only the test ones: the split column or the model's splits.tsv tells them apart)."""
    input:
        unpack(predict_table_inputs),
    output:
        f"{RESULTS}/predictions/{{model}}/{{dataset}}/{{task}}/predictions.tsv",
    params:
        args=predict_table_args,
    wildcard_constraints:
        model="eegformer|tablet|dfc_gnn",
    log:
        f"{RESULTS}/logs/predict/{{model}}/{{dataset}}/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/{{dataset}}/{{task}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.predict {params.args} --output {output:q} "
        "--threads {threads} --log {log:q} --no-progress"
