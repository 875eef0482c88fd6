"""BIDS functional runs: raw datasets and fMRIPrep derivatives, indexed fast.

Two layouts are read:

``bids``
    Raw BIDS, ``sub-<label>/[ses-<label>/]func/*_bold.nii[.gz]``. The repetition
    time comes from the JSON sidecar, following the BIDS inheritance principle
    (``task-rest_bold.json`` at the top, overridden by subject, session and run
    sidecars).
``fmriprep``
    fMRIPrep derivatives, ``*[_space-<label>][_res-<label>]_desc-preproc_bold.nii[.gz]``
    with, beside each run, ``*_desc-confounds_timeseries.tsv`` (and its JSON,
    needed for aCompCor) and ``*_desc-brain_mask.nii.gz`` in the same space.

Indexing lists each ``func`` folder once with :func:`os.scandir` and parses file
names; it reads no file, opens no image and needs no database, so a
1,000-subject tree is indexed in well under a second (``benchmarks/bids_index.py``).
Sidecars are read later, one run at a time (:func:`repetition_time`).

Every label a user gives (subjects, sessions, tasks, runs, spaces) is checked to
be a BIDS label (letters and digits only), so a filter can never name a path
outside the dataset; file-system entries whose names are not valid BIDS are
skipped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neuroai._logging import get_logger
from neuroai.errors import ConfigError, DataError, check_option

logger = get_logger(__name__)

LAYOUTS = ("bids", "fmriprep")
#: Entities in the order BIDS writes them (the order of run keys).
ENTITY_ORDER = (
    "sub",
    "ses",
    "task",
    "acq",
    "ce",
    "rec",
    "dir",
    "run",
    "echo",
    "part",
    "space",
    "cohort",
    "res",
    "den",
    "desc",
)
_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_ENTITY = re.compile(r"^([a-z]+)-([A-Za-z0-9]+)$")
_NAME = re.compile(r"^([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9]+)*)$")
NIFTI_EXTENSIONS = (".nii.gz", ".nii")
#: Entities of a preprocessed run that its confounds file does not carry.
_IMAGE_ONLY_ENTITIES = ("space", "cohort", "res", "den", "desc")


def check_label(value: object, what: str = "label") -> str:
    """Return ``value`` as a string if it is a valid BIDS label, else raise.

    Parameters
    ----------
    value : object
        A label without its entity prefix (``"01"``, not ``"sub-01"``).
    what : str
        What the label is, for the message (``"subject"``, ``"task"`` ...).

    Raises
    ------
    ConfigError
        When the label holds anything but ASCII letters and digits (which
        also rules out ``..``, ``/`` and empty strings).
    """
    text = str(value)
    if not _LABEL.match(text):
        prefix = {"subject": "sub-", "session": "ses-", "task": "task-", "run": "run-"}.get(
            what, ""
        )
        hint = (
            f" (give {text[len(prefix) :]!r}, not {text!r})"
            if prefix and text.startswith(prefix)
            else ""
        )
        raise ConfigError(
            f"Invalid BIDS {what} label {text!r}: labels are letters and digits only{hint}."
        )
    return text


def _check_labels(values: Iterable[object] | None, what: str) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        values = [values]
    return {check_label(v, what) for v in values}


def parse_name(name: str) -> tuple[dict[str, str], str, str] | None:
    """Split a BIDS file name into entities, suffix and extension.

    Returns ``None`` when the name is not a BIDS name (an entity that is not
    ``key-label`` with an alphanumeric label).

    Examples
    --------
    >>> parse_name("sub-01_task-rest_run-1_bold.nii.gz")
    ({'sub': '01', 'task': 'rest', 'run': '1'}, 'bold', '.nii.gz')
    """
    match = _NAME.match(name)
    if match is None:
        return None
    stem, extension = match.group(1), match.group(2)
    parts = stem.split("_")
    if len(parts) < 2 or not _LABEL.match(parts[-1]):
        return None
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        match = _ENTITY.match(part)
        if match is None or match.group(1) in entities:
            return None
        entities[match.group(1)] = match.group(2)
    return entities, parts[-1], extension


def format_entities(entities: Mapping[str, str]) -> str:
    """Join entities in BIDS order (unknown entities last, sorted)."""
    known = [k for k in ENTITY_ORDER if k in entities]
    extra = sorted(k for k in entities if k not in ENTITY_ORDER)
    return "_".join(f"{k}-{entities[k]}" for k in known + extra)


@dataclass(frozen=True)
class BoldRun:
    """One functional run found in a BIDS or fMRIPrep dataset.

    Attributes
    ----------
    path : Path
        The 4D BOLD image.
    entities : dict
        Its BIDS entities (``sub``, ``ses``, ``task``, ``run``, ``space``, ...).
    key : str
        The run's identifier: its entities without ``desc`` in BIDS order
        (``sub-01_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym``), unique
        within a dataset.
    layout : {"bids", "fmriprep"}
        Which layout it was found in.
    root : Path
        The dataset folder.
    confounds : Path | None
        fMRIPrep confounds TSV of the run (``None`` for raw BIDS).
    mask : Path | None
        fMRIPrep brain mask in the run's space (``None`` for raw BIDS or when
        fMRIPrep wrote none).
    """

    path: Path
    entities: dict[str, str]
    key: str
    layout: str
    root: Path
    confounds: Path | None = None
    mask: Path | None = None
    _sidecars: tuple[Path, ...] = field(default=(), repr=False)

    @property
    def subject(self) -> str:
        """Subject label (without ``sub-``)."""
        return self.entities["sub"]

    @property
    def sidecars(self) -> tuple[Path, ...]:
        """JSON sidecars that apply to the run, most general first."""
        return self._sidecars

    def metadata(self) -> dict:
        """The run's merged JSON metadata (BIDS inheritance: closest file wins).

        Raises
        ------
        DataError
            When a sidecar is not valid JSON or not a JSON object.
        """
        merged: dict = {}
        for path in self._sidecars:
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"The sidecar {path} is not valid JSON: {exc}.") from exc
            if not isinstance(value, dict):
                raise DataError(f"The sidecar {path} must hold a JSON object.")
            merged.update(value)
        return merged


def repetition_time(run: BoldRun) -> float:
    """The run's repetition time in seconds, from its JSON sidecars.

    Raises
    ------
    DataError
        When no sidecar gives ``RepetitionTime`` as a positive number: the
        message names the image and the sidecars that were read.
    """
    meta = run.metadata()
    tr = meta.get("RepetitionTime")
    if not isinstance(tr, (int, float)) or isinstance(tr, bool) or not tr > 0:
        read = ", ".join(str(p) for p in run.sidecars) or "none found"
        raise DataError(
            f"{run.path} has no valid RepetitionTime (got {tr!r}; sidecars read: {read}). "
            "BIDS requires RepetitionTime in seconds in the run's JSON sidecar "
            f"({_sidecar_name(run)}) or in an inherited one such as "
            f"task-{run.entities.get('task', '<task>')}_bold.json at the dataset root."
        )
    return float(tr)


def _sidecar_name(run: BoldRun) -> str:
    name = run.path.name
    for ext in NIFTI_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)] + ".json"
    return name + ".json"


def _scan(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _subdirs(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    """``(label, path)`` of the ``<prefix>-<label>`` folders of ``folder``."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if not name.startswith(prefix + "-") or not entry.is_dir():
                    continue
                label = name[len(prefix) + 1 :]
                if _LABEL.match(label):
                    found.append((label, Path(entry.path)))
                else:
                    logger.debug("Skipping %s: not a BIDS label", entry.path)
    except FileNotFoundError:
        pass
    return sorted(found)


def subject_func_files(
    root: str | os.PathLike, pattern: str, *, subjects: Sequence[str] | None = None
) -> dict[str, list[Path]]:
    """Files of each subject's ``func`` folders: ``sub-<label>/[ses-<label>/]func/<pattern>``.

    The walk shared by the readers of single-suffix layouts (region time series,
    4D runs for tokens); :func:`index_bold_runs` does the full BIDS indexing.
    Subject and session folders whose label is not a BIDS label are skipped, and
    a file counts only when its name starts with its subject's ``sub-<label>_``,
    so no label can point outside ``root``.

    Parameters
    ----------
    root : path-like
        The dataset folder.
    pattern : str
        Glob of the files inside ``func`` (``"*_timeseries.tsv"``).
    subjects : sequence of str | None
        Keep only these subject labels (without ``sub-``).

    Returns
    -------
    dict
        Subject label to its files (sessions in label order, files by name);
        subjects in label order, those with no file left out.

    Raises
    ------
    DataError
        When ``root`` is not a folder or a subject label is not a BIDS label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Dataset folder {root} does not exist.")
    wanted = None
    if subjects is not None:
        bad = [str(s) for s in subjects if not _LABEL.match(str(s))]
        if bad:
            raise DataError(
                f"Invalid BIDS subject labels {bad}: labels are letters and digits only "
                "(give '01', not 'sub-01' or a path)."
            )
        wanted = {str(s) for s in subjects}
    found: dict[str, list[Path]] = {}
    for label, sub_dir in _subdirs(root, "sub"):
        if wanted is not None and label not in wanted:
            continue
        folders = [sub_dir / "func"] + [d / "func" for _, d in _subdirs(sub_dir, "ses")]
        files = [
            path
            for folder in folders
            for path in sorted(folder.glob(pattern))
            if path.name.startswith(f"sub-{label}_")
        ]
        if files:
            found[label] = files
    return found


def _nifti_stem(name: str) -> str | None:
    for ext in NIFTI_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


def _sidecar_candidates(folder: Path, names: Sequence[str], suffix: str = "bold"):
    """``(entities, path)`` of the ``*_<suffix>.json`` files among ``names``."""
    found = []
    for name in names:
        if not name.endswith(f"_{suffix}.json"):
            continue
        parsed = parse_name(name)
        if parsed is not None:
            found.append((parsed[0], folder / name))
    return found


def _inherited_jsons(levels: Sequence[list], entities: Mapping[str, str]) -> tuple[Path, ...]:
    """Sidecars whose entities are a subset of ``entities``, most general first."""
    found = []
    for candidates in levels:
        level = [
            (len(keys), path)
            for keys, path in candidates
            if all(entities.get(k) == v for k, v in keys.items())
        ]
        found.extend(path for _, path in sorted(level))
    return tuple(found)


def index_bold_runs(
    root: str | os.PathLike,
    layout: str = "bids",
    *,
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    runs: Sequence[str | int] | None = None,
    spaces: Sequence[str] | None = None,
    desc: str = "preproc",
) -> dict[str, BoldRun]:
    """Find the functional runs of a BIDS dataset or fMRIPrep derivatives.

    Parameters
    ----------
    root : path-like
        The dataset folder (for fMRIPrep, the folder holding ``sub-*``).
    layout : {"bids", "fmriprep"}
        Raw BIDS or fMRIPrep derivatives (see the module docstring).
    subjects, sessions, tasks, runs : sequence | None
        Keep only runs with these labels (without the ``sub-``/``ses-``/...
        prefix). ``runs`` may be integers; ``1`` matches ``run-1`` and ``run-01``.
    spaces : sequence of str | None
        fMRIPrep only: keep runs in these output spaces
        (``MNI152NLin2009cAsym``; ``T1w``). ``"native"`` selects runs without a
        space entity (the BOLD reference space).
    desc : str
        fMRIPrep only: the ``desc`` of the images to use (``preproc``, or
        ``smoothAROMAnonaggr`` for the ICA-AROMA full strategy).

    Returns
    -------
    dict
        Run key to :class:`BoldRun`, sorted by key.

    Raises
    ------
    ConfigError
        Invalid layout or label, or ``spaces`` given for raw BIDS.
    DataError
        The folder does not exist, or a requested subject has no run.
    """
    check_option("layout", layout, LAYOUTS)
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Dataset folder {root} does not exist.")
    want_sub = _check_labels(subjects, "subject")
    want_ses = _check_labels(sessions, "session")
    want_task = _check_labels(tasks, "task")
    want_run = _check_labels(runs, "run")
    want_space = _check_labels(spaces, "space")
    check_label(desc, "desc")
    if want_space is not None and layout != "fmriprep":
        raise ConfigError(
            "The 'spaces' filter applies to fMRIPrep derivatives (layout 'fmriprep'); "
            f"raw BIDS runs of {root} have no output space."
        )
    if want_run is not None:
        want_run = {r.lstrip("0") or "0" for r in want_run}
    top_jsons = _sidecar_candidates(root, _scan(root))
    found: dict[str, BoldRun] = {}
    for sub, sub_dir in _subdirs(root, "sub"):
        if want_sub is not None and sub not in want_sub:
            continue
        sub_names = _scan(sub_dir)
        places = [(None, sub_dir, sub_names)]
        places += [(ses, d, _scan(d)) for ses, d in _subdirs(sub_dir, "ses")]
        for ses, folder, names in places:
            if ses is not None and want_ses is not None and ses not in want_ses:
                continue
            if ses is None and want_ses is not None:
                continue
            func = folder / "func"
            func_names = _scan(func) if "func" in names else []
            levels = [top_jsons, _sidecar_candidates(sub_dir, sub_names)]
            if ses is not None:
                levels.append(_sidecar_candidates(folder, names))
            levels.append(_sidecar_candidates(func, func_names))
            for run in _runs_in_folder(
                func, func_names, layout, sub=sub, ses=ses, desc=desc, root=root, levels=levels
            ):
                ent = run.entities
                if want_task is not None and ent.get("task") not in want_task:
                    continue
                if want_run is not None and (ent.get("run", "").lstrip("0") or "0") not in want_run:
                    continue
                if want_space is not None and ent.get("space", "native") not in want_space:
                    continue
                if run.key in found:
                    raise DataError(
                        f"Two images in {func} give the same run key {run.key!r}: "
                        f"{found[run.key].path.name} and {run.path.name}. Keep one, or "
                        "filter by space."
                    )
                found[run.key] = run
    if want_sub is not None:
        missing = sorted(want_sub - {run.subject for run in found.values()})
        if missing:
            kind = "preprocessed (fMRIPrep) " if layout == "fmriprep" else ""
            raise DataError(
                f"Subjects {missing} have no {kind}BOLD runs under {root} that pass the filters."
            )
    return dict(sorted(found.items()))


def _runs_in_folder(
    func: Path,
    names: list[str],
    layout: str,
    *,
    sub: str,
    ses: str | None,
    desc: str,
    root: Path,
    levels: Sequence[list],
) -> list[BoldRun]:
    runs = []
    name_set = set(names)
    for name in sorted(names):
        stem = _nifti_stem(name)
        if stem is None or not stem.endswith("_bold"):
            continue
        parsed = parse_name(name)
        if parsed is None:
            logger.debug("Skipping %s: not a BIDS name", func / name)
            continue
        entities, _, _ = parsed
        if entities.get("sub") != sub or entities.get("ses") != ses:
            logger.debug("Skipping %s: its entities do not match its folder", func / name)
            continue
        if layout == "fmriprep":
            if entities.get("desc") != desc:
                continue
        elif "desc" in entities:
            continue
        key_entities = {k: v for k, v in entities.items() if k != "desc"}
        confounds = mask = None
        if layout == "fmriprep":
            confounds = _companion(func, name_set, key_entities, "confounds", _IMAGE_ONLY_ENTITIES)
            mask_entities = {**key_entities, "desc": "brain"}
            mask_name = format_entities(mask_entities) + "_mask"
            mask = next(
                (
                    func / (mask_name + ext)
                    for ext in NIFTI_EXTENSIONS
                    if mask_name + ext in name_set
                ),
                None,
            )
        runs.append(
            BoldRun(
                path=func / name,
                entities=entities,
                key=format_entities(key_entities),
                layout=layout,
                root=root,
                confounds=confounds,
                mask=mask,
                _sidecars=_inherited_jsons(levels, entities),
            )
        )
    return runs


def _companion(
    func: Path, names: set[str], entities: Mapping[str, str], desc: str, drop: Sequence[str]
) -> Path | None:
    """fMRIPrep's ``desc-confounds_timeseries.tsv`` (or the older ``_regressors.tsv``)."""
    base = {k: v for k, v in entities.items() if k not in drop}
    stem = format_entities({**base, "desc": desc})
    for suffix in ("_timeseries.tsv", "_regressors.tsv"):
        if stem + suffix in names:
            return func / (stem + suffix)
    return None


def participants_table(path: str | os.PathLike):
    """``participants.tsv`` as a DataFrame of strings, or ``None`` when absent.

    ``path`` is the file or the dataset folder holding it.

    Raises
    ------
    DataError
        When the file exists but has no ``participant_id`` column.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "participants.tsv"
    if not path.is_file():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])
    if "participant_id" not in table.columns:
        raise DataError(
            f"{path} has no 'participant_id' column (columns: {', '.join(table.columns)})."
        )
    return table
