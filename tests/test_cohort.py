"""The cohort API: a Dask cluster gives exactly the sequential results."""

import numpy as np
import pytest

from neuroai.errors import DataError
from neuroai.fmri import Atlas, process_cohort
from neuroai.io import index_bold_runs
from neuroai.testing import bids_dataset, label_atlas


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    bids_dataset(root, subjects=["01", "02", "03"], runs=[1], n_volumes=61, shape=(6, 7, 8))
    return index_bold_runs(root), Atlas.from_labels(label_atlas((6, 7, 8), 4, seed=1))


def test_dask_equals_sequential(cohort):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    runs, atlas = cohort
    options = {
        "kind": "partial correlation",
        "dynamic": {"window": 30, "step": 5},
        "timeseries_options": {"low_pass": 0.1, "high_pass": 0.01},
    }
    sequential = process_cohort(runs, atlas, scheduler="sequential", **options)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:
            parallel = process_cohort(runs, atlas, scheduler=client, **options)
    assert list(parallel) == list(sequential) == list(runs)
    for key in runs:
        np.testing.assert_array_equal(parallel[key].timeseries, sequential[key].timeseries)
        np.testing.assert_array_equal(parallel[key].connectivity, sequential[key].connectivity)
        np.testing.assert_array_equal(parallel[key].dynamic, sequential[key].dynamic)
        assert parallel[key].dynamic.shape == ((61 - 30) // 5 + 1, 4, 4)
        assert parallel[key].tr == 2.0


def test_errors_name_the_run(cohort, tmp_path):
    runs, atlas = cohort
    key = next(iter(runs))
    broken = {key: runs[key]}
    far = Atlas.from_coordinates([(900.0, 0.0, 0.0)], radius=2)
    with pytest.raises(DataError, match="outside the image"):
        process_cohort(broken, far, scheduler="sequential")
    with pytest.raises(DataError, match="no run"):
        process_cohort({}, atlas, scheduler="sequential")


@pytest.mark.slow
def test_default_local_cluster_of_processes_equals_sequential(cohort):
    runs, atlas = cohort
    options = {"dynamic": {"window": 30, "step": 5}}
    sequential = process_cohort(runs, atlas, scheduler="sequential", **options)
    parallel = process_cohort(runs, atlas, n_workers=2, **options)  # a local cluster of processes
    for key in runs:
        np.testing.assert_array_equal(parallel[key].connectivity, sequential[key].connectivity)
        np.testing.assert_array_equal(parallel[key].dynamic, sequential[key].dynamic)
