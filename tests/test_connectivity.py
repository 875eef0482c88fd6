import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure

from neuroai.errors import ConfigError, DataError
from neuroai.fmri import KINDS, connectivity
from neuroai.fmri.group import summarize_connectivity
from neuroai.testing import connectivity_matrices, correlated_timeseries


@pytest.mark.parametrize("kind", KINDS)
def test_equals_nilearn(kind):
    ts = correlated_timeseries(53, 7, seed=1)
    ours = connectivity(ts, kind)
    theirs = ConnectivityMeasure(kind=kind).fit_transform([ts])[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    np.testing.assert_allclose(ours, ours.T)


def test_fisher_z():
    ts = correlated_timeseries(53, 7, seed=2)
    r = connectivity(ts, "correlation")
    z = connectivity(ts, "correlation", fisher_z=True)
    off = ~np.eye(7, dtype=bool)
    np.testing.assert_allclose(z[off], np.arctanh(r[off]))
    assert np.all(np.diag(z) == 0)
    with pytest.raises(ConfigError, match="fisher_z applies to correlations"):
        connectivity(ts, "covariance", fisher_z=True)


def test_bad_input():
    with pytest.raises(ConfigError, match="Did you mean 'correlation'"):
        connectivity(np.ones((10, 3)), "corelation")
    with pytest.raises(DataError, match="shape"):
        connectivity(np.ones(10))
    ts = correlated_timeseries(20, 3)
    ts[4, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        connectivity(ts)
    with pytest.raises(DataError, match="at least 3"):
        connectivity(np.ones((2, 3)))


def test_group_summary():
    mats = connectivity_matrices(5, 7, seed=0)
    runs = [f"sub-0{i}_task-rest" for i in range(5)]
    groups = {run: ("A" if i < 3 else "B") for i, run in enumerate(runs)}
    mean, summary = summarize_connectivity(list(mats), runs=runs, groups=groups, bins=10)
    np.testing.assert_allclose(mean, mats.mean(axis=0))
    assert summary["groups"]["A"]["n_runs"] == 3 and summary["groups"]["B"]["n_runs"] == 2
    upper = np.triu_indices(7, 1)
    assert summary["groups"]["A"]["mean_edge"] == pytest.approx(
        mats[:3][:, upper[0], upper[1]].mean()
    )
    assert sum(summary["groups"]["B"]["counts"]) == 2 * 21
    with pytest.raises(DataError, match="differ in shape"):
        summarize_connectivity([np.eye(3), np.eye(4)], runs=["a", "b"])


class CountingMatrices:
    """A sequence that makes each matrix when indexed and counts the reads."""

    def __init__(self, matrices):
        self.matrices = matrices
        self.reads = [0] * len(matrices)

    def __len__(self):
        return len(self.matrices)

    def __getitem__(self, i):
        self.reads[i] += 1
        return self.matrices[i].copy()


def test_streamed_group_summary_equals_the_stacked_computation():
    # Unequal groups, a shifted scale (so that a mean-of-means or a pooled variance with the
    # wrong cross term fails), 9 regions.
    rng = np.random.default_rng(3)
    mats = connectivity_matrices(11, 9, seed=5) * rng.uniform(0.5, 2.0, (11, 1, 1)) + 0.3
    runs = [f"sub-{i:02d}_task-rest" for i in range(11)]
    groups = {run: "ABC"[i % 3] if i < 8 else "A" for i, run in enumerate(runs)}
    lazy = CountingMatrices(list(mats))
    mean, summary = summarize_connectivity(lazy, runs=runs, groups=groups, bins=13)
    assert lazy.reads == [2] * 11  # two passes, one matrix at a time
    np.testing.assert_allclose(mean, mats.mean(axis=0), rtol=1e-12)
    upper = np.triu_indices(9, 1)
    edges = mats[:, upper[0], upper[1]]
    bin_edges = np.linspace(edges.min(), edges.max(), 14)
    np.testing.assert_allclose(summary["bin_edges"], bin_edges)
    for group in "ABC":
        index = [i for i, run in enumerate(runs) if groups[run] == group]
        values = edges[index].ravel()
        stats = summary["groups"][group]
        assert stats["n_runs"] == len(index)
        assert stats["mean_edge"] == pytest.approx(values.mean(), rel=1e-12)
        assert stats["sd_edge"] == pytest.approx(values.std(), rel=1e-10)
        assert stats["counts"] == np.histogram(values, bins=bin_edges)[0].tolist()
    assert summary["run_mean_edge"][runs[4]] == pytest.approx(edges[4].mean())


def test_real_run_equals_nilearn_and_is_exactly_symmetric():
    """The neuropycon run's 181 non-empty regions x 88 volumes, every per-run kind."""
    pytest.importorskip("neuropycon_data")
    import warnings

    from nilearn.maskers import NiftiLabelsMasker

    from neuroai.datasets.bold_demos import neuropycon_files

    files = neuropycon_files()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regions = NiftiLabelsMasker(str(files["atlas"]), background_label=-1).fit_transform(
            str(files["bold"])
        )
    ts = regions[:, regions.std(axis=0) > 0]
    assert ts.shape == (88, 181)
    for kind in KINDS:
        ours = connectivity(ts, kind)
        theirs = ConnectivityMeasure(kind=kind).fit_transform([ts])[0]
        scale = np.abs(theirs).max()  # covariance and precision are not unit-free
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * scale)
        assert np.array_equal(ours, ours.T)


def test_tangent_transform_takes_one_run_and_geometric_mean_is_nilearns():
    """nilearn's tangent transform refuses a single run; ours maps it as nilearn maps it
    within a group (a wrong whitening or log-map would fail)."""
    from neuroai.fmri import GroupConnectivity, geometric_mean

    runs = [correlated_timeseries(45 + 3 * i, 6, seed=20 + i) for i in range(5)]
    new = [correlated_timeseries(50, 6, seed=40), correlated_timeseries(57, 6, seed=41)]
    measure = GroupConnectivity("tangent").fit(runs)
    oracle = ConnectivityMeasure(kind="tangent").fit(runs)
    np.testing.assert_allclose(measure.transform(new[:1]), oracle.transform(new)[:1], atol=1e-10)
    covariances = ConnectivityMeasure(kind="covariance").fit_transform(runs)
    np.testing.assert_allclose(geometric_mean(covariances), oracle.mean_, rtol=0, atol=1e-12)
    singular = covariances.copy()
    singular[2] = np.outer(np.arange(6.0), np.arange(6.0))
    with pytest.raises(DataError, match="1 runs have a singular covariance"):
        geometric_mean(singular)


def test_matrix_helpers_are_nilearns():
    import nilearn.connectome

    import neuroai.fmri

    assert neuroai.fmri.cov_to_corr is nilearn.connectome.cov_to_corr
    assert neuroai.fmri.prec_to_partial is nilearn.connectome.prec_to_partial
