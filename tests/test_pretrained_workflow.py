"""``<family>.pretrained: <folder>``: the workflow skips that family's pretraining and starts
from the folder, which is checked before any job runs (dry runs only: fast)."""

import re

import pytest
import yaml

from neuroai.models import create_model
from neuroai.testing.workflow import REPO, run_snakemake

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _demo_config():
    return yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())


def _jobs(stdout: str) -> dict[str, int]:
    """The dry run's job-count table: rule name -> count."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stdout, re.M)}


def _dry_run(tmp_path, config, target):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return run_snakemake(tmp_path, "--configfile", str(path), "-n", "--forceall", target)


@pytest.fixture(scope="module")
def eegformer_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("given") / "eegformer"
    return create_model("eegformer", preset="demo").save_pretrained(folder)


def test_eegformer_pretrained_folder_replaces_compound_pretraining(tmp_path, eegformer_folder):
    config = _demo_config()
    target = "results/eegformer/abnormal/metrics.json"
    own = _dry_run(tmp_path / "own", config, target)
    assert own.returncode == 0, own.stderr[-2000:]
    config["eegformer"]["pretrained"] = str(eegformer_folder)
    given = _dry_run(tmp_path / "given", config, target)
    assert given.returncode == 0, given.stderr[-2000:]
    assert _jobs(own.stdout).get("eegformer_pretrain") == 1
    assert "eegformer_pretrain" not in _jobs(given.stdout)
    assert _jobs(given.stdout)["eegformer_finetune"] == 1
    assert "pretrain/compound" in own.stdout and "pretrain/compound" not in given.stdout


@pytest.mark.parametrize("damage", ["family", "size", "weights", "corrupt", "missing"])
def test_a_bad_pretrained_folder_is_refused_before_any_job(tmp_path, damage):
    folder = tmp_path / "given"
    if damage == "family":
        create_model("dfc_gnn", preset="demo").save_pretrained(folder)
        expected = "holds a 'dfc_gnn' model"
    else:
        model = create_model("eegformer", preset="demo")
        model.save_pretrained(folder)
        expected = {
            "size": "feeds it n_chans=7",
            "weights": "do not match the 'eegformer' model",
            "corrupt": "not a readable safetensors file",
            "missing": "weights file is missing",
        }[damage]
        weights = folder / "model.safetensors"
        if damage == "weights":
            wider = create_model("eegformer", preset="demo", d_model=model.config.d_model * 2)
            wide = wider.save_pretrained(tmp_path / "wide")
            weights.write_bytes((wide / "model.safetensors").read_bytes())
        elif damage == "corrupt":
            weights.write_bytes(weights.read_bytes()[:40])
        elif damage == "missing":
            weights.unlink()
    config = _demo_config()
    config["eegformer"]["pretrained"] = str(folder)
    if damage == "size":
        config["eegformer"]["model"]["options"] = {"n_chans": 7}
    done = _dry_run(tmp_path / "run", config, "results/eegformer/abnormal/metrics.json")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "eegformer.pretrained" in output and str(folder) in output and expected in output
    assert not (tmp_path / "run" / "results").exists()
