"""Decathlon reading and the checks that name the case; the MNI152 tissue demo builder."""

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from neuroai.datasets import load_card
from neuroai.errors import DataError
from neuroai.io import check_case, read_decathlon
from neuroai.testing import hippocampus_like_dataset


@pytest.fixture
def task(tmp_path):
    hippocampus_like_dataset(tmp_path / "Task04", n_train=3, n_test=2, test_labels=True)
    return tmp_path / "Task04"


def test_hippocampus_format_reads_and_checks(task):
    dataset = read_decathlon(task / "dataset.json")
    assert (
        dataset.class_names == ["background", "Anterior", "Posterior"] and dataset.in_channels == 1
    )
    assert [c.id for c in dataset.training] == [
        "hippocampus_001",
        "hippocampus_002",
        "hippocampus_003",
    ]
    assert all(c.label is not None for c in dataset.test)
    info = check_case(dataset.training[1], dataset.labels)
    assert (
        info["shape"] == (21, 22, 18)
        and info["values"] == [0, 1, 2]
        and info["spacing"] == [1.0, 1.0, 1.0]
    )


def _rewrite(path, array=None, affine=None, zooms=None):
    image = nib.load(path)
    data = np.asarray(image.dataobj) if array is None else array
    out = nib.Nifti1Image(data, image.affine if affine is None else affine)
    if zooms is not None:
        out.header.set_zooms(zooms)
    nib.save(out, path)


def test_undeclared_label_values_name_the_case(task):
    dataset = read_decathlon(task)
    case = dataset.training[0]
    label = np.asarray(nib.load(case.label).dataobj).copy()
    label[0, 0, 0] = 5
    _rewrite(case.label, label)
    with pytest.raises(
        DataError, match=r"Case hippocampus_001: .*values \[5\] that dataset.json does not declare"
    ):
        check_case(case, dataset.labels)


def test_shape_and_affine_mismatch_name_the_case(task):
    dataset = read_decathlon(task)
    first, second = dataset.training[0], dataset.training[1]
    _rewrite(first.label, np.zeros((19, 23, 16), np.uint8))
    with pytest.raises(DataError, match="Case hippocampus_001: image .* has shape .* but label"):
        check_case(first, dataset.labels)
    shifted = nib.load(second.label).affine.copy()
    shifted[0, 3] += 3.0
    _rewrite(second.label, affine=shifted)
    with pytest.raises(DataError, match="Case hippocampus_002: image and label affines differ"):
        check_case(second, dataset.labels)


def test_missing_spacing_names_the_case(task):
    dataset = read_decathlon(task)
    case = dataset.training[2]
    raw = bytearray(gzip.decompress(case.image.read_bytes()))
    raw[80:92] = np.zeros(3, "<f4").tobytes()  # pixdim[1:4]; nibabel reads 0 back as 1 mm, silently
    case.image.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(
        DataError, match="Case hippocampus_003: .* missing or invalid voxel spacing"
    ):
        check_case(case, dataset.labels)


def test_bad_dataset_json_is_a_clear_error(task, tmp_path):
    with pytest.raises(DataError, match="dataset.json is missing"):
        read_decathlon(tmp_path / "nowhere")
    document = json.loads((task / "dataset.json").read_text())
    document["training"][0]["label"] = "./labelsTr/missing.nii.gz"
    (task / "dataset.json").write_text(json.dumps(document))
    with pytest.raises(DataError, match="label of case hippocampus_001 .* does not exist"):
        read_decathlon(task)


def test_tissue_demo_builds_labelled_cases_with_provenance(tmp_path, repo):
    from neuroai.datasets.mni152_tissue import LABELS, build_mni152_tissue
    from neuroai.io import read_provenance

    path = build_mni152_tissue(tmp_path / "tissue", n_train=2, n_test=1, seed=3)
    dataset = read_decathlon(path)
    assert (
        len(dataset.training) == 2 and len(dataset.test) == 1 and dataset.test[0].label is not None
    )
    info = check_case(dataset.training[0], dataset.labels)
    assert info["values"] == sorted(LABELS) and info["spacing"] == [2.0, 2.0, 2.0]
    first = np.asarray(nib.load(dataset.training[0].image).dataobj)
    second = np.asarray(nib.load(dataset.training[1].image).dataobj)
    assert first.shape == (99, 117, 95) and not np.array_equal(first, second)
    assert read_provenance(path)["params"] == {"n_train": 2, "n_test": 1, "seed": 3}
    assert load_card(repo / "data_cards" / "demo_mni152_tissue.yaml").nature == "semi-synthetic"
