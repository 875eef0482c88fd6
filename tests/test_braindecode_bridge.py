"""The patch store as braindecode windows: (X, y, inds) items, a description, targets.

Oracle: the windows a store was written from (X is the signal its time patches
were cut from); braindecode's own BaseConcatDataset where braindecode imports.
"""

import numpy as np
import pytest

from neuroai.eeg import (
    EEGParams,
    PatchLayout,
    PatchPart,
    concatenate_stores,
    open_patch_store,
    save_recording,
    window_patches,
    write_patch_store,
)
from neuroai.eeg.braindecode_bridge import recording_windows, store_windows, to_braindecode
from neuroai.errors import ConfigError
from neuroai.testing import tuh_edf

torch = pytest.importorskip("torch")

SFREQ = 100.0
LAYOUT = PatchLayout(window_samples=200, patch_len=25, patch_stride=25)


def _part(windows, recording, subject, label, events, starts):
    n, n_channels = windows.shape[:2]
    patches, stats = window_patches(windows, LAYOUT, dtype="float32")
    index = {
        "window": np.arange(n),
        "recording": np.array([recording] * n, dtype=object),
        "subject": np.array([subject] * n, dtype=object),
        "session": np.array(["s001"] * n, dtype=object),
        "split": np.array(["train"] * n, dtype=object),
        "label": np.array([label] * n, dtype=object),
        "events": np.array(events, dtype=object),
        "channel_set": np.zeros(n, dtype=np.int64),
        "row": np.arange(n) * n_channels,
        "n_channels": np.full(n, n_channels),
        "start_s": np.asarray(starts, dtype=float),
    }
    names = [["Fp1", "Fp2", "C3", "C4", "O1"][:n_channels]]
    return PatchPart(index=index, channel_sets=names, patches=patches, stats=stats)


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 200)) * 3 + 1
    b = rng.standard_normal((2, 5, 200)) * 2 - 1
    parts = [
        _part(a, "rec_a", "p1", "abnormal", ["", "seiz", "seiz;eyem"], [0.0, 2.0, 6.0]),
        _part(b, "rec_b", "p2", "normal", ["eyem", ""], [1.0, 3.0]),
    ]
    write_patch_store(
        tmp_path / "store",
        parts,
        layout=LAYOUT,
        sfreq=SFREQ,
        dtype="float32",
        params={},
        stage="test",
    )
    return tmp_path / "store", a, b


def test_items_are_the_windows_the_store_was_written_from(store):
    path, a, b = store
    datasets = recording_windows(path)
    assert [len(d) for d in datasets] == [3, 2]
    X, y, inds = datasets[0][1]
    assert X.dtype == np.float32 and X.shape == (5, 200)  # (n_chans, n_times)
    np.testing.assert_allclose(X, a[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(datasets[1][-1][0], b[1], rtol=1e-5, atol=1e-5)
    header = open_patch_store(path).header
    assert y == header["labels"].index("abnormal")
    assert inds == [1, 200, 400]  # i_window_in_trial, i_start, i_stop at 100 Hz
    assert datasets[0][2][2] == [2, 600, 800]
    with pytest.raises(IndexError):
        datasets[1][2]


def test_description_and_metadata(store):
    path, _, _ = store
    windows = store_windows(path)
    description = windows.description
    assert description["subject"].tolist() == ["p1", "p2"]
    assert description["recording"].tolist() == ["rec_a", "rec_b"]
    assert description["label"].tolist() == ["abnormal", "normal"]
    assert description["n_windows"].tolist() == [3, 2]
    assert len(windows) == 5
    np.testing.assert_array_equal(windows[3][0], windows.datasets[1][0][0])
    metadata = windows.datasets[0].metadata
    assert metadata["i_start_in_trial"].tolist() == [0, 200, 600]
    assert metadata["target"].tolist() == [windows.datasets[0][0][1]] * 3
    windows.datasets[0].set_description({"age": 61})
    assert windows.description["age"].tolist()[0] == 61
    with pytest.raises(ConfigError, match="already in the description"):
        windows.datasets[0].set_description({"subject": "x"})


def test_targets(store):
    path, _, _ = store
    events = open_patch_store(path).header["events"]
    assert events == ["eyem", "seiz"]
    seiz = recording_windows(path, target="seiz")
    assert [seiz[0][i][1] for i in range(3)] == [0, 1, 1]
    multi = recording_windows(path, target="events")[0][2][1]
    assert multi.dtype == np.float32 and multi.tolist() == [1.0, 1.0]
    assert recording_windows(path, target=None)[1][0][1] == -1
    with pytest.raises(ConfigError, match=r"'target' parameter: 'seizure'.*\['eyem', 'seiz'\]"):
        recording_windows(path, target="seizure")
    scaled = recording_windows(path, transform=lambda x: x * 2)[0][0][0]
    np.testing.assert_allclose(scaled, 2 * recording_windows(path)[0][0][0])


def test_a_dataloader_batches_items_like_braindecodes(store):
    path, a, _ = store
    loader = torch.utils.data.DataLoader(store_windows(path), batch_size=4, num_workers=0)
    X, y, inds = next(iter(loader))
    assert X.shape == (4, 5, 200) and X.dtype == torch.float32
    assert y.tolist()[:3] == [y.tolist()[0]] * 3
    assert [i.tolist() for i in inds] == [[0, 1, 2, 0], [0, 200, 600, 100], [200, 400, 800, 300]]
    # A braindecode-style model input: (batch, n_chans, n_times).
    np.testing.assert_allclose(X[:3].numpy(), a, rtol=1e-5, atol=1e-5)


def test_a_pipeline_cohort_splits_by_subject(tmp_path):
    params = EEGParams(
        window_s=4.0, stride_s=4.0, patch_len=25, patch_stride=25, sfreq=200.0, h_freq=70.0
    )
    stores = []
    for subject, label in (("aaaaaaab", "abnormal"), ("aaaaaaac", "normal")):
        folder = tmp_path / "edf" / "train" / label / "01_tcp_ar"
        edf = tuh_edf(folder / f"{subject}_s001_t000.edf", duration_s=13.0, seed=len(stores))
        stores.append(tmp_path / f"{subject}_patches")
        save_recording(edf, stores[-1], tmp_path / f"{subject}_qc.json", params=params)
    concatenate_stores(stores, tmp_path / "cohort", stage="test")
    windows = store_windows(tmp_path / "cohort")
    description = windows.description
    assert description["subject"].tolist() == ["aaaaaaab", "aaaaaaac"]
    by_subject = {s: np.flatnonzero(description["subject"] == s) for s in ("aaaaaaab", "aaaaaaac")}
    assert [len(windows.datasets[i[0]]) for i in by_subject.values()] == [3, 3]
    X, y, _ = windows[0]
    assert X.shape == (22, 800)  # tcp_22 montage, 4 s at 200 Hz
    labels = open_patch_store(tmp_path / "cohort").header["labels"]
    assert labels[y] == "abnormal" and labels[windows[5][1]] == "normal"


def _braindecode():
    try:
        import braindecode.datasets
    except (ImportError, OSError) as exc:  # not installed, or torchaudio built for another torch
        pytest.skip(f"braindecode cannot be imported here: {exc}")
    return braindecode.datasets


def test_to_braindecode_without_braindecode_says_how(store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "braindecode.datasets", None)
    with pytest.raises(ImportError, match="pip install.*store_windows"):
        to_braindecode(store[0])


def test_to_braindecode_is_a_base_concat_dataset(store):
    datasets = _braindecode()
    path, a, _ = store
    concat = to_braindecode(path)
    assert isinstance(concat, datasets.BaseConcatDataset)
    assert len(concat) == 5 and concat.description["subject"].tolist() == ["p1", "p2"]
    np.testing.assert_allclose(concat[1][0], a[1], rtol=1e-5, atol=1e-5)
    splits = concat.split(by="subject")
    assert sorted(splits) == ["p1", "p2"] and len(splits["p2"]) == 2
