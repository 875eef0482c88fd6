"""Streaming parcellation against nilearn's maskers (the oracle)."""

import inspect
import logging
import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiSpheresMasker

from neuroai.errors import ConfigError, DataError
from neuroai.fmri import Atlas, AtlasMasker, extract_timeseries
from neuroai.testing import bold_image, label_atlas, prob_atlas
from neuroai.testing.bold import AFFINE

SHAPE = (7, 8, 9)


def nilearn(masker, img, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return masker.fit_transform(img, **kwargs)


@pytest.fixture(scope="module")
def img32(tmp_path_factory):
    path = tmp_path_factory.mktemp("bold") / "sub-01_task-rest_bold.nii.gz"
    nib.save(bold_image(SHAPE, 37, seed=1), path)
    return path


@pytest.fixture(scope="module")
def img64():
    return bold_image(SHAPE, 43, seed=2, dtype=np.float64)


@pytest.fixture(scope="module")
def labels():
    return label_atlas(SHAPE, 5, seed=2)


@pytest.fixture(scope="module")
def mask():
    data = np.ones(SHAPE, dtype=np.uint8)
    data[:2] = 0
    return nib.Nifti1Image(data, AFFINE)


def test_labels_equal_masker_in_float32_from_a_compressed_file(img32, labels):
    ours = extract_timeseries(img32, labels, chunk_mb=0.005)  # many chunks
    theirs = nilearn(NiftiLabelsMasker(labels), img32)
    assert theirs.dtype == np.float32 and ours.shape == theirs.shape == (37, 5)
    assert np.abs(ours.astype(np.float32) - theirs).max() <= 1e-5


def test_chunking_does_not_change_the_result(img64, labels):
    whole = extract_timeseries(img64, labels, chunk_mb=1000)
    np.testing.assert_array_equal(extract_timeseries(img64, labels, chunk_mb=0.001), whole)


def test_labels_with_mask_and_cleaning(img64, labels, mask):
    clean = {"t_r": 2.0, "low_pass": 0.1, "high_pass": 0.01, "standardize": "zscore_sample"}
    ours = extract_timeseries(img64, labels, mask_img=mask, detrend=True, **clean)
    theirs = nilearn(NiftiLabelsMasker(labels, mask_img=mask, detrend=True, **clean), img64)
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_maps_equal_masker(img64, mask):
    maps = prob_atlas(SHAPE, 4, seed=3)
    np.testing.assert_allclose(
        extract_timeseries(img64, maps, chunk_mb=0.001),
        nilearn(NiftiMapsMasker(maps), img64),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        extract_timeseries(img64, maps, mask_img=mask),
        nilearn(NiftiMapsMasker(maps, mask_img=mask), img64),
        atol=1e-9,
    )


@pytest.mark.parametrize("radius", [0.0, 3.0, 4.5])
def test_spheres_equal_masker(img64, radius):
    coords = [(-4.0, -5.0, 0.0), (5.0, 4.0, 3.3), (0.5, -8.0, 8.0)]
    ours = extract_timeseries(img64, Atlas.from_coordinates(coords, radius=radius), chunk_mb=0.001)
    theirs = nilearn(NiftiSpheresMasker(coords, radius=radius or None), img64)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    with pytest.raises(DataError, match="overlap"):
        extract_timeseries(img64, Atlas.from_coordinates([(0, 0, 0), (2, 0, 0)], radius=4))
    with pytest.raises(DataError, match="outside the image"):
        extract_timeseries(img64, Atlas.from_coordinates([(500, 0, 0)], radius=2))


def test_atlas_on_another_grid_is_resampled_with_a_warning(img64, caplog):
    affine = np.array([[2.0, 0, 0, -11], [0, 2, 0, -13], [0, 0, 2, -12], [0, 0, 0, 1]])
    other = nib.Nifti1Image(np.asanyarray(label_atlas((10, 11, 12), 5, seed=4).dataobj), affine)
    with caplog.at_level(logging.WARNING, logger="neuroai"):
        ours = extract_timeseries(img64, other)
    assert "not on the grid" in caplog.text and "resampling" in caplog.text
    np.testing.assert_allclose(ours, nilearn(NiftiLabelsMasker(other), img64), atol=1e-10)
    with pytest.raises(DataError, match="not on the grid"):
        extract_timeseries(img64, other, resample="error")


def test_region_outside_the_mask_is_kept_empty_and_logged(img64, labels, caplog):
    data = np.asanyarray(labels.dataobj).copy()
    data[0, 0, 0] = 9  # a region of one voxel, then masked out
    atlas = nib.Nifti1Image(data, AFFINE)
    mask = np.ones(SHAPE, dtype=np.uint8)
    mask[0, 0, 0] = 0
    with caplog.at_level(logging.WARNING, logger="neuroai"):
        ts = extract_timeseries(img64, atlas, mask_img=nib.Nifti1Image(mask, AFFINE))
    assert ts.shape[1] == 6 and np.all(ts[:, -1] == 0)
    assert "label-9" in caplog.text


def test_bad_images(img64, labels, tmp_path):
    with pytest.raises(DataError, match="is a 3D image"):
        extract_timeseries(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), labels)
    with pytest.raises(DataError, match="does not exist"):
        extract_timeseries(tmp_path / "missing.nii.gz", labels)
    shifted = AFFINE.copy()
    shifted[:3, 3] += 500
    with pytest.raises(DataError, match="No region of the atlas"):
        extract_timeseries(img64, nib.Nifti1Image(np.asanyarray(labels.dataobj), shifted))
    data = np.asanyarray(img64.dataobj).copy()
    data[3, 4, 5, 6] = np.nan
    nan_img = nib.Nifti1Image(data, AFFINE)
    atlas = nib.Nifti1Image(np.ones(SHAPE, np.int16), AFFINE)
    with pytest.raises(DataError, match=r"NaN or Inf values .*volume 6, voxel \(3, 4, 5\)"):
        extract_timeseries(nan_img, atlas)
    fixed = extract_timeseries(nan_img, atlas, non_finite="zero")
    assert np.isfinite(fixed).all()


def test_real_data_equals_masker():
    """neuropycon-data's run and its 184-region atlas (background -1)."""
    pytest.importorskip("neuropycon_data")
    from neuroai.datasets.bold_demos import neuropycon_files

    files = neuropycon_files()
    ours = extract_timeseries(files["bold"], Atlas.from_labels(files["atlas"], background_label=-1))
    theirs = nilearn(
        NiftiLabelsMasker(str(files["atlas"]), background_label=-1), str(files["bold"])
    )
    assert ours.shape == theirs.shape == (88, 184)
    assert np.abs(ours.astype(np.float32) - theirs.astype(np.float32)).max() <= 1e-5


@pytest.mark.parametrize(
    "options",
    [
        # The case: standardize alone (our old default also detrended: 4.3 z apart).
        {"standardize": "zscore_sample"},
        {"detrend": True},
        {
            "standardize": "zscore_sample",
            "detrend": True,
            "t_r": 2.5,
            "low_pass": 0.1,
            "high_pass": 0.01,
        },
        {"standardize": "psc", "t_r": 2.5, "high_pass": 0.02, "standardize_confounds": False},
    ],
    ids=["standardize", "detrend", "bandpass", "psc"],
)
def test_real_data_cleaning_equals_masker_with_the_same_options(options):
    """Same keywords, same defaults, same answer as NiftiLabelsMasker on the neuropycon run."""
    pytest.importorskip("neuropycon_data")
    from neuroai.datasets.bold_demos import neuropycon_files

    files = neuropycon_files()
    atlas = Atlas.from_labels(files["atlas"], background_label=-1)
    theirs = nilearn(
        NiftiLabelsMasker(str(files["atlas"]), background_label=-1, **options), str(files["bold"])
    )
    ours = extract_timeseries(files["bold"], atlas, **options)
    assert ours.shape == theirs.shape == (88, 184)
    assert np.abs(ours - theirs).max() <= 1e-5
    masker = AtlasMasker(atlas, **options)
    np.testing.assert_array_equal(masker.fit_transform(files["bold"]), ours)


def _defaults(callable_):
    return {
        name: p.default
        for name, p in inspect.signature(callable_).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def test_shared_keywords_have_nilearns_defaults():
    """Every keyword we share with nilearn's counterpart has nilearn's default."""
    from nilearn import signal

    from neuroai.fmri import clean

    masker = _defaults(NiftiLabelsMasker)
    for ours in (_defaults(extract_timeseries), _defaults(AtlasMasker)):
        shared = set(ours) & set(masker)
        assert {"standardize", "detrend", "standardize_confounds", "t_r", "mask_img"} <= shared
        assert {k: ours[k] for k in shared} == {k: masker[k] for k in shared}
    theirs, ours = _defaults(signal.clean), _defaults(clean)
    shared = set(ours) & set(theirs)
    assert {"detrend", "standardize", "standardize_confounds", "filter", "extrapolate"} <= shared
    # The one documented exception: nilearn guesses t_r=2.5 s, we refuse to filter without a TR.
    assert theirs.pop("t_r") == 2.5 and ours.pop("t_r") is None
    assert {k: ours[k] for k in shared - {"t_r"}} == {k: theirs[k] for k in shared - {"t_r"}}


def test_atlas_masker_is_a_scikit_learn_transformer(img64, labels):
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    masker = AtlasMasker(labels, detrend=True, standardize="zscore_sample")
    for check in (
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ):
        check("AtlasMasker", masker)
    copy = clone(masker)
    params = masker.get_params()
    assert copy.get_params(deep=False).keys() == params.keys() and not hasattr(copy, "reducer_")
    assert all(copy.get_params()[k] == v for k, v in params.items() if k != "atlas")
    from sklearn.preprocessing import FunctionTransformer

    pipe = make_pipeline(masker, FunctionTransformer(lambda ts: ts[::2]))
    expected = nilearn(NiftiLabelsMasker(labels, detrend=True, standardize="zscore_sample"), img64)
    np.testing.assert_allclose(pipe.fit_transform(img64), expected[::2], atol=1e-10)
    assert masker.n_features_out_ == 5
    with pytest.raises(ConfigError, match="Did you mean 'zscore_sample'"):
        AtlasMasker(labels, standardize="zscore_smple").fit(img64)
    with pytest.raises(ConfigError, match="needs an atlas"):
        AtlasMasker().fit(img64)


def test_region_extractor_is_a_deprecated_alias():
    import neuroai.fmri

    with pytest.warns(FutureWarning, match="renamed AtlasMasker"):
        assert neuroai.fmri.RegionExtractor is AtlasMasker


def test_qc_pass_gives_global_signal_dvars_and_carpet(img64, labels):
    extractor = AtlasMasker(labels, qc=True, n_carpet_voxels=50, chunk_mb=0.001).fit(img64)
    detail = extractor.transform_detail(img64)
    flat = np.asanyarray(img64.dataobj).reshape(-1, 43, order="F")[extractor.brain_voxels_]
    np.testing.assert_allclose(detail.global_signal, flat.mean(axis=0))
    np.testing.assert_allclose(detail.dvars, np.sqrt((np.diff(flat, axis=1) ** 2).mean(axis=0)))
    assert detail.carpet.shape == (50, 43) and detail.carpet_regions.shape == (50,)
    assert np.all(np.diff(detail.carpet_regions) >= 0)
