"""The segmentation rules end to end on a tiny config (demo builder, 3 variants, evaluation,
embed, predict, report), a no-op second run, and the srun launch on the SLURM profile."""

import functools

import pytest
import yaml

from neuroai.io import load_json
from neuroai.testing import report_text
from neuroai.testing.workflow import REPO, assert_launched_under_srun, run_snakemake

# The end-to-end run is slow; the dry-run checks of the SLURM launch are not.
pytestmark = pytest.mark.integration
snakemake = functools.partial(run_snakemake, timeout=900)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("segmentation_workflow")
    config = {
        "datasets": {
            "tissue": {
                "card": "data_cards/demo_mni152_tissue.yaml",
                "layout": "decathlon",
                "build": {"builder": "mni152_tissue", "n_train": 3, "n_test": 1},
            }
        },
        "static_fc": {"datasets": []},
        "segmentation": {
            "datasets": ["tissue"],
            "model": {
                "options": {
                    "roi_size": [16, 16, 16],
                    "backbone_options": {
                        "channels": [4, 8, 16],
                        "strides": [2, 2],
                        "num_res_units": 0,
                    },
                }
            },
            "training": {
                "max_steps": 2,
                "batch_size": 1,
                "val_every_steps": 2,
                "warmup_steps": 0,
                "log_every_steps": 1,
            },
            "data": {"spacing": [4.0, 4.0, 4.0], "num_samples": 1, "foreground_threshold": 0.2},
            "split": {"n_val": 1},
            "evaluation": {"n_bootstrap": 100},
        },
        # Config files merge into the default: override the demo's model entry too.
        "embed": {"models": {"tissue_dsd": "segmentation/tissue/dsd"}, "datasets": ["tissue"]},
        "predict": {"models": {"tissue_dsd": "segmentation/tissue/dsd"}, "datasets": ["tissue"]},
        "report": {"title": "segmentation test"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


@pytest.mark.slow
def test_rules_write_metrics_embeddings_predictions_and_the_report(tiny):
    results = tiny / "results"
    metrics = load_json(
        results / "segmentation" / "tissue" / "metrics.json", stage="segmentation_evaluate"
    )
    assert set(metrics["models"]) == {"plain", "deep_supervision", "dsd"} and metrics["split"][
        "test"
    ] == ["tissue_004"]
    from neuroai.evaluation import read_embeddings

    table = read_embeddings(results / "embeddings" / "tissue_dsd" / "tissue" / "embeddings.parquet")
    assert list(table["subject"]) == ["tissue_004"] and list(table["level"]) == ["case"]
    assert (
        results / "predictions" / "tissue_dsd" / "tissue" / "tissue_004_prediction.nii.gz"
    ).is_file()
    report = report_text(results / "report")
    for text in (
        "Segmentation: tissue",
        "demo_mni152_tissue",
        "semi-synthetic",
        "Embeddings and predictions",
    ):
        assert text in report, text
    for rule in ("demo_tissue", "segmentation_train", "segmentation_evaluate", "embed", "predict"):
        assert list((results / "benchmarks" / rule).rglob("*.tsv")), rule


@pytest.mark.slow
def test_second_run_does_nothing(tiny):
    done = snakemake(tiny, "--configfile", str(tiny / "config.yaml"), "--cores", "2")
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr


def test_slurm_profile_launches_training_under_srun(tmp_path):
    done = snakemake(
        tmp_path,
        "--profile",
        str(REPO / "workflows" / "profiles" / "slurm"),
        "-n",
        "-p",
        "--forceall",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The job asks for one GPU and a loader's CPUs; the jobstep starts it under srun.
    assert_launched_under_srun(done.stdout + done.stderr, ("segmentation_train",))
    lines = (done.stdout + done.stderr).splitlines()
    assert any("cpus_per_task=8" in line and "launch=, gpu=1, nodes=1" in line for line in lines)
