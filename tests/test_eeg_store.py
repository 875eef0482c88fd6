"""Per-recording processing, the patch store, concatenation and the torch Dataset."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from neuroai.eeg import (
    EEGParams,
    PatchLayout,
    PatchPart,
    RecordingMeta,
    TuhSpan,
    concatenate_stores,
    open_patch_store,
    process_recording,
    save_recording,
    write_patch_store,
)
from neuroai.errors import ArtifactError, DataError
from neuroai.io import read_provenance
from neuroai.testing import tuh_edf

PARAMS = EEGParams(
    window_s=4.0, stride_s=4.0, patch_len=25, patch_stride=25, sfreq=200.0, h_freq=70.0
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tuh") / "edf" / "train" / "abnormal" / "01_tcp_ar"
    return tuh_edf(
        folder / "aaaaaaab_s001_t000.edf",
        duration_s=21.0,
        artifacts=[TuhSpan("FP1-F7", 5.0, 5.3, "eyem"), TuhSpan("T3-T5", 8.5, 12.5, "musc")],
        events=[TuhSpan("TERM", 0.0, 13.0, "bckg"), TuhSpan("TERM", 13.0, 21.0, "seiz")],
    )


@pytest.fixture(scope="module")
def saved(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = save_recording(recording, out / "rec_patches", out / "rec_qc.json", params=PARAMS)
    return out, result


def test_process_recording_windows_labels_and_qc(saved):
    _, result = saved
    index, qc = result.part.index, result.qc
    np.testing.assert_allclose(index["start_s"], [0, 4, 8, 12, 16])
    assert list(index["label"]) == ["abnormal"] * 5 and list(index["split"]) == ["train"] * 5
    # eyem (5.0-5.3 s) is in window 1; musc (8.5-12.5 s) overlaps window 2 by 3.5 s and
    # window 3 by 0.5 s (< event_min_overlap_s); seiz covers 13-21 s.
    assert list(index["events"]) == ["", "eyem", "musc", "seiz", "seiz"]
    assert result.part.patches.shape == (5 * 22, 32 + 16, 25)
    assert result.part.patches.dtype == np.float16
    assert qc["channels"]["interpolated"] == ["A1", "A2"]
    assert qc["channels"]["dropped"] == {"EEG EKG1-REF": "ecg"}
    assert qc["windows"]["total"] == 5 and qc["windows"]["kept"] == 5
    assert qc["events"] == {"eyem": 1, "musc": 1, "seiz": 2}
    peak = qc["psd"]["freqs"][int(np.argmax(qc["psd"]["power"][8:]) + 8)]
    assert 9.0 <= peak <= 11.0  # the generator's alpha rhythm


def test_store_reads_windows_and_provenance(saved):
    out, result = saved
    store = open_patch_store(out / "rec_patches")
    assert len(store) == 5 and store.header["n_rows"] == 110
    np.testing.assert_array_equal(store.window(3), result.part.patches[66:88])
    assert store.channels(0)[8] == "A1-T7"
    assert store.header["labels"] == ["abnormal"] and store.header["events"] == [
        "eyem",
        "musc",
        "seiz",
    ]
    np.testing.assert_array_equal(store.events[2], [0, 1, 0])
    assert store.windows["label"].tolist() == [0] * 5
    assert list(store.index["events"]) == ["", "eyem", "musc", "seiz", "seiz"]
    record = read_provenance(out / "rec_patches")
    assert record["stage"] == "eeg_recording"
    assert record["extra"]["channels"]["interpolated"] == ["A1", "A2"]
    assert record["params"]["montage"] == "tcp_22"
    assert any(p["path"].endswith(".csv_bi") for p in record["inputs"])
    qc = json.loads((out / "rec_qc.json").read_text())
    assert qc["recording"]["key"] == "aaaaaaab_s001_t000"
    with pytest.raises(IndexError):
        store.window(5)


def _part(n_windows, n_channels, label, events, *, seed, recording):
    rng = np.random.default_rng(seed)
    layout = PatchLayout(100, 10, 10)
    index = {
        "window": np.arange(n_windows),
        "recording": np.array([recording] * n_windows, dtype=object),
        "subject": np.array(["s"] * n_windows, dtype=object),
        "session": np.array(["n/a"] * n_windows, dtype=object),
        "split": np.array(
            ["train", "eval"] * (n_windows // 2) + ["train"] * (n_windows % 2), dtype=object
        ),
        "label": np.array([label] * n_windows, dtype=object),
        "events": np.array(events, dtype=object),
        "channel_set": np.zeros(n_windows, dtype=int),
        "row": np.arange(n_windows) * n_channels,
        "n_channels": np.full(n_windows, n_channels),
        "start_s": np.arange(n_windows) * 0.5,
    }
    patches = rng.standard_normal((n_windows * n_channels, layout.n_patches, 10)).astype(np.float16)
    stats = rng.standard_normal((n_windows * n_channels, 4)).astype(np.float32)
    names = [f"ch{i}" for i in range(n_channels)]
    return PatchPart(index, [names], patches, stats), layout


def _store(path, n_windows, n_channels, label, events, *, seed, recording="r"):
    part, layout = _part(n_windows, n_channels, label, events, seed=seed, recording=recording)
    write_patch_store(
        path, [part], layout=layout, sfreq=200.0, dtype="float16", params={"p": 1}, stage="test"
    )
    return part


def test_concatenate_and_combined_dataset(tmp_path):
    torch = pytest.importorskip("torch")
    from neuroai.eeg import EEGPatchDataset, collate_windows

    a = _store(tmp_path / "a", 3, 4, "normal", ["", "eyem", "eyem;musc"], seed=0, recording="ra")
    b = _store(tmp_path / "b", 5, 6, "n/a", ["seiz", "", "", "", "musc"], seed=1, recording="rb")
    concatenate_stores([tmp_path / "a", tmp_path / "b"], tmp_path / "ab", stage="test")
    ab = open_patch_store(tmp_path / "ab")
    assert len(ab) == 8 and ab.header["channel_sets"] == [
        [f"ch{i}" for i in range(4)],
        [f"ch{i}" for i in range(6)],
    ]
    np.testing.assert_array_equal(ab.window(4), b.patches[6:12])
    assert ab.header["events"] == ["eyem", "musc", "seiz"]
    dataset = EEGPatchDataset([tmp_path / "a", tmp_path / "b"])
    assert (
        len(dataset) == 8
        and dataset.labels == ["normal"]
        and dataset.events == ["eyem", "musc", "seiz"]
    )
    item = dataset[2]
    np.testing.assert_array_equal(item["time"].numpy(), a.patches[8:12, :10])
    np.testing.assert_array_equal(item["spectrum"].numpy(), a.patches[8:12, 10:])
    assert item["time"].dtype == torch.float16 and item["stats"].dtype == torch.float32
    assert item["label"] == 0 and item["events"].tolist() == [1.0, 1.0, 0.0]
    last = dataset[-1]
    assert last["label"] == -1 and last["events"].tolist() == [0.0, 1.0, 0.0]
    assert last["time"].shape == (6, 10, 10) and last["channel_set"] == 1
    as_float = EEGPatchDataset(tmp_path / "a", dtype=torch.float32)[2]["time"]
    np.testing.assert_array_equal(as_float.numpy(), a.patches[8:12, :10].astype(np.float32))
    batch = collate_windows([dataset[0], dataset[7]])
    assert batch["time"].shape == (2, 6, 10, 10)
    assert batch["channel_mask"].tolist() == [[True] * 4 + [False] * 2, [True] * 6]
    assert batch["label"].tolist() == [0, -1] and batch["index"].tolist() == [0, 7]
    assert dataset.label_counts() == {"normal": 3, "unlabelled": 5}
    assert len(EEGPatchDataset([tmp_path / "ab"], split="eval")) == 3
    clone = pickle.loads(pickle.dumps(dataset))  # DataLoader workers reopen the memory maps
    np.testing.assert_array_equal(clone[5]["time"].numpy(), dataset[5]["time"].numpy())
    assert EEGPatchDataset(tmp_path / "ab")[4]["time"].shape == (6, 10, 10)
    _store(tmp_path / "quiet", 2, 3, "normal", ["", ""], seed=2)  # no annotation labels at all
    assert EEGPatchDataset(tmp_path / "quiet")[1]["events"].shape == (0,)


def test_incompatible_stores_are_refused(tmp_path):
    pytest.importorskip("torch")
    from neuroai.eeg import EEGPatchDataset

    _store(tmp_path / "a", 2, 3, "normal", ["", ""], seed=0)
    part, _ = _part(2, 3, "normal", ["", ""], seed=0, recording="r")
    write_patch_store(
        tmp_path / "c",
        [part],
        layout=PatchLayout(100, 10, 10),
        sfreq=256.0,
        dtype="float16",
        params={},
        stage="test",
    )
    with pytest.raises(ArtifactError, match="sfreq: 200.0 vs 256.0"):
        concatenate_stores([tmp_path / "a", tmp_path / "c"], tmp_path / "ac", stage="test")
    assert not (tmp_path / "ac").exists()
    with pytest.raises(ArtifactError, match="sfreq differs"):
        EEGPatchDataset([tmp_path / "a", tmp_path / "c"])


def test_bad_recording_leaves_nothing_behind(tmp_path):
    edf = tuh_edf(tmp_path / "rec.edf", duration_s=8.0, sfreq=128.0)
    with pytest.raises(DataError, match="too low for a band-pass up to 75 Hz"):
        save_recording(edf, tmp_path / "rec_patches", tmp_path / "rec_qc.json", params=EEGParams())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.edf"]


def test_montage_none_keeps_channels_and_meta_override(recording):
    params = EEGParams(montage=None, window_s=5.0, stride_s=2.5, patch_len=50, patch_stride=50)
    meta = RecordingMeta(key="custom", subject="p1", split="eval", label="normal")
    result = process_recording(recording, params=params, meta=meta)
    assert result.part.channel_sets[0][:3] == ["Fp1", "Fp2", "F3"]
    assert len(result.part.channel_sets[0]) == 19
    assert list(result.part.index["recording"])[0] == "custom"
    assert len(result.part.index["start_s"]) == 7  # 21 s, 5 s windows every 2.5 s


def test_dead_and_railed_stretches_reject_windows(tmp_path):
    from neuroai.eeg import write_edf
    from neuroai.testing import tuh_raw

    raw = tuh_raw(sfreq=200.0, duration_s=21.0)
    data = raw.get_data() * 1e6
    data[:, 1000:1800] = 0.0  # every channel dead, 5-9 s
    data[8, 2800:3400] = 3000.0  # O1 at the top of the physical range, 14-17 s
    edf = write_edf(tmp_path / "faults.edf", data, sfreq=200.0, ch_names=raw.ch_names)
    result = process_recording(edf, params=PARAMS)
    counts = result.qc["windows"]
    assert (counts["flat"], counts["saturated"], counts["kept"]) == (2, 2, 1)
    np.testing.assert_allclose(result.part.index["start_s"], [0.0])


def test_concatenating_many_stores_keeps_few_files_open(tmp_path):
    # 300 stores under a limit of 64 open files (a subprocess, so pytest keeps its own
    # limit): with every store's two memory maps open at once, this fails with "Too many
    # open files" at about 30 stores.
    for i in range(300):
        _store(tmp_path / f"s{i:03d}", 1, 2, "normal", ["eyem"], seed=i, recording=f"r{i:03d}")
    script = f"""
import resource
from pathlib import Path
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
from neuroai.eeg import concatenate_stores
paths = sorted(p for p in Path({str(tmp_path)!r}).glob("s*") if p.is_dir())
concatenate_stores(paths, Path({str(tmp_path)!r}) / "all", stage="test")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    merged = open_patch_store(tmp_path / "all")
    assert len(merged) == 300 and merged.header["n_rows"] == 600
    last = open_patch_store(tmp_path / "s299")
    np.testing.assert_array_equal(merged.window(299), last.window(0))
    assert merged.index["recording"].tolist() == [f"r{i:03d}" for i in range(300)]
