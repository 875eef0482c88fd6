# EEGFormer: compound pretraining, fine-tuning per task, evaluation, anomaly detection,
# codebook interpretation. GPU rules take their layout from the profile (neuroai/cluster.py);
# training with several GPUs runs the stage as DDP tasks.


rule eegformer_pretrain:
    """VQ-VAE pretraining on every configured store at once (compound), or on the normal
    recordings of the anomaly datasets (corpus "normal"); the stores' test patients and those
    of the downstream stores sharing their patient ids (the downstream tasks' test patients)
    are held out, and splits.tsv records every split."""
    input:
        unpack(eegformer_pretrain_inputs),
    output:
        model=directory(f"{RESULTS}/eegformer/pretrain/{{corpus}}/model"),
        history=f"{RESULTS}/eegformer/pretrain/{{corpus}}/history.tsv",
        splits=f"{RESULTS}/eegformer/pretrain/{{corpus}}/splits.tsv",
    params:
        cfg=eegformer_pretrain_params,
        run_dir=f"{RESULTS}/eegformer/pretrain/{{corpus}}/run",
    wildcard_constraints:
        corpus="compound|normal",
    log:
        f"{RESULTS}/logs/eegformer_pretrain/{{corpus}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eegformer_pretrain/{{corpus}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=720,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.eegformer_pretrain "
        "--stores {input.stores:q} --downstream-stores {input.downstream:q} "
        "--model-output {output.model:q} --history-output {output.history:q} "
        "--splits-output {output.splits:q} --run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eegformer_finetune:
    """Linear probe, full fine-tuning and from-scratch training on one task (same budget
    and seed), and each model's predictions on the task's test windows; splits.tsv."""
    input:
        unpack(eegformer_finetune_inputs),
    output:
        models=directory(f"{RESULTS}/eegformer/{{task}}/models"),
        predictions=f"{RESULTS}/eegformer/{{task}}/predictions.tsv",
        history=f"{RESULTS}/eegformer/{{task}}/history.tsv",
        splits=f"{RESULTS}/eegformer/{{task}}/splits.tsv",
    params:
        cfg=eegformer_finetune_params,
        run_dir=f"{RESULTS}/eegformer/{{task}}/run",
    wildcard_constraints:
        task="|".join(EEGFORMER_TASKS) or "(?!)",
    log:
        f"{RESULTS}/logs/eegformer_finetune/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eegformer_finetune/{{task}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.eegformer_finetune --stores {input.stores:q} "
        "--pretrained {input.pretrained:q} --task {wildcards.task} "
        "--models-output {output.models:q} --predictions-output {output.predictions:q} "
        "--history-output {output.history:q} --splits-output {output.splits:q} "
        "--run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eegformer_evaluate:
    """AUROC, AUPRC and balanced accuracy per window and per recording, with bootstrap
    intervals over patients and paired differences between the modes."""
    input:
        predictions=f"{RESULTS}/eegformer/{{task}}/predictions.tsv",
        models=f"{RESULTS}/eegformer/{{task}}/models",
        history=f"{RESULTS}/eegformer/{{task}}/history.tsv",
        splits=f"{RESULTS}/eegformer/{{task}}/splits.tsv",
    output:
        metrics=f"{RESULTS}/eegformer/{{task}}/metrics.json",
        recordings=f"{RESULTS}/eegformer/{{task}}/recordings.tsv",
        evaluated=directory(f"{RESULTS}/eegformer/{{task}}/evaluated"),
    params:
        cfg=eegformer_evaluate_params(),
        datasets=eegformer_task_datasets,
    wildcard_constraints:
        task="|".join(EEGFORMER_TASKS) or "(?!)",
    log:
        f"{RESULTS}/logs/eegformer_evaluate/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eegformer_evaluate/{{task}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m neuroai.pipelines.eegformer_evaluate --predictions {input.predictions:q} "
        "--models {input.models:q} --history {input.history:q} "
        "--metrics-output {output.metrics:q} --recordings-output {output.recordings:q} "
        "--splits {input.splits:q} --evaluated-output {output.evaluated:q} {params.datasets} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eegformer_anomaly:
    """Anomaly scores (reconstruction, quantisation, code rarity) of the test recordings
    under the model pretrained on normal recordings only; AUROC normal vs abnormal."""
    input:
        unpack(eegformer_anomaly_inputs),
    output:
        scores=f"{RESULTS}/eegformer/anomaly/scores.tsv",
        metrics=f"{RESULTS}/eegformer/anomaly/anomaly.json",
    params:
        cfg=eegformer_anomaly_params(),
    log:
        f"{RESULTS}/logs/eegformer_anomaly.log",
    benchmark:
        f"{RESULTS}/benchmarks/eegformer_anomaly.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.eegformer_anomaly --stores {input.stores:q} "
        "--pretrained {input.pretrained:q} --scores-output {output.scores:q} "
        "--metrics-output {output.metrics:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eegformer_interpret:
    """Code usage per class and per annotation label, by channel and time (for the report)."""
    input:
        unpack(eegformer_interpret_inputs),
    output:
        summary=f"{RESULTS}/eegformer/interpret/codes.json",
        codes=f"{RESULTS}/eegformer/interpret/codes.npy",
    params:
        cfg=eegformer_interpret_params(),
    log:
        f"{RESULTS}/logs/eegformer_interpret.log",
    benchmark:
        f"{RESULTS}/benchmarks/eegformer_interpret.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.eegformer_interpret --stores {input.stores:q} "
        "--pretrained {input.pretrained:q} --output {output.summary:q} "
        "--codes-output {output.codes:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
