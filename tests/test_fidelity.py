"""The fidelity tables of the model pages: valid data files, rendered on every family's page."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuroai.errors import DataError
from neuroai.reports.sections import _fidelity
from neuroai.reports.sections._fidelity import FAMILIES, ROW_KEYS, fidelity_table, load_fidelity

FOLDER = Path(_fidelity.__file__).parents[1] / "fidelity"


def test_every_family_has_one_valid_non_empty_file_and_no_file_is_orphaned():
    assert sorted(p.stem for p in FOLDER.glob("*.yaml")) == sorted(FAMILIES)
    for family in FAMILIES:
        record = yaml.safe_load((FOLDER / f"{family}.yaml").read_text(encoding="utf-8"))
        assert record["family"] == family and record["title"] and record["reference"]
        assert len(record["rows"]) >= 5, family
        for row in record["rows"]:
            assert set(row) == set(ROW_KEYS), (family, row)
            assert all(isinstance(row[k], str) and row[k].strip() for k in ROW_KEYS), row
        items = [row["item"] for row in record["rows"]]
        assert len(items) == len(set(items)), family  # one row per fact
        assert load_fidelity(family)["rows"] == record["rows"]


def test_the_files_are_package_data():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"reports/fidelity/*.yaml"' in text


@pytest.mark.parametrize("family", FAMILIES)
def test_the_table_has_one_html_row_per_data_row(family):
    html = "".join(fidelity_table(family))
    record = load_fidelity(family)
    assert html.count("<tr>") == len(record["rows"]) + 1  # and the header
    assert "<th>paper or reference</th>" in html and "<th>why</th>" in html


def test_pages_without_artifacts_still_carry_their_table():
    # TABLeT and EEGFormer render a page from no artifacts; the segmentation and dFC-GNN
    # pages are checked on real stage outputs in their stage tests.
    from neuroai.reports.sections import render

    for name, title in (("tablet", "Fidelity: TABLeT"), ("eegformer", "Fidelity: EEGFormer")):
        (section,) = render(name, [])
        assert title in "".join(section.parts), name


def test_a_file_without_rows_is_refused_by_name(tmp_path, monkeypatch):
    (tmp_path / "fidelity").mkdir()
    (tmp_path / "fidelity" / "tablet.yaml").write_text("title: x\nrows: []\n", encoding="utf-8")
    monkeypatch.setattr(_fidelity.resources, "files", lambda package: tmp_path)
    with pytest.raises(DataError, match=r"fidelity/tablet.yaml has no rows"):
        load_fidelity("tablet")
