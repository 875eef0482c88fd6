"""Labels tables: your own labels for EEG and fMRI datasets.

A dataset's ``labels:`` (a TSV file) gives its recordings or subjects labels that
the files themselves do not carry. Columns:

- identity: ``recording`` (a recording key, the file stem for ``eeg_files`` and
  ``tuh``, the BIDS name without ``_eeg`` for ``bids_eeg``), or ``subject``
  (without ``sub-``), with ``session`` (without ``ses-``) where the layout has
  sessions (:data:`LAYOUT_IDENTITIES` says which columns each layout accepts);
- any label columns (text or numbers; an empty cell or ``n/a`` is a missing label);
- optionally ``split``, one of :data:`SPLIT_VALUES` per row (``test`` fixes the
  test set; empty cells leave the row to the stage's own split draw).

:func:`read_labels` reads and checks a table and returns it keyed by its identity
columns; :func:`merge_participants` puts a per-subject table over a
``participants.tsv`` (the table wins for the columns it has);
:func:`check_task_labels` checks, while the workflow is parsed, that every
fine-tuning task has the label it predicts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, did_you_mean

logger = get_logger(__name__)

#: Identity columns a labels table may key its rows by.
IDENTITY_COLUMNS = ("recording", "subject", "session")
#: The optional column that fixes each row's split.
SPLIT_COLUMN = "split"
#: Allowed values of the ``split`` column.
SPLIT_VALUES = ("train", "val", "test")
#: Layout -> the identity columns its labels tables may use. fMRI stores keep one
#: label per subject (participants.tsv's granularity), so fMRI tables are per subject.
LAYOUT_IDENTITIES: dict[str, tuple[str, ...]] = {
    "tuh": ("recording", "subject"),
    "eeg_files": ("recording", "subject"),
    "bids_eeg": ("recording", "subject", "session"),
    "region_timeseries": ("subject",),
    "bids": ("subject",),
    "fmriprep": ("subject",),
    "bold_volumes": ("subject",),
}
#: Columns the token index has besides participants.tsv's (TABLeT tasks may predict them).
TOKEN_INDEX_COLUMNS = ("n_frames", "n_tokens", "token_dim", "tr")
_MISSING = ("", "n/a", "N/A", "NA", "nan", "NaN")
_PREFIX = {"subject": "sub-", "session": "ses-"}
_SHOWN = 5


def _lines(numbers: Iterable[int]) -> str:
    """``line 3`` / ``lines 2, 4``: file line numbers (the header is line 1), the first few."""
    numbers = list(numbers)
    shown = ", ".join(str(n) for n in numbers[:_SHOWN])
    more = f" and {len(numbers) - _SHOWN} more" if len(numbers) > _SHOWN else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _identity_text(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return ", ".join(f"{k} {row[k]!r}" for k in keys)


def _keys_of(columns: Sequence[str], path: Path, allowed: Sequence[str], layout: str | None):
    if "recording" in columns and "recording" in allowed:
        return ["recording"]
    if "subject" in columns and "subject" in allowed:
        return [c for c in ("subject", "session") if c in columns and c in allowed]
    present = [c for c in columns if c in IDENTITY_COLUMNS]
    if present:
        raise DataError(
            f"Labels table {path} keys its rows by {present}, but layout {layout!r} takes "
            f"labels by {' or '.join(repr(c) for c in allowed)}. Key the rows by "
            f"{allowed[0]!r} (see docs/labels.md)."
        )
    near = next(((c, did_you_mean(c, allowed)) for c in columns if did_you_mean(c, allowed)), None)
    hint = f" Column {near[0]!r}:{near[1]}" if near else ""
    raise DataError(
        f"Labels table {path} has no identity column: it needs "
        f"{' or '.join(repr(c) for c in allowed)} (columns found: {', '.join(columns)}).{hint}"
    )


def read_labels(
    path: str | os.PathLike,
    *,
    layout: str | None = None,
    known=None,
    dataset: str | None = None,
):
    """Read and check a labels table.

    Parameters
    ----------
    path : path-like
        The TSV file (see the module docstring for its columns).
    layout : str | None
        The dataset's layout; it decides the identity columns allowed
        (:data:`LAYOUT_IDENTITIES`). ``None`` allows every identity column.
    known : pandas.DataFrame | None
        The dataset's index: one row per recording (``recording``, ``subject``,
        ``session`` columns, the missing ones empty) or per subject (``subject``).
        Rows of the table that name an item not in it are refused. ``None`` skips
        this check.
    dataset : str | None
        The dataset's name, for messages.

    Returns
    -------
    pandas.DataFrame
        Indexed by the identity columns (``recording``, or ``subject`` [and
        ``session``]); the label columns and ``split`` (when given) as text, with
        missing values as ``NaN``. ``attrs["path"]`` is the file.

    Raises
    ------
    DataError
        A missing file or identity column (with the nearest column name), blank
        identities, duplicated identities, no label column or an entirely empty
        one, a split value outside :data:`SPLIT_VALUES`, or rows naming recordings
        or subjects not in ``known``: the message names the file lines.
    """
    import pandas as pd

    path = Path(path)
    where = f" of dataset {dataset!r}" if dataset else ""
    if not path.is_file():
        raise DataError(f"Labels table {path}{where} does not exist.")
    try:
        table = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, skip_blank_lines=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"Labels table {path}{where} is not a readable TSV file: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    columns = list(table.columns)
    blank = [i for i, c in enumerate(columns) if not c or c.startswith("Unnamed:")]
    if blank:
        raise DataError(f"Labels table {path}: column {blank[0] + 1} of the header has no name.")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"Labels table {path}: columns {twice} appear more than once.")
    allowed = LAYOUT_IDENTITIES.get(layout, IDENTITY_COLUMNS) if layout else IDENTITY_COLUMNS
    keys = _keys_of(columns, path, allowed, layout)
    extra = [c for c in columns if c in IDENTITY_COLUMNS and c not in keys]
    if extra and keys != ["recording"]:
        raise DataError(
            f"Labels table {path} has the column(s) {extra}, which layout {layout!r} cannot "
            f"match (it takes labels by {list(allowed)}). Drop or rename them."
        )
    table = table.apply(lambda column: column.str.strip())
    # File line numbers of the rows (header = line 1); blank lines are skipped.
    table.index = pd.RangeIndex(2, len(table) + 2)
    table = table[(table != "").any(axis=1)]
    if table.empty:
        raise DataError(f"Labels table {path}{where} has a header but no rows.")
    for key in keys:
        prefix = _PREFIX.get(key)
        if prefix:
            table[key] = table[key].str.removeprefix(prefix)
    empty_ids = list(table.index[table[keys[0]] == ""])
    if empty_ids:
        raise DataError(
            f"Labels table {path}: rows without a {keys[0]}, at {_lines(empty_ids)}; every "
            "row needs its identity."
        )
    duplicated = table.duplicated(keys, keep=False)
    if duplicated.any():
        rows = list(table.index[duplicated])
        first = table.loc[rows[0]]
        raise DataError(
            f"Labels table {path}{where}: the same identity appears more than once, at "
            f"{_lines(rows)} ({_identity_text(first, keys)} ...); each recording or subject "
            "may appear once."
        )
    labels = [c for c in columns if c not in IDENTITY_COLUMNS and c != SPLIT_COLUMN]
    if not labels:
        raise DataError(
            f"Labels table {path} has no label column (only {columns}); add a column "
            "per label (diagnosis, age ...)."
        )
    values = table[labels + ([SPLIT_COLUMN] if SPLIT_COLUMN in columns else [])]
    values = values.where(~values.isin(_MISSING))
    empty = [c for c in labels if values[c].isna().all()]
    if empty:
        raise DataError(
            f"Labels table {path}{where}: the label column(s) {empty} are empty on every row "
            f"({_lines(table.index)}); fill them in or drop them."
        )
    if SPLIT_COLUMN in columns:
        split = values[SPLIT_COLUMN]
        bad = list(table.index[split.notna() & ~split.isin(SPLIT_VALUES)])
        if bad:
            value = split[bad[0]]
            raise DataError(
                f"Labels table {path}: split values not among {list(SPLIT_VALUES)}, at "
                f"{_lines(bad)} (first: {value!r}).{did_you_mean(value, SPLIT_VALUES)}"
            )
    result = pd.concat([table[keys], values], axis=1).set_index(keys)
    result.attrs["path"] = str(path)
    result.attrs["lines"] = [int(n) for n in table.index]
    if known is not None:
        check_identities(result, known, dataset=dataset)
    return result


def check_identities(labels, known, *, dataset: str | None = None) -> None:
    """Refuse rows of a labels table that name no item of the dataset.

    Parameters
    ----------
    labels : pandas.DataFrame
        From :func:`read_labels` (rows in file order).
    known : pandas.DataFrame
        The dataset's index (see :func:`read_labels`).
    dataset : str | None
        The dataset's name, for messages.

    Raises
    ------
    DataError
        Naming the file lines and the identities not found, with examples of the
        dataset's own.
    """
    path = labels.attrs.get("path", "(labels table)")
    where = f" of dataset {dataset!r}" if dataset else ""
    keys = list(labels.index.names)
    table = labels.index.to_frame(index=False).fillna("").astype(str)
    lines = labels.attrs.get("lines") or list(range(2, len(table) + 2))
    index = known.fillna("").astype(str)
    missing_columns = [k for k in keys if k not in index.columns]
    if missing_columns:
        raise DataError(
            f"Labels table {path}{where} keys rows by {missing_columns}, which this dataset's "
            f"items do not have (they have {list(index.columns)})."
        )
    if keys == ["subject", "session"]:
        # a subject's row without a session labels all its sessions
        pairs = set(zip(index["subject"], index["session"], strict=True))
        subjects = set(index["subject"])
        found = [
            (s in subjects) if not ses else ((s, ses) in pairs)
            for s, ses in zip(table["subject"], table["session"], strict=True)
        ]
    else:
        existing = set(zip(*(index[k] for k in keys), strict=True))
        found = [tuple(row) in existing for row in table[keys].itertuples(index=False)]
    unknown = [i for i, ok in enumerate(found) if not ok]
    if unknown:
        names = [_identity_text(table.loc[i], keys) for i in unknown[:_SHOWN]]
        examples = sorted(set(index[keys[0]]))[:_SHOWN]
        nearest = did_you_mean(str(table.at[unknown[0], keys[0]]), set(index[keys[0]]))
        raise DataError(
            f"Labels table {path}{where} names {keys[0]}s that are not in the dataset, at "
            f"{_lines(lines[i] for i in unknown)} ({'; '.join(names)}). The dataset has "
            f"{keys[0]}s such as {examples}.{nearest}"
        )


def label_columns(labels) -> list[str]:
    """The label columns of a table from :func:`read_labels` (``split`` left out)."""
    return [c for c in labels.columns if c != SPLIT_COLUMN]


def choose_label_column(labels, label_column: str | None, *, dataset: str | None = None) -> str:
    """The column that gives each EEG recording its recording label.

    ``label_column`` when given (it must be a column of the table), else the
    table's only label column.

    Raises
    ------
    ConfigError
        ``label_column`` is not a column, or the table has several label columns
        and ``label_column`` is not set.
    """
    columns = label_columns(labels)
    name = f"dataset {dataset!r}" if dataset else "the dataset"
    path = labels.attrs.get("path", "the labels table")
    if label_column is not None:
        if label_column not in columns:
            raise ConfigError(
                f"{name}: label_column {label_column!r} is not a column of {path}."
                f"{did_you_mean(label_column, columns)} Label columns: {', '.join(columns)}."
            )
        return label_column
    if len(columns) > 1:
        raise ConfigError(
            f"{name}: {path} has several label columns ({', '.join(columns)}); set "
            "label_column to the one that is each recording's label."
        )
    return columns[0]


def merge_participants(participants, labels):
    """participants.tsv with a per-subject labels table over it.

    Parameters
    ----------
    participants : pandas.DataFrame | None
        ``participants.tsv`` (``participant_id`` and its columns), or ``None``.
    labels : pandas.DataFrame
        From :func:`read_labels`, keyed by ``subject``.

    Returns
    -------
    pandas.DataFrame
        ``participant_id`` (``sub-<label>``) and every column of both; for a column
        in both, the labels table's value wins (a missing value in the table keeps
        participants.tsv's). Subjects only in the table are added.
    """
    import pandas as pd

    if list(labels.index.names) != ["subject"]:
        raise DataError(
            f"Labels table {labels.attrs.get('path', '')} is keyed by "
            f"{list(labels.index.names)}; a participants table takes one row per subject."
        )
    table = labels.copy()
    table.index = "sub-" + table.index.astype(str)
    table.index.name = "participant_id"
    if participants is None:
        return table.reset_index()
    base = participants.copy()
    base["participant_id"] = base["participant_id"].astype(str)
    base = base.set_index("participant_id")
    both = [c for c in table.columns if c in base.columns]
    if both:
        logger.info("Labels table %s overrides participants.tsv columns %s",
                    labels.attrs.get("path", ""), both)  # fmt: skip
    merged = table.combine_first(base)
    order = list(base.columns) + [c for c in table.columns if c not in base.columns]
    merged = merged.reindex(index=list(dict.fromkeys([*base.index, *table.index])))
    return pd.DataFrame(merged[order]).rename_axis("participant_id").reset_index()


def participant_columns(path: str | os.PathLike | None) -> list[str]:
    """Columns of a ``participants.tsv`` (its header only), ``[]`` when there is none."""
    if path is None or not Path(path).is_file():
        return []
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n\r")
    return [c.strip() for c in header.split("\t") if c.strip() and c.strip() != "participant_id"]


def _sources_text(sources: Mapping[str, Sequence[str]]) -> str:
    listed = "; ".join(f"{where}: {', '.join(cols) or 'none'}" for where, cols in sources.items())
    return listed or "none (no participants.tsv and no labels table)"


def _missing_column(section, task, dataset, column, sources, complete) -> str | None:
    existing = sorted({c for cols in sources.values() for c in cols})
    if column in existing or not complete:
        return None
    return (
        f"{section} task {task!r} predicts the column {column!r}, which dataset {dataset!r} "
        f"does not have.{did_you_mean(column, existing)} Columns there: "
        f"{_sources_text(sources)}. Add the column to participants.tsv or to a labels table "
        f"(datasets.{dataset}.labels, docs/labels.md)."
    )


def check_task_labels(
    config: Mapping[str, Any],
    *,
    sources: Mapping[str, Mapping[str, Sequence[str]]],
    complete: Mapping[str, bool],
    recording_labels: Mapping[str, Iterable[str | None]],
) -> None:
    """Check that every fine-tuning task has the labels it predicts (at parse time).

    Checked: ``dfc_gnn.finetune.tasks`` (``label`` column) and ``tablet.tasks``
    (``column``) against the columns of their datasets, and ``eegformer.tasks`` of
    kind ``recording_label`` against the recording labels of their datasets (at
    least one recording with a positive and one with a negative label). EEG event
    tasks read annotations inside the recordings and are checked when the store is
    built.

    Parameters
    ----------
    config : mapping
        The workflow configuration (validated).
    sources : mapping
        Dataset -> {where: columns}, such as ``{"participants.tsv": [...],
        "labels table x.tsv": [...]}``: every label column the dataset has.
    complete : mapping
        Dataset -> whether ``sources`` lists all its columns (``False`` for a
        dataset built by the workflow whose participants.tsv does not exist yet:
        then its tasks are not judged on it).
    recording_labels : mapping
        EEG dataset -> the recording label of each recording (``None`` when none).

    Raises
    ------
    ConfigError
        Listing every task without its labels: the section, the task, the dataset
        and the missing column or label, and the columns that exist.
    """
    from neuroai.eeg.tasks import make_task

    problems: list[str | None] = []
    dfc = config.get("dfc_gnn") or {}
    for task, settings in ((dfc.get("finetune") or {}).get("tasks") or {}).items():
        for dataset in dfc.get("datasets") or []:
            problems.append(_missing_column("dfc_gnn", task, dataset, settings["label"],
                            sources.get(dataset, {}), complete.get(dataset, False)))  # fmt: skip
    tablet = config.get("tablet") or {}
    for task, settings in (tablet.get("tasks") or {}).items():
        if settings["column"] in TOKEN_INDEX_COLUMNS:
            continue
        for dataset in tablet.get("datasets") or []:
            problems.append(_missing_column("tablet", task, dataset, settings["column"],
                            sources.get(dataset, {}), complete.get(dataset, False)))  # fmt: skip
    eegformer = config.get("eegformer") or {}
    for name, settings in (eegformer.get("tasks") or {}).items():
        overrides = {k: v for k, v in settings.items() if k not in ("datasets", "modes")}
        task = make_task(name, overrides)
        if task.kind != "recording_label":
            continue
        for dataset in settings.get("datasets") or []:
            if dataset not in recording_labels:
                continue
            found = sorted({str(v) for v in recording_labels[dataset] if v})
            lacking = [
                f"{side} {list(values)}"
                for side, values in (("positive", task.positive), ("negative", task.negative))
                if not set(values) & set(found)
            ]
            if not lacking:
                continue
            problems.append(
                f"eegformer task {name!r} takes its target from the recording label, but no "
                f"recording of dataset {dataset!r} has a {' or '.join(lacking)} label "
                f"(recording labels found: {found or 'none'}). Give the dataset a labels table "
                f"(datasets.{dataset}.labels, label_column naming its column) or, for "
                f"bids_eeg, a participants.tsv label_column. Columns there: "
                f"{_sources_text(sources.get(dataset, {}))}."
            )
    problems = [p for p in problems if p]
    if problems:
        bullet = "\n  - "
        raise ConfigError(
            "Fine-tuning tasks without the labels they predict (checked before any job):"
            + bullet
            + bullet.join(problems)
        )


def fixed_test_subjects(subjects: Sequence[str], splits: Sequence[str | None]) -> list[str] | None:
    """The subjects a labels table's ``split`` column puts in the test set.

    The hook by which the stages that draw splits honour a fixed test set: a subject
    with any item marked ``test`` is a test subject (all its items are tested).

    Parameters
    ----------
    subjects : sequence of str
        The subject of each item (run, recording).
    splits : sequence of str | None
        The item's ``split`` value (``train``, ``val``, ``test``; empty, ``None`` or
        ``NaN`` when not given).

    Returns
    -------
    list of str | None
        Sorted test subjects, or ``None`` when no item is marked ``test`` (then the
        stage draws its test set as configured).
    """
    if len(subjects) != len(splits):
        raise DataError(f"fixed_test_subjects: {len(subjects)} subjects for {len(splits)} splits.")
    chosen = sorted({str(s) for s, v in zip(subjects, splits, strict=True) if v == "test"})
    return chosen or None
