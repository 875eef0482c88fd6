"""Fidelity tables of the model pages: the paper or reference fact, ours, the difference, why.

One data file per model family, ``neuroai/reports/fidelity/<family>.yaml`` (package data),
written from the family's page under ``docs/``. Each holds ``title``, ``reference`` (the
paper and the code read), ``doc`` and ``rows`` of ``item``, ``reference``, ``ours``,
``difference``, ``why``.
"""

from __future__ import annotations

from importlib import resources

from neuroai.errors import DataError, check_option
from neuroai.reports.html import table, text

#: Families with a fidelity table.
FAMILIES = ("dfc_gnn", "eegformer", "segmentation", "tablet")
#: Keys of every row, in column order.
ROW_KEYS = ("item", "reference", "ours", "difference", "why")
COLUMNS = ("item", "paper or reference", "this implementation", "difference", "why")


def load_fidelity(family: str) -> dict:
    """The fidelity record of ``family``, checked.

    Raises
    ------
    DataError
        When the file has no rows or a row lacks one of :data:`ROW_KEYS`.
    """
    import yaml

    check_option("fidelity family", family, FAMILIES)
    name = f"fidelity/{family}.yaml"
    source = resources.files("neuroai.reports").joinpath(name)
    record = yaml.safe_load(source.read_text(encoding="utf-8"))
    rows = record.get("rows") if isinstance(record, dict) else None
    if not rows:
        raise DataError(f"neuroai/reports/{name} has no rows; expected a list of {ROW_KEYS}.")
    for k, row in enumerate(rows):
        missing = [key for key in ROW_KEYS if key not in (row or {})]
        if missing:
            raise DataError(f"neuroai/reports/{name}, row {k}: missing {missing}.")
    return record


def fidelity_table(family: str) -> list[str]:
    """HTML fragments of ``family``'s fidelity table: heading, sources, table."""
    record = load_fidelity(family)
    rows = [[row[key] for key in ROW_KEYS] for row in record["rows"]]
    sources = f"Reference: {record.get('reference', 'n/a')}. Details: {record.get('doc', 'n/a')}."
    return [
        text(f"Fidelity: {record.get('title', family)}", tag="h3"),
        text(sources, cls="note"),
        table(rows, COLUMNS),
    ]
