"""Which subjects a dFC-GNN stage may see: the family's held-out test subjects.

Self-supervised pretraining reads no label, but a subject whose windows it trained on
is not an unseen subject any more: testing a downstream model on it measures, in part,
how well pretraining memorised that subject. The dFC-GNN family therefore draws one
set of **held-out subjects** per graph dataset, seeded, before anything is trained
(:func:`heldout_subjects`): pretraining never reads their windows, every downstream
task tests on them (those of them that have the task's label) and trains on labelled
subjects of the rest, and fingerprinting compares them. Pretraining and fine-tuning
draw the set from the same settings (:class:`HoldoutConfig`) and the same dataset, so
they agree without reading each other; fine-tuning still checks the split the
pretrained model records (:func:`seen_test_subjects`).

The draw is stratified: each combination of the ``stratify`` label columns (the
workflow passes the labels of the classification tasks) gives
``round(test_fraction * n)`` of its ``n`` subjects, so a held-out set of a small
cohort keeps every class. A subject's runs (sessions, repeated runs) are always on
one side.

``transductive=True`` is the named opt-in for the other protocol: pretraining on
every run (test subjects' windows seen without labels) and k-fold cross-validation
over all subjects downstream.

Every training stage writes ``splits.tsv`` beside its model (:func:`splits_frame`):
``subject``, ``session`` and ``run`` (BIDS entities of the run key, when any run has
them), ``recording`` (the run key) and ``split`` in {pretrain, train, val, test}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from neuroai.errors import ConfigError, DataError
from neuroai.models.config import JsonConfig

SPLITS = ("pretrain", "train", "val", "test")
#: BIDS entities of a run key that splits.tsv spells out (column name -> entity).
ENTITY_COLUMNS = {"session": "ses", "run": "run"}


@dataclass
class HoldoutConfig(JsonConfig):
    """How the dFC-GNN family draws its held-out test subjects.

    Attributes
    ----------
    test_fraction : float
        Fraction of the subjects of each stratum held out, in (0, 1).
    seed : int
        Seed of the draw.
    stratify : list of str
        Label columns whose combinations are the strata (none: one stratum).
    """

    test_fraction: float = 0.3
    seed: int = 0
    stratify: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ConfigError(
                f"holdout.test_fraction must be in (0, 1), got {self.test_fraction!r}."
            )
        if self.seed < 0:
            raise ConfigError(f"holdout.seed must be >= 0, got {self.seed}.")
        self.stratify = [str(c) for c in (self.stratify or [])]


def run_entities(key: str) -> dict[str, str]:
    """BIDS entities of a run key (``sub-01_ses-2_task-rest_run-1`` -> sub, ses, task, run)."""
    entities = {}
    for part in str(key).split("_"):
        name, dash, value = part.partition("-")
        if dash and name and value and name not in entities:
            entities[name] = value
    return entities


def _subject_strata(meta: Mapping, labels: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Subject -> its stratum (the values of the stratify columns, ``n/a`` when missing)."""
    strata: dict[str, str] = {}
    for r, run in enumerate(meta["runs"]):
        parts = []
        for column, values in labels.items():
            value = values[r]
            kind = meta["labels"][column]["type"]
            missing = value < 0 if kind == "categorical" else not np.isfinite(value)
            parts.append("n/a" if missing else f"{column}={value}")
        strata.setdefault(str(run["subject"]), "|".join(parts))
    return strata


def heldout_subjects(
    meta: Mapping, labels: Mapping[str, np.ndarray], config: HoldoutConfig
) -> list[str]:
    """The held-out test subjects of a graph dataset (sorted).

    Parameters
    ----------
    meta : mapping
        The graph dataset's ``dataset.json`` (``runs`` with ``key`` and ``subject``,
        ``labels``).
    labels : mapping
        Column -> per-run values (``GraphArrays.label``) of ``config.stratify``.
    config : HoldoutConfig

    Returns
    -------
    list of str
        Subject labels: ``round(test_fraction * n)`` of the ``n`` subjects of each
        stratum, drawn with ``seed`` (strata and subjects sorted first, so the draw does
        not depend on the order of the runs).
    """
    missing = [c for c in config.stratify if c not in meta.get("labels", {})]
    if missing:
        raise DataError(
            f"holdout.stratify names {missing}, which the graph dataset does not have "
            f"(labels: {', '.join(meta.get('labels', {})) or 'none'})."
        )
    numeric = [c for c in config.stratify if meta["labels"][c]["type"] != "categorical"]
    if numeric:
        raise ConfigError(
            f"holdout.stratify: {numeric} are numeric labels; stratify by categorical ones "
            "(site, diagnosis, sex ...)."
        )
    strata = _subject_strata(meta, {c: np.asarray(labels[c]) for c in config.stratify})
    rng = np.random.default_rng(config.seed)
    chosen: list[str] = []
    for stratum in sorted(set(strata.values())):
        members = sorted(s for s, v in strata.items() if v == stratum)
        order = rng.permutation(len(members))
        count = int(round(config.test_fraction * len(members)))
        chosen += [members[i] for i in order[:count]]
    if not chosen:
        raise ConfigError(
            f"holdout.test_fraction={config.test_fraction} holds out no subject of "
            f"{len(strata)} (strata: {len(set(strata.values()))}); raise it, stratify by fewer "
            "columns, or set transductive: true to test by cross-validation over all subjects."
        )
    if len(chosen) == len(strata):
        raise ConfigError(
            f"holdout.test_fraction={config.test_fraction} holds out every subject; lower it."
        )
    return sorted(chosen)


def dataset_holdout(arrays, config: HoldoutConfig) -> list[str]:
    """:func:`heldout_subjects` of an opened graph dataset (``GraphArrays``); the subjects
    a labels table's ``split`` column marks ``test`` when it has one (docs/labels.md)."""
    if "split" in arrays.meta["labels"]:
        from neuroai.datasets.labels import fixed_test_subjects

        names = arrays.meta["labels"]["split"].get("categories", [])
        values = [names[c] if 0 <= c < len(names) else None for c in arrays.label("split")]
        fixed = fixed_test_subjects([str(r["subject"]) for r in arrays.meta["runs"]], values)
        if fixed:
            return fixed
    labels = {c: np.asarray(arrays.label(c)) for c in config.stratify if c in arrays.meta["labels"]}
    return heldout_subjects(arrays.meta, labels, config)


def splits_frame(
    meta: Mapping, runs: Sequence[int], parts: Sequence[str], **columns
) -> pd.DataFrame:
    """The ``splits.tsv`` table: one row per run used (or held out).

    Parameters
    ----------
    meta : mapping
        The graph dataset's ``dataset.json``.
    runs : sequence of int
        Run indices.
    parts : sequence of str
        Split of each run, in {pretrain, train, val, test}.
    **columns
        Further columns, placed first (``repeat``, ``fold`` of a cross-validation).

    Returns
    -------
    DataFrame
        ``[*columns], subject, [session], [run], recording, split``.
    """
    bad = sorted(set(parts) - set(SPLITS))
    if bad:
        raise DataError(f"splits_frame: unknown split values {bad}; expected {SPLITS}.")
    rows = []
    all_entities = [run_entities(run["key"]) for run in meta["runs"]]
    present = [c for c, e in ENTITY_COLUMNS.items() if any(e in x for x in all_entities)]
    for k, (r, part) in enumerate(zip(runs, parts, strict=True)):
        run = meta["runs"][int(r)]
        row = {
            name: (value[k] if isinstance(value, (list, tuple, np.ndarray)) else value)
            for name, value in columns.items()
        }
        row["subject"] = str(run["subject"])
        for column in present:
            row[column] = all_entities[int(r)].get(ENTITY_COLUMNS[column], "")
        row.update(recording=run["key"], split=part)
        rows.append(row)
    names = [*columns, "subject", *present, "recording", "split"]
    return pd.DataFrame(rows, columns=names)


def seen_test_subjects(pretrained: pd.DataFrame, task: pd.DataFrame) -> list[str]:
    """Test subjects of a task that a pretraining trained on (both ``splits.tsv`` tables).

    Parameters
    ----------
    pretrained : DataFrame
        The pretraining's ``splits.tsv`` (rows ``pretrain`` and ``val`` were read).
    task : DataFrame
        A downstream task's ``splits.tsv`` (rows ``test`` were tested).

    Returns
    -------
    list of str
        Sorted subjects in both; empty unless pretraining was transductive.
    """
    seen = set(pretrained.loc[pretrained["split"].isin(["pretrain", "val"]), "subject"].astype(str))
    tested = set(task.loc[task["split"] == "test", "subject"].astype(str))
    return sorted(seen & tested)


def read_splits(path) -> pd.DataFrame:
    """A ``splits.tsv`` with every identifier as text (subject ``01`` is not the number 1)."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def holdout_predictions(
    ids: Sequence[str],
    labels: np.ndarray,
    methods: Mapping,
    train: np.ndarray,
    test: np.ndarray,
    *,
    task: str = "classification",
    fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0),
    repeats: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Predictions for held-out subjects at every label fraction (the inductive protocol).

    The counterpart of :func:`~neuroai.evaluation.label_efficiency.cross_validated_predictions`
    for a fixed test set: ``repeats`` times, the training subjects ``train`` give nested,
    stratified label subsets (:func:`~neuroai.evaluation.label_efficiency.label_subset`,
    seeded per repeat), every method trains on each subset and scores the ``test``
    subjects. Repeats differ in the subsets (below 100%) and in the training seeds.

    Parameters
    ----------
    ids : sequence of str
        Identifiers of all items (runs).
    labels : ndarray, shape (n_items,)
    methods : mapping
        Name to ``method(train_index, test_index, seed) -> scores`` (as for cross-validation).
    train, test : ndarray of int
        Indices into ``ids`` of the development and the held-out items (disjoint).
    task : {"classification", "regression"}
    fractions : sequence of float
        Label fractions in (0, 1].
    repeats, seed : int

    Returns
    -------
    DataFrame
        The columns of cross-validated predictions, with ``fold`` 0 throughout.
    """
    from neuroai.evaluation.label_efficiency import label_subset, prediction_rows

    train = np.asarray(train, dtype=int)
    test = np.asarray(test, dtype=int)
    if set(train.tolist()) & set(test.tolist()):
        raise DataError("holdout_predictions: an item is both a training and a test item.")
    if not train.size or not test.size:
        raise DataError(
            f"holdout_predictions: {train.size} training and {test.size} test items; both are "
            "needed (the held-out subjects may lack the task's label: check holdout.stratify)."
        )
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}.")
    labels = np.asarray(labels)
    ids = [str(i) for i in ids]
    rows = []
    for repeat in range(repeats):
        subset_seed = seed * 1009 + repeat * 101
        for k, fraction in enumerate(sorted(float(f) for f in fractions)):
            subset = label_subset(train, labels, fraction, seed=subset_seed, task=task)
            for name, method in methods.items():
                scores = np.asarray(method(subset, test, subset_seed * 31 + k), dtype=float)
                if scores.shape[0] != test.size:
                    raise DataError(
                        f"Method {name!r} returned {scores.shape[0]} scores for {test.size} "
                        "test items."
                    )
                rows += prediction_rows(
                    scores,
                    test,
                    ids=ids,
                    labels=labels,
                    task=task,
                    repeat=repeat,
                    fold=0,
                    fraction=fraction,
                    method=name,
                    n_train=int(subset.size),
                )
    return pd.DataFrame(rows)
