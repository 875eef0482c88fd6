"""The workflow with batched static and dynamic FC and on_error: skip: a corrupt run is
listed in the dataset's failures table and left out of group FC and the graph dataset,
which equal those of the workflow run on the good runs only; with on_error: fail
the run stops, naming the file, with no batch folder of that batch left."""

import functools
import math

import numpy as np
import pytest

from neuroai.fmri.cohort import assign_batches, batch_of
from neuroai.testing import region_timeseries_dataset
from neuroai.testing.workflow import job_counts, region_project, run_snakemake

snakemake = functools.partial(run_snakemake, timeout=600)
SUBJECTS = ["01", "02", "03", "04", "05", "06", "07"]
BAD = "sub-04_task-rest_atlas-test"
FC = "results/fmri/mine/group_fc_mean.npy"
GRAPHS = "results/fmri/mine/graphs_summary.json"
FAILURES = "results/failures/mine.tsv"
DYNAMIC = {"window": 10, "step": 4}


def _data(folder):
    runs = region_timeseries_dataset(
        folder / "data", subjects=SUBJECTS, n_timepoints=29, n_regions=5, sites=["A", "B"]
    )
    lines = runs[BAD].read_text().splitlines()
    lines[3] = "\t".join(["nan?"] + lines[3].split("\t")[1:])  # a value that is no number
    runs[BAD].write_text("\n".join(lines) + "\n")


def _config(folder, *, batch, subjects=None):
    config = region_project(
        folder,
        root="data",
        static_fc={"datasets": ["mine"], **batch},
        dynamic_fc={"datasets": ["mine"], **DYNAMIC, **batch},
        graph_dataset={"density": 0.3},
    )
    if subjects is not None:
        import yaml

        values = yaml.safe_load(config.read_text())
        values["datasets"]["mine"]["subjects"] = subjects
        config.write_text(yaml.safe_dump(values))
    return config


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort_batches")
    done = {}
    for name, options in (
        ("skip", {"batch": {"batch_size": 3, "on_error": "skip"}}),
        # The oracle: the good runs only, in one batch (a batch writes what one job per
        # run writes: tests/test_cohort_batches.py).
        (
            "good_only",
            {"batch": {"batch_size": 50}, "subjects": [s for s in SUBJECTS if s != "04"]},
        ),
    ):
        _data(root / name)
        config = _config(root / name, **options)
        run = snakemake(root / name, "--configfile", str(config), "--cores", "2", FC, GRAPHS)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        done[name] = root / name
    return done


@pytest.mark.integration
def test_skip_lists_the_corrupt_run_and_leaves_it_out_downstream(projects):
    skip, oracle = projects["skip"], projects["good_only"]
    rows = [line.split("\t") for line in (skip / FAILURES).read_text().splitlines()]
    assert rows[0] == ["run", "stage", "error"]
    assert sorted((r[0], r[1]) for r in rows[1:]) == [(BAD, "dynamic_fc"), (BAD, "static_fc")]
    assert all(f"{BAD}_timeseries.tsv" in r[2] for r in rows[1:]), rows
    for listed in ("group_fc/fc", "graph_dataset/dfc", "graph_dataset/timeseries"):
        paths = (skip / f"results/lists/{listed}/mine.txt").read_text().splitlines()
        assert len(paths) == len(SUBJECTS) - 1 and not any(BAD in p for p in paths), listed
    # Group FC and the graph dataset are those of the per-run workflow without the run.
    assert (skip / FC).read_bytes() == (oracle / FC).read_bytes()
    arrays = sorted(p.name for p in (oracle / "results/fmri/mine/graphs").glob("*.npy"))
    assert arrays == sorted(p.name for p in (skip / "results/fmri/mine/graphs").glob("*.npy"))
    assert arrays, "no array in the graph dataset"
    for name in arrays:
        a, b = (p / "results/fmri/mine/graphs" / name for p in (skip, oracle))
        np.testing.assert_array_equal(np.load(a), np.load(b), err_msg=name)
    assert (skip / "results/fmri/mine/dfc_variability.npy").read_bytes() == (
        oracle / "results/fmri/mine/dfc_variability.npy"
    ).read_bytes()


@pytest.mark.integration
def test_jobs_are_batches_and_a_rerun_does_nothing(projects):
    skip = projects["skip"]
    done = snakemake(skip, "--configfile", str(skip / "config.yaml"), "-n", FC, GRAPHS)
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr
    # From scratch: one job per batch (and one local list job per batch), not per run.
    fresh = snakemake(
        skip, "--configfile", str(skip / "config.yaml"), "-n", "-F", FC, GRAPHS, FAILURES
    )
    counts = job_counts(fresh.stdout + fresh.stderr)
    batches = len(assign_batches([f"sub-{s}_task-rest_atlas-test" for s in SUBJECTS], 3))
    assert counts["static_fc_batch"] == counts["dynamic_fc_batch"] == batches
    assert batches <= math.ceil(len(SUBJECTS) / 3) and "static_fc" not in counts
    assert counts["batch_list"] == 2 * batches and counts["batch_failures"] == 1


@pytest.mark.integration
def test_fail_stops_naming_the_file_and_leaves_no_batch(tmp_path):
    _data(tmp_path)
    config = _config(tmp_path, batch={"batch_size": 3, "on_error": "fail"})
    run = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", "--keep-going", FC)
    assert run.returncode != 0
    assert f"Run {BAD} failed" in run.stdout + run.stderr and f"{BAD}_timeseries.tsv" in (
        run.stdout + run.stderr
    )
    keys = [f"sub-{s}_task-rest_atlas-test" for s in SUBJECTS]
    bad_batch = batch_of(BAD, len(assign_batches(keys, 3)))
    folder = tmp_path / "results/fmri/mine/static_fc"
    assert not (folder / f"batch-{bad_batch}").exists()
    assert not (tmp_path / FC).exists() and not (tmp_path / FAILURES).exists()
    # The other batches completed (--keep-going), each with its record.
    others = [p for p in folder.glob("batch-*") if p.is_dir()]
    assert others and all((p.parent / f"{p.name}.prov.json").is_file() for p in others)


@pytest.mark.integration
def test_4d_runs_in_batches_a_truncated_image_is_left_out_everywhere(tmp_path):
    import nibabel as nib
    import yaml

    from neuroai.testing import bids_dataset, label_atlas

    shape = (6, 7, 8)
    bids_dataset(tmp_path / "bids", subjects=["01", "02", "03"], n_volumes=45, shape=shape)
    nib.save(label_atlas(shape, 4, seed=2), tmp_path / "bids" / "atlas.nii.gz")
    image = tmp_path / "bids" / "sub-02" / "func" / "sub-02_task-rest_run-1_bold.nii.gz"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    config = {
        "datasets": {
            "mine": {
                "card": "data_cards/demo_nitime_bold.yaml",
                "layout": "bids",
                "root": "bids",
                "atlas": {"labels_img": "atlas.nii.gz"},
                "confounds": {"strategy": ["global_signal"]},
            }
        },
        # fmri_timeseries leaves the run out (skip); static FC, on_error fail, leaves it
        # out too: its input was never made.
        "fmri_timeseries": {"datasets": ["mine"], "batch_size": 2, "on_error": "skip"},
        "static_fc": {"datasets": ["mine"], "batch_size": 2},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(
        tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", FC, FAILURES
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    bad = "sub-02_task-rest_run-1"
    rows = [line.split("\t") for line in (tmp_path / FAILURES).read_text().splitlines()[1:]]
    assert sorted((r[0], r[1]) for r in rows) == [(bad, "fmri_timeseries"), (bad, "static_fc")]
    assert "failed in fmri_timeseries" in next(r[2] for r in rows if r[1] == "static_fc")
    listed = (tmp_path / "results/lists/group_fc/fc/mine.txt").read_text().splitlines()
    assert len(listed) == 2 and not any(bad in p for p in listed)
    series = list((tmp_path / "results/fmri/mine/timeseries").glob("batch-*/sub-*/func/*.tsv"))
    assert sorted(p.name for p in series) == [
        "sub-01_task-rest_run-1_timeseries.tsv",
        "sub-03_task-rest_run-1_timeseries.tsv",
    ]
    # The report shows the QC of the runs that were made and names the one left out.
    report = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "--cores", "2")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    page = (tmp_path / "results/report/dataset-mine.html").read_text(encoding="utf-8")
    assert "Runs left out: mine" in page and bad in page
    assert "sub-01_task-rest_run-1" in page and "sub-03_task-rest_run-1" in page
    # Per-run static FC cannot read time series in batch folders: refused at parse time.
    config["static_fc"] = {"datasets": ["mine"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    refused = snakemake(tmp_path, "--configfile", str(tmp_path / "config.yaml"), "-n", FC)
    assert refused.returncode != 0
    assert "set static_fc.batch_size too" in refused.stdout + refused.stderr


@pytest.mark.integration
def test_eeg_in_batches_a_truncated_edf_is_named_in_the_store_summary(tmp_path):
    import json

    import yaml

    pytest.importorskip("tvb_data", reason="the EEG demo needs tvb-data: pip install -e '.[demo]'")
    config = {
        "datasets": {
            "tiny_eeg": {
                "card": "data_cards/demo_eeg_simulated.yaml",
                "layout": "tuh",
                "build": {"builder": "eeg_simulation", "n_recordings": 4, "duration_s": 30},
            }
        },
        "static_fc": {"datasets": []},
        "eeg": {
            "datasets": ["tiny_eeg"],
            "window_s": 6,
            "stride_s": 6,
            "patch_len": 30,
            "batch_size": 2,
            "on_error": "skip",
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    args = ("--configfile", str(tmp_path / "config.yaml"), "--cores", "2")
    built = snakemake(tmp_path, *args, "results/datasets/tiny_eeg/recordings.tsv")
    assert built.returncode == 0, built.stderr[-3000:]
    edfs = sorted((tmp_path / "results/datasets/tiny_eeg").rglob("*.edf"))
    assert len(edfs) == 4
    edfs[1].write_bytes(edfs[1].read_bytes()[:-3000])
    summary = "results/eeg/tiny_eeg/summary.json"
    done = snakemake(tmp_path, *args, summary)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["eeg_recording_batch"] <= 2 and "eeg_recording" not in counts
    assert counts["eeg_store_batches"] == 1 and "eeg_store" not in counts
    failed = json.loads((tmp_path / summary).read_text())["failed"]
    assert list(failed) == [edfs[1].stem] and "truncated" in failed[edfs[1].stem]
    rows = (tmp_path / FAILURES.replace("mine", "tiny_eeg")).read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"{edfs[1].stem}\teeg_recording\t")
    from neuroai.eeg import open_patch_store

    store = open_patch_store(tmp_path / "results/eeg/tiny_eeg/store")
    assert sorted(set(store.index["recording"])) == sorted(p.stem for p in edfs if p != edfs[1])
    # The batch folders were temporary: removed once the store was built (their records,
    # like those of per-recording stores, stay).
    recordings = tmp_path / "results/eeg/tiny_eeg/recordings"
    assert not [p for p in recordings.glob("batch-*") if p.is_dir()]


@pytest.mark.integration
def test_the_report_lists_the_runs_left_out_on_the_datasets_page(projects):
    skip = projects["skip"]
    done = snakemake(skip, "--configfile", str(skip / "config.yaml"), "--cores", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    page = (skip / "results/report/dataset-mine.html").read_text(encoding="utf-8")
    assert "Runs left out: mine" in page and BAD in page
    assert "left out of everything downstream (on_error: skip)" in page
    assert 'href="dataset-mine.html"' in (skip / "results/report/index.html").read_text()
