# Embeddings and predictions of pretrained models (any family) on new data.


rule embed:
    """One float16 embedding per subject, recording or window, with an index table."""
    input:
        model=inference_model,
        dataset=inference_dataset,
    output:
        f"{RESULTS}/embeddings/{{model}}/{{dataset}}/index.tsv",
    params:
        cfg=inference_params("embed"),
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
        "python -m neuroai.pipelines.embed --model {input.model:q} --dataset {input.dataset:q} "
        "--index-output {output:q} --threads {threads} --params {params.cfg:q} "
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
