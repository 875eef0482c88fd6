"""Batched static FC (static_fc.batch_size): the same files as one job per run, fewer jobs,
few batches re-run when subjects are added, and the same results on a Dask scheduler."""

import functools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.fmri.cohort import assign_batches, batch_count, batch_of
from neuroai.io import read_provenance
from neuroai.testing import dask_processes, region_timeseries_dataset
from neuroai.testing.workflow import job_counts, region_project, run_snakemake

snakemake = functools.partial(run_snakemake, timeout=600)
SUBJECTS = [f"{i:02d}" for i in range(9)]
BATCH = 4  # 9 runs -> 3 batches; a 10th run keeps 3
GROUP_FC = "results/fmri/mine/group_fc_summary.json"
DFC_GNN_LIST = "results/lists/dfc_gnn_finetune/static_fc/mine.txt"


def _keys(n):
    return [f"sub-{i:04d}_task-rest_atlas-test" for i in range(n)]


# ---- the assignment of runs to batches ----


def test_every_run_in_one_batch_of_bounded_size():
    keys = _keys(1000)
    batches = assign_batches(keys, 30)
    assert sorted(k for runs in batches.values() for k in runs) == sorted(keys)
    assert len(batches) == batch_count(1000, 30) == 34
    # Linear hashing: batches hold between about half and twice batch_size runs.
    sizes = [len(runs) for runs in batches.values()]
    assert 10 <= min(sizes) and max(sizes) <= 75, sizes
    # Within a batch, the runs keep the cohort's order (a batch's command line is stable).
    for runs in batches.values():
        assert runs == sorted(runs)


def test_adding_a_run_changes_few_batches():
    # Adding runs one at a time, in no order, from 1 to 300 (batch size 7): a run joins
    # one batch, and when the number of batches grows by one, one batch is split in two.
    # A plain hash % n_batches, or chunks of the sorted runs, would change most batches.
    keys = list(np.random.default_rng(0).permutation(_keys(300)))
    before = {}
    for n in range(1, len(keys) + 1):
        after = assign_batches(keys[:n], 7)
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        grew = batch_count(n, 7) != batch_count(n - 1, 7) if n > 1 else False
        assert len(changed) <= (3 if grew else 1), (n, sorted(changed))
        before = after


def test_batch_of_is_the_same_in_every_process():
    # Pinned values: a salted hash (Python's hash()) or a changed rule would move every
    # run of an existing project to another batch, and re-run them all.
    assert [batch_of(k, 6) for k in _keys(10)] == [3, 3, 5, 1, 1, 5, 2, 1, 2, 1]
    assert batch_of("sub-01_task-rest_atlas-AAL2", 1) == 0
    with pytest.raises(ConfigError, match="batch_size must be a positive"):
        batch_count(10, 0)


# ---- the workflow, one job per run against one job per batch ----


def _project(folder, **static_fc):
    region_timeseries_dataset(
        folder / "data", subjects=SUBJECTS, n_timepoints=37, n_regions=6, sites=["A", "B"]
    )
    return region_project(folder, root="data", static_fc={"datasets": ["mine"], **static_fc})


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """The same 9 runs (relative to each project) run per run and in batches of 4."""
    root = tmp_path_factory.mktemp("static_fc_batches")
    done = {}
    for name, options in (("per_run", {}), ("batched", {"batch_size": BATCH})):
        config = _project(root / name, **options)
        targets = [GROUP_FC, DFC_GNN_LIST]
        run = snakemake(root / name, "--configfile", str(config), "--cores", "2", *targets)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        done[name] = root / name
    return done


def _run_files(project):
    """Run key -> the run's connectivity file, wherever the mode put it."""
    files = (project / "results/fmri/mine/static_fc").rglob("*_connectivity.npy")
    return {p.name[: -len("_connectivity.npy")]: p for p in files}


def _batch_folders(folder):
    folders = [p for p in folder.glob("batch-*") if p.is_dir()]
    assert folders, f"no batch folder in {folder}"
    return folders


def _same_run_files(a, b):
    assert sorted(a) == sorted(b) and len(a) == len(SUBJECTS)
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
        ra, rb = read_provenance(a[key]), read_provenance(b[key])
        for field in ("stage", "params", "inputs", "output", "extra"):
            assert ra[field] == rb[field], (key, field)


@pytest.mark.integration
def test_batches_write_the_same_files_as_one_job_per_run(projects):
    per_run, batched = projects["per_run"], projects["batched"]
    files = _run_files(batched)
    assert {p.parent.name for p in files.values()} == {
        f"batch-{k}" for k in assign_batches(sorted(files), BATCH)
    }
    _same_run_files(_run_files(per_run), files)
    # The group FC reads them in the runs' order in both modes: the same bytes.
    for name in ("group_fc_mean.npy", "group_fc_summary.json"):
        a = (per_run / "results/fmri/mine" / name).read_bytes()
        assert a == (batched / "results/fmri/mine" / name).read_bytes(), name
    # Each batch folder has a record naming its runs.
    for folder in _batch_folders(batched / "results/fmri/mine/static_fc"):
        record = read_provenance(folder)
        assert record["stage"] == "static_fc_batch" and record["extra"]["scheduler"] == "sequential"
        assert sorted(record["extra"]["runs"]) == sorted(
            p.name[: -len("_connectivity.npy")] for p in folder.glob("*_connectivity.npy")
        )


@pytest.mark.integration
def test_list_files_name_the_runs_inside_the_batches(projects):
    from neuroai.pipelines.dfc_gnn_finetune import _static_fc_by_run

    batched = projects["batched"]
    files = _run_files(batched)
    keys = sorted(files)  # the runs' order (the dataset index is sorted by key)
    for listed in ("results/lists/group_fc/fc/mine.txt", DFC_GNN_LIST):
        paths = (batched / listed).read_text().splitlines()
        assert [batched / p for p in paths] == [files[k] for k in keys], paths
    # dfc_gnn_finetune's static-FC baseline finds every run's matrix in its list.
    found = _static_fc_by_run([batched / p for p in paths], keys)
    assert sorted(found) == keys


@pytest.mark.integration
def test_a_dask_address_in_the_config_reruns_no_static_fc(projects):
    # Where runs are computed is a resource of the job, not a param: it changes no result.
    # (The report, which shows the whole config, would re-run: it is not the target here.)
    batched = projects["batched"]
    done = snakemake(
        batched,
        "--configfile",
        str(batched / "config.yaml"),
        "-n",
        GROUP_FC,
        "--config",
        "dask={'scheduler': 'tcp://127.0.0.1:9'}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout[-2000:]


@pytest.mark.integration
def test_job_counts_follow_the_batches_not_the_runs(tmp_path):
    subjects = [f"{i:03d}" for i in range(40)]
    region_timeseries_dataset(tmp_path / "data", subjects=subjects, n_timepoints=10, n_regions=3)
    keys = [f"sub-{s}_task-rest_atlas-test" for s in subjects]
    for batch_size, expected in ((0, None), (6, assign_batches(keys, 6)), (1000, {0: keys})):
        static_fc = {"datasets": ["mine"], "batch_size": batch_size}
        config = region_project(tmp_path, root="data", static_fc=static_fc)
        done = snakemake(tmp_path, "--configfile", str(config), "-n", "-p")
        assert done.returncode == 0, done.stderr[-2000:]
        counts = job_counts(done.stdout + done.stderr)
        if expected is None:
            assert counts["static_fc"] == 40 and "static_fc_batch" not in counts
            continue
        assert "static_fc" not in counts, counts
        assert counts["static_fc_batch"] == len(expected) <= math.ceil(40 / batch_size)
        assert counts["group_fc"] == counts["path_list"] == 1
        # A batch's runs go by a list file (one local job per batch writes it), so its
        # command line does not grow with the batch.
        assert counts["batch_list"] == len(expected)
        for batch in expected:
            line = next(x for x in done.stdout.splitlines() if f"static_fc/batch-{batch} " in x)
            listed = f"--timeseries @results/lists/batches/static_fc/mine/batch-{batch}.txt "
            assert listed in line and "_timeseries.tsv" not in line and "--scheduler= " in line


@pytest.mark.integration
def test_adding_a_subject_reruns_its_batch_only(projects, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(projects["batched"], project, symlinks=True)
    extra = tmp_path / "extra"
    region_timeseries_dataset(extra, subjects=["99"], n_timepoints=37, n_regions=6, seed=5)
    shutil.copytree(extra / "sub-99", project / "data" / "sub-99")
    key = "sub-99_task-rest_atlas-test"
    keys = [f"sub-{s}_task-rest_atlas-test" for s in SUBJECTS]
    assert batch_count(10, BATCH) == batch_count(9, BATCH)  # the same batches, one run more
    done = snakemake(project, "--configfile", str(project / "config.yaml"), "-n", GROUP_FC)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts == {"batch_list": 1, "static_fc_batch": 1, "path_list": 1, "group_fc": 1}, counts
    outputs = [x.split()[-1] for x in done.stdout.splitlines() if x.strip().startswith("output:")]
    batch = batch_of(key, batch_count(10, BATCH))
    assert [x for x in outputs if "/batch-" in x] == [
        f"results/lists/batches/static_fc/mine/batch-{batch}.txt",
        f"results/fmri/mine/static_fc/batch-{batch}",
    ]
    assert key in assign_batches([*keys, key], BATCH)[batch]


# ---- a batch that fails, and Dask ----


def _truncated_batch(tmp_path):
    runs = region_timeseries_dataset(tmp_path / "data", subjects=["01", "02", "03"])
    paths = list(runs.values())
    text = paths[1].read_text()
    paths[1].write_text(text[: len(text) // 2 + 3])  # cut inside a row
    return paths


def _no_batch_left(folder):
    """Nothing in the batch's parent folder: no batch, no record, no temporary."""
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []


def test_a_truncated_run_fails_the_batch_and_leaves_no_folder(tmp_path):
    from neuroai.pipelines import static_fc_batch

    paths = _truncated_batch(tmp_path)
    out = tmp_path / "fc"
    with pytest.raises(DataError, match=f"{paths[1].name}.*not numbers"):
        static_fc_batch.run(paths, out / "batch-0", scheduler="")
    _no_batch_left(out)


def test_two_runs_with_one_name_are_refused(tmp_path):
    from neuroai.pipelines import static_fc_batch

    a = region_timeseries_dataset(tmp_path / "a", subjects=["01"])
    b = region_timeseries_dataset(tmp_path / "b", subjects=["01"])
    with pytest.raises(DataError, match="Two runs of the batch are named sub-01"):
        static_fc_batch.run([*a.values(), *b.values()], tmp_path / "fc" / "batch-0")
    assert not (tmp_path / "fc" / "batch-0").exists()


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A ``dask scheduler`` and one ``dask worker`` started as separate processes on
    localhost, in a folder of their own (so relative paths would not resolve there)."""
    pytest.importorskip("dask.distributed")
    with dask_processes(tmp_path_factory.mktemp("dask"), require_task="one_thread") as address:
        yield address


@pytest.mark.integration
@pytest.mark.slow
def test_the_workflow_on_a_dask_scheduler_gives_the_sequential_files(
    projects, dask_scheduler, tmp_path
):
    config = _project(tmp_path, batch_size=BATCH)
    run = snakemake(
        tmp_path,
        "--configfile",
        str(config),
        "--cores",
        "2",
        GROUP_FC,
        "--config",
        f"dask={{'scheduler': '{dask_scheduler}'}}",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _same_run_files(_run_files(projects["batched"]), _run_files(tmp_path))
    for folder in _batch_folders(tmp_path / "results/fmri/mine/static_fc"):
        assert read_provenance(folder)["extra"]["scheduler"] == dask_scheduler
    mean = "results/fmri/mine/group_fc_mean.npy"
    assert (tmp_path / mean).read_bytes() == (projects["batched"] / mean).read_bytes()


@pytest.mark.integration
@pytest.mark.slow
def test_a_truncated_run_on_dask_fails_the_batch_naming_the_file(
    dask_scheduler, tmp_path, monkeypatch
):
    from neuroai.pipelines import static_fc_batch

    paths = _truncated_batch(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths, as Snakemake gives them
    relative = [p.relative_to(tmp_path) for p in paths]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_scheduler)  # no scheduler argument
    with pytest.raises(DataError, match=f"{paths[1].name}.*not numbers"):
        static_fc_batch.run(relative, Path("fc") / "batch-0")
    _no_batch_left(tmp_path / "fc")
    good = [relative[0], relative[2]]
    out = static_fc_batch.run(good, Path("fc") / "batch-0")
    assert read_provenance(out)["extra"]["scheduler"] == dask_scheduler
    record = read_provenance(out / "sub-01_task-rest_atlas-test_connectivity.npy")
    assert record["inputs"][0]["path"] == str(relative[0])  # as given, not made absolute
    np.testing.assert_array_equal(
        np.load(out / "sub-03_task-rest_atlas-test_connectivity.npy"),
        np.load(
            static_fc_batch.run(good[1:], Path("seq") / "b", scheduler="sequential")
            / "sub-03_task-rest_atlas-test_connectivity.npy"
        ),
    )


def test_config_refuses_a_bad_batch_size_and_scheduler(tmp_path):
    region_timeseries_dataset(tmp_path / "data", subjects=["01"], n_timepoints=10)
    bad = {
        "static_fc.batch_size": (
            {"static_fc": {"datasets": ["mine"], "batch_size": -1}},
            "minimum",
        ),
        "dask.scheduler": ({"dask": {"scheduler": "host:8786"}}, "tcp"),
    }
    for key, (sections, expected) in bad.items():
        config = region_project(tmp_path, root="data", **sections)
        done = snakemake(tmp_path, "--configfile", str(config), "-n")
        message = done.stdout + done.stderr
        assert done.returncode != 0 and f"Config key '{key}'" in message, message[-2000:]
        assert expected in message.split(f"Config key '{key}'")[1].splitlines()[0]


def test_an_unreachable_scheduler_is_named_and_leaves_no_folder(tmp_path):
    dask = pytest.importorskip("dask")
    from neuroai.pipelines import static_fc_batch

    runs = region_timeseries_dataset(tmp_path / "data", subjects=["01"])
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ConfigError, match="No Dask scheduler answers at 'tcp://127"):
            static_fc_batch.run(
                list(runs.values()), tmp_path / "fc" / "batch-0", scheduler="tcp://127.0.0.1:9"
            )
    _no_batch_left(tmp_path / "fc")
