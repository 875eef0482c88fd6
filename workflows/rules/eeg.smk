# EEG: the demo cohort, then one job per recording (or, eeg.batch_size > 0, per batch of
# recordings: see docs/cohort_batches.md), then one patch store per dataset: a copy, or
# (eeg.store: shards) a manifest over the recordings' stores, which are then kept.


wildcard_constraints:
    recording="[A-Za-z0-9][A-Za-z0-9_\\-]*",


rule eeg_demo:
    """The simulated demo EEG cohort (TUAB-like EDF files with TUH annotation files)."""
    output:
        f"{RESULTS}/datasets/{{dataset}}/recordings.tsv",
    params:
        cfg=eeg_demo_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/eeg_demo/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eeg_demo/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "python -m neuroai.pipelines.eeg_demo --out-dir {params.root:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eeg_recording:
    """One recording: channels, filters, windows, patches (a patch store) and its QC."""
    input:
        eeg_recording_inputs,
    output:
        store=eeg_kept(f"{RESULTS}/eeg/{{dataset}}/recordings/{{recording}}_patches"),
        qc=f"{RESULTS}/eeg/{{dataset}}/recordings/{{recording}}_qc.json",
    params:
        cfg=eeg_params(),
        path=eeg_recording_path,
        meta=eeg_recording_meta,
    log:
        f"{RESULTS}/logs/eeg_recording/{{dataset}}/{{recording}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eeg_recording/{{dataset}}/{{recording}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "python -m neuroai.pipelines.eeg_recording --recording {params.path:q} "
        "--store {output.store:q} --qc {output.qc:q} --meta {params.meta:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eeg_recording_batch:
    """A batch of recordings in one process: a folder of what the per-recording rule
    writes (<key>_patches, <key>_qc.json), removed once the dataset's store is built (kept
    as its shards with eeg.store: shards)."""
    input:
        unpack(batch_inputs("eeg_recording")),
    output:
        eeg_kept(f"{RESULTS}/eeg/{{dataset}}/recordings/batch-{{batch}}"),
    wildcard_constraints:
        batch="[0-9]+",
    params:
        cfg=batch_params("eeg_recording", eeg_params()),
    log:
        f"{RESULTS}/logs/eeg_recording_batch/{{dataset}}/batch-{{batch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eeg_recording_batch/{{dataset}}/batch-{{batch}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=120,
        # A resource, not a param: where the runs are computed does not change them.
        dask_scheduler=dask_scheduler,
    shell:
        "python -m neuroai.pipelines.eeg_recording_batch --recordings {input.members:q} "
        "--output {output:q} --scheduler={resources.dask_scheduler:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule eeg_store_batches:
    """eeg_store for a dataset processed in batches: the stores listed in a file, and the
    recordings the batches left out (from the failures table) named in the summary."""
    input:
        unpack(eeg_store_batch_inputs),
    output:
        store=directory(f"{RESULTS}/eeg/{{dataset}}/store"),
        summary=f"{RESULTS}/eeg/{{dataset}}/summary.json",
        examples=f"{RESULTS}/eeg/{{dataset}}/examples.npy",
    wildcard_constraints:
        dataset=eeg_batched_datasets(),
    params:
        cfg=eeg_params(),
        root=eeg_dataset_root,
        layout=eeg_layout,
        patients=eeg_patients,
        index=eeg_index_args,
        recordings=eeg_recordings_dir,
        form=eeg_store_form,
    log:
        f"{RESULTS}/logs/eeg_store/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eeg_store/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m neuroai.pipelines.eeg_store --root {params.root:q} "
        "--recordings-dir {params.recordings:q} --dataset {wildcards.dataset} "
        "--layout {params.layout} --patient-namespace {params.patients} {params.index} "
        "--stores @{input.stores_list:q} --failures {input.failures:q} {params.form} "
        "--store {output.store:q} "
        "--summary {output.summary:q} --examples {output.examples:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule eeg_store:
    """The dataset's patch store (the input of EEGFormer), its summary and example traces."""
    input:
        unpack(eeg_store_inputs),
    output:
        store=directory(f"{RESULTS}/eeg/{{dataset}}/store"),
        summary=f"{RESULTS}/eeg/{{dataset}}/summary.json",
        examples=f"{RESULTS}/eeg/{{dataset}}/examples.npy",
    wildcard_constraints:
        dataset=eeg_per_recording_datasets(),
    params:
        cfg=eeg_params(),
        root=eeg_dataset_root,
        layout=eeg_layout,
        patients=eeg_patients,
        index=eeg_index_args,
        recordings=eeg_recordings_dir,
        form=eeg_store_form,
    log:
        f"{RESULTS}/logs/eeg_store/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/eeg_store/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m neuroai.pipelines.eeg_store --root {params.root:q} "
        "--recordings-dir {params.recordings:q} --dataset {wildcards.dataset} "
        "--layout {params.layout} --patient-namespace {params.patients} {params.index} "
        "{params.form} --store {output.store:q} "
        "--summary {output.summary:q} --examples {output.examples:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"
