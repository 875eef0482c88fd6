"""Patients across EEG datasets (issue 19): the TUH corpora share one patient id space.

A patient tested through one TUH dataset (TUAB's eval folder) must not be pretrained on
through another (TUSZ), the leak check must name him when that is forced, and datasets
that do not declare a shared namespace keep their subjects apart. The stores are tiny,
unequal and seeded; ``tuab`` and ``tusz`` name their subjects alike (``p00`` ...), as
TUH's patient ids are, and so do ``site_a`` and ``site_b`` (``00``, ``01`` ...: BIDS ``sub-01``).
"""

import json

import pytest

from neuroai.eeg.patients import default_patient_namespace
from neuroai.errors import ConfigError
from neuroai.io import load_json, load_table
from neuroai.testing import tiny_patch_store
from neuroai.training.eeg_data import recording_split, seen_test_subjects, window_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {
    "max_steps": 2,
    "batch_size": 4,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
}
MODEL = {"preset": "demo", "options": {"d_model": 16, "codebook_size": 8}}
#: tusz draws no test patient of its own: only those tested through tuab are held out.
SPLIT = {"n_val": 1, "test_fraction": 0.0, "seed": 0}
#: tuab's eval patients (its last two recordings).
TUAB_TEST = {"tuh/p04", "tuh/p05"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("patients") / "eeg"

    def store(name, **options):
        defaults = {"windows_per_recording": 2, "n_eval": 0, "name_prefix": "p"}
        return tiny_patch_store(root / name / "store", **{**defaults, **options})

    return {
        # TUAB-like: p00..p05, p04 and p05 in its eval folder. TUSZ-like: p00..p08, no eval.
        "tuab": store("tuab", n_recordings=6, n_eval=2, seed=0, patient_namespace="tuh"),
        "tusz": store("tusz", n_recordings=9, seed=1, patient_namespace="tuh"),
        # Two BIDS cohorts numbering their participants alike: 00..05 and 00..08.
        "site_a": store("site_a", n_recordings=6, seed=2, name_prefix=""),
        "site_b": store("site_b", n_recordings=9, seed=3, name_prefix=""),
        "shared_a": store(
            "shared_a", n_recordings=6, seed=2, name_prefix="", patient_namespace="site"
        ),
        "shared_b": store(
            "shared_b", n_recordings=9, seed=3, name_prefix="", patient_namespace="site"
        ),
    }


def _patients(table, recordings) -> set[str]:
    return set(table.loc[table["recording"].isin(set(recordings)), "subject"])


def test_the_default_namespace_is_tuh_for_tuh_datasets_and_the_name_otherwise():
    assert default_patient_namespace("tuab", "tuh") == "tuh"
    assert default_patient_namespace("tusz", "tuh") == "tuh"
    assert default_patient_namespace("site_a", "bids_eeg") == "site_a"
    assert default_patient_namespace("clinic", "eeg_files") == "clinic"
    # A dataset of another layout named like the shared TUH namespace would join it silently.
    with pytest.raises(ConfigError, match="namespace the tuh corpora share"):
        default_patient_namespace("tuh", "bids_eeg")
    assert default_patient_namespace("tuh", "bids_eeg", patient_namespace="tuh") == "tuh"
    # Declared: two cohorts of one site share; a TUH copy with its own numbering does not.
    assert default_patient_namespace("site_a", "bids_eeg", patient_namespace="site") == "site"
    assert default_patient_namespace("tuh_copy", "tuh", patient_namespace="tuh_copy") == "tuh_copy"
    # A simulated demo cohort in the TUH layout is nobody else's patients.
    assert default_patient_namespace("demo_eeg", "tuh", built=True) == "demo_eeg"
    with pytest.raises(ConfigError, match=r"patient_namespace: 'tuh/x'.*letters, digits"):
        default_patient_namespace("tuab", "tuh", patient_namespace="tuh/x")


def test_one_tuh_patient_id_in_two_datasets_is_one_patient(stores):
    table = window_table([stores["tuab"], stores["tusz"]])
    subject = table.drop_duplicates("recording").set_index("recording")["subject"]
    assert subject["tuab/p04"] == subject["tusz/p04"] == "tuh/p04"
    assert table["subject"].nunique() == 9  # p00..p08, not 6 + 9


def test_bids_datasets_are_apart_by_default_and_one_when_they_declare_a_namespace(stores):
    apart = window_table([stores["site_a"], stores["site_b"]])
    assert apart["subject"].nunique() == 6 + 9
    assert {"site_a/01", "site_b/01"} <= set(apart["subject"])
    shared = window_table([stores["shared_a"], stores["shared_b"]])
    assert shared["subject"].nunique() == 9
    assert set(shared.loc[shared["recording"].isin(["shared_a/01", "shared_b/01"]), "subject"]) == {
        "site/01"
    }


@pytest.mark.parametrize("sharded", [False, True])
def test_a_cohort_store_carries_its_namespace_in_its_header(stores, tmp_path, sharded):
    from neuroai.eeg import concatenate_stores, open_patch_store

    out = tmp_path / "cohort" / "store"
    concatenate_stores(
        [stores["site_a"]], out, stage="test", sharded=sharded, patient_namespace="tuh"
    )
    assert open_patch_store(out).header["patients"] == "tuh"
    assert set(window_table([out])["subject"]) == {f"tuh/{k:02d}" for k in range(6)}
    with pytest.raises(ConfigError, match=r"patient_namespace: 'a/b'"):
        concatenate_stores(
            [stores["site_a"]],
            tmp_path / "bad",
            stage="test",
            sharded=sharded,
            patient_namespace="a/b",
        )
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("seed", range(8))
def test_a_shared_patient_is_on_one_side_of_every_split(stores, seed):
    """Each store draws its own test patients; the draws differ between the unequal stores,
    so a patient of both is tested through one of them and must not train through the other."""
    table = window_table([stores["shared_a"], stores["shared_b"]])
    split = recording_split(table, n_val=2, test_fraction=0.3, seed=seed)
    side = {}  # participant label (the store's own, "01") -> the parts its recordings are in
    for part, keys in (("train", split.train), ("val", split.val), ("test", split.test)):
        for key in keys:  # <store>/<recording>, and each recording is its participant's
            side.setdefault(key.split("/")[1], set()).add(part)
    assert len(side) == 9 and all(len(parts) == 1 for parts in side.values()), side


@pytest.mark.parametrize("seed", range(5))
def test_a_tuab_test_patient_is_not_pretrained_on_through_tusz(stores, seed):
    split = {**SPLIT, "seed": seed}
    # Compound pretraining on both: tusz/p04 and tusz/p05 are held out with their patient.
    compound = window_table([stores["tuab"], stores["tusz"]])
    chosen = recording_split(compound, **split)
    assert _patients(compound, chosen.test) == TUAB_TEST
    assert {"tusz/p04", "tusz/p05"} <= set(chosen.test)
    assert not _patients(compound, chosen.train + chosen.val) & TUAB_TEST
    # Pretraining on tusz alone, told of the downstream store tuab.
    tusz = window_table([stores["tusz"]])
    chosen = recording_split(tusz, downstream=window_table([stores["tuab"]]), **split)
    assert chosen.test == ["tusz/p04", "tusz/p05"]
    # Not told, tusz holds out nobody (test_fraction 0): the leak the check must catch.
    assert recording_split(tusz, **split).test == []


def test_the_leak_check_names_a_patient_read_through_another_dataset(stores):
    task = window_table([stores["tuab"]])
    test = recording_split(task, **SPLIT).test
    tusz = window_table([stores["tusz"]])
    used = recording_split(tusz, **SPLIT)
    record = {"train": used.train, "val": used.val}
    # The task's recordings are not the pretraining's: only the patients can tell.
    assert seen_test_subjects(task, record, test) == []
    record["patients"] = sorted(_patients(tusz, used.train + used.val))
    assert seen_test_subjects(task, record, test) == sorted(TUAB_TEST)


# The stages: pretraining told of the downstream stores, the leak check, splits.tsv, bootstrap.


@pytest.fixture(scope="module")
def pretrained(stores, tmp_path_factory):
    from neuroai.pipelines import eegformer_pretrain

    out = tmp_path_factory.mktemp("patients_stages")
    for name, downstream in (("told", [stores["tuab"]]), ("untold", None)):
        eegformer_pretrain.run(
            [stores["tusz"]],
            out / name / "model",
            out / name / "history.tsv",
            model=MODEL,
            training=FAST,
            split=SPLIT,
            downstream=downstream,
        )
    return out


def test_pretraining_holds_out_the_downstream_test_patients_and_records_them(pretrained, stores):
    splits = load_table(pretrained / "told" / "splits.tsv", stage="eegformer_pretrain")
    tested = splits[splits["split"] == "test"]
    assert list(tested["recording"]) == ["p04", "p05"] and set(tested["dataset"]) == {"tusz"}
    assert set(tested["patient"]) == TUAB_TEST
    config = json.loads((pretrained / "told" / "model" / "config.json").read_text())
    assert not set(config["split"]["patients"]) & TUAB_TEST
    assert config["downstream"] == [str(stores["tuab"])]
    untold = load_table(pretrained / "untold" / "splits.tsv")
    assert set(untold.loc[untold["split"].isin(["pretrain", "val"]), "patient"]) >= TUAB_TEST


def test_fine_tuning_refuses_an_encoder_that_read_its_test_patient_elsewhere(
    pretrained, stores, tmp_path
):
    from neuroai.pipelines import eegformer_finetune

    def finetune(model, task_stores, out):
        return eegformer_finetune.run(
            task_stores,
            pretrained / model / "model",
            out / "models",
            out / "predictions.tsv",
            out / "history.tsv",
            task="abnormal",
            modes=["probe"],
            training=FAST,
            split=SPLIT,
        )

    with pytest.raises(ConfigError, match=r"2 test patients \(tuh/p04, tuh/p05\) were pretrained"):
        finetune("untold", [stores["tuab"]], tmp_path / "leak")
    assert not (tmp_path / "leak" / "predictions.tsv").exists()
    finetune("told", [stores["tuab"]], tmp_path / "tuab")
    assert (tmp_path / "tuab" / "predictions.tsv").is_file()


def test_a_task_over_both_datasets_bootstraps_each_patient_once(pretrained, stores, tmp_path):
    from neuroai.pipelines import eegformer_evaluate, eegformer_finetune

    out = tmp_path / "both"
    eegformer_finetune.run(
        [stores["tuab"], stores["tusz"]],
        pretrained / "told" / "model",
        out / "models",
        out / "predictions.tsv",
        out / "history.tsv",
        task="abnormal",
        modes=["probe"],
        training=FAST,
        split=SPLIT,
    )
    splits = load_table(out / "splits.tsv")
    tested = splits[splits["split"] == "test"]
    assert len(tested) == 4 and set(tested["patient"]) == TUAB_TEST  # 4 recordings, 2 patients
    eegformer_evaluate.run(
        out / "predictions.tsv", out / "metrics.json", out / "recordings.tsv", n_bootstrap=50
    )
    document = load_json(out / "metrics.json", stage="eegformer_evaluate")
    auroc = document["models"]["probe"]["metrics"]["window"]["auroc"]
    assert auroc["n_groups"] == document["n_subjects"] == 2


# The workflow: the namespace from the config reaches the stores and the pretraining.


@pytest.mark.integration
def test_the_workflow_gives_each_store_its_namespace_and_pretraining_the_tuab_store(tmp_path):
    import yaml

    from neuroai.testing.eeg import tuh_edf
    from neuroai.testing.workflow import REPO, run_snakemake

    folders = {
        "tuab": [("train/normal", "aaaaaaab"), ("eval/abnormal", "aaaaaaac")],
        "tusz": [("train/abnormal", "aaaaaaac"), ("train/normal", "aaaaaaad")],
    }
    for dataset, recordings in folders.items():
        for seed, (folder, patient) in enumerate(recordings):
            edf = tmp_path / dataset / "edf" / folder / "01_tcp_ar" / f"{patient}_s001_t000.edf"
            tuh_edf(edf, duration_s=30.0, seed=seed)

    def entry(name, **options):
        card = str(REPO / "data_cards" / f"tuh_eeg_{name}.yaml")
        return {"card": card, "layout": "tuh", **options}

    config = {
        "datasets": {
            "tuab": entry("abnormal", root=str(tmp_path / "tuab")),
            "tusz": entry("seizure", root=str(tmp_path / "tusz")),
            # The same files, declared a separate cohort: not a downstream store of tusz.
            "tusz_copy": entry("seizure", root=str(tmp_path / "tusz"), patient_namespace="copy"),
        },
        "static_fc": {"datasets": []},
        "eeg": {"datasets": ["tuab", "tusz", "tusz_copy"]},
        "eegformer": {
            "datasets": ["tusz"],
            "tasks": {
                "abnormal": {"datasets": ["tuab"]},
                "seizure": {"datasets": ["tusz_copy"]},
            },
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(
        tmp_path / "work", "--configfile", str(tmp_path / "config.yaml"), "-n", "-p", timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    commands = [line for line in done.stdout.splitlines() if "python -m neuroai.pipelines" in line]
    stores = {c.split("--dataset ")[1].split()[0]: c for c in commands if ".eeg_store " in c}
    assert (
        "--patient-namespace tuh " in stores["tuab"]
        and "--patient-namespace tuh " in stores["tusz"]
    )
    assert "--patient-namespace copy " in stores["tusz_copy"]
    (pretrain,) = [c for c in commands if ".eegformer_pretrain " in c]
    assert (
        "--stores results/eeg/tusz/store --downstream-stores results/eeg/tuab/store --" in pretrain
    )
