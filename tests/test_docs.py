"""The documentation site builds clean and offline, and says what the code and schemas say."""

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from neuroai.config import validate_config

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SCHEMA = REPO / "workflows" / "schemas" / "config.schema.yaml"
FIDELITY = REPO / "neuroai" / "reports" / "fidelity"
FAMILY_PAGES = {
    "eegformer": "eegformer",
    "tablet": "tablet",
    "dfc_gnn": "dfc_gnn",
    "segmentation": "dsd",
}


def _text(path: Path) -> str:
    """The visible text of an HTML page, tags dropped and entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", path.read_text())).split())


def _nav_files(nav) -> list[str]:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def _load_hook():
    spec = importlib.util.spec_from_file_location(
        "neuroai_docs_hook", DOCS / "_hooks" / "neuroai_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.on_config(SimpleNamespace(config_file_path=str(REPO / "mkdocs.yml")))
    return module


# -- fast checks ----------------------------------------------------------------------------


def test_readme_is_a_short_front_door():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    headings = re.findall(r"^## (.+)$", readme, re.M)
    assert headings[0] == "The two commands"  # first, as .ci/run and tests/test_ci.py expect
    for needed in ("Your own data", "On a SLURM cluster", "From Python", "Documentation"):
        assert needed in headings, needed
    assert "mkdocs build --strict" in readme and "MkDocs" in readme
    # Every relative link of the README points at a file that exists.
    for target in re.findall(r"\]\((?!https?://|#)([^)#]+)", readme):
        assert (REPO / target).exists(), target


def test_nav_lists_every_page_and_only_pages_that_exist():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = _nav_files(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice"
    for page in listed:
        assert (DOCS / page).is_file(), f"mkdocs.yml nav names {page}, which does not exist"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "_hooks" not in p.parts}
    assert pages - set(listed) == set(), "pages missing from the nav of mkdocs.yml"


def _config_snippets():
    """(file, YAML text) of every config snippet in the README and the how-to pages."""
    files = [REPO / "README.md", *sorted((DOCS / "howto").glob("*.md"))]
    for path in files:
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S):
            yield path.relative_to(REPO).as_posix(), block


@pytest.mark.parametrize(("where", "block"), list(_config_snippets()))
def test_config_snippets_in_the_docs_validate_against_the_schema(where, block):
    config = yaml.safe_load(block)
    # A snippet that shows one section alone gets a dataset so that it is a whole config.
    config.setdefault(
        "datasets", {"x": {"card": "x.yaml", "layout": "region_timeseries", "root": "x"}}
    )
    validate_config(config, SCHEMA, source=where)  # raises ConfigError naming the key


def test_a_misspelled_snippet_would_fail_that_check():
    with pytest.raises(Exception, match="kindd"):
        validate_config(
            {
                "datasets": {"x": {"card": "c", "layout": "region_timeseries", "root": "r"}},
                "static_fc": {"kindd": "correlation"},
            },
            SCHEMA,
        )


def test_citation_license_changelog_contributing():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["license"] == "BSD-3-Clause" and citation["version"] == "0.1.0"
    references = citation["references"]
    assert len(references) == 4
    text = yaml.safe_dump(references)
    for marker in ("2401.10278", "2604.03619", "2312.01994", "10.1109/ISBI56570.2024.10635393"):
        assert marker in text, marker
    assert all(r["authors"] and r["title"] and r["year"] for r in references)
    license_text = (REPO / "LICENSE").read_text()
    assert "BSD 3-Clause License" in license_text and "neuroai developers" in license_text
    assert "## [0.1.0] - unreleased" in (REPO / "CHANGELOG.md").read_text()
    contributing = (REPO / "CONTRIBUTING.md").read_text()
    for marker in ("`slow`", "`gpu`", "`integration`", "-m 'not slow'", "neuroai/models/README.md"):
        assert marker in contributing, marker


def test_hook_fidelity_table_has_every_row_of_the_yaml():
    hook = _load_hook()
    for family_file in FAMILY_PAGES:
        rows = yaml.safe_load((FIDELITY / f"{family_file}.yaml").read_text())["rows"]
        family = "dsd" if family_file == "segmentation" else family_file
        table = hook.fidelity_table(family, Path("models"))
        lines = [line for line in table.splitlines() if line.startswith("| ")]
        assert len(lines) == 2 + len(rows)  # header, rule, one line per row
        for row, line in zip(rows, lines[2:], strict=True):
            assert line.startswith("| " + hook._cell(row["item"]) + " |")
        assert "](../" in table  # the details page, relative to docs/models/


def test_hook_refuses_an_unknown_directive_naming_the_page():
    from mkdocs.exceptions import PluginError

    hook = _load_hook()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="howto/x.md"))
    with pytest.raises(PluginError, match=r"howto/x\.md.*'fidelty'"):
        hook.on_page_markdown("a\n<!-- neuroai:fidelty tablet -->\nb", page, None, None)
    with pytest.raises(PluginError, match="unknown family 'tablett'"):
        hook.on_page_markdown("<!-- neuroai:fidelity tablett -->", page, None, None)


def test_hook_fails_on_a_failing_example_and_names_a_missing_package(tmp_path):
    from mkdocs.exceptions import PluginError

    hook = _load_hook()
    examples = tmp_path / "docs" / "examples"
    examples.mkdir(parents=True)
    (examples / "broken.py").write_text("raise ValueError('bad example')\n")
    (examples / "needs.py").write_text("import neuroai_no_such_package\n")
    (examples / "fine.py").write_text("# ruff: noqa: T201\nprint('hello', 6 * 7)\n")
    hook._repo = tmp_path
    with pytest.raises(PluginError, match=r"(?s)broken\.py failed \(exit 1\).*bad example"):
        hook.example("broken.py")
    with pytest.raises(PluginError, match=r"needs the package 'neuroai_no_such_package'"):
        hook.example("needs.py")
    shown = hook.example("fine.py")
    assert "hello 42" in shown and "ruff" not in shown  # output embedded, linter line hidden


# -- the site, built once ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "WARNING" not in done.stderr, done.stderr[-5000:]
    return out


@pytest.mark.slow
def test_no_page_fetches_anything(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 30
    for page in pages:
        text = page.read_text()
        for tag in re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text):
            assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", tag), (page, tag)
        assert "@import url(http" not in text and "fonts.googleapis" not in text, page


@pytest.mark.slow
def test_every_family_page_has_its_fidelity_rows_and_presets(site):
    from neuroai.models import get_model_entry, model_config

    for family_file, page in FAMILY_PAGES.items():
        text = _text(site / "models" / page / "index.html")
        document = yaml.safe_load((FIDELITY / f"{family_file}.yaml").read_text())
        for row in document["rows"]:
            for key in ("item", "ours"):
                expected = " ".join(str(row[key]).replace("`", "").split())
                assert expected in text, (page, row[key])
        # Every preset, and each value that differs between presets as the registry builds it.
        presets = sorted(get_model_entry(page).presets)
        configs = [vars(model_config(page, preset=p)) for p in presets]
        differing = [k for k in configs[0] if any(c[k] != configs[0][k] for c in configs)]
        assert differing, page
        for name in differing:
            row = " ".join([name, *(str(c[name]) for c in configs)])
            assert row in text, (page, row)


@pytest.mark.slow
def test_config_reference_lists_the_schema_keys(site):
    text = _text(site / "reference" / "config" / "index.html")
    main = yaml.safe_load(SCHEMA.read_text())
    sections = main["properties"]
    for section, spec in sections.items():
        assert f"{section}" in text
        ref = spec.get("$ref")
        if not ref:
            continue
        schema = yaml.safe_load((SCHEMA.parent / ref).read_text())
        for key in schema.get("properties", {}):
            assert f"{section}.{key}" in text, f"{section}.{key} missing from the reference"
    # And nothing that is not in a schema: every listed key's parts are schema names.
    names = set()
    for path in [SCHEMA, *sorted((SCHEMA.parent / "config").glob("*.yaml"))]:
        names |= set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*):", path.read_text(), re.M))
    listed = re.findall(
        r"<tr>\s*<td><code>([^<]+)</code>",
        (site / "reference" / "config" / "index.html").read_text(),
    )
    assert len(listed) > 200
    for key in listed:
        for part in html.unescape(key).replace("[]", "").split("."):
            assert part == "<name>" or part in names, (key, part)
    data_card = _text(site / "reference" / "data-card" / "index.html")
    card_schema = yaml.safe_load((SCHEMA.parent / "data_card.schema.yaml").read_text())
    for key in card_schema["properties"]:
        assert key in data_card


@pytest.mark.slow
def test_stage_table_and_examples_ran(site):
    stages = _text(site / "reference" / "stages" / "index.html")
    for module in sorted((REPO / "pipelines").glob("*.py")):
        if not module.name.startswith("_"):
            assert f"neuroai.pipelines.{module.stem}.run(" in stages, module.stem
    examples = _text(site / "examples" / "index.html")
    # What connectivity.py printed when the site was built: neuroai against nilearn.
    difference = re.search(r"max \|neuroai - nilearn\| = ([0-9.e+-]+)", examples)
    assert difference and float(difference.group(1)) < 1e-10
    assert "reloaded from safetensors, same embedding: True" in examples
    assert "same embedding: False" not in examples
    assert "bipolar channels" in examples
