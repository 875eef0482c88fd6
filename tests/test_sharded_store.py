"""Sharded patch stores: a manifest over per-recording stores, read lazily, equal to a copy."""

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from neuroai.eeg import concatenate_stores, open_patch_store
from neuroai.eeg.shards import ShardedPatchStore
from neuroai.eeg.store import read_index
from neuroai.errors import ArtifactError, ConfigError
from neuroai.testing import tiny_patch_store

HEADER_KEYS_OF_BOTH = (
    "n_windows", "n_rows", "n_patches", "patch_len", "patch_stride", "segments",
    "window_samples", "window_s", "sfreq", "dtype", "channel_sets", "labels", "events",
    "splits", "recordings", "params",
)  # fmt: skip


def _shards(folder: Path, n: int = 5, *, montage: bool = False) -> list[Path]:
    """``n`` unequal stores: 1-3 recordings, 1-4 windows each, two channel sets (one with
    ``montage``), splits with and without ``eval``, so that codes must be remapped."""
    paths = []
    for i in range(n):
        channels = ("Fp1", "C3", "Cz", "C4", "O2") if i % 3 or montage else ("Fp2", "Pz", "O1")
        paths.append(
            tiny_patch_store(
                folder / f"rec{i:02d}_patches",
                n_recordings=1 + i % 3,
                windows_per_recording=1 + (i * 7) % 4,
                name_prefix=f"r{i}_",
                channels=channels,
                n_eval=i % 2,
                seed=i,
            )
        )
    return paths


@pytest.fixture
def corpus(tmp_path):
    shards = _shards(tmp_path / "results" / "recordings")
    copy = concatenate_stores(shards, tmp_path / "results" / "copy", stage="test")
    sharded = concatenate_stores(shards, tmp_path / "results" / "store", stage="test", sharded=True)
    return shards, copy, sharded


def _assert_same_store(sharded, copy):
    for key in HEADER_KEYS_OF_BOTH:
        assert sharded.header[key] == copy.header[key], key
    np.testing.assert_array_equal(sharded.windows, copy.windows)
    np.testing.assert_array_equal(sharded.events, copy.events)
    assert sharded.index.equals(copy.index)
    for window in range(len(copy)):
        np.testing.assert_array_equal(sharded.window(window), copy.window(window))
        rows = copy.rows(window)
        assert sharded.rows(window) == rows
        np.testing.assert_array_equal(sharded.stats[rows], copy.stats[rows])
        assert sharded.channels(window) == copy.channels(window)


def test_sharded_store_reads_equal_to_the_copied_store(corpus):
    shards, copy_path, sharded_path = corpus
    sharded, copy = open_patch_store(sharded_path), open_patch_store(copy_path)
    assert isinstance(sharded, ShardedPatchStore) and not isinstance(copy, ShardedPatchStore)
    assert sharded.header["form"] == "shards" and len(sharded.shards) == len(shards)
    assert len(copy.header["channel_sets"]) == 2 and copy.header["events"]  # merged for real
    _assert_same_store(sharded, copy)
    # The same files, byte for byte, where both forms have them.
    for name in ("index.tsv", "windows.npy", "events.npy"):
        assert (sharded_path / name).read_bytes() == (copy_path / name).read_bytes(), name
    # Rows across shard boundaries, integer arrays, masks, negative rows, a tuple index.
    n = copy.header["n_rows"]
    np.testing.assert_array_equal(sharded.patches[3 : n - 2], copy.patches[3 : n - 2])
    picked = np.array([n - 1, 0, 17, 17, 5])
    np.testing.assert_array_equal(sharded.patches[picked], copy.patches[picked])
    np.testing.assert_array_equal(sharded.stats[::7], copy.stats[::7])
    np.testing.assert_array_equal(sharded.patches[-1], copy.patches[-1])
    np.testing.assert_array_equal(sharded.patches[2:9, 1], copy.patches[2:9, 1])
    assert sharded.patches.shape == copy.patches.shape
    assert sharded.patches.dtype == copy.patches.dtype
    # A pickled store (a loader worker's) reopens its shards itself.
    sharded.window(0)
    clone = pickle.loads(pickle.dumps(sharded))
    assert not clone._open
    np.testing.assert_array_equal(clone.window(len(copy) - 1), copy.window(len(copy) - 1))


def test_a_sharded_store_copies_no_patch(corpus):
    _, copy_path, sharded_path = corpus
    assert (copy_path / "patches.npy").is_file()
    assert not (sharded_path / "patches.npy").exists()
    assert not (sharded_path / "stats.npy").exists()
    # Its shards are listed relative to the store folder, with their recorded checksums.
    for shard in open_patch_store(sharded_path).shards:
        assert shard["path"].startswith("../recordings/") and len(shard["sha256"]) == 64


def test_a_sharded_store_among_the_inputs_stands_for_its_shards(corpus, tmp_path):
    _, copy_path, sharded_path = corpus
    again = concatenate_stores([sharded_path], tmp_path / "again", stage="test")
    _assert_same_store(open_patch_store(again), open_patch_store(copy_path))


def _open_shard_files(root: Path) -> list[str]:
    """Open files of this process under ``root`` (memory maps hold one each)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_open_shards_stay_bounded_however_many_shards(tmp_path):
    root = (tmp_path / "recordings").resolve()
    shards = [
        tiny_patch_store(root / f"rec{i:02d}_patches", n_recordings=1, windows_per_recording=2,
                         name_prefix=f"r{i}_", n_eval=0, seed=i)
        for i in range(50)
    ]  # fmt: skip
    path = concatenate_stores(shards, tmp_path / "store", stage="test", sharded=True)

    def most_open(max_open_shards):
        store = open_patch_store(path, max_open_shards=max_open_shards)
        order = np.random.default_rng(0).permutation(len(store))
        most, seen = 0, set()
        for window in order:
            rows = store.rows(int(window))
            store.window(int(window)), store.stats[rows]
            files = _open_shard_files(root)
            seen.update(Path(f).parent.name for f in files)
            most = max(most, len({Path(f).parent for f in files}))
            assert all(Path(f).name in ("patches.npy", "stats.npy") for f in files)
        return most, len(seen)

    assert most_open(4) == (4, 50)  # every shard read, never more than 4 open at once
    assert most_open(64)[0] == 50  # the count is real: unbounded, all 50 stay open
    with pytest.raises(ConfigError, match="max_open_shards"):
        open_patch_store(path, max_open_shards=0)


def test_moving_the_results_folder_keeps_a_sharded_store_readable(corpus, tmp_path):
    moved = tmp_path / "elsewhere" / "results"
    moved.parent.mkdir()
    shutil.move(tmp_path / "results", moved)
    _assert_same_store(open_patch_store(moved / "store"), open_patch_store(moved / "copy"))


def _truncate(shard: Path) -> None:
    with open(shard / "patches.npy", "r+b") as handle:
        handle.truncate((shard / "patches.npy").stat().st_size - 64)


def _rebuild(shard: Path) -> None:  # same size, other content, a new provenance record
    tiny_patch_store(shard, n_recordings=1, windows_per_recording=1, name_prefix="r1_",
                     channels=("Fp1", "C3", "Cz", "C4", "O2"), n_eval=1, seed=99)  # fmt: skip


def _remove(shard: Path) -> None:
    shutil.rmtree(shard)


def _garble_header(shard: Path) -> None:  # size kept: only reading the array shows it
    with open(shard / "stats.npy", "r+b") as handle:
        handle.write(b"\x00" * 16)


@pytest.mark.parametrize(
    ("damage", "verify", "message"),
    [
        (_truncate, "size", r"damaged: .* bytes but its provenance record says"),
        (_rebuild, "size", r"changed after the store was written \(size .*; sha256"),
        (_remove, "size", r"does not exist .*keep them"),
        (_garble_header, "none", r"cannot read stats\.npy"),
        (_garble_header, "checksum", r"damaged: .*does not match the checksum"),
    ],
    ids=["truncated", "rebuilt", "missing", "corrupt-header", "corrupt-checksum"],
)
def test_a_damaged_shard_is_named_with_the_fix(corpus, damage, verify, message):
    shards, _, sharded_path = corpus
    damage(shards[1])
    store = open_patch_store(sharded_path, verify=verify)
    first_of_shard_1 = store.shards[0]["n_windows"]
    store.window(0)  # other shards still read
    with pytest.raises(ArtifactError, match=message) as error:
        store.window(first_of_shard_1)
    assert "Shard 1 (../recordings/rec01_patches)" in str(error.value)
    assert "eeg_store" in str(error.value)


def test_shards_with_another_sampling_rate_are_refused(tmp_path):
    first = tiny_patch_store(tmp_path / "a", n_recordings=1)
    other = tiny_patch_store(tmp_path / "b", n_recordings=1, sfreq=128.0, name_prefix="b")
    with pytest.raises(ArtifactError, match=r"differ in sfreq: 100.0 vs 128.0"):
        concatenate_stores([first, other], tmp_path / "store", stage="test", sharded=True)
    assert not (tmp_path / "store").exists()


def test_an_interrupted_manifest_is_never_taken_for_complete(corpus, tmp_path, monkeypatch):
    shards, _, _ = corpus
    import neuroai.eeg.shards as module

    def fail(*args, **kwargs):
        raise RuntimeError("simulated kill")

    monkeypatch.setattr(module, "_append_index", fail)
    with pytest.raises(RuntimeError, match="simulated kill"):
        concatenate_stores(shards, tmp_path / "half", stage="test", sharded=True)
    assert not (tmp_path / "half").exists()
    assert not list(tmp_path.glob(".half*"))


def test_training_batches_are_identical_on_sharded_and_copied_stores(tmp_path):
    pytest.importorskip("torch")
    import torch

    from neuroai.training.eeg_data import EEGWindowDataModule, store_layout, window_table

    shards = _shards(tmp_path / "recordings", 6, montage=True)  # EEGFormer: one channel set
    copy_path = concatenate_stores(shards, tmp_path / "copy", stage="test")
    sharded_path = concatenate_stores(shards, tmp_path / "store", stage="test", sharded=True)
    assert store_layout([sharded_path]) == store_layout([copy_path])
    n = len(open_patch_store(copy_path))
    tables = [window_table([p]).drop(columns="store") for p in (copy_path, sharded_path)]
    for table in tables:  # "<store name>/<recording>": the two stores' names differ
        for column in ("recording", "subject"):
            table[column] = table[column].str.split("/", n=1).str[1]
    assert tables[0].equals(tables[1])
    targets = np.arange(n) % 2

    def batches(path):
        module = EEGWindowDataModule(
            [path], np.arange(n - 4), np.arange(n - 4, n), train_targets=targets[: n - 4],
            val_targets=targets[n - 4 :], batch_size=3, val_batch_size=2, seed=7,
        )  # fmt: skip
        return list(module.train_dataloader()) + list(module.val_dataloader())

    got, expected = batches(sharded_path), batches(copy_path)
    assert len(got) == len(expected) > 2
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_eeg_store_form_is_validated_in_the_config():
    from neuroai.config import validate_config
    from neuroai.testing.workflow import REPO

    schema = REPO / "workflows" / "schemas" / "config.schema.yaml"
    base = {"datasets": {"x": {"card": "c.yaml", "layout": "tuh", "root": "/data"}}}
    config = {**base, "eeg": {"datasets": ["x"], "store": "shards", "max_open_shards": 16}}
    validate_config(config, schema)
    config = {**base, "eeg": {"datasets": ["x"]}}
    validate_config(config, schema)
    assert config["eeg"]["store"] == "copy" and config["eeg"]["max_open_shards"] == 64
    config = {**base, "eeg": {"datasets": ["x"], "store": "shard"}}
    with pytest.raises(ConfigError, match="'shard' is not one of.*Did you mean 'shards'"):
        validate_config(config, schema)
    config = {**base, "eeg": {"datasets": ["x"], "max_open_shards": 0}}
    with pytest.raises(ConfigError, match="max_open_shards"):
        validate_config(config, schema)


def test_index_of_a_sharded_store_reads_as_a_table(corpus):
    _, copy_path, sharded_path = corpus
    assert read_index(sharded_path).equals(read_index(copy_path))


@pytest.mark.integration
def test_workflow_with_eeg_store_shards_keeps_the_recordings_as_shards(tmp_path):
    pytest.importorskip("tvb_data", reason="the EEG demo needs tvb-data: pip install -e '.[demo]'")
    import yaml

    from neuroai.testing.workflow import run_snakemake

    config = {
        "datasets": {
            "tiny_eeg": {
                "card": "data_cards/demo_eeg_simulated.yaml",
                "layout": "tuh",
                "build": {"builder": "eeg_simulation", "n_recordings": 2, "duration_s": 30},
            }
        },
        "static_fc": {"datasets": []},
        "eeg": {"datasets": ["tiny_eeg"], "window_s": 6, "stride_s": 6, "patch_len": 30,
                "store": "shard"},
    }  # fmt: skip
    args = ("--configfile", str(tmp_path / "config.yaml"))
    summary = "results/eeg/tiny_eeg/summary.json"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    refused = run_snakemake(tmp_path, *args, "-n", summary)
    assert refused.returncode != 0
    assert "Did you mean 'shards'" in refused.stdout + refused.stderr
    config["eeg"].update(store="shards", max_open_shards=3)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, *args, "--cores", "2", "-p", summary)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "--form shards --max-open-shards 3" in done.stdout + done.stderr
    recordings = tmp_path / "results/eeg/tiny_eeg/recordings"
    kept = sorted(recordings.glob("*_patches"))
    assert len(kept) == 2  # not temporary: the store reads them
    store = open_patch_store(tmp_path / "results/eeg/tiny_eeg/store")
    assert isinstance(store, ShardedPatchStore) and store.max_open_shards == 3
    assert [store.shard_path(i).resolve() for i in range(2)] == [p.resolve() for p in kept]
    assert store.window(len(store) - 1).shape[0] == len(store.header["channel_sets"][0])
    again = run_snakemake(tmp_path, *args, "-n", summary)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_braindecode_bridge_serves_the_same_items(corpus):
    pytest.importorskip("torch")
    from neuroai.eeg import store_windows

    _, copy_path, sharded_path = corpus
    got, expected = store_windows(sharded_path), store_windows(copy_path)
    assert len(got) == len(expected)
    assert got.description.drop(columns="store").equals(expected.description.drop(columns="store"))
    for i in range(len(expected)):
        (x, y, inds), (x0, y0, inds0) = got[i], expected[i]
        np.testing.assert_array_equal(np.asarray(x), np.asarray(x0))
        assert y == y0 and list(inds) == list(inds0)
