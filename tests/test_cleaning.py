"""Confound selection and cleaning against nilearn (the oracle)."""

import warnings

import numpy as np
import pytest
from nilearn.interfaces.fmriprep import load_confounds as nilearn_load_confounds
from nilearn.signal import clean as nilearn_clean

from neuroai.errors import ConfigError, DataError
from neuroai.fmri import clean, load_confounds
from neuroai.fmri.confounds import resolve_preset
from neuroai.io import index_bold_runs
from neuroai.testing import correlated_timeseries, fmriprep_dataset

N = 41


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmriprep")
    fmriprep_dataset(root, subjects=["01"], n_volumes=N, shape=(4, 5, 6))
    return next(iter(index_bold_runs(root, "fmriprep").values()))


STRATEGIES = [
    {"strategy": ("motion", "high_pass", "wm_csf")},
    {
        "strategy": ("motion", "wm_csf", "scrub", "global_signal"),
        "motion": "basic",
        "wm_csf": "full",
        "global_signal": "power2",
    },
    {"strategy": ("high_pass", "compcor", "motion"), "compcor": "anat_separated", "n_compcor": 1},
    {"strategy": ("high_pass", "compcor"), "compcor": "temporal_anat_combined"},
    {"strategy": ("scrub",), "scrub": 0, "fd_threshold": 0.3},
    {"strategy": ("motion",), "motion": "derivatives", "demean": False},
]


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: "+".join(o["strategy"]))
def test_confounds_equal_nilearn(run, options):
    ours, mask = load_confounds(run.confounds, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, their_mask = nilearn_load_confounds(str(run.path), **options)
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-10)
    if their_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, their_mask)


def test_presets_and_bad_strategies(run):
    params = resolve_preset("scrubbing", global_signal="basic")
    assert params["strategy"] == ("high_pass", "motion", "wm_csf", "scrub", "global_signal")
    with pytest.raises(ConfigError, match="Did you mean 'motion'"):
        load_confounds(run.confounds, ["motoin"])
    with pytest.raises(ConfigError, match="needs 'high_pass'"):
        load_confounds(run.confounds, ["compcor"])
    with pytest.raises(ConfigError, match="tedana"):
        load_confounds(run.confounds, ["tedana"])
    table = run.confounds.read_text().splitlines()
    header = [c for c in table[0].split("\t") if not c.startswith("trans")]
    keep = [i for i, c in enumerate(table[0].split("\t")) if not c.startswith("trans")]
    reduced = run.confounds.with_name("reduced_timeseries.tsv")
    reduced.write_text(
        "\n".join(
            ["\t".join(header)] + ["\t".join(r.split("\t")[i] for i in keep) for r in table[1:]]
        )
    )
    with pytest.raises(DataError, match=r"lacks the columns \['trans_x'"):
        load_confounds(reduced, ["motion"])


CLEAN_OPTIONS = [
    {},
    {"low_pass": 0.1, "high_pass": 0.01, "t_r": 2.0},
    {"filter": "cosine", "high_pass": 0.01, "t_r": 2.0},
    {"standardize": "psc", "detrend": False},
    {"low_pass": 0.2, "t_r": 2.0, "standardize": None, "standardize_confounds": False},
]


@pytest.mark.parametrize("options", CLEAN_OPTIONS, ids=str)
@pytest.mark.parametrize("with_confounds", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_clean_equals_nilearn(run, options, with_confounds, with_mask):
    signals = correlated_timeseries(N, 6, seed=4)
    confounds, _ = load_confounds(run.confounds, ["motion", "wm_csf"], motion="basic")
    confounds = confounds.to_numpy() if with_confounds else None
    # nilearn 0.14 interpolates censored volume r only when volume n-1-r is kept (it
    # indexes with ~sample_mask on integer indices): censor volumes whose mirrors are kept.
    mask = np.setdiff1d(np.arange(N), [3, 9, 21]) if with_mask else None
    ours = clean(signals, confounds=confounds, sample_mask=mask, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nilearn_clean(signals, confounds=confounds, sample_mask=mask, **options)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-8 if with_confounds else 1e-10)


def test_censored_edges_are_dropped_before_filtering():
    signals = correlated_timeseries(N, 3, seed=5)
    mask = np.arange(2, N)  # the first two volumes cannot be interpolated
    out = clean(signals, sample_mask=mask, t_r=2.0, low_pass=0.1, extrapolate=False)
    assert out.shape == (N - 2, 3)
    direct = clean(signals[2:], t_r=2.0, low_pass=0.1)
    np.testing.assert_allclose(out, direct, atol=1e-10)


def test_clean_bad_input():
    signals = correlated_timeseries(N, 3)
    with pytest.raises(ConfigError, match="needs the repetition time"):
        clean(signals, low_pass=0.1)
    with pytest.raises(ConfigError, match="must be below the low-pass"):
        clean(signals, t_r=2.0, low_pass=0.05, high_pass=0.1)
    with pytest.raises(DataError, match="Confounds have 10 rows but the signals have 41"):
        clean(signals, confounds=np.ones((10, 2)))
    bad = signals.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        clean(bad)
    with pytest.raises(DataError, match="too short"):
        clean(signals[:8], t_r=2.0, low_pass=0.1, high_pass=0.01)
    with pytest.raises(DataError, match="increasing volume indices"):
        clean(signals, sample_mask=np.array([5, 3]))


def test_scrubbed_band_pass_ignores_what_the_censored_volumes_held():
    """Censored volumes are filled from the kept ones before filtering, so a motion spike
    in them cannot reach the kept volumes. Volumes 4 and 17 are censored with their
    mirrors (N-1-i): nilearn 0.14.1's own fill skips those, so passing the mask straight
    to nilearn.signal.clean fails this test (benchmarks/nilearn_equivalents.py)."""
    signals = correlated_timeseries(N, 5, seed=6)
    confounds = correlated_timeseries(N, 2, seed=7)
    censored = [4, 17, 22, N - 1 - 4, N - 1 - 17]
    mask = np.setdiff1d(np.arange(N), censored)
    spiked = signals.copy()
    spiked[censored] += 500.0
    for extrapolate in (False, True):
        options = {"sample_mask": mask, "t_r": 2.0, "low_pass": 0.1, "high_pass": 0.01}
        options["extrapolate"] = extrapolate
        quiet = clean(signals, confounds=confounds, **options)
        assert quiet.shape == (N - 5, 5)
        np.testing.assert_allclose(
            clean(spiked, confounds=confounds, **options), quiet, rtol=0, atol=1e-12
        )


def test_clean_calls_nilearn_and_logs_its_warnings(caplog):
    signals = correlated_timeseries(N, 3, seed=8)
    with caplog.at_level("WARNING", logger="neuroai"):
        out = clean(signals, filter=False, low_pass=0.1)
    assert "nilearn.signal.clean: No filter type selected" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(out, nilearn_clean(signals, filter=False, low_pass=0.1))
    # float32 stays float32, as in nilearn (the voxel case of the benchmark: 17% less memory).
    low = clean(signals.astype(np.float32), t_r=2.0, low_pass=0.1)
    assert low.dtype == np.float32
    with pytest.raises(ConfigError, match="high_pass must be >= 0 Hz, got -0.01"):
        clean(signals, t_r=2.0, high_pass=-0.01)


def test_real_run_confounds_and_cleaning_equal_nilearn(tmp_path):
    """The demo's neuropycon run (88 volumes, 184 regions), its strategy and band-pass.

    nilearn's load_confounds refuses the run's own image (an uncompressed .nii), so it is
    pointed at a .nii.gz name beside it (the image need not exist); ours reads the table.
    """
    pytest.importorskip("neuropycon_data")
    from nilearn.maskers import NiftiLabelsMasker

    from neuroai.datasets.bold_demos import build_neuropycon_bold, neuropycon_files

    build_neuropycon_bold(tmp_path)
    run = next(iter(index_bold_runs(tmp_path, "fmriprep").values()))
    strategy = ["high_pass", "global_signal"]
    ours, mask = load_confounds(run.confounds, strategy)
    gz = run.path.with_name(run.path.name + ".gz")
    theirs, their_mask = nilearn_load_confounds(str(gz), strategy)
    assert mask is None and their_mask is None
    assert list(ours.columns) == list(theirs.columns) and ours.shape == (88, 4)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)
    files = neuropycon_files()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regions = NiftiLabelsMasker(str(files["atlas"]), background_label=-1).fit_transform(
            str(files["bold"])
        )
    options = {"confounds": ours.to_numpy(), "t_r": 2.5, "low_pass": 0.1, "high_pass": 0.01}
    # Scrubbed volumes whose mirrors are kept, where nilearn's own fill is right.
    kept = np.setdiff1d(np.arange(88), [10, 11, 40])
    for sample_mask in (None, kept):
        cleaned = clean(regions, sample_mask=sample_mask, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = nilearn_clean(regions, sample_mask=sample_mask, **options)
        assert cleaned.shape == expected.shape
        np.testing.assert_allclose(cleaned, expected, rtol=0, atol=1e-10)
