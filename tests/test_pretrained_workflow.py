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


# tablet, dfc_gnn and segmentation: section -> (family, dry-run target, own training rule,
# a downstream rule that takes the folder, the own model's path that leaves the DAG).
FAMILIES = {
    "tablet": (
        "tablet",
        "results/tablet/demo_volumes/metrics.json",
        "tablet_pretrain",
        "tablet_finetune",
        "pretrain/rope/encoder",
    ),
    "dfc_gnn": (
        "dfc_gnn",
        "results/dfc_gnn/demo_regions/metrics.json",
        "dfc_gnn_pretrain",
        "dfc_gnn_evaluate",
        "pretrained/history.tsv",
    ),
    "segmentation": (
        "dsd",
        "results/segmentation/demo_tissue/metrics.json",
        "segmentation_train",
        "segmentation_evaluate",
        "dsd/model",
    ),
}


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory):
    """A demo folder per family (TABLeT with the demo config's positional flag, rope)."""
    root = tmp_path_factory.mktemp("families")
    return {
        family: create_model(family, preset="demo").save_pretrained(root / family)
        for family in ("tablet", "dfc_gnn", "dsd")
    }


@pytest.mark.parametrize("section", list(FAMILIES))
def test_a_pretrained_folder_replaces_the_family_training(tmp_path, family_folders, section):
    family, target, own_rule, downstream, own_path = FAMILIES[section]
    config = _demo_config()
    own = _dry_run(tmp_path / "own", config, target)
    assert own.returncode == 0, own.stderr[-2000:]
    config[section]["pretrained"] = str(family_folders[family])
    given = _dry_run(tmp_path / "given", config, target)
    assert given.returncode == 0, given.stderr[-2000:]
    own_jobs, given_jobs = _jobs(own.stdout), _jobs(given.stdout)
    assert own_jobs.get(own_rule, 0) >= 1
    assert own_rule not in given_jobs
    assert given_jobs[downstream] == own_jobs[downstream] >= 1
    assert str(family_folders[family]) in given.stdout
    assert own_path in own.stdout and own_path not in given.stdout


def test_tablet_pretrained_folder_drops_the_ablation_pretraining_from_the_report(
    tmp_path, family_folders
):
    config = _demo_config()
    config["tablet"]["pretrained"] = str(family_folders["tablet"])
    done = _dry_run(tmp_path, config, "results/report")
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = _jobs(done.stdout)
    assert "tablet_pretrain" not in jobs and jobs["tablet_evaluate"] == 1
    # Pretraining folders are per split (split-<k>/pretrain/...): none of them is made.
    assert not re.search(r"tablet/demo_volumes/(split-\d+/)?pretrain/", done.stdout)
    assert "results/tablet/demo_volumes/split-0/" in done.stdout  # the paths tested exist


def test_segmentation_location_names_the_given_model_for_embed_and_predict(
    tmp_path, family_folders
):
    config = _demo_config()
    config["segmentation"]["pretrained"] = str(family_folders["dsd"])
    config["embed"]["models"] = {"given": "segmentation"}
    done = _dry_run(
        tmp_path / "given", config, "results/embeddings/given/demo_tissue/embeddings.parquet"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "segmentation_train" not in _jobs(done.stdout)
    assert str(family_folders["dsd"]) in done.stdout
    del config["segmentation"]["pretrained"]
    unset = _dry_run(
        tmp_path / "unset", config, "results/embeddings/given/demo_tissue/embeddings.parquet"
    )
    assert unset.returncode != 0
    assert "segmentation.pretrained, which is not set" in unset.stdout + unset.stderr


@pytest.mark.parametrize(
    ("section", "wrong"), [("tablet", "dsd"), ("dfc_gnn", "tablet"), ("segmentation", "dfc_gnn")]
)
def test_a_folder_of_another_family_is_refused_naming_the_folder(
    tmp_path, family_folders, section, wrong
):
    family, target, *_ = FAMILIES[section]
    config = _demo_config()
    config[section]["pretrained"] = str(family_folders[wrong])
    done = _dry_run(tmp_path, config, target)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"{section}.pretrained" in output and str(family_folders[wrong]) in output
    assert f"holds a {wrong!r} model" in output and f"as the {family!r} checkpoint" in output
    assert not (tmp_path / "results").exists()


def test_a_tablet_encoder_of_another_positional_flag_is_refused(tmp_path):
    folder = create_model("tablet", preset="demo", positional="none").save_pretrained(
        tmp_path / "m"
    )
    config = _demo_config()
    config["tablet"]["pretrained"] = str(folder)
    done = _dry_run(tmp_path / "run", config, "results/tablet/demo_volumes/metrics.json")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "tablet.pretrained" in output and "positional='none'" in output
    assert "positional='rope'" in output
