"""Bring your own data (issue 20, item 4): arrays, time series and volumes the pipeline did
not write are external inputs, read without unpickling and named by their checksum in the
provenance of what is made from them; artifacts of ours stay strictly checked."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroai.errors import ArtifactError, ConfigError, DataError, ProvenanceError
from neuroai.io import (
    InputArrays,
    has_record,
    load_array,
    load_json,
    provenance_path,
    read_input_array,
    read_provenance,
    save_array,
    write_region_timeseries,
)
from neuroai.testing.generators import correlated_timeseries

N_REGIONS = 7
LENGTHS = (41, 53, 47)  # unequal runs, none equal to the number of regions
REGIONS = [f"region{i}" for i in range(N_REGIONS)]


def described(path: Path) -> dict:
    """What a record must say of an external file, computed here with hashlib."""
    return {
        "path": str(path),
        "size": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def user_timeseries(path: Path, data: np.ndarray, tr: float = 2.0) -> Path:
    """A region time series as a user writes it: TSV and a sidecar without "Provenance"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\t".join(REGIONS) + "\n")
        np.savetxt(handle, data, delimiter="\t", fmt="%.8g")
    path.with_suffix(".json").write_text(json.dumps({"RepetitionTime": tr}), encoding="utf-8")
    return path


def series() -> list[np.ndarray]:
    return [correlated_timeseries(n, N_REGIONS, seed=i, n_factors=2) for i, n in enumerate(LENGTHS)]


# -- the rule itself (neuroai.io.external) --------------------------------------------------


def test_a_user_array_is_read_as_given_and_described_by_its_checksum(tmp_path, caplog):
    array = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    mine = tmp_path / "mine.npy"
    np.save(mine, array)
    with caplog.at_level("INFO", logger="neuroai"):
        got, external = read_input_array(mine, ndim=2)
    np.testing.assert_array_equal(got, array)
    assert external == described(mine)
    assert f"{mine} has no provenance record: read as an external input" in caplog.text
    ours = save_array(tmp_path / "ours.npy", array, stage="static_fc")
    got, external = read_input_array(ours, stage="static_fc", ndim=2)
    np.testing.assert_array_equal(got, array)
    assert external is None and has_record(ours) and not has_record(mine)
    # A BIDS time series of ours keeps its record in its sidecar.
    tsv = write_region_timeseries(
        tmp_path / "x_timeseries.tsv", array, tr=2.0, regions=list("abcdef")
    )
    assert has_record(tsv) and not has_record(
        user_timeseries(tmp_path / "u_timeseries.tsv", array[:, :1])
    )


def test_an_artifact_of_ours_that_does_not_match_its_record_is_still_refused(tmp_path):
    ours = save_array(
        tmp_path / "fc.npy", np.eye(3), stage="static_fc", params={"kind": "correlation"}
    )
    with pytest.raises(ProvenanceError, match="stage 'dynamic_fc' was expected"):
        read_input_array(ours, stage="dynamic_fc")
    with pytest.raises(ProvenanceError, match="kind: made with 'correlation', asked 'covariance'"):
        read_input_array(ours, params={"kind": "covariance"})
    with open(ours, "ab") as handle:  # changed after it was written
        handle.write(b"\0" * 8)
    with pytest.raises(ArtifactError, match="provenance record says"):
        read_input_array(ours)
    # A broken record is ours, broken: refused, never taken for "no record".
    provenance_path(ours).write_text("{not json")
    with pytest.raises(ProvenanceError, match="not valid JSON"):
        read_input_array(ours)


class _Trap:
    """Unpickling this runs ``Path.touch(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _corrupt(kind: str, path: Path) -> None:
    good = np.random.default_rng(1).standard_normal((4, 4))
    if kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "text":
        path.write_text("0.1,0.2\n0.3,0.4\n")
    elif kind == "pickle":
        import pickle

        path.write_bytes(pickle.dumps(good))
    elif kind == "npz":
        with open(path, "wb") as handle:
            np.savez(handle, fc=good)
    elif kind == "objects":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "nan":
        good[2, 1] = np.nan
        np.save(path, good)
    elif kind == "complex":
        np.save(path, good.astype(complex))
    elif kind == "bool":
        np.save(path, good > 0)
    elif kind == "3d":
        np.save(path, np.stack([good, good]))
    elif kind == "not square":
        np.save(path, good[:3])


CORRUPT = {
    "truncated": "not a plain numeric .npy array",
    "text": "it is not an .npy file",
    "pickle": "it is a pickle .* never unpickles",
    "npz": "is an .npz archive",
    "objects": "holds Python objects .* never unpickles",
    "nan": r"1 NaN or Inf values \(the first at index \(2, 1\)\)",
    "complex": "holds complex128 values",
    "bool": "holds bool values",
    "3d": r"\(2, 4, 4\) \(3 dimensions\); a connectivity matrix has 2 dimensions",
    "not square": "is square in its last two axes",
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_an_unreadable_user_file_is_refused_naming_the_file_and_the_problem(tmp_path, kind):
    path = tmp_path / f"sub-01_{kind.replace(' ', '_')}.npy"
    _corrupt(kind, path)
    with pytest.raises(DataError) as error:
        read_input_array(path, ndim=2, square=True, what="a connectivity matrix")
    assert str(path) in str(error.value)
    assert re.search(CORRUPT[kind], str(error.value)), str(error.value)


def test_a_pickle_in_a_user_file_is_never_run(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "trap.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never unpickles"):
        read_input_array(path)
    with pytest.raises(DataError):
        InputArrays([path])[0]
    assert not marker.exists()
    np.load(path, allow_pickle=True)  # the trap works: a reader that unpickled would set it
    assert marker.exists()


# -- static and dynamic FC: a user's region time series -------------------------------------


def test_fc_stages_name_a_user_time_series_by_its_checksum(tmp_path):
    from nilearn.connectome import ConnectivityMeasure

    from neuroai.pipelines import dynamic_fc, static_fc

    tsv = user_timeseries(tmp_path / "sub-01_task-rest_timeseries.tsv", series()[0])
    data = np.loadtxt(tsv, skiprows=1)  # what the file holds, as written
    out = static_fc.run(tsv, tmp_path / "sub-01_connectivity.npy")
    oracle = ConnectivityMeasure(kind="correlation").fit_transform([data])[0]
    np.testing.assert_allclose(load_array(out, stage="static_fc"), oracle, atol=1e-12)
    assert read_provenance(out)["extra"]["external_inputs"] == [described(tsv)]
    dfc = dynamic_fc.run(tsv, tmp_path / "sub-01_dfc.npy", window=10, step=3)
    assert read_provenance(dfc)["extra"]["external_inputs"] == [described(tsv)]
    ours = write_region_timeseries(
        tmp_path / "sub-02_task-rest_timeseries.tsv", data, tr=2.0, regions=REGIONS
    )
    again = static_fc.run(ours, tmp_path / "sub-02_connectivity.npy")
    assert read_provenance(again)["extra"]["external_inputs"] == []
    np.testing.assert_array_equal(load_array(again), load_array(out))


# -- group FC: a user's connectivity matrices -----------------------------------------------


def _user_matrices(folder: Path) -> tuple[list[Path], np.ndarray]:
    """Each run's correlation matrix by nilearn, saved with numpy; nilearn's group mean."""
    from nilearn.connectome import ConnectivityMeasure

    measure = ConnectivityMeasure(kind="correlation")
    matrices = measure.fit_transform(series())
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, matrix in enumerate(matrices):
        paths.append(folder / f"sub-{i + 1:02d}_task-rest_connectivity.npy")
        np.save(paths[-1], matrix)
    return paths, measure.mean_


def test_group_fc_of_user_matrices_equals_nilearn_and_our_own_stage(tmp_path):
    from neuroai.pipelines import group_fc, static_fc

    paths, nilearn_mean = _user_matrices(tmp_path / "mine")
    mean, summary = group_fc.run(
        paths, tmp_path / "g" / "mean.npy", tmp_path / "g" / "summary.json", dataset="mine"
    )
    np.testing.assert_allclose(load_array(mean, stage="group_fc"), nilearn_mean, atol=1e-12)
    for artifact in (mean, summary):
        assert read_provenance(artifact)["extra"]["external_inputs"] == [
            described(p) for p in paths
        ]
    document = load_json(summary, stage="group_fc")
    assert document["n_runs"] == 3 and document["kind"] == "unknown"
    # The same runs through our own stages: the same group mean, no external input.
    ours = []
    for i, data in enumerate(series()):
        tsv = write_region_timeseries(
            tmp_path / "ts" / f"sub-{i + 1:02d}_task-rest_timeseries.tsv",
            data,
            tr=2.0,
            regions=REGIONS,
        )
        ours.append(static_fc.run(tsv, tmp_path / "fc" / f"sub-{i + 1:02d}_connectivity.npy"))
    own_mean, own_summary = group_fc.run(
        ours, tmp_path / "o" / "mean.npy", tmp_path / "o" / "summary.json", dataset="ours"
    )
    # (a TSV keeps 8 significant digits of the time series)
    np.testing.assert_allclose(load_array(own_mean), load_array(mean), atol=1e-6)
    assert read_provenance(own_mean)["extra"]["external_inputs"] == []
    assert load_json(own_summary)["kind"] == "correlation"
    # Mixed: ours and the user's in one summary; only the user's are external.
    mixed, _ = group_fc.run(
        [ours[0], *paths[1:]], tmp_path / "x" / "mean.npy", tmp_path / "x" / "s.json", dataset="x"
    )
    assert read_provenance(mixed)["extra"]["external_inputs"] == [described(p) for p in paths[1:]]


def test_group_fc_command_line_takes_user_matrices(tmp_path):
    paths, nilearn_mean = _user_matrices(tmp_path / "mine")
    log = tmp_path / "group_fc.log"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuroai.pipelines.group_fc",
            "--connectivity",
            *map(str, paths),
            "--mean-output",
            str(tmp_path / "mean.npy"),
            "--summary-output",
            str(tmp_path / "summary.json"),
            "--params",
            '{"dataset": "mine", "group_by": null}',
            "--log",
            str(log),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(load_array(tmp_path / "mean.npy"), nilearn_mean, atol=1e-12)
    text = log.read_text()
    assert all(f"{p} has no provenance record: read as an external input" in text for p in paths)


def test_group_fc_refuses_a_changed_artifact_and_a_broken_user_file_writing_nothing(tmp_path):
    from neuroai.pipelines import group_fc

    paths, _ = _user_matrices(tmp_path / "mine")
    outputs = (tmp_path / "out" / "mean.npy", tmp_path / "out" / "summary.json")
    ours = save_array(tmp_path / "sub-09_connectivity.npy", np.eye(N_REGIONS), stage="static_fc")
    with open(ours, "ab") as handle:
        handle.write(b"\0" * 8)
    with pytest.raises(ArtifactError, match=f"{re.escape(str(ours))} is .* provenance record says"):
        group_fc.run([*paths, ours], *outputs, dataset="mine")
    broken = np.load(paths[1])
    broken[0, 3] = np.inf
    np.save(paths[1], broken)
    with pytest.raises(DataError, match=f"{re.escape(str(paths[1]))} contains 1 NaN or Inf"):
        group_fc.run(paths, *outputs, dataset="mine")
    np.save(paths[1], np.zeros((2, N_REGIONS, N_REGIONS)))  # a dynamic FC given by mistake
    with pytest.raises(DataError, match="a connectivity matrix has 2 dimensions"):
        group_fc.run(paths, *outputs, dataset="mine")
    assert not outputs[0].parent.exists()


# -- graph dataset: a user's dynamic FC -----------------------------------------------------


WINDOW, STEP = 10, 3


def _sliding_correlation(data: np.ndarray) -> np.ndarray:
    """The oracle: np.corrcoef of each window, float32 as the dynamic_fc stage stores it."""
    starts = range(0, data.shape[0] - WINDOW + 1, STEP)
    return np.stack([np.corrcoef(data[s : s + WINDOW].T) for s in starts]).astype(np.float32)


@pytest.fixture
def runs(tmp_path):
    """Each run twice: our time series and dynamic FC; the user's (numpy, no record)."""
    from neuroai.pipelines import dynamic_fc

    ours, mine = {"dfc": [], "ts": []}, {"dfc": [], "ts": []}
    for i, data in enumerate(series()):
        key = f"sub-{i + 1:02d}_task-rest"
        tsv = write_region_timeseries(
            tmp_path / "ours" / f"{key}_timeseries.tsv", data, tr=2.0, regions=REGIONS
        )
        ours["ts"].append(tsv)
        ours["dfc"].append(
            dynamic_fc.run(tsv, tmp_path / "ours" / f"{key}_dfc.npy", window=WINDOW, step=STEP)
        )
        user_tsv = user_timeseries(tmp_path / "mine" / f"{key}_timeseries.tsv", data)
        mine["ts"].append(user_tsv)
        mine["dfc"].append(tmp_path / "mine" / f"{key}_dfc.npy")
        np.save(mine["dfc"][-1], _sliding_correlation(np.loadtxt(user_tsv, skiprows=1)))
    return ours, mine


def _build(tmp_path, name, dfc, ts, **options):
    from neuroai.pipelines import graph_dataset

    folder = tmp_path / name
    graph_dataset.run(
        dfc,
        ts,
        folder / "graphs",
        folder / "summary.json",
        folder / "variability.npy",
        dataset=name,
        **options,
    )
    return folder


def test_graph_dataset_from_user_dynamic_fc_equals_the_one_from_ours(tmp_path, runs):
    ours, mine = runs
    own = _build(tmp_path, "own", ours["dfc"], ours["ts"])
    user = _build(
        tmp_path, "user", mine["dfc"], mine["ts"], windowing={"window": WINDOW, "step": STEP}
    )
    for name in ("x", "edge_weight"):
        np.testing.assert_allclose(
            np.load(user / "graphs" / f"{name}.npy"),
            np.load(own / "graphs" / f"{name}.npy"),
            atol=1e-6,
        )
    for name in ("edge_index", "window_ptr", "run_ptr"):
        np.testing.assert_array_equal(
            np.load(user / "graphs" / f"{name}.npy"), np.load(own / "graphs" / f"{name}.npy")
        )
    meta = [json.loads((f / "graphs" / "dataset.json").read_text()) for f in (own, user)]
    assert meta[0]["windowing"] == meta[1]["windowing"] and meta[0]["regions"] == meta[1]["regions"]
    np.testing.assert_allclose(
        load_array(user / "variability.npy"), load_array(own / "variability.npy"), atol=1e-6
    )
    expected = [described(p) for p in (*mine["dfc"], *mine["ts"])]
    for artifact in (user / "graphs", user / "summary.json", user / "variability.npy"):
        assert read_provenance(artifact)["extra"]["external_inputs"] == expected
    assert read_provenance(own / "graphs")["extra"]["external_inputs"] == []


def test_graph_dataset_command_line_takes_user_dynamic_fc(tmp_path, runs):
    _, mine = runs
    lists = {}
    for name in ("dfc", "ts"):
        lists[name] = tmp_path / f"{name}.txt"
        lists[name].write_text("".join(f"{p}\n" for p in mine[name]), encoding="utf-8")
    params = {"dataset": "cli", "windowing": {"window": WINDOW, "step": STEP}}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "neuroai.pipelines.graph_dataset",
            "--dynamic-fc",
            f"@{lists['dfc']}",
            "--timeseries",
            f"@{lists['ts']}",
            "--output",
            str(tmp_path / "cli" / "graphs"),
            "--summary-output",
            str(tmp_path / "cli" / "summary.json"),
            "--variability-output",
            str(tmp_path / "cli" / "variability.npy"),
            "--params",
            json.dumps(params),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    api = _build(tmp_path, "api", mine["dfc"], mine["ts"], windowing=params["windowing"])
    for name in ("x", "edge_index", "edge_weight"):
        np.testing.assert_array_equal(
            np.load(tmp_path / "cli" / "graphs" / f"{name}.npy"),
            np.load(api / "graphs" / f"{name}.npy"),
        )
    record = read_provenance(tmp_path / "cli" / "graphs")
    assert record["params"]["windowing"] == {
        **params["windowing"],
        "kind": "correlation",
        "fisher_z": False,
    }
    assert len(record["extra"]["external_inputs"]) == 2 * len(LENGTHS)


def test_graph_dataset_refusals_leave_nothing_behind(tmp_path, runs):
    ours, mine = runs
    with pytest.raises(ConfigError, match=f"{re.escape(str(mine['dfc'][0]))} has no provenance"):
        _build(tmp_path, "a", mine["dfc"], mine["ts"])  # the windowing is not given
    with pytest.raises(DataError, match="must share the windowing"):
        _build(
            tmp_path,
            "b",
            [ours["dfc"][0], *mine["dfc"][1:]],
            [ours["ts"][0], *mine["ts"][1:]],
            windowing={"window": WINDOW, "step": STEP + 1},
        )
    with pytest.raises(ConfigError, match="'step', a positive whole number"):
        _build(tmp_path, "c", mine["dfc"], mine["ts"], windowing={"window": WINDOW})
    np.save(mine["dfc"][2], np.zeros((4, N_REGIONS, N_REGIONS - 1), np.float32))
    with pytest.raises(DataError, match=f"{re.escape(str(mine['dfc'][2]))} holds .* square"):
        _build(tmp_path, "d", mine["dfc"], mine["ts"], windowing={"window": WINDOW, "step": STEP})
    with open(ours["dfc"][1], "ab") as handle:
        handle.write(b"\0" * 8)
    with pytest.raises(ArtifactError, match="provenance record says"):
        _build(tmp_path, "e", ours["dfc"], ours["ts"])
    assert not [p for name in "abcde" for p in (tmp_path / name).rglob("*")]


# -- predict and embed: a user's volume ------------------------------------------------------


@pytest.fixture(scope="module")
def dsd_model(tmp_path_factory):
    import torch

    from neuroai.models import create_model

    torch.manual_seed(0)
    model = create_model("dsd", preset="demo", backbone="unet", in_channels=1, out_channels=3)
    return model.save_pretrained(tmp_path_factory.mktemp("dsd") / "model")


def test_predict_and_embed_take_a_user_volume(tmp_path, dsd_model):
    import nibabel as nib

    from neuroai.io import load_table, write_artifact
    from neuroai.pipelines import embed, predict

    volume = np.random.default_rng(0).random((19, 23, 17)).astype(np.float32)
    image = nib.Nifti1Image(volume, np.diag([1.5, 1.0, 1.2, 1.0]))
    mine = tmp_path / "mine" / "case-01.nii.gz"
    mine.parent.mkdir()
    nib.save(image, mine)  # the user's: no provenance record
    ours = write_artifact(
        tmp_path / "ours" / "case-01.nii.gz", lambda tmp: nib.save(image, tmp), stage="volumes"
    )
    maps = {}
    for name, path in (("mine", mine), ("ours", ours)):
        index = predict.run(dsd_model, tmp_path / f"pred-{name}" / "index.tsv", inputs=[path])
        label_map = Path(load_table(index, stage="predict")["prediction"][0])
        maps[name] = np.asarray(nib.load(label_map).dataobj)
        expected = [described(path)] if name == "mine" else []
        assert read_provenance(index)["extra"]["external_inputs"] == expected
        assert read_provenance(label_map)["extra"]["external_inputs"] == expected
    np.testing.assert_array_equal(maps["mine"], maps["ours"])
    assert maps["mine"].shape == volume.shape
    table = embed.run(dsd_model, tmp_path / "emb" / "embeddings.parquet", inputs=[mine])
    assert read_provenance(table)["extra"]["external_inputs"] == [described(mine)]
    # A truncated volume of the user's, given with a good one: refused naming it, before
    # any label map is written.
    broken = tmp_path / "mine" / "case-02.nii.gz"
    broken.write_bytes(mine.read_bytes()[: mine.stat().st_size // 2])
    out = tmp_path / "pred-broken" / "index.tsv"
    with pytest.raises(DataError, match=f"{re.escape(str(broken))} .* cannot be read as a NIfTI"):
        predict.run(dsd_model, out, inputs=[mine, broken])
    assert not out.parent.exists() or not list(out.parent.iterdir())
    with open(ours, "ab") as handle:  # ours, changed after it was written
        handle.write(b"\0" * 8)
    with pytest.raises(ArtifactError, match="provenance record says"):
        predict.run(dsd_model, tmp_path / "pred-changed" / "index.tsv", inputs=[ours])


def test_predict_takes_a_user_array_of_a_preprocessed_volume(tmp_path, dsd_model):
    import torch

    from neuroai.io import load_table
    from neuroai.models import load_pretrained
    from neuroai.pipelines import predict

    volume = np.random.default_rng(1).random((1, 16, 16, 16)).astype(np.float32)
    mine = tmp_path / "case-03.npy"
    np.save(mine, volume)  # the user's: no provenance record
    index = predict.run(dsd_model, tmp_path / "pred" / "index.tsv", inputs=[mine])
    row = load_table(index, stage="predict").iloc[0]
    assert row["n_items"] == 1
    assert read_provenance(index)["extra"]["external_inputs"] == [described(mine)]
    with torch.no_grad():
        expected = load_pretrained(dsd_model).predict(torch.from_numpy(volume)[None])
    saved = np.load(row["prediction"])
    np.testing.assert_allclose(saved, expected.reshape(1, -1).numpy(), rtol=1e-5, atol=1e-6)


# -- dFC-GNN fine-tuning: a user's static FC for the baseline ------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_the_static_fc_baseline_takes_user_matrices(tmp_path):
    from neuroai.io import load_table
    from neuroai.pipelines import dfc_gnn_finetune, dfc_gnn_pretrain
    from neuroai.testing.graphs import graph_dataset

    runs = tmp_path / "runs"
    graphs = graph_dataset(tmp_path / "graphs", run_files=runs)
    options = {
        "data": {"crop_windows": 5, "samples_per_run": 1, "eval_crops": 2},
        "holdout": {"stratify": ["site"]},
    }
    pretrained = tmp_path / "pretrained" / "model"
    dfc_gnn_pretrain.run(
        graphs,
        pretrained,
        tmp_path / "pretrained" / "history.tsv",
        model={"preset": "demo", "options": {"hidden": 8, "gin_layers": 1, "heads": 1}},
        objective={"window_span": 2},
        training={"max_steps": 1, "batch_size": 4, "val_every_steps": 0},
        **options,
    )
    ours = sorted(runs.glob("*_connectivity.npy"))
    mine = []
    for path in ours:  # the same matrices, saved by the user with numpy
        mine.append(tmp_path / "mine" / path.name)
        mine[-1].parent.mkdir(exist_ok=True)
        np.save(mine[-1], load_array(path))
    tables = {}
    for name, files in (("ours", ours), ("mine", mine)):
        out = tmp_path / name
        dfc_gnn_finetune.run(
            graphs,
            pretrained,
            out / "predictions.tsv",
            out / "model",
            static_fc=[str(p) for p in files],
            methods=["static_fc"],
            fractions=[1.0],
            split={"repeats": 1},
            training={"max_steps": 1, "batch_size": 4},
            **options,
        )
        tables[name] = load_table(out / "predictions.tsv", stage="dfc_gnn_finetune")
        external = read_provenance(out / "predictions.tsv")["extra"]["external_inputs"]
        assert read_provenance(out / "model")["extra"]["external_inputs"] == external
        # Every run's matrix, once, in the order of the runs.
        assert external == ([] if name == "ours" else [described(p) for p in mine])
    columns = [c for c in tables["ours"].columns if c.startswith("p_")]
    assert columns and len(tables["ours"]) == 2
    np.testing.assert_array_equal(tables["mine"][columns], tables["ours"][columns])
