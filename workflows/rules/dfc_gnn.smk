# dFC-GNN (issue 9): generative self-supervised pretraining on a dataset's graph dataset,
# fine-tuning with label fractions and baselines per task, evaluation and fingerprinting.


wildcard_constraints:
    dfc_task="[a-z0-9_]+",


rule dfc_gnn_pretrain:
    """Pretrain the dFC-GNN encoder with masked node, edge and window reconstruction, on
    every run but those of the family's held-out test subjects (unless transductive).

    Its layout (GPUs per node, nodes) comes from the profile (neuroai/cluster.py): with
    several GPUs every task runs the stage and Lightning joins them into one DDP run.
    """
    input:
        dfc_gnn_graphs,
    output:
        model=directory(f"{RESULTS}/dfc_gnn/{{dataset}}/pretrained/model"),
        history=f"{RESULTS}/dfc_gnn/{{dataset}}/pretrained/history.tsv",
        splits=f"{RESULTS}/dfc_gnn/{{dataset}}/pretrained/splits.tsv",
    params:
        cfg=dfc_gnn_pretrain_params(),
        run_dir=f"{RESULTS}/dfc_gnn/{{dataset}}/pretrained/run",
    log:
        f"{RESULTS}/logs/dfc_gnn_pretrain/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dfc_gnn_pretrain/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "{resources.launch} python -m neuroai.pipelines.dfc_gnn_pretrain --graphs {input:q} "
        "--model-output {output.model:q} --history-output {output.history:q} "
        "--splits-output {output.splits:q} --run-dir {params.run_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule dfc_gnn_finetune:
    """One task: fine-tuning, training from scratch, frozen probes and the static-FC
    baseline at each label fraction (out-of-fold predictions), and a final fine-tuned model."""
    input:
        unpack(dfc_gnn_finetune_inputs),
    output:
        predictions=f"{RESULTS}/dfc_gnn/{{dataset}}/tasks/{{dfc_task}}/predictions.tsv",
        model=directory(f"{RESULTS}/dfc_gnn/{{dataset}}/tasks/{{dfc_task}}/model"),
        splits=f"{RESULTS}/dfc_gnn/{{dataset}}/tasks/{{dfc_task}}/splits.tsv",
    params:
        cfg=dfc_gnn_finetune_params,
        static_fc=dfc_gnn_static_fc_arg,
        work_dir=f"{RESULTS}/dfc_gnn/{{dataset}}/tasks/{{dfc_task}}/runs",
    log:
        f"{RESULTS}/logs/dfc_gnn_finetune/{{dataset}}/{{dfc_task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dfc_gnn_finetune/{{dataset}}/{{dfc_task}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        **GPU,
    shell:
        "python -m neuroai.pipelines.dfc_gnn_finetune --graphs {input.graphs:q} "
        "--pretrained {input.pretrained:q} {params.static_fc} "
        "--predictions-output {output.predictions:q} --model-output {output.model:q} "
        "--splits-output {output.splits:q} --work-dir {params.work_dir:q} --threads {threads} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule dfc_gnn_evaluate:
    """Label-efficiency curves and metrics of every task; subject fingerprinting against
    Finn et al.'s static-FC identification."""
    input:
        unpack(dfc_gnn_evaluate_inputs),
    output:
        metrics=f"{RESULTS}/dfc_gnn/{{dataset}}/metrics.json",
        curves=f"{RESULTS}/dfc_gnn/{{dataset}}/label_efficiency.tsv",
        similarity=f"{RESULTS}/dfc_gnn/{{dataset}}/fingerprint_similarity.npy",
        fc=f"{RESULTS}/dfc_gnn/{{dataset}}/fc_halves.npy",
        evaluated=directory(f"{RESULTS}/dfc_gnn/{{dataset}}/evaluated"),
    params:
        cfg=dfc_gnn_evaluate_params(),
        history=dfc_gnn_history_arg,
        evaluated=dfc_gnn_evaluated_args,
    log:
        f"{RESULTS}/logs/dfc_gnn_evaluate/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dfc_gnn_evaluate/{{dataset}}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.dfc_gnn_evaluate --graphs {input.graphs:q} "
        "--pretrained {input.pretrained:q} {params.history} "
        "--predictions {input.predictions:q} --timeseries @{input.timeseries_list:q} "
        "--metrics-output {output.metrics:q} --curves-output {output.curves:q} "
        "--similarity-output {output.similarity:q} --fc-output {output.fc:q} "
        "--dataset-name {wildcards.dataset} --threads {threads} "
        "{params.evaluated} --evaluated-output {output.evaluated:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
