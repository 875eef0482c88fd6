# fMRI volume tokens (TABLeT): the demo 4D cohorts, the tokenizer's 2D autoencoder
# (trained or loaded once), then per subject the 96^3 MNI frames and the token store
# with its round-trip QC, and a summary per dataset.

ruleorder: demo_volumes_participants > demo_regions_participants


rule demo_volumes_atlas:
    """Geometry of the semi-synthetic cohort: tissue maps, brain mask, 94-parcel labels."""
    output:
        labels=f"{RESULTS}/datasets/{{dataset}}/atlas/dseg.nii.gz",
        names=f"{RESULTS}/datasets/{{dataset}}/atlas/dseg.tsv",
        tissues=f"{RESULTS}/datasets/{{dataset}}/atlas/probseg.nii.gz",
        mask=f"{RESULTS}/datasets/{{dataset}}/atlas/brainmask.nii.gz",
    wildcard_constraints:
        dataset=_built_by("neurolib_volumes"),
    params:
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_volumes/{{dataset}}/atlas.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_volumes/{{dataset}}/atlas.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_volumes --out-dir {params.root:q} --atlas "
        "--log {log:q} --no-progress"


rule demo_volumes_subject:
    """One subject of the semi-synthetic cohort: real region series painted into a 4D MNI run."""
    input:
        rules.demo_volumes_atlas.output,
    output:
        nii=f"{RESULTS}/datasets/{{dataset}}/sub-{{subject}}/func/sub-{{subject}}_task-rest_space-MNI152NLin2009aSym_bold.nii",
        json=f"{RESULTS}/datasets/{{dataset}}/sub-{{subject}}/func/sub-{{subject}}_task-rest_space-MNI152NLin2009aSym_bold.json",
    wildcard_constraints:
        dataset=_built_by("neurolib_volumes"),
    params:
        cfg=volume_cohort_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_volumes/{{dataset}}/sub-{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_volumes/{{dataset}}/sub-{{subject}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_volumes --out-dir {params.root:q} --subject {wildcards.subject} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule demo_volumes_participants:
    """participants.tsv (site, TR, mean_fc) and dataset_description.json of the cohort."""
    output:
        f"{RESULTS}/datasets/{{dataset}}/participants.tsv",
    wildcard_constraints:
        dataset=_built_by("neurolib_volumes"),
    params:
        cfg=volume_participants_params,
        root=demo_root,
    log:
        f"{RESULTS}/logs/demo_volumes/{{dataset}}/participants.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_volumes/{{dataset}}/participants.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.demo_volumes --out-dir {params.root:q} --participants "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule tokenizer_train:
    """The 2D autoencoder, trained once on the photographs scikit-image ships."""
    output:
        directory(f"{RESULTS}/tokenizer/natural_images"),
    params:
        cfg=tokenizer_train_params(),
    log:
        f"{RESULTS}/logs/tokenizer/natural_images.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenizer/natural_images.tsv"
    conda:
        ENV
    # One thread: on a shared CPU, torch's thread pool slows small convolutions down;
    # raise it with --set-threads tokenizer_train=N. Started first: the tokens wait for it.
    threads: 1
    priority: 10
    resources:
        mem_mb=4000,
        runtime=120,
        **GPU,
    shell:
        "python -m neuroai.pipelines.tokenizer --output {output:q} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule tokenizer_finetune:
    """Optional: the autoencoder fine-tuned on slices of fMRI frames."""
    input:
        base=finetune_base,
        frames=finetune_frames,
    output:
        directory(f"{RESULTS}/tokenizer/finetuned"),
    params:
        cfg=tokenizer_finetune_params(),
    log:
        f"{RESULTS}/logs/tokenizer/finetuned.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenizer/finetuned.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        **GPU,
    shell:
        "python -m neuroai.pipelines.tokenizer --finetune {input.base:q} --frames {input.frames:q} "
        "--output {output:q} --params {params.cfg:q} --log {log:q} --no-progress"


rule tokenizer_check:
    """Published weights from a local folder, validated once before any subject is encoded."""
    input:
        pretrained_input,
    output:
        f"{RESULTS}/tokenizer/pretrained_check.json",
    log:
        f"{RESULTS}/logs/tokenizer/pretrained_check.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenizer/pretrained_check.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m neuroai.pipelines.tokenizer --check {input:q} --output {output:q} "
        "--log {log:q} --no-progress"


rule frames:
    """One subject's runs on the 96^3 MNI grid of 2 mm, scaled to [-1, 1], float16."""
    input:
        token_volume_runs,
    output:
        f"{RESULTS}/tokens/{{dataset}}/frames/sub-{{subject}}_frames.npy",
    params:
        cfg=json.dumps(config["tokens"]["frames"], sort_keys=True),
    log:
        f"{RESULTS}/logs/frames/{{dataset}}/sub-{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/frames/{{dataset}}/sub-{{subject}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m neuroai.pipelines.frames --runs {input:q} --output {output:q} "
        "--params {params.cfg:q} --log {log:q} --no-progress"


rule tokens:
    """One subject's token store (n_frames, 27, 3072 for DC-AE f32c32) and its round-trip QC."""
    input:
        unpack(tokens_inputs),
    output:
        tokens=f"{RESULTS}/tokens/{{dataset}}/sub-{{subject}}_tokens.npy",
        qc=f"{RESULTS}/tokens/{{dataset}}/qc/sub-{{subject}}_qc.json",
        examples=f"{RESULTS}/tokens/{{dataset}}/qc/sub-{{subject}}_examples.npy",
    params:
        cfg=tokens_params(),
        atlas=tokens_atlas_args,
    log:
        f"{RESULTS}/logs/tokens/{{dataset}}/sub-{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokens/{{dataset}}/sub-{{subject}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=60,
        **GPU,
    shell:
        "python -m neuroai.pipelines.tokens --frames {input.frames:q} --tokenizer {input.tokenizer:q} "
        "--tokens-output {output.tokens:q} --qc-output {output.qc:q} "
        "--examples-output {output.examples:q} {params.atlas} --params {params.cfg:q} "
        "--log {log:q} --no-progress"


rule tokens_summary:
    """QC summary, the token-store index (labels for TABLeT) and report examples of a dataset."""
    input:
        unpack(tokens_summary_inputs),
        qc_list=path_list("tokens_summary", "qc"),
        tokens_list=path_list("tokens_summary", "tokens"),
        examples_list=path_list("tokens_summary", "examples"),
    output:
        summary=f"{RESULTS}/tokens/{{dataset}}/summary.json",
        index=f"{RESULTS}/tokens/{{dataset}}/index.tsv",
        examples=f"{RESULTS}/tokens/{{dataset}}/examples.npy",
    params:
        cfg=tokens_summary_params,
        participants=tokens_summary_participants_arg,
    log:
        f"{RESULTS}/logs/tokens_summary/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokens_summary/{{dataset}}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m neuroai.pipelines.tokens_summary --qc @{input.qc_list:q} "
        "--tokens @{input.tokens_list:q} --examples @{input.examples_list:q} --summary-output {output.summary:q} "
        "--index-output {output.index:q} --examples-output {output.examples:q} "
        "{params.participants} --params {params.cfg:q} --log {log:q} --no-progress"
