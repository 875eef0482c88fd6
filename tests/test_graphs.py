"""Window graphs, PyG conversion, and the on-disk graph dataset."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from neuroai.errors import ArtifactError, ConfigError, DataError
from neuroai.fmri import dynamic_connectivity, sparsify, window_graphs
from neuroai.fmri.graph_dataset import GraphArrays, GraphWindowDataset, write_graph_dataset
from neuroai.fmri.graphs import node_features, window_statistics
from neuroai.io import read_provenance
from neuroai.testing import correlated_timeseries

R = 9


@pytest.fixture(scope="module")
def dfc():
    return dynamic_connectivity(correlated_timeseries(71, R, seed=1), 20, 5)


def test_global_sparsity_keeps_the_strongest_edges(dfc):
    keep = sparsify(dfc, density=0.25)
    n_edges = R * (R - 1) // 2
    assert keep.shape == dfc.shape and keep.dtype == bool
    assert np.array_equal(keep, np.swapaxes(keep, 1, 2))
    assert not keep[:, np.arange(R), np.arange(R)].any()
    assert np.all(keep.sum(axis=(1, 2)) == 2 * round(0.25 * n_edges))
    rows, cols = np.triu_indices(R, 1)
    for w in range(dfc.shape[0]):
        kept = np.abs(dfc[w, rows, cols])[keep[w, rows, cols]]
        dropped = np.abs(dfc[w, rows, cols])[~keep[w, rows, cols]]
        assert kept.min() >= dropped.max()


def test_node_and_threshold_sparsity(dfc):
    keep = sparsify(dfc, method="node", density=0.25)
    k = round(0.25 * (R - 1))
    assert np.all(keep.sum(axis=2) >= k) and np.array_equal(keep, np.swapaxes(keep, 1, 2))
    signed = sparsify(dfc, method="threshold", threshold=0.2, absolute=False)
    off = ~np.eye(R, dtype=bool)
    assert np.array_equal(signed, (dfc > 0.2) & off)
    with pytest.raises(ConfigError, match="needs a threshold"):
        sparsify(dfc, method="threshold")
    with pytest.raises(ConfigError, match="density must be in"):
        sparsify(dfc, density=0)


def test_node_features(dfc):
    ts = correlated_timeseries(71, R, seed=1)
    x, names = node_features(
        dfc, features=("connectivity", "identity", "timeseries"), ts=ts, window=20, step=5
    )
    assert x.shape == (dfc.shape[0], R, 2 * R + 4) and len(names) == x.shape[-1]
    np.testing.assert_allclose(x[:, :, :R], dfc, atol=1e-6)
    np.testing.assert_array_equal(x[3, :, R : 2 * R], np.eye(R))
    window = ts[10:30]
    expected = [window.mean(0), window.std(0, ddof=1), stats.skew(window), stats.kurtosis(window)]
    np.testing.assert_allclose(window_statistics(ts, 20, 5)[2], np.stack(expected, -1), rtol=1e-10)
    with pytest.raises(DataError, match="not from the same run"):
        node_features(dfc, features=("timeseries",), ts=ts[:60], window=20, step=5)


def test_window_graphs_to_pyg(dfc):
    torch = pytest.importorskip("torch")
    from torch_geometric.loader import DataLoader

    graphs = window_graphs(dfc, density=0.3, features=("identity",))
    assert graphs.x.shape == (dfc.shape[0], R, 0) and graphs.identity
    first = graphs.window_data(0)
    assert first.x.shape == (R, R) and first.edge_attr.shape == (first.edge_index.shape[1], 2)
    expected = dfc[0][tuple(first.edge_index.numpy())].astype(np.float32)
    torch.testing.assert_close(first.edge_weight, torch.from_numpy(expected))
    sequence = graphs.to_data(y=torch.tensor([1]))
    assert sequence.num_nodes == dfc.shape[0] * R
    assert int(sequence.window.max()) == dfc.shape[0] - 1
    batch = next(iter(DataLoader([sequence, sequence], batch_size=2)))
    assert int(batch.window.max()) == 2 * dfc.shape[0] - 1  # windows stay distinct across runs
    assert batch.edge_index.max() < batch.num_nodes


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, dfc):
    folder = tmp_path_factory.mktemp("graphs")
    ts = correlated_timeseries(71, R, seed=1)
    runs = {
        f"sub-0{i}_task-rest": window_graphs(
            dfc[: 6 + i],
            features=("timeseries", "identity"),
            ts=ts[: 5 * (5 + i) + 20],
            window=20,
            step=5,
        )
        for i in range(3)
    }
    return _write(folder / "graphs", runs), runs


def _write(path, runs):
    participants = pd.DataFrame(
        {
            "participant_id": ["sub-00", "sub-01", "sub-02"],
            "site": ["A", "B", "A"],
            "age": ["20", "n/a", "31"],
        }
    ).replace("n/a", np.nan)
    return write_graph_dataset(
        path,
        runs,
        subjects={f"sub-0{i}_task-rest": f"0{i}" for i in range(3)},
        regions=[f"r{i}" for i in range(R)],
        windowing={"window": 20, "step": 5, "kind": "correlation", "fisher_z": False},
        sparsity={"method": "global", "density": 0.3, "threshold": None, "absolute": True},
        participants=participants,
        excluded={"sub-09_task-rest": "12 time points < window 20"},
    )


def test_streamed_dataset_equals_the_concatenated_runs(dataset, dfc, tmp_path):
    path, runs = dataset
    keys = list(runs)
    edge_counts = np.concatenate([np.diff(runs[k].window_ptr) for k in keys])
    expected = {
        "x": np.concatenate([runs[k].x for k in keys]).astype(np.float32),
        "edge_index": np.concatenate([runs[k].edge_index for k in keys], axis=1),
        "edge_weight": np.concatenate([runs[k].edge_weight for k in keys]).astype(np.float32),
        "window_ptr": np.concatenate([[0], np.cumsum(edge_counts)]),
        "run_ptr": np.concatenate([[0], np.cumsum([runs[k].n_windows for k in keys])]),
    }
    for name, value in expected.items():
        stored = np.load(path / f"{name}.npy")
        np.testing.assert_array_equal(stored, value, err_msg=name)
        assert stored.shape == value.shape, name
    assert np.load(path / "edge_index.npy").dtype == np.int16
    # From a generator that builds one run at a time: the same files, byte for byte.
    built = []

    def one_at_a_time():
        for key, graphs in runs.items():
            built.append(key)
            yield key, graphs

    again = _write(tmp_path / "streamed", one_at_a_time())
    assert built == keys
    for name in (*expected, "label_site", "label_age"):
        assert (again / f"{name}.npy").read_bytes() == (path / f"{name}.npy").read_bytes(), name
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in path.iterdir())
    extra = read_provenance(again)["extra"]
    assert extra == {
        "n_runs": 3,
        "n_regions": R,
        "n_windows": int(expected["run_ptr"][-1]),
        "n_edges": int(expected["window_ptr"][-1]),
    }
    # A run with other features stops the write, and nothing is left behind.
    odd = window_graphs(dfc[:2], features=("identity",))
    with pytest.raises(DataError, match="same atlas and features"):
        _write(tmp_path / "broken", iter([(keys[0], runs[keys[0]]), ("sub-01_task-rest", odd)]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed", "streamed.prov.json"]


def test_graph_dataset_roundtrip(dataset):
    path, runs = dataset
    arrays = GraphArrays(path)
    assert arrays.meta["format"] == "neuroai.graphs/1" and arrays.n_runs == 3
    assert isinstance(arrays["x"], np.memmap)  # read lazily
    back = arrays.run(1)
    np.testing.assert_array_equal(back.x, runs["sub-01_task-rest"].x)
    np.testing.assert_array_equal(back.edge_index, runs["sub-01_task-rest"].edge_index)
    np.testing.assert_array_equal(back.window_ptr, runs["sub-01_task-rest"].window_ptr)
    assert arrays.meta["labels"]["site"] == {"type": "categorical", "categories": ["A", "B"]}
    np.testing.assert_array_equal(arrays.label("site"), [0, 1, 0])
    assert np.isnan(arrays.label("age")[1]) and arrays.label("age")[2] == 31
    assert arrays.meta["excluded_runs"][0]["key"] == "sub-09_task-rest"


def test_pyg_dataset_by_run_and_by_window(dataset):
    pytest.importorskip("torch_geometric")
    path, runs = dataset
    by_run = GraphWindowDataset(path, target="site")
    assert len(by_run) == 3
    item = by_run[2]
    assert item.num_nodes == runs["sub-02_task-rest"].n_windows * R
    assert item.x.shape[1] == 4 + R and int(item.y) == 0
    by_window = GraphWindowDataset(path, unit="window")
    assert len(by_window) == sum(g.n_windows for g in runs.values())
    assert by_window[6].x.shape == (R, 4 + R) and int(by_window[6].run_index) == 1
    with pytest.raises(DataError, match="no label 'sex'"):
        GraphWindowDataset(path, target="sex")


def test_changed_or_foreign_dataset_is_refused(dataset, tmp_path):
    # A copy, with its provenance record, so that the module's dataset stays as written.
    source, _ = dataset
    path = tmp_path / source.name
    shutil.copytree(source, path)
    for record in source.parent.glob(source.name + ".*"):
        shutil.copy2(record, tmp_path / record.name)
    GraphArrays(path)  # the copy reads as the original does
    meta = json.loads((path / "dataset.json").read_text())
    (path / "dataset.json").write_text(json.dumps({**meta, "format": "other/9"}))
    with pytest.raises(ArtifactError, match="was changed|format"):
        GraphArrays(path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArtifactError, match="not a graph dataset"):
        GraphArrays(empty)
