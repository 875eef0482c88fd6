"""Check a report in headless Chromium from the command line.

``python -m neuroai.testing.check_report results/report/index.html --screenshots shots/``
opens every page of the report, prints what is wrong with each (console errors,
images that do not load, broken links, network fetches) and exits non-zero if
anything is.
"""

from __future__ import annotations

from neuroai.testing.browser import check_site


def main(argv: list[str] | None = None) -> int:
    """Check a report folder from the command line."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m neuroai.testing.check_report",
        description="Open a report folder's pages in headless Chromium and list what is wrong: "
        "console errors, images that do not load, broken links, network fetches.",
    )
    parser.add_argument("index", help="the report's index.html")
    parser.add_argument("--screenshots", help="save a full-page screenshot of each page here")
    args = parser.parse_args(argv)
    pages = check_site(args.index, screenshot_dir=args.screenshots)
    for path, check in pages.items():
        state = "ok" if check.ok else "PROBLEMS"
        print(f"{path.name}: {state}; {check.n_images} images, {len(check.headings)} headings")  # noqa: T201 (command output)
        for problem in check.console_errors + check.broken_images + check.external:
            print(f"  {problem}")  # noqa: T201
    return 0 if all(c.ok for c in pages.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
