"""The EEGFormer rules end to end on a tiny simulated cohort: pretraining (compound and
normal-only), fine-tuning per task, evaluation, anomaly detection, interpretation, report;
a no-op second run; srun launching of the training rules on the SLURM profile."""

import functools

import pytest
import yaml

from neuroai.io import load_json
from neuroai.testing import report_text
from neuroai.testing.workflow import REPO, assert_launched_under_srun, run_snakemake

# The end-to-end run is slow; the dry-run checks of the SLURM launch are not.
pytestmark = pytest.mark.integration
snakemake = functools.partial(run_snakemake, timeout=900)
TRAIN = {"max_steps": 4, "batch_size": 4, "val_every_steps": 2, "log_every_steps": 1}
TASKS = ("abnormal", "artifacts", "slowing")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("tvb_data", reason="the EEG demo needs tvb-data: pip install -e '.[demo]'")
    work = tmp_path_factory.mktemp("eegformer_workflow")
    config = {
        "datasets": {
            "tiny_eeg": {
                "card": "data_cards/demo_eeg_simulated.yaml",
                "layout": "tuh",
                "build": {
                    "builder": "eeg_simulation",
                    "n_recordings": 8,
                    "duration_s": 36,
                    "eval_fraction": 0.25,
                },
            }
        },
        "static_fc": {"datasets": []},
        "eeg": {"datasets": ["tiny_eeg"]},
        "eegformer": {
            "datasets": ["tiny_eeg"],
            "model": {"options": {"d_model": 16, "codebook_size": 16}},
            "pretraining": TRAIN,
            "split": {"n_val": 1},
            "tasks": {
                "abnormal": {"datasets": ["tiny_eeg"], "modes": ["probe", "scratch"]},
                "artifacts": {"datasets": ["tiny_eeg"], "modes": ["probe"]},
                "slowing": {"datasets": ["tiny_eeg"], "modes": ["finetune"]},
            },
            "finetuning": TRAIN,
            "anomaly": {"datasets": ["tiny_eeg"]},
            "interpretation": {"datasets": ["tiny_eeg"], "min_count": 1},
            "evaluation": {"n_bootstrap": 100},
        },
        "report": {"title": "tiny eegformer report"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


@pytest.mark.slow
def test_rules_write_models_metrics_anomaly_codes_and_the_report(tiny):
    results = tiny / "results" / "eegformer"
    for corpus in ("compound", "normal"):
        assert (results / "pretrain" / corpus / "model" / "model.safetensors").is_file()
    for task in TASKS:
        metrics = load_json(results / task / "metrics.json", stage="eegformer_evaluate")
        assert metrics["task"] == task and metrics["models"]
    assert set(load_json(results / "abnormal" / "metrics.json")["models"]) == {"probe", "scratch"}
    assert load_json(results / "anomaly" / "anomaly.json")["pretrained_on"] == ["normal"]
    assert load_json(results / "interpret" / "codes.json")["channels"][0] == "Fp1-F7"
    report = report_text(tiny / "results" / "report")
    for text in ("EEGFormer", "Task: abnormal", "Anomaly detection", "Codebook interpretation"):
        assert text in report, text
    for rule in ("eegformer_pretrain", "eegformer_finetune", "eegformer_evaluate"):
        assert list((tiny / "results" / "benchmarks" / rule).rglob("*.tsv")), rule


@pytest.mark.slow
def test_second_run_does_nothing(tiny):
    done = snakemake(tiny, "--configfile", str(tiny / "config.yaml"), "--cores", "2")
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr


def test_lint_is_clean_and_training_rules_launch_under_srun_on_slurm(tmp_path):
    lint = snakemake(tmp_path, "--lint")
    assert lint.returncode == 0 and "eegformer" not in lint.stdout + lint.stderr, lint.stdout
    done = snakemake(
        tmp_path,
        "--profile",
        str(REPO / "workflows" / "profiles" / "slurm"),
        "-n",
        "-p",
        "--forceall",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert_launched_under_srun(
        done.stdout + done.stderr, ("eegformer_pretrain", "eegformer_finetune")
    )
