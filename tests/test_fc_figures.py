"""Report FC matrices through nilearn's plot_matrix (named, network-ordered) and carpets
through plot_carpet; region names found upstream of a matrix by its provenance."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nilearn import plotting  # noqa: E402

from neuroai.errors import DataError  # noqa: E402
from neuroai.io import write_region_timeseries  # noqa: E402
from neuroai.reports import fmri_figures  # noqa: E402
from neuroai.reports.sections import fmri as fmri_section  # noqa: E402

SCHAEFER = [
    "7Networks_LH_Vis_1",
    "7Networks_LH_Default_1",
    "7Networks_LH_Vis_2",
    "7Networks_RH_SomMot_1",
    "7Networks_RH_Default_2",
    "7Networks_RH_Vis_3",
    "7Networks_RH_SomMot_2",
]


def _matrix(n, seed=0):
    return np.corrcoef(np.random.default_rng(seed).standard_normal((n, 40)))


def _image(fig):
    return next(ax for ax in fig.axes if ax.images).images[0]


def test_fc_matrix_is_nilearns_plot_matrix_with_names():
    matrix = _matrix(9)
    names = [f"Region_{i}_L" for i in range(9)]
    fig = fmri_figures.fc_matrix(matrix, labels=names, title="t")
    ours = _image(fig)
    nilearn_fig = plt.figure()
    theirs = plotting.plot_matrix(matrix, labels=names, vmin=ours.norm.vmin, vmax=ours.norm.vmax)
    np.testing.assert_array_equal(ours.get_array(), theirs.get_array())
    plt.close(nilearn_fig)
    ax = ours.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    off = np.abs(matrix[~np.eye(9, dtype=bool)]).max()
    assert (ours.norm.vmin, ours.norm.vmax) == (-off, off)


def test_network_order_groups_regions_and_outlines_blocks():
    assert fmri_figures.networks_from_names(SCHAEFER) == [
        "Vis",
        "Default",
        "Vis",
        "SomMot",
        "Default",
        "Vis",
        "SomMot",
    ]
    assert fmri_figures.networks_from_names(["Precentral_L", "Precentral_R"]) is None
    order, blocks = fmri_figures.network_order(fmri_figures.networks_from_names(SCHAEFER))
    assert order.tolist() == [0, 2, 5, 1, 4, 3, 6]
    assert blocks == [("Vis", 0, 3), ("Default", 3, 5), ("SomMot", 5, 7)]
    matrix = _matrix(7, seed=2)
    fig = fmri_figures.fc_matrix(matrix, labels=SCHAEFER)
    image = _image(fig)
    np.testing.assert_array_equal(image.get_array(), matrix[np.ix_(order, order)])
    assert [t.get_text() for t in image.axes.get_yticklabels()] == [SCHAEFER[i] for i in order]
    assert len(image.axes.patches) == 3  # one outline per network
    # An explicit assignment wins over the names; plain indices without names.
    fig = fmri_figures.fc_matrix(matrix, networks=list("abababa"))
    np.testing.assert_array_equal(
        _image(fig).get_array(), matrix[np.ix_([0, 2, 4, 6, 1, 3, 5], [0, 2, 4, 6, 1, 3, 5])]
    )


def test_fc_matrix_refuses_mismatched_names():
    with pytest.raises(DataError, match="3 labels for a 7 x 7 matrix"):
        fmri_figures.fc_matrix(_matrix(7), labels=["a", "b", "c"])
    with pytest.raises(DataError, match="square matrix"):
        fmri_figures.fc_matrix(np.zeros((3, 4)))


@pytest.mark.parametrize("n_volumes", [50, 1001])
def test_carpet_is_nilearns_plot_carpet(n_volumes):
    rng = np.random.default_rng(1)
    carpet = rng.standard_normal((37, n_volumes)).astype(np.float32)
    fig = fmri_figures.carpet_plot(
        carpet,
        tr=2.0,
        trace=rng.random(n_volumes),
        trace_label="FD (mm)",
        regions=np.repeat(np.arange(4), [10, 9, 9, 9]),
        threshold=0.5,
        censored=[3],
    )
    drawn = [ax for ax in fig.axes if ax.images and ax.get_xlabel() == "time (s)"][0]
    # Oracle: nilearn's own plot_carpet of the same voxels, on a pyplot figure.
    image = nib.Nifti1Image(carpet[:, None, None, :], np.eye(4))
    mask = nib.Nifti1Image(np.ones((37, 1, 1), dtype=np.uint8), np.eye(4))
    theirs = plotting.plot_carpet(
        image, mask_img=mask, t_r=2.0, detrend=False, standardize=False, vmin=-2, vmax=2
    )
    reference = [ax for ax in theirs.axes if ax.images][0]
    np.testing.assert_array_equal(drawn.images[0].get_array(), reference.images[0].get_array())
    assert [t.get_text() for t in drawn.get_xticklabels()] == [
        t.get_text() for t in reference.get_xticklabels()
    ]
    plt.close(theirs)
    step = 2 if n_volumes > 800 else 1  # nilearn decimates runs longer than 800 volumes
    np.testing.assert_array_equal(drawn.images[0].get_array(), carpet[:, ::step])
    trace = [ax for ax in fig.axes if ax.lines and ax.get_ylabel() == "FD (mm)"][0]
    x = trace.lines[0].get_xdata()
    assert x[0] == pytest.approx(1 / step) and x[-1] == pytest.approx((n_volumes - 1) / step)


def test_region_names_follow_provenance_to_the_time_series(tmp_path, monkeypatch):
    from neuroai.pipelines import group_fc, static_fc

    names = ["Precentral_L", "Precentral_R", "Frontal_Sup_2_L", "Frontal_Sup_2_R", "Insula_L"]
    rng = np.random.default_rng(3)
    fcs = []
    for subject in ("01", "02"):
        tsv = tmp_path / f"sub-{subject}_task-rest_timeseries.tsv"
        write_region_timeseries(tsv, rng.standard_normal((30, 5)), tr=2.0, regions=names)
        fcs.append(static_fc.run(tsv, tmp_path / f"sub-{subject}_connectivity.npy"))
    mean, summary = group_fc.run(
        fcs, tmp_path / "g_mean.npy", tmp_path / "g_summary.json", dataset="demo", group_by=None
    )
    assert fmri_section.region_names(mean, 5) == names
    assert fmri_section.region_names(mean, 6) is None  # a header of another size
    assert fmri_section.region_names(tmp_path / "nowhere.npy", 5) is None

    seen = {}
    original = fmri_figures.fc_matrix

    def spy(matrix, **kwargs):
        seen.update(kwargs)
        return original(matrix, **kwargs)

    monkeypatch.setattr(fmri_figures, "fc_matrix", spy)
    html = "".join(fmri_section.render_static_fc([summary])[0].parts)
    assert seen["labels"] == names
    assert "regions named as in the time series (Precentral_L, Precentral_R, ...)" in html
    assert html.count("data:image/png;base64,") == 2


def test_fmri_qc_section_draws_the_stage_carpet_with_plot_carpet(tmp_path, monkeypatch):
    from neuroai.io import load_array
    from neuroai.pipelines import fmri_timeseries
    from neuroai.testing import fmriprep_dataset, label_atlas

    shape = (6, 7, 8)
    fmriprep_dataset(tmp_path / "prep", subjects=["01"], n_volumes=41, shape=shape)
    nib.save(label_atlas(shape, 5, seed=3), tmp_path / "prep" / "atlas.nii.gz")
    key = "sub-01_task-rest_space-MNI152NLin2009cAsym"
    out = tmp_path / "ts"
    tsv, qc, carpet = (out / f"{key}{s}" for s in ("_timeseries.tsv", "_qc.json", "_carpet.npy"))
    fmri_timeseries.run(
        tmp_path / "prep",
        key,
        tsv,
        qc,
        carpet,
        layout="fmriprep",
        atlas={"labels_img": "atlas.nii.gz"},
        strategy=["motion"],
        n_carpet_voxels=30,
    )
    drawn = []
    original = plotting.plot_carpet

    def spy(img, **kwargs):
        drawn.append(np.asarray(img.dataobj)[:, 0, 0, :])
        return original(img, **kwargs)

    monkeypatch.setattr(plotting, "plot_carpet", spy)
    sections = fmri_section.render_fmri_qc([qc, carpet])
    html = "".join(sections[0].parts)
    assert len(drawn) == 1
    np.testing.assert_array_equal(drawn[0], load_array(carpet).astype(np.float32))
    assert "Carpet plot: " + key in html and "data:image/png;base64," in html
