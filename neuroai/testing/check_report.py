"""Check a report in headless Chromium from the command line.

``python -m neuroai.testing.check_report results/report/index.html --screenshots shots/``
opens every page of the report, prints what is wrong with each (console errors,
images that do not load, broken links, network fetches) and exits non-zero if
anything is. With ``--complete`` it also checks the report against the results folder
it was built from (``results/report/index.html`` -> ``results/``): every page in the
folder is reachable, every stage that left an artifact has its section, the index has
its fixed sections, and every dataset of ``--config`` is named on the index. CI runs it
that way on the demo's report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from neuroai.testing.browser import PageCheck, check_site

#: What each stage leaves in the results folder, and the heading its report page must show.
#: ``{}`` in the heading is the dataset folder (the glob's first ``*``); a heading that
#: starts with the text counts.
EXPECTED_SECTIONS = (
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

#: Sections the index page always has.
INDEX_SECTIONS = ("Datasets", "Pipeline flow", "Run time and memory", "Configuration")


def expected_headings(results: str | os.PathLike) -> set[str]:
    """Headings the report must have, from the artifacts the run left in ``results``."""
    results = Path(results)
    headings = set()
    for pattern, heading in EXPECTED_SECTIONS:
        for path in results.glob(pattern):
            dataset = path.relative_to(results).parts[1]
            headings.add(heading.format(dataset))
    return headings


def page_problems(pages: dict[Path, PageCheck]) -> list[str]:
    """One line per console error, broken image or network fetch of any page."""
    return [
        f"{path.name}: {problem}"
        for path, check in pages.items()
        for problem in check.console_errors + check.broken_images + check.external
    ]


def completeness_problems(
    results: str | os.PathLike,
    pages: dict[Path, PageCheck],
    datasets: Iterable[str] = (),
) -> list[str]:
    """What a report built from ``results`` lacks, one line each (empty when complete).

    Parameters
    ----------
    results : path
        The results folder; its ``report/`` folder holds the pages.
    pages : dict
        :func:`~neuroai.testing.browser.check_site` of ``report/index.html``.
    datasets : iterable of str
        Datasets of the run's configuration, each to be named on the index page.
    """
    results = Path(results)
    report = results / "report"
    problems = []
    on_disk = {p.name for p in report.glob("*.html")}
    reached = {p.name for p in pages}
    if on_disk != reached:
        problems.append(f"pages not reachable from index.html: {sorted(on_disk - reached)}")
    headings = {h for check in pages.values() for h in check.headings}
    missing = sorted(
        e for e in expected_headings(results) if not any(h.startswith(e) for h in headings)
    )
    if missing:
        problems.append(f"no section for {missing} although their artifacts exist")
    index = pages.get((report / "index.html").resolve())
    if index is None:
        return [*problems, f"{report / 'index.html'} was not checked"]
    for heading in INDEX_SECTIONS:
        if heading not in index.headings:
            problems.append(f"index.html has no section {heading!r}")
    if index.n_images < 1:
        problems.append("index.html shows no figure (the pipeline flow)")
    for dataset in datasets:
        if dataset not in index.text:
            problems.append(f"index.html does not name the dataset {dataset!r}")
    return problems


def main(
    argv: list[str] | None = None, prog: str = "python -m neuroai.testing.check_report"
) -> int:
    """Check a report folder from the command line (also ``neuroai check-report``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Open a report folder's pages in headless Chromium and list what is wrong: "
        "console errors, images that do not load, broken links, network fetches.",
    )
    parser.add_argument("index", help="the report's index.html")
    parser.add_argument("--screenshots", help="save a full-page screenshot of each page here")
    parser.add_argument(
        "--complete",
        action="store_true",
        help="also check the report against the results folder above it: a section for "
        "every artifact, every page reachable, the index's fixed sections",
    )
    parser.add_argument(
        "--config",
        help="with --complete: the run's config file; each of its datasets must be named "
        "on the index page",
    )
    args = parser.parse_args(argv)
    pages = check_site(args.index, screenshot_dir=args.screenshots)
    for path, check in pages.items():
        state = "ok" if check.ok else "PROBLEMS"
        print(f"{path.name}: {state}; {check.n_images} images, {len(check.headings)} headings")  # noqa: T201 (command output)
    problems = page_problems(pages)
    if args.complete:
        datasets = []
        if args.config:
            import yaml

            datasets = list(yaml.safe_load(Path(args.config).read_text()).get("datasets", {}))
        results = Path(args.index).resolve().parent.parent
        problems += completeness_problems(results, pages, datasets)
    for problem in problems:
        print(f"  {problem}")  # noqa: T201
    print(f"{len(pages)} pages checked, {len(problems)} problems")  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
