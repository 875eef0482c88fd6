"""Dynamic FC against per-window formulas, and the tangent space against nilearn."""

import logging

import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure

from neuroai.errors import ConfigError, DataError
from neuroai.fmri import (
    GroupConnectivity,
    connectivity,
    connectivity_variability,
    dynamic_connectivity,
    tangent_connectivity,
    window_starts,
)
from neuroai.fmri import dynamic as dynamic_module
from neuroai.testing import correlated_timeseries

T, R, WINDOW, STEP = 97, 7, 20, 3


@pytest.fixture(scope="module")
def ts():
    return correlated_timeseries(T, R, seed=3)


def per_window(ts, function):
    return np.stack([function(ts[s : s + WINDOW]) for s in window_starts(T, WINDOW, STEP)])


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    if request.param == "compiled":
        pytest.importorskip("numba")
        monkeypatch.setattr(dynamic_module, "KERNEL_MIN_ENTRIES", 0)
    else:
        monkeypatch.setattr(dynamic_module, "HAS_NUMBA", False)
    return request.param


def test_correlation_and_covariance_equal_numpy_per_window(ts, path):
    dfc = dynamic_connectivity(ts, WINDOW, STEP, resync=5)
    assert dfc.shape == ((T - WINDOW) // STEP + 1, R, R)
    np.testing.assert_allclose(dfc, per_window(ts, lambda w: np.corrcoef(w.T)), atol=1e-12)
    cov = dynamic_connectivity(ts, WINDOW, STEP, "covariance")
    np.testing.assert_allclose(cov, per_window(ts, lambda w: np.cov(w.T)), rtol=1e-10)
    z = dynamic_connectivity(ts, WINDOW, STEP, fisher_z=True, dtype=np.float32)
    off = ~np.eye(R, dtype=bool)
    assert z.dtype == np.float32 and np.all(z[:, np.eye(R, dtype=bool)] == 0)
    np.testing.assert_allclose(z[:, off], np.arctanh(dfc[:, off]), atol=1e-5)


@pytest.mark.parametrize("kind", ["correlation", "partial correlation", "precision", "covariance"])
def test_ledoit_wolf_windows_equal_static_connectivity(ts, kind):
    dfc = dynamic_connectivity(ts, WINDOW, STEP, kind, estimator="ledoit_wolf")
    np.testing.assert_allclose(dfc, per_window(ts, lambda w: connectivity(w, kind)), atol=1e-12)


def test_stagin_defaults():
    ts = correlated_timeseries(160, 5, seed=1)
    assert dynamic_connectivity(ts).shape == ((160 - 50) // 3 + 1, 5, 5)


def test_constant_region_gives_zero_and_a_warning(ts, path, caplog):
    flat = ts.copy()
    flat[10:40, 2] = 5.0  # windows starting at 12, 15, 18 see a constant region
    with caplog.at_level(logging.WARNING, logger="neuroai"):
        dfc = dynamic_connectivity(flat, WINDOW, STEP)
    assert np.isfinite(dfc).all()
    assert np.all(dfc[4, 2] == 0) and np.all(dfc[4, :, 2] == 0)
    assert dfc[0, 2, 2] == 1.0
    assert "3 of 26 windows have regions with zero variance" in caplog.text


def test_bad_input(ts):
    with pytest.raises(DataError, match="fewer than one window of 50"):
        dynamic_connectivity(ts[:40])
    with pytest.raises(ConfigError, match="estimator='ledoit_wolf'"):
        dynamic_connectivity(ts, WINDOW, STEP, "precision", estimator="empirical")
    with pytest.raises(ConfigError, match="fisher_z applies to correlations"):
        dynamic_connectivity(ts, WINDOW, STEP, "covariance", fisher_z=True)
    with pytest.raises(ConfigError, match="step must be a positive integer"):
        dynamic_connectivity(ts, WINDOW, 0)
    bad = ts.copy()
    bad[5, 1] = np.inf
    with pytest.raises(DataError, match="NaN or Inf"):
        dynamic_connectivity(bad, WINDOW, STEP)


def test_variability_is_the_sd_over_windows(ts):
    dfc = dynamic_connectivity(ts, WINDOW, STEP)
    np.testing.assert_allclose(connectivity_variability(dfc), dfc.std(axis=0))


def test_tangent_equals_nilearn():
    runs = [correlated_timeseries(53 + 4 * i, R, seed=i) for i in range(5)]
    measure = GroupConnectivity("tangent")
    ours = measure.fit_transform(runs)
    oracle = ConnectivityMeasure(kind="tangent")
    theirs = oracle.fit_transform(runs)
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    np.testing.assert_allclose(measure.mean_, oracle.mean_, atol=1e-10)
    new = [correlated_timeseries(60, R, seed=9), correlated_timeseries(61, R, seed=10)]
    np.testing.assert_allclose(
        tangent_connectivity(new, reference=measure.mean_), oracle.transform(new), atol=1e-10
    )
    with pytest.raises(DataError, match="at least 2 runs"):
        GroupConnectivity("tangent").fit_transform(runs[:1])
    with pytest.raises(ConfigError, match="Did you mean 'tangent'"):
        GroupConnectivity("tangnet").fit(runs)


def test_group_connectivity_is_a_scikit_learn_transformer():
    """clone, get/set_params, Pipeline, the default of ConnectivityMeasure, and the
    applicable subset of sklearn's estimator checks.

    The full ``check_estimator`` does not apply: its checks feed 2D arrays of
    samples x features, while the input here is a list of (time x regions) runs,
    as for nilearn's ConnectivityMeasure (which nilearn also exempts).
    """
    import inspect

    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    assert (
        inspect.signature(GroupConnectivity).parameters["kind"].default
        == inspect.signature(ConnectivityMeasure).parameters["kind"].default
    )
    for check in (
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ):
        check("GroupConnectivity", GroupConnectivity("tangent"))
    runs = [correlated_timeseries(40 + 3 * i, R, seed=i) for i in range(4)]
    measure = GroupConnectivity().set_params(kind="correlation")
    copy = clone(measure)
    assert copy.get_params() == {"kind": "correlation"} and not hasattr(copy, "mean_")
    with pytest.raises(NotFittedError):
        copy.transform(runs)
    lower = np.tril_indices(R, k=-1)  # nilearn.connectome.sym_matrix_to_vec order
    pipe = make_pipeline(copy, FunctionTransformer(lambda m: m[:, lower[0], lower[1]]))
    theirs = ConnectivityMeasure(kind="correlation", vectorize=True, discard_diagonal=True)
    np.testing.assert_allclose(pipe.fit_transform(runs), theirs.fit_transform(runs), atol=1e-12)
    assert copy.n_features_in_ == R


def test_group_kinds_equal_nilearn_means():
    runs = [correlated_timeseries(40 + i, R, seed=i) for i in range(3)]
    for kind in ("correlation", "partial correlation"):
        measure = GroupConnectivity(kind)
        oracle = ConnectivityMeasure(kind=kind)
        np.testing.assert_allclose(
            measure.fit_transform(runs), oracle.fit_transform(runs), atol=1e-12
        )
        np.testing.assert_allclose(measure.mean_, oracle.mean_, atol=1e-12)
