"""EEGFormer evaluation that cannot leak (issue 19): patient-level splits, no downstream
test patient in pretraining, splits.tsv beside every trained model, patient bootstrap.

The synthetic stores have several recordings per subject and unequal sizes: one with its
own eval split in which a subject has recordings on both sides (as a TUH corpus can), two
without one (as TUAR, TUSL or a BIDS cohort)."""

import json

import numpy as np
import pandas as pd
import pytest

from neuroai.errors import ConfigError
from neuroai.evaluation.splits import fixed_split
from neuroai.io import load_json, load_table
from neuroai.testing import tiny_patch_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {
    "max_steps": 2,
    "batch_size": 4,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
}
MODEL = {"preset": "demo", "options": {"d_model": 16, "codebook_size": 8}}
#: Downstream tasks of the family: output folder -> (task, stores by name).
TASKS = {
    "abnormal_a": ("abnormal", ["tuab_like"]),
    "abnormal_bc": ("abnormal", ["tuar_like", "bids_like"]),
    "abnormal_c": ("abnormal", ["bids_like"]),
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("eegformer_splits") / "eeg"
    # tuab_like: 4 subjects x 2 recordings; rec05 (subject 2) is eval, rec04 (subject 2) is not.
    # tuar_like: 3 subjects x 3 recordings, no eval split; bids_like: 5 x 2, no eval split.
    return {
        "tuab_like": tiny_patch_store(
            root / "tuab_like" / "store",
            n_recordings=8,
            recordings_per_subject=2,
            n_eval=3,
            windows_per_recording=2,
            seed=0,
        ),
        "tuar_like": tiny_patch_store(
            root / "tuar_like" / "store",
            n_recordings=9,
            recordings_per_subject=3,
            n_eval=0,
            windows_per_recording=2,
            seed=1,
        ),
        "bids_like": tiny_patch_store(
            root / "bids_like" / "store",
            n_recordings=10,
            recordings_per_subject=2,
            n_eval=0,
            windows_per_recording=2,
            seed=2,
        ),
    }


def _subjects(table, recordings) -> set[str]:
    return set(table.loc[table["recording"].isin(set(recordings)), "subject"])


def test_fixed_split_with_given_test_ids_keeps_each_group_on_one_side():
    ids = ["r0", "r1", "r2", "r3", "r4", "r5", "r6"]
    groups = ["s0", "s0", "s1", "s1", "s2", "s2", "s3"]
    split = fixed_split(ids, test_ids=["r3"], n_val=1, seed=0, groups=groups)
    group = dict(zip(ids, groups, strict=True))
    tested = {group[i] for i in split.test}
    assert not tested & {group[i] for i in split.train + split.val}
    assert split.test == ["r2", "r3"]  # the subject of r3 is tested in full
    # Without groups the given test set is kept as it is.
    assert fixed_split(ids, test_ids=["r3"]).test == ["r3"]


def test_a_subject_with_an_eval_recording_is_never_trained_on(stores):
    from neuroai.training.eeg_data import recording_split, window_table

    table = window_table([stores["tuab_like"]])
    split = recording_split(table, n_val=1, seed=0)
    assert not _subjects(table, split.test) & _subjects(table, split.train + split.val)
    assert _subjects(table, split.test) == {"tuab_like/recsub02", "tuab_like/recsub03"}


@pytest.mark.parametrize("seed", range(20))
def test_no_downstream_test_subject_is_in_the_compound_pretraining_split(stores, seed):
    """The compound table and each task's table hold out the same subjects of a store."""
    from neuroai.training.eeg_data import recording_split, window_table

    compound = window_table(list(stores.values()))
    pretraining = recording_split(compound, n_val=1, seed=seed)
    seen = _subjects(compound, pretraining.train + pretraining.val)
    leaks = {}
    for name, (_, datasets) in TASKS.items():
        table = window_table([stores[d] for d in datasets])
        tested = _subjects(table, recording_split(table, n_val=1, seed=seed).test)
        assert tested, name
        if tested & seen:
            leaks[name] = sorted(tested & seen)
    assert not leaks, f"test subjects pretrained on: {leaks}"


def test_bootstrap_resamples_subjects_not_recordings():
    """Splitting every recording in two equal halves changes nothing when subjects are
    resampled (the halves travel together); resampling recordings would narrow the intervals."""
    from neuroai.evaluation.windows import paired_difference, weighted_metric, window_task_metrics

    rng = np.random.default_rng(3)
    n_subjects, n_windows = 9, 4
    subjects = np.repeat([f"s{k}" for k in range(n_subjects)], n_windows)
    recordings = np.array([f"{s}/r0" for s in subjects])
    y = np.repeat(np.arange(n_subjects) % 2, n_windows)
    # One score per subject: both halves of a recording then have the whole's mean score.
    s = np.repeat(
        np.clip(0.3 * (np.arange(n_subjects) % 2) + rng.uniform(0, 0.7, n_subjects), 0, 1),
        n_windows,
    )
    s_b = rng.uniform(0, 1, y.size)
    halves = np.array([f"{r}{w % 2}" for w, r in enumerate(recordings)])
    common = {"n_resamples": 200, "seed": 1}
    whole = window_task_metrics(y, s, recordings, subjects=subjects, **common)
    split = window_task_metrics(y, s, halves, subjects=subjects, **common)
    for level in ("window", "recording"):
        auroc = split[level]["auroc"]
        assert auroc["n_groups"] == n_subjects, level
        assert (auroc["ci_low"], auroc["ci_high"]) == pytest.approx(
            (whole[level]["auroc"]["ci_low"], whole[level]["auroc"]["ci_high"])
        ), level
    by_recording = window_task_metrics(y, s, halves, **common)["window"]["auroc"]
    assert by_recording["n_groups"] == 2 * n_subjects
    metric = weighted_metric("auroc")
    a = paired_difference(y, s, s_b, subjects, metric, **common)
    b = paired_difference(y, s, s_b, recordings, metric, **common)
    assert a["n_groups"] == n_subjects and a["ci_low"] == b["ci_low"]


# The stages: splits.tsv beside every model, read back as the family's leak check.


@pytest.fixture(scope="module")
def trained(stores, tmp_path_factory):
    from neuroai.pipelines import eegformer_evaluate, eegformer_finetune, eegformer_pretrain

    out = tmp_path_factory.mktemp("eegformer_split_stages")
    split = {"n_val": 1, "seed": 3}
    eegformer_pretrain.run(
        list(stores.values()),
        out / "pretrain" / "compound" / "model",
        out / "pretrain" / "compound" / "history.tsv",
        model=MODEL,
        training=FAST,
        split=split,
    )
    for name, (task, datasets) in TASKS.items():
        eegformer_finetune.run(
            [stores[d] for d in datasets],
            out / "pretrain" / "compound" / "model",
            out / name / "models",
            out / name / "predictions.tsv",
            out / name / "history.tsv",
            task=task,
            modes=["probe"],
            training=FAST,
            split=split,
        )
    eegformer_evaluate.run(
        out / "abnormal_bc" / "predictions.tsv",
        out / "abnormal_bc" / "metrics.json",
        out / "abnormal_bc" / "recordings.tsv",
        n_bootstrap=100,
    )
    return out


def test_every_training_stage_writes_its_splits_beside_its_model(trained, stores):
    pretraining = load_table(trained / "pretrain" / "compound" / "splits.tsv")
    columns = ["dataset", "subject", "session", "recording", "split", "patient"]
    assert list(pretraining.columns) == columns
    # These stores have no patient namespace in their header: each is its own.
    assert (pretraining["patient"] == pretraining["dataset"] + "/" + pretraining["subject"]).all()
    assert set(pretraining["split"]) == {"pretrain", "val", "test"}
    assert set(pretraining["dataset"]) == set(stores)
    # Every recording of the stores is listed once (all of them have windows).
    assert (
        len(pretraining) == 8 + 9 + 10
        and not pretraining.duplicated(["dataset", "recording"]).any()
    )
    for name in TASKS:
        task = load_table(trained / name / "splits.tsv", stage="eegformer_finetune")
        assert set(task["split"]) == {"train", "val", "test"}, name
        per_subject = task.groupby(["dataset", "subject"])["split"].nunique()
        assert (per_subject == 1).all(), f"{name}: a subject on two sides"


def test_no_downstream_test_subject_was_seen_by_pretraining(trained):
    """The family-wide check the issue asks for, read from the splits.tsv artifacts."""
    pretraining = load_table(trained / "pretrain" / "compound" / "splits.tsv")
    seen = set(pretraining.loc[pretraining["split"].isin(["pretrain", "val"]), "patient"])
    for name in TASKS:
        task = load_table(trained / name / "splits.tsv")
        tested = set(task.loc[task["split"] == "test", "patient"])
        assert tested and not tested & seen, f"{name}: {sorted(tested & seen)}"


def test_metrics_bootstrap_over_patients(trained):
    document = load_json(trained / "abnormal_bc" / "metrics.json", stage="eegformer_evaluate")
    assert document["bootstrap"]["unit"] == "subject"
    predictions = load_table(trained / "abnormal_bc" / "predictions.tsv")
    auroc = document["models"]["probe"]["metrics"]["window"]["auroc"]
    assert auroc["n_groups"] == predictions["subject"].nunique() == document["n_subjects"]


def test_fine_tuning_refuses_a_model_pretrained_on_its_test_subjects(trained, stores, tmp_path):
    from neuroai.pipelines import eegformer_finetune, eegformer_pretrain

    config = json.loads((trained / "pretrain" / "compound" / "model" / "config.json").read_text())
    assert config["transductive"] is False
    other_seed = {"n_val": 1, "seed": 4}  # another split of bids_like: other test subjects
    with pytest.raises(ConfigError, match=r"bids_like/recsub.*pretrained on.*same split"):
        eegformer_finetune.run(
            [stores["bids_like"]],
            trained / "pretrain" / "compound" / "model",
            tmp_path / "t" / "models",
            tmp_path / "t" / "predictions.tsv",
            tmp_path / "t" / "history.tsv",
            task="abnormal",
            modes=["probe"],
            training=FAST,
            split=other_seed,
        )
    assert not (tmp_path / "t" / "predictions.tsv").exists()
    # Transductive pretraining (named, opt-in) sees every recording and is allowed.
    eegformer_pretrain.run(
        [stores["bids_like"]],
        tmp_path / "p" / "model",
        tmp_path / "p" / "history.tsv",
        model=MODEL,
        training=FAST,
        split=other_seed,
        transductive=True,
    )
    splits = load_table(tmp_path / "p" / "splits.tsv")
    assert set(splits["split"]) == {"pretrain", "val"} and len(splits) == 10
    eegformer_finetune.run(
        [stores["bids_like"]],
        tmp_path / "p" / "model",
        tmp_path / "u" / "models",
        tmp_path / "u" / "predictions.tsv",
        tmp_path / "u" / "history.tsv",
        task="abnormal",
        modes=["probe"],
        training=FAST,
        split=other_seed,
    )
    extra = pd.read_csv(tmp_path / "u" / "splits.tsv", sep="\t")
    assert (extra["split"] == "test").any()
