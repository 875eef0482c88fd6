"""The fMRI stage entry points: artifacts, provenance, bad input, the BOLD demos."""

import json

import numpy as np
import pytest

from neuroai.errors import ConfigError, DataError
from neuroai.fmri.dynamic import connectivity_variability
from neuroai.io import (
    load_array,
    load_json,
    read_provenance,
    read_region_timeseries,
    write_region_timeseries,
)
from neuroai.pipelines import demo_bold, dynamic_fc, fmri_timeseries, graph_dataset
from neuroai.testing import bids_dataset, fmriprep_dataset, label_atlas

SHAPE = (6, 7, 8)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    import nibabel as nib

    root = tmp_path_factory.mktemp("prep")
    fmriprep_dataset(root, subjects=["01", "02"], n_volumes=61, shape=SHAPE)
    nib.save(label_atlas(SHAPE, 5, seed=3), root / "atlas.nii.gz")
    return root


def outputs(folder, key):
    return (
        folder / f"{key}_timeseries.tsv",
        folder / f"{key}_qc.json",
        folder / f"{key}_carpet.npy",
    )


def test_fmriprep_run_with_scrubbing(prep, tmp_path):
    key = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    tsv, qc, carpet = outputs(tmp_path, key)
    fmri_timeseries.run(
        prep,
        key,
        tsv,
        qc,
        carpet,
        layout="fmriprep",
        atlas={"labels_img": "atlas.nii.gz"},
        strategy=["motion", "wm_csf", "scrub"],
        motion="basic",
        n_carpet_voxels=30,
    )
    run = read_region_timeseries(tsv)
    record = load_json(qc, stage="fmri_timeseries")
    assert run.tr == 2.0 and run.n_regions == 5
    assert run.n_timepoints == record["n_kept"] < record["n_volumes"] == 61
    assert run.sidecar["ConfoundStrategy"] == ["motion", "wm_csf", "scrub"]
    assert (
        len(run.sidecar["Confounds"]) == 8
        and run.sidecar["Provenance"]["stage"] == "fmri_timeseries"
    )
    assert record["motion_measure"] == "framewise displacement (mm)"
    assert record["motion_summary"]["fraction_above"] > 0
    np.testing.assert_allclose(run.data.std(axis=0, ddof=1), 1.0, rtol=1e-6)
    assert load_array(carpet).shape == (30, 61) and load_array(carpet).dtype == np.float16


def test_raw_run_with_global_signal_and_bad_strategy(tmp_path):
    import nibabel as nib

    root = tmp_path / "raw"
    bids_dataset(root, subjects=["01"], n_volumes=45, shape=SHAPE)
    nib.save(label_atlas(SHAPE, 4, seed=2), root / "atlas.nii.gz")
    key = "sub-01_task-rest_run-1"
    tsv, qc, carpet = outputs(tmp_path, key)
    fmri_timeseries.run(
        root, key, tsv, qc, carpet, layout="bids", atlas={"labels_img": "atlas.nii.gz"},
        strategy=["global_signal"], global_signal="derivatives",
    )  # fmt: skip
    assert read_region_timeseries(tsv).sidecar["Confounds"] == [
        "global_signal",
        "global_signal_derivative1",
    ]
    assert load_json(qc)["motion_measure"] == "DVARS (% of mean signal)"
    bad = tmp_path / "bad"
    with pytest.raises(ConfigError, match="need fMRIPrep's confounds table"):
        fmri_timeseries.run(
            root, key, *outputs(bad, key), layout="bids", atlas={"labels_img": "atlas.nii.gz"},
            strategy=["motion"],
        )  # fmt: skip
    with pytest.raises(DataError, match="No run 'sub-01_task-rest_run-2'"):
        fmri_timeseries.run(
            root, "sub-01_task-rest_run-2", *outputs(bad, key), layout="bids",
            atlas={"labels_img": "atlas.nii.gz"},
        )  # fmt: skip
    assert not bad.exists()


def test_dynamic_fc_and_graph_dataset_stages(prep, tmp_path):
    tsvs, dfcs = [], []
    for sub in ("01", "02"):
        key = f"sub-{sub}_task-rest_space-MNI152NLin2009cAsym"
        tsv, qc, carpet = outputs(tmp_path / "ts", key)
        fmri_timeseries.run(
            prep, key, tsv, qc, carpet, layout="fmriprep", atlas={"labels_img": "atlas.nii.gz"},
            strategy=["high_pass"],
        )  # fmt: skip
        tsvs.append(tsv)
        dfcs.append(dynamic_fc.run(tsv, tmp_path / "dfc" / f"{key}_dfc.npy", window=20, step=4))
    matrices = load_array(dfcs[0], stage="dynamic_fc")
    assert matrices.shape == ((60 - 20) // 4 + 1, 5, 5) and matrices.dtype == np.float32
    assert read_provenance(dfcs[0])["extra"]["window_starts"][:3] == [0, 4, 8]
    with pytest.raises(DataError, match="fewer than one window of 80"):
        dynamic_fc.run(tsvs[1], tmp_path / "long.npy", window=80)
    short = read_region_timeseries(tsvs[1])
    short_tsv = write_region_timeseries(
        tmp_path / "ts" / "sub-02_short_timeseries.tsv",
        short.data[:12],
        tr=2.0,
        regions=short.regions,
    )
    skipped = dynamic_fc.run(
        short_tsv, tmp_path / "dfc" / "sub-02_short_dfc.npy", window=20, step=4, short_runs="skip"
    )
    assert load_array(skipped).shape == (0, 5, 5)
    out = graph_dataset.run(
        [*dfcs, skipped],
        [*tsvs, short_tsv],
        tmp_path / "graphs",
        tmp_path / "summary.json",
        tmp_path / "variability.npy",
        dataset="prep",
        participants=prep / "participants.tsv",
    )
    from neuroai.fmri import GraphWindowDataset

    data = GraphWindowDataset(out, target="site")
    assert len(data) == 2 and int(data[1].y) == 1
    summary = load_json(tmp_path / "summary.json", stage="graph_dataset")
    assert summary["excluded_runs"] == {"sub-02_short": "12 time points < window 20"}
    assert summary["density"]["mean"] == pytest.approx(round(0.3 * 10) / 10)
    # The streamed statistics against the stored graphs, window by window.
    from neuroai.fmri.graph_dataset import GraphArrays

    arrays = GraphArrays(out)
    degrees, density = [], []
    for r in range(arrays.n_runs):
        graphs = arrays.run(r)
        for w in range(graphs.n_windows):
            sources = graphs.edge_index[0, graphs.window_ptr[w] : graphs.window_ptr[w + 1]]
            degrees.append(np.bincount(sources, minlength=5))
        density.extend(graphs.density())
    degrees = np.array(degrees)
    np.testing.assert_allclose(summary["degree"]["mean"], degrees.mean(0).round(4), atol=1e-4)
    np.testing.assert_allclose(summary["degree"]["sd"], degrees.std(0).round(4), atol=1e-4)
    assert summary["density"]["sd"] == pytest.approx(np.std(density), abs=1e-9)
    assert (
        summary["n_windows"]
        == len(degrees)
        == sum(len(v["density"]) for v in summary["runs"].values())
    )
    expected_spread = np.mean([connectivity_variability(load_array(p)) for p in dfcs], axis=0)
    np.testing.assert_allclose(load_array(tmp_path / "variability.npy"), expected_spread)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["windowing"] == {"window": 20, "step": 4, "kind": "correlation", "fisher_z": False}
    # Only runs without a window: refused with the dataset named, nothing left behind.
    with pytest.raises(DataError, match="No run of prep has a window"):
        graph_dataset.run(
            [skipped],
            [short_tsv],
            tmp_path / "empty_graphs",
            tmp_path / "empty.json",
            tmp_path / "empty.npy",
            dataset="prep",
        )
    assert not (tmp_path / "empty_graphs").exists() and not (tmp_path / "empty.json").exists()


@pytest.mark.parametrize(
    ("builder", "layout", "atlas", "n_regions"),
    [
        ("neuropycon_bold", "fmriprep", {"labels_img": "atlas/atlas-neuropycon184_dseg.nii.gz",
                                          "labels": "atlas/atlas-neuropycon184_dseg.tsv"}, 184),
        ("nitime_bold", "bids", {"coordinates": "atlas/spheres.tsv", "radius_mm": 4}, 16),
    ],
)  # fmt: skip
def test_bold_demos(tmp_path, builder, layout, atlas, n_regions):
    pytest.importorskip("neuropycon_data" if builder.startswith("neuropycon") else "nitime")
    from neuroai.datasets.bold_demos import expected_files, expected_runs

    root = tmp_path / builder
    demo_bold.run(root, builder=builder)
    for paths in expected_files(builder).values():
        assert all((root / p).is_file() for p in paths)
    key = next(iter(expected_runs(builder, root)))
    tsv, qc, carpet = outputs(tmp_path, key)
    strategy = ["high_pass", "global_signal"] if layout == "fmriprep" else []
    fmri_timeseries.run(root, key, tsv, qc, carpet, layout=layout, atlas=atlas, strategy=strategy)
    run = read_region_timeseries(tsv)
    assert run.n_regions == n_regions and np.isfinite(run.data).all()
    if builder == "neuropycon_bold":
        assert run.tr == 2.5 and run.n_timepoints == 88
        assert run.regions[0] == "roi002" and len(run.sidecar["EmptyRegions"]) == 3
    else:
        assert run.tr == 1.35 and run.n_timepoints == 40
