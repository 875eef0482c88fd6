"""Frames: 4D BOLD runs on the MNI frame grid, scaled as TABLeT does; bad runs fail cleanly."""

import json

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_img

from neuroai.errors import DataError
from neuroai.io import read_provenance
from neuroai.testing.volumes import lattice_affine, lattice_bold_image, write_bold_run
from neuroai.tokenizers.frames import (
    load_frames,
    mni_grid,
    place_frames,
    plan_placement,
    write_frames,
)
from neuroai.tokenizers.runs import bold_files_by_subject, open_bold

SIZE = 24  # a small cubic grid on the same lattice as the 96^3 one


def nilearn_oracle(image, interpolation):
    resampled = resample_img(
        image,
        target_affine=mni_grid(SIZE),
        target_shape=(SIZE,) * 3,
        interpolation=interpolation,
        force_resample=True,
        copy_header=True,
    )
    return np.moveaxis(np.asarray(resampled.dataobj, dtype=np.float32), 3, 0)


def test_grid_holds_the_mni_brain_on_the_even_millimetre_lattice():
    from nilearn.datasets import load_mni152_brain_mask

    affine = mni_grid()
    assert np.allclose(np.diag(affine)[:3], 2.0)
    assert np.allclose(affine[:3, 3], [-94, -112, -90])
    mask = load_mni152_brain_mask(resolution=2)
    inside = np.argwhere(np.asarray(mask.dataobj) > 0)
    world = inside @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    index = (world - affine[:3, 3]) / 2.0
    assert np.allclose(index, np.round(index))
    assert index.min() >= 0 and index.max() <= 95


@pytest.mark.parametrize(
    "affine",
    [
        lattice_affine(origin=(24.0, -30.0, -20.0)),  # x flipped, like FSL's MNI152 2 mm
        np.array([[0, 0, -2.0, 10], [2.0, 0, 0, -40], [0, -2.0, 0, 6], [0, 0, 0, 1]]),  # permuted
        lattice_affine(flip_x=False, origin=(-40.0, -60.0, -40.0)),  # larger than the grid: cropped
    ],
)
def test_runs_on_the_lattice_are_padded_or_cropped_exactly(affine):
    shape = (7, 8, 9, 3) if affine[0, 3] != -40.0 else (31, 33, 29, 3)
    image = lattice_bold_image(shape, affine=affine, seed=1)
    placement = plan_placement(image.affine, image.shape, size=SIZE)
    assert placement.method == "pad_crop"
    placed = place_frames(np.asarray(image.dataobj), image.affine, placement, size=SIZE)
    assert placed.shape == (3, SIZE, SIZE, SIZE)
    np.testing.assert_array_equal(placed, nilearn_oracle(image, "nearest"))
    if shape[0] == 31:
        assert sum(placement.crop_before) + sum(placement.crop_after) > 0


def test_runs_off_the_lattice_are_resampled_with_nilearn():
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = (-10.0, -35.0, -12.0)
    image = lattice_bold_image((7, 8, 9, 2), affine=affine, seed=2)
    placement = plan_placement(image.affine, image.shape, size=SIZE, interpolation="linear")
    assert placement.method == "resample" and placement.interpolation == "linear"
    placed = place_frames(np.asarray(image.dataobj), image.affine, placement, size=SIZE)
    np.testing.assert_allclose(placed, nilearn_oracle(image, "linear"), atol=1e-4)


def test_a_run_outside_the_grid_is_refused():
    affine = lattice_affine(origin=(600.0, 0.0, 0.0))
    with pytest.raises(DataError, match="does not overlap"):
        plan_placement(affine, (7, 8, 9, 2), size=SIZE)


def test_write_frames_scales_streams_and_records(tmp_path):
    image = lattice_bold_image((7, 8, 9, 11), seed=3)
    data = np.asarray(image.dataobj)
    data[0, 0, 0, :] = -50.0  # negative values are clamped at 0
    run = write_bold_run(
        tmp_path / "sub-01_task-rest_bold.nii.gz", nib.Nifti1Image(data, image.affine, image.header)
    )
    record = write_frames([run], tmp_path / "small.npy", chunk_frames=4, size=SIZE, max_frames=9)
    write_frames([run], tmp_path / "one.npy", chunk_frames=100, size=SIZE, max_frames=9)
    frames, prov = load_frames(tmp_path / "small.npy")
    assert frames.shape == (9, SIZE, SIZE, SIZE) and frames.dtype == np.float16
    expected = np.maximum(
        nilearn_oracle(nib.Nifti1Image(data[..., :9], image.affine), "nearest"), 0
    )
    expected = 2.0 * expected / expected.max() - 1.0
    np.testing.assert_allclose(frames.astype(np.float32), expected, atol=1e-3)
    assert frames.min() == -1.0 and frames.max() == 1.0
    np.testing.assert_array_equal(frames, load_frames(tmp_path / "one.npy")[0])
    assert record["tr"] == 2.0 and record["n_frames"] == 9
    assert prov["extra"]["runs"][0]["placement"]["method"] == "pad_crop"
    assert prov["extra"]["grid"]["affine"] == mni_grid(SIZE).tolist()
    assert read_provenance(tmp_path / "small.npy")["stage"] == "frames"


def test_runs_of_a_subject_are_concatenated_and_must_share_the_tr(tmp_path):
    first = write_bold_run(tmp_path / "a_bold.nii", shape=(7, 8, 9, 4), seed=4)
    second = write_bold_run(tmp_path / "b_bold.nii", shape=(7, 8, 9, 5), seed=5)
    record = write_frames([first, second], tmp_path / "both.npy", size=SIZE, max_frames=6)
    assert [r["n_frames_used"] for r in record["runs"]] == [4, 2]
    other = write_bold_run(tmp_path / "c_bold.nii", shape=(7, 8, 9, 4), tr=0.8)
    with pytest.raises(DataError, match="different repetition times"):
        write_frames([first, other], tmp_path / "mixed.npy", size=SIZE)
    assert not list(tmp_path.glob("mixed*"))


def test_a_sidecar_repetition_time_wins_over_the_header(tmp_path):
    path = write_bold_run(
        tmp_path / "s_bold.nii.gz", shape=(7, 8, 9, 2), sidecar={"RepetitionTime": 0.72}
    )
    assert open_bold(path).tr == 0.72 and open_bold(path).tr_source == "sidecar"


def three_d():
    return nib.Nifti1Image(np.ones((7, 8, 9), np.float32), lattice_affine())


def all_zero():
    image = lattice_bold_image((7, 8, 9, 3))
    return nib.Nifti1Image(np.zeros(image.shape, np.float32), image.affine, image.header)


def no_affine():
    image = nib.Nifti1Image(np.ones((7, 8, 9, 3), np.float32), None)
    image.header.set_zooms((2, 2, 2, 2))
    return image


def singular():
    image = nib.Nifti1Image(np.ones((7, 8, 9, 3), np.float32), None)
    image.set_sform(np.diag([2.0, 0.0, 2.0, 1.0]), code="mni")
    image.header.set_zooms((2, 2, 2, 2))
    return image


def no_tr():
    return nib.Nifti1Image(np.ones((7, 8, 9, 3), np.float32), lattice_affine())


BAD_RUNS = {
    "must be 4D": three_d,
    "are zero": all_zero,
    "has no affine": no_affine,
    "singular": singular,
    "no repetition time": no_tr,
}


@pytest.mark.parametrize("problem", list(BAD_RUNS))
def test_bad_runs_fail_clearly_and_write_nothing(tmp_path, problem):
    run = tmp_path / "sub-01_bold.nii"
    nib.save(BAD_RUNS[problem](), run)
    with pytest.raises(DataError, match=problem) as error:
        write_frames([run], tmp_path / "out" / "frames.npy", size=SIZE)
    assert str(run) in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bold_files_by_subject_finds_subjects_and_sessions(tmp_path):
    write_bold_run(
        tmp_path / "sub-01" / "func" / "sub-01_task-rest_bold.nii.gz", shape=(7, 8, 9, 2)
    )
    write_bold_run(
        tmp_path / "sub-02" / "ses-1" / "func" / "sub-02_ses-1_task-rest_bold.nii",
        shape=(7, 8, 9, 2),
    )
    (tmp_path / "sub-02" / "ses-1" / "func" / "sub-02_ses-1_task-rest_bold.json").write_text(
        json.dumps({})
    )
    runs = bold_files_by_subject(tmp_path)
    assert list(runs) == ["01", "02"] and len(runs["02"]) == 1
    with pytest.raises(DataError, match=r"\['03'\]"):
        bold_files_by_subject(tmp_path, subjects=["01", "03"])


def test_npy_stream_appends_rows_and_checks_the_count(tmp_path):
    from neuroai.tokenizers._private import NpyStream

    data = np.arange(7 * 3 * 2, dtype=np.float16).reshape(7, 3, 2)
    with open(tmp_path / "a.npy", "wb") as handle:
        stream = NpyStream(handle, data.shape, np.float16)
        stream.write(data[:4])
        stream.write(data[4:])
        stream.close()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), data)
    with open(tmp_path / "b.npy", "wb") as handle:
        stream = NpyStream(handle, data.shape, np.float16)
        stream.write(data[:2])
        with pytest.raises(ValueError, match="Only 2 of 7 rows"):
            stream.close()
        with pytest.raises(ValueError, match="does not fit"):
            stream.write(np.zeros((2, 3, 5)))
