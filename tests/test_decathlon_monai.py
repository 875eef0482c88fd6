"""read_decathlon lists what monai.data.load_decathlon_datalist lists, and refuses more clearly."""

import json
import sys

import nibabel as nib
import numpy as np
import pytest

from neuroai.errors import DataError
from neuroai.io import read_decathlon

monai_data = pytest.importorskip("monai.data")


def _nifti(path, seed, label=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 3, (7, 8, 9)) if label else rng.standard_normal((7, 8, 9))
    nib.save(nib.Nifti1Image(data.astype(np.uint8 if label else np.float32), np.eye(4)), path)


@pytest.fixture
def task(tmp_path):
    root = tmp_path / "Task09"
    for i, name in enumerate("abc"):
        _nifti(root / "imagesTr" / f"{name}.nii.gz", i)
        _nifti(root / "labelsTr" / f"{name}.nii.gz", i, label=True)
    for i, name in enumerate("de"):
        _nifti(root / "imagesTs" / f"{name}.nii.gz", 10 + i)
    _nifti(root / "labelsTs" / "d.nii.gz", 10, label=True)
    (root / "sub").mkdir()
    description = {
        "name": "Spleenish",
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "one", "2": "two"},
        "training": [
            {"image": "./imagesTr/a.nii.gz", "label": "./labelsTr/a.nii.gz"},
            {"image": "imagesTr/b.nii.gz", "label": "labelsTr/b.nii.gz", "fold": 1},
            {"image": "./sub/../imagesTr/c.nii.gz", "label": "./labelsTr//c.nii.gz"},
        ],
        "test": ["./imagesTs/d.nii.gz", "imagesTs/e.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(description))
    return root


def test_lists_equal_monais(task):
    dataset = read_decathlon(task)
    for key in ("training", "test"):
        theirs = monai_data.load_decathlon_datalist(task / "dataset.json", data_list_key=key)
        ours = dataset.datalist(key)
        if key == "training":
            assert ours == [{k: v for k, v in t.items() if k != "fold"} for t in theirs]
        else:  # our test cases carry the labelsTs/ label where there is one
            assert [o["image"] for o in ours] == [t["image"] for t in theirs]
            assert [("label" in o) for o in ours] == [True, False]
    assert [c.id for c in dataset.training] == ["a", "b", "c"]
    assert str(dataset.training[2].image) == str(task / "imagesTr" / "c.nii.gz")  # normalised


def test_relative_root_gives_monais_absolute_paths(task, monkeypatch):
    monkeypatch.chdir(task.parent)
    dataset = read_decathlon("Task09/dataset.json")
    theirs = monai_data.load_decathlon_datalist(
        "Task09/dataset.json", base_dir=(task.parent / "Task09").absolute()
    )
    assert dataset.datalist() == [{"image": t["image"], "label": t["label"]} for t in theirs]
    assert all(c.image.is_absolute() for c in dataset.training)


def test_symlinked_root_keeps_the_link_as_monai_does(task, tmp_path):
    link = tmp_path / "linked"
    link.symlink_to(task)
    theirs = monai_data.load_decathlon_datalist(link / "dataset.json")
    ours = read_decathlon(link).datalist()
    assert ours == [{"image": t["image"], "label": t["label"]} for t in theirs]
    assert ours[0]["image"].startswith(str(link))


def test_without_monai_the_same_rule(task, monkeypatch):
    expected = read_decathlon(task).datalist("training")
    monkeypatch.setitem(sys.modules, "monai.data", None)  # import fails
    with pytest.raises(ImportError):
        from monai.data import load_decathlon_datalist  # noqa: F401
    assert read_decathlon(task).datalist("training") == expected


def test_monai_loads_our_datalist(task):
    from monai.transforms import LoadImaged

    dataset = read_decathlon(task)
    items = monai_data.Dataset(dataset.datalist(), transform=LoadImaged(keys=["image", "label"]))
    item = items[1]
    np.testing.assert_array_equal(
        np.asarray(item["label"]), np.asarray(nib.load(dataset.training[1].label).dataobj)
    )


def test_empty_test_list_and_clear_errors(task):
    description = json.loads((task / "dataset.json").read_text())
    description["test"] = []
    (task / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(IndexError):  # MONAI reads the first test entry
        monai_data.load_decathlon_datalist(task / "dataset.json", data_list_key="test")
    assert read_decathlon(task).test == []

    (task / "labelsTr" / "b.nii.gz").unlink()
    with pytest.raises(
        DataError, match=r"dataset.json: the label of case b 'labelsTr/b.nii.gz' does not exist"
    ):
        read_decathlon(task)

    description["training"] = [{"image": ["./imagesTr/a.nii.gz"], "label": "./labelsTr/a.nii.gz"}]
    (task / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="one file per image.*4D NIfTI"):
        read_decathlon(task)
    description["training"] = [{"image": "./imagesTr/a.nii.gz"}]
    (task / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(DataError, match="each training entry needs 'image' and 'label'"):
        read_decathlon(task)
