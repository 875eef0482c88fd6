# fMRI: static functional connectivity per run, and its group summary per dataset.
# Each per-run step runs as one job per run, or (its batch_size > 0) as one job per batch
# of runs writing the same files into a batch folder: see docs/cohort_batches.md.

rule static_fc:
    """Static functional connectivity of one run (n_regions x n_regions .npy)."""
    input:
        timeseries_of,
    output:
        f"{RESULTS}/fmri/{{dataset}}/static_fc/{{run}}_connectivity.npy",
    params:
        cfg=static_fc_params(),
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
        "python -m neuroai.pipelines.static_fc --timeseries {input:q} --output {output:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule static_fc_batch:
    """Static FC of a batch of runs in one process: a folder of <run>_connectivity.npy,
    each with the record the per-run rule writes (static_fc.batch_size > 0)."""
    input:
        unpack(batch_inputs("static_fc")),
    output:
        directory(f"{RESULTS}/fmri/{{dataset}}/static_fc/batch-{{batch}}"),
    wildcard_constraints:
        batch="[0-9]+",
    params:
        cfg=batch_params("static_fc", static_fc_params()),
    log:
        f"{RESULTS}/logs/static_fc_batch/{{dataset}}/batch-{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/static_fc_batch/{{dataset}}/batch-{{batch}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=30,
        # A resource, not a param: where the runs are computed does not change them.
        dask_scheduler=dask_scheduler,
    shell:
        "python -m neuroai.pipelines.static_fc_batch --timeseries @{input.members:q} "
        "--output {output:q} --scheduler={resources.dask_scheduler:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule group_fc:
    """Group-mean static FC and edge statistics per group (site) of one dataset."""
    input:
        unpack(group_fc_inputs),
        fc_list=path_list("group_fc", "fc"),
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
        "python -m neuroai.pipelines.group_fc --connectivity @{input.fc_list:q} "
        "--mean-output {output.mean:q} --summary-output {output.summary:q} "
        "{params.participants} --params {params.cfg:q} --log {log:q} --no-progress"


# ---- 4D BOLD: demo datasets, parcellation, dynamic FC, graph datasets ----


ruleorder: demo_neuropycon_bold > demo_regions_participants
ruleorder: demo_nitime_bold > demo_regions_participants


rule demo_neuropycon_bold:
    """Demo: neuropycon-data's real resting-state BOLD as fMRIPrep-style derivatives."""
    output:
        bold_demo_outputs("neuropycon_bold"),
    wildcard_constraints:
        dataset=_built_by("neuropycon_bold"),
    params:
        cfg=demo_bold_params,
        root=fmri_dataset_root,
    log:
        f"{RESULTS}/logs/demo_bold/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_bold/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_bold --out-dir {params.root:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule demo_nitime_bold:
    """Demo: nitime's two real 4D BOLD runs as raw BIDS with a sphere atlas."""
    output:
        bold_demo_outputs("nitime_bold"),
    wildcard_constraints:
        dataset=_built_by("nitime_bold"),
    params:
        cfg=demo_bold_params,
        root=fmri_dataset_root,
    log:
        f"{RESULTS}/logs/demo_bold/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_bold/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_bold --out-dir {params.root:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule fmri_timeseries:
    """Region time series of one 4D run (streamed, cleaned), with its QC traces and carpet."""
    input:
        unpack(fmri_timeseries_inputs),
    output:
        tsv=f"{RESULTS}/fmri/{{dataset}}/timeseries/{{subdir}}/func/{{run}}_timeseries.tsv",
        json=f"{RESULTS}/fmri/{{dataset}}/timeseries/{{subdir}}/func/{{run}}_timeseries.json",
        qc=f"{RESULTS}/fmri/{{dataset}}/timeseries/{{subdir}}/func/{{run}}_qc.json",
        carpet=f"{RESULTS}/fmri/{{dataset}}/timeseries/{{subdir}}/func/{{run}}_carpet.npy",
    wildcard_constraints:
        subdir="sub-[A-Za-z0-9]+(/ses-[A-Za-z0-9]+)?",
    params:
        cfg=fmri_timeseries_params,
        root=fmri_dataset_root,
    log:
        f"{RESULTS}/logs/fmri_timeseries/{{dataset}}/{{subdir}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fmri_timeseries/{{dataset}}/{{subdir}}/{{run}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m neuroai.pipelines.fmri_timeseries --root {params.root:q} --run-key {wildcards.run} "
        "--output {output.tsv:q} --qc-output {output.qc:q} --carpet-output {output.carpet:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule fmri_timeseries_batch:
    """Region time series of a batch of 4D runs in one process: a folder of what the
    per-run rule writes, in the same sub-folders (fmri_timeseries.batch_size > 0)."""
    input:
        unpack(batch_inputs("fmri_timeseries")),
    output:
        directory(f"{RESULTS}/fmri/{{dataset}}/timeseries/batch-{{batch}}"),
    wildcard_constraints:
        batch="[0-9]+",
    params:
        cfg=fmri_timeseries_batch_params,
        root=fmri_dataset_root,
    log:
        f"{RESULTS}/logs/fmri_timeseries_batch/{{dataset}}/batch-{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fmri_timeseries_batch/{{dataset}}/batch-{{batch}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=120,
        # A resource, not a param: where the runs are computed does not change them.
        dask_scheduler=dask_scheduler,
    shell:
        "python -m neuroai.pipelines.fmri_timeseries_batch --root {params.root:q} "
        "--run-keys @{input.members:q} --output {output:q} "
        "--scheduler={resources.dask_scheduler:q} --params {params.cfg:q} --log {log:q} "
        "--no-progress"


rule dynamic_fc:
    """Dynamic FC of one run: sliding-window connectivity (n_windows x n x n .npy)."""
    input:
        dynamic_fc_timeseries,
    output:
        f"{RESULTS}/fmri/{{dataset}}/dynamic_fc/{{run}}_dfc.npy",
    params:
        cfg=dynamic_fc_params(),
    log:
        f"{RESULTS}/logs/dynamic_fc/{{dataset}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dynamic_fc/{{dataset}}/{{run}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.dynamic_fc --timeseries {input:q} --output {output:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule dynamic_fc_batch:
    """Dynamic FC of a batch of runs in one process: a folder of <run>_dfc.npy, each with
    the record the per-run rule writes (dynamic_fc.batch_size > 0)."""
    input:
        unpack(batch_inputs("dynamic_fc")),
    output:
        directory(f"{RESULTS}/fmri/{{dataset}}/dynamic_fc/batch-{{batch}}"),
    wildcard_constraints:
        batch="[0-9]+",
    params:
        cfg=batch_params("dynamic_fc", dynamic_fc_params()),
    log:
        f"{RESULTS}/logs/dynamic_fc_batch/{{dataset}}/batch-{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dynamic_fc_batch/{{dataset}}/batch-{{batch}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
        # A resource, not a param: where the runs are computed does not change them.
        dask_scheduler=dask_scheduler,
    shell:
        "python -m neuroai.pipelines.dynamic_fc_batch --timeseries @{input.members:q} "
        "--output {output:q} --scheduler={resources.dask_scheduler:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule graph_dataset:
    """A dataset's graph dataset (window graphs of every run) and its dynamic-FC summary."""
    input:
        unpack(graph_dataset_inputs),
        dfc_list=path_list("graph_dataset", "dfc"),
        timeseries_list=path_list("graph_dataset", "timeseries"),
    output:
        graphs=directory(f"{RESULTS}/fmri/{{dataset}}/graphs"),
        summary=f"{RESULTS}/fmri/{{dataset}}/graphs_summary.json",
        variability=f"{RESULTS}/fmri/{{dataset}}/dfc_variability.npy",
    params:
        cfg=graph_dataset_params,
        participants=graph_dataset_participants_arg,
    log:
        f"{RESULTS}/logs/graph_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/graph_dataset/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        runtime=60,
        # A resource, not a param: where the graphs are built does not change them.
        dask_scheduler=dask_scheduler,
    shell:
        "python -m neuroai.pipelines.graph_dataset --dynamic-fc @{input.dfc_list:q} "
        "--timeseries @{input.timeseries_list:q} --output {output.graphs:q} "
        "--summary-output {output.summary:q} --variability-output {output.variability:q} "
        "{params.participants} --scheduler={resources.dask_scheduler:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
