"""The fMRI rules on tiny BIDS and fMRIPrep datasets (dry run by default; a real run is slow)."""

import nibabel as nib
import pytest
import yaml

from neuroai.io import load_json
from neuroai.testing import bids_dataset, fmriprep_dataset, label_atlas, report_text
from neuroai.testing.workflow import REPO, job_counts
from neuroai.testing.workflow import run_snakemake as snakemake

pytestmark = pytest.mark.integration
SHAPE = (6, 7, 8)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("fmri_workflow")
    fmriprep_dataset(work / "prep", subjects=["01", "02", "03"], n_volumes=61, shape=SHAPE)
    bids_dataset(work / "raw", subjects=["01"], sessions=["1", "2"], n_volumes=45, shape=SHAPE)
    for folder in ("prep", "raw"):
        nib.save(label_atlas(SHAPE, 5, seed=4), work / folder / "atlas.nii.gz")
    card = yaml.safe_load((REPO / "data_cards" / "demo_nitime_bold.yaml").read_text())
    card.update(name="synthetic_bold", nature="simulated", how_made="neuroai.testing generators")
    (work / "synthetic_bold.yaml").write_text(yaml.safe_dump(card))
    config = {
        "datasets": {
            "prep": {
                "card": str(work / "synthetic_bold.yaml"),
                "layout": "fmriprep",
                "root": str(work / "prep"),
                "spaces": ["MNI152NLin2009cAsym"],
                "atlas": {"labels_img": "atlas.nii.gz"},
                "confounds": {"strategy": ["motion", "wm_csf", "scrub"], "motion": "basic"},
            },
            "raw": {
                "card": str(work / "synthetic_bold.yaml"),
                "layout": "bids",
                "root": str(work / "raw"),
                "sessions": ["2"],
                "atlas": {"labels_img": "atlas.nii.gz"},
                "confounds": {"strategy": ["global_signal"]},
            },
        },
        "fmri_timeseries": {"datasets": ["prep", "raw"]},
        "static_fc": {"datasets": ["prep", "raw"]},
        "dynamic_fc": {"datasets": ["prep"], "window": 20, "step": 4},
        "report": {"title": "tiny fMRI report"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def test_dry_run_schedules_every_run(work):
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "-n")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts == {
        "all": 1,
        "fmri_timeseries": 4,
        "static_fc": 4,
        "group_fc": 2,
        "dynamic_fc": 3,
        "graph_dataset": 1,
        "path_list": 4,  # group_fc's 2 connectivity lists, graph_dataset's dfc and series lists
        "report_params": 1,
        "report": 1,
    }, counts


def test_config_errors_fail_before_any_job(work, tmp_path):
    config = yaml.safe_load((work / "config.yaml").read_text())
    del config["datasets"]["raw"]["atlas"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "--configfile", str(tmp_path / "c.yaml"), "-n")
    assert done.returncode != 0 and "'atlas' is a required property" in done.stdout + done.stderr
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["datasets"]["raw"]["subjects"] = ["../01"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "--configfile", str(tmp_path / "c.yaml"), "-n")
    assert done.returncode != 0 and "datasets.raw.subjects.0" in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_real_run_writes_graphs_qc_and_report(work):
    done = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = work / "results"
    report = report_text(results / "report")
    for text in (
        "fMRI run quality",
        "Dynamic functional connectivity and graphs",
        "framewise displacement",
    ):
        assert text in report, text
    ts = results / "fmri" / "raw" / "timeseries" / "sub-01" / "ses-2" / "func"
    assert (ts / "sub-01_ses-2_task-rest_run-1_timeseries.tsv").is_file()
    summary = load_json(results / "fmri" / "prep" / "graphs_summary.json", stage="graph_dataset")
    assert summary["n_runs"] == 3
    from neuroai.fmri import GraphWindowDataset

    assert len(GraphWindowDataset(results / "fmri" / "prep" / "graphs", target="site")) == 3
    again = snakemake(work, "--configfile", str(work / "config.yaml"), "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr
