"""TABLeT fine-tuning keeps the best-validation weights or, as the paper tests, the last."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from neuroai.errors import ConfigError
from neuroai.io import load_json, read_provenance, save_table
from neuroai.models import load_pretrained
from neuroai.testing import write_token_store

MODEL = {"preset": "demo", "positional": "rope", "options": {"d_model": 16, "mlp_dim": 32}}
TRAINING = {
    "max_steps": 6,
    "batch_size": 2,
    "lr": 0.01,
    "weight_decay": 0.01,
    "warmup_steps": 1,
    "val_every_steps": 2,
    "log_every_steps": 1,
    "progress_bar": False,
}
SPLIT = {"kind": "stratified", "stratify": "site", "n_folds": 3, "fold": 0, "n_val": 1, "seed": 0}
TASK = {"name": "site", "column": "site", "kind": "classification", "positive": "hcp"}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    rows = []
    for i in range(9):
        site = "hcp" if i % 3 else "gw"
        path = write_token_store(
            root / f"sub-{i:02d}_tokens.npy",
            n_frames=5 + i % 4,
            n_tokens=5,
            token_dim=12,
            tr=0.72 if site == "hcp" else 2.0,
            seed=i,
            offset=0.5 * (site == "hcp"),
        )
        rows.append(
            {"participant_id": f"sub-{i:02d}", "tokens": path.name, "tr": 1.0, "site": site}
        )
    path = root / "index.tsv"
    save_table(path, pd.DataFrame(rows), stage="tokens_summary")
    return path


def _finetune(index, out, select):
    from neuroai.pipelines import tablet_finetune

    training = TRAINING if select is None else {**TRAINING, "select": select}
    return tablet_finetune.run(
        index, out / "model", out / "history.tsv", task=TASK, variant="scratch-rope",
        model=MODEL, training=training, data={"window_frames": 4}, split=SPLIT,
    )  # fmt: skip


def _weights(folder):
    return load_pretrained(folder).state_dict()


def test_select_keeps_the_best_or_the_last_weights(index, tmp_path):
    from neuroai.pipelines import tablet_evaluate

    for select in (None, "last"):
        out = tmp_path / str(select)
        model = _finetune(index, out, select)
        extra = read_provenance(model)["extra"]
        info = load_pretrained(model).pretrained_info
        kept = "best" if select is None else "last"
        assert info["tablet"]["select"] == extra["select"] == info["export"] == kept
        assert info["step"] == extra["selected_step"]
        assert extra["selected_step"] == (6 if kept == "last" else extra["best_step"])
        for key, value in _weights(out / "run" / kept).items():
            torch.testing.assert_close(_weights(model)[key], value, rtol=0, atol=0)
    # The two runs trained alike (same seed): the kept weights differ only if the best
    # validation came before the last step, and then the last run must not hold them.
    best_step = read_provenance(tmp_path / "None" / "model")["extra"]["best_step"]
    same = all(
        torch.equal(a, b)
        for a, b in zip(
            _weights(tmp_path / "None" / "model").values(),
            _weights(tmp_path / "last" / "model").values(),
            strict=True,
        )
    )
    assert same == (best_step == 6)
    tablet_evaluate.run(
        index,
        [tmp_path / "last" / "model"],
        tmp_path / "metrics.json",
        tmp_path / "predictions.tsv",
        window_frames=4,
        n_bootstrap=10,
        reference=False,
    )
    entry = load_json(tmp_path / "metrics.json")["tasks"]["site"]["variants"]["scratch-rope"]
    assert (entry["weights"], entry["weights_step"]) == ("last", 6)


def test_an_unknown_select_is_refused_before_training(index, tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'last'"):
        _finetune(index, tmp_path, "lsat")
    assert not (tmp_path / "run").exists()
