"""Train / validation / test splits: fixed, k-fold, stratified (by site, diagnosis...).

Every split is a :class:`Split` of item identifiers (subjects, recordings, cases),
seeded and reproducible. ``groups`` keeps all items of a group (a subject's several
recordings) on one side. The folds come from scikit-learn (``KFold``,
``StratifiedKFold``, ``GroupKFold``, ``StratifiedGroupKFold``); inside each fold's
training part, ``n_val`` items are drawn (seeded) for validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from neuroai.errors import ConfigError, DataError, check_option

KINDS = ("fixed", "kfold", "stratified")


@dataclass(frozen=True)
class Split:
    """One split of item identifiers.

    Attributes
    ----------
    fold : int
        Fold number (0 for a fixed split).
    train, val, test : list of str
        Identifiers in each part (in the order of the input).
    """

    fold: int
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"fold": self.fold, "train": self.train, "val": self.val, "test": self.test}


def _ordered(ids: Sequence[str], chosen: set[str]) -> list[str]:
    return [i for i in ids if i in chosen]


def _draw_val(
    train: list[str], n_val: int, seed: int, groups: dict[str, str] | None
) -> tuple[list[str], list[str]]:
    if n_val <= 0:
        return train, []
    if n_val >= len(train):
        raise ConfigError(f"n_val={n_val} leaves no training items (only {len(train)} available).")
    rng = np.random.default_rng(seed)
    if groups:
        units = sorted({groups[i] for i in train})
        rng.shuffle(units)
        val_units: set[str] = set()
        count = 0
        for unit in units:
            if count >= n_val:
                break
            val_units.add(unit)
            count += sum(groups[i] == unit for i in train)
        val = {i for i in train if groups[i] in val_units}
    else:
        val = set(rng.permutation(train)[:n_val].tolist())
    return [i for i in train if i not in val], [i for i in train if i in val]


def _check_ids(ids: Sequence[str]) -> list[str]:
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise DataError("Split: identifiers must be unique.")
    return ids


def fixed_split(
    ids: Sequence[str],
    *,
    test_fraction: float = 0.2,
    n_val: int = 0,
    seed: int = 0,
    test_ids: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> Split:
    """A single seeded split.

    Parameters
    ----------
    ids : sequence of str
        Item identifiers.
    test_fraction : float
        Fraction of items (or of groups) for the test part when ``test_ids`` is None.
    n_val : int
        Items drawn from the rest for validation.
    seed : int
        Random seed.
    test_ids : sequence of str | None
        A predefined test set (a dataset's own held-out cases); the other items form
        train and validation. With ``groups``, every item of a group that has a test
        item is tested too (a subject with one held-out recording is a test subject).
    groups : sequence of str | None
        Group of each item (kept together).
    """
    ids = _check_ids(ids)
    group_of = dict(zip(ids, groups, strict=True)) if groups is not None else None
    if test_ids is not None:
        unknown = sorted(set(test_ids) - set(ids))
        if unknown:
            raise DataError(f"fixed_split: test identifiers {unknown[:5]} are not among the items.")
        test = set(test_ids)
        if group_of:
            tested = {group_of[i] for i in test}
            test = {i for i in ids if group_of[i] in tested}
    else:
        if not 0 <= test_fraction < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}.")
        rng = np.random.default_rng(seed)
        units = sorted(set(group_of.values())) if group_of else list(ids)
        order = rng.permutation(len(units))
        n_test = math.ceil(test_fraction * len(units)) if test_fraction else 0
        chosen = {units[k] for k in order[:n_test]}
        test = {i for i in ids if (group_of[i] if group_of else i) in chosen}
    rest = [i for i in ids if i not in test]
    train, val = _draw_val(rest, n_val, seed + 1, group_of)
    return Split(0, train, val, _ordered(ids, test))


def kfold_splits(
    ids: Sequence[str],
    *,
    n_folds: int = 5,
    n_val: int = 0,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> list[Split]:
    """K folds; fold ``k`` tests on the ``k``-th part and trains on the others."""
    from sklearn.model_selection import GroupKFold, KFold

    ids = _check_ids(ids)
    if n_folds < 2 or n_folds > len(ids):
        raise ConfigError(
            f"n_folds must be between 2 and the number of items ({len(ids)}), got {n_folds}."
        )
    group_of = dict(zip(ids, groups, strict=True)) if groups is not None else None
    if groups is not None:
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(ids, groups=list(groups))
    else:
        parts = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(ids)
    return _to_splits(ids, parts, n_val, seed, group_of)


def stratified_splits(
    ids: Sequence[str],
    strata: Sequence[str],
    *,
    n_folds: int = 5,
    n_val: int = 0,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> list[Split]:
    """K folds with each stratum (site, diagnosis) in the same proportion in every fold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    ids = _check_ids(ids)
    strata = [str(s) for s in strata]
    if len(strata) != len(ids):
        raise DataError(f"stratified_splits: {len(strata)} strata for {len(ids)} items.")
    smallest = min(strata.count(s) for s in set(strata))
    if n_folds < 2 or smallest < n_folds:
        raise ConfigError(
            f"stratified_splits: every stratum needs at least n_folds={n_folds} items; the "
            f"smallest has {smallest}."
        )
    group_of = dict(zip(ids, groups, strict=True)) if groups is not None else None
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        parts = splitter.split(ids, strata, groups=list(groups))
    else:
        parts = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(
            ids, strata
        )
    return _to_splits(ids, parts, n_val, seed, group_of)


def _to_splits(ids, parts, n_val, seed, group_of) -> list[Split]:
    splits = []
    for fold, (train_idx, test_idx) in enumerate(parts):
        rest = [ids[i] for i in sorted(train_idx)]
        train, val = _draw_val(rest, n_val, seed + 1 + fold, group_of)
        splits.append(Split(fold, train, val, [ids[i] for i in sorted(test_idx)]))
    return splits


def make_splits(
    ids: Sequence[str],
    *,
    kind: str = "fixed",
    n_folds: int = 5,
    test_fraction: float = 0.2,
    n_val: int = 0,
    seed: int = 0,
    strata: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    test_ids: Sequence[str] | None = None,
) -> list[Split]:
    """Splits of ``kind`` (``"fixed"``: one split; ``"kfold"``; ``"stratified"`` by ``strata``)."""
    check_option("split kind", kind, KINDS)
    if kind == "fixed":
        return [
            fixed_split(
                ids,
                test_fraction=test_fraction,
                n_val=n_val,
                seed=seed,
                test_ids=test_ids,
                groups=groups,
            )
        ]
    if kind == "kfold":
        return kfold_splits(ids, n_folds=n_folds, n_val=n_val, seed=seed, groups=groups)
    if strata is None:
        raise ConfigError("A stratified split needs strata (a column such as site).")
    return stratified_splits(ids, strata, n_folds=n_folds, n_val=n_val, seed=seed, groups=groups)


def decathlon_split(
    dataset,
    *,
    kind: str = "fixed",
    n_folds: int = 5,
    fold: int = 0,
    test_fraction: float = 0.2,
    n_val: int = 2,
    seed: int = 0,
) -> Split:
    """The split of a Decathlon dataset that training and evaluation share.

    With ``kind="fixed"``, labelled test cases (``labelsTs/``) form the test set when
    there are any, else ``test_fraction`` of the training cases; with ``"kfold"``,
    fold ``fold`` of the labelled training cases is the test set. ``n_val`` training
    cases are held out for validation (model selection).

    Parameters
    ----------
    dataset : DecathlonDataset
        From :func:`neuroai.io.read_decathlon`.
    """
    check_option("split kind", kind, ("fixed", "kfold"))
    labelled = [c.id for c in dataset.training]
    labelled_test = [c.id for c in dataset.test if c.label is not None]
    if kind == "fixed":
        if labelled_test:
            split = fixed_split(
                labelled + labelled_test, n_val=n_val, seed=seed, test_ids=labelled_test
            )
        else:
            split = fixed_split(labelled, test_fraction=test_fraction, n_val=n_val, seed=seed)
        return split
    folds = kfold_splits(labelled, n_folds=n_folds, n_val=n_val, seed=seed)
    if not 0 <= fold < len(folds):
        raise ConfigError(f"fold must be between 0 and {len(folds) - 1}, got {fold}.")
    return folds[fold]


#: Values of the ``split`` column of a ``splits.tsv``.
SPLIT_NAMES = ("pretrain", "train", "val", "test")


def splits_table(
    parts: Mapping[str, Sequence[str]],
    *,
    recordings: Mapping[str, str] | None = None,
    **columns: str,
):
    """The ``splits.tsv`` record of a trained model: the split of each subject it used.

    Every training stage writes one beside its model (EEGFormer and dFC-GNN build theirs
    from their own stores' runs; this is the form for one item per subject, such as a
    TABLeT token store or a Decathlon case).

    Parameters
    ----------
    parts : mapping
        Split name (:data:`SPLIT_NAMES`) -> subject identifiers, e.g. ``Split.train``.
    recordings : mapping | None
        Subject -> its recording (file name); adds a ``recording`` column.
    **columns : str
        Constant columns placed first (``dataset="demo_volumes"``).

    Returns
    -------
    pandas.DataFrame
        ``[*columns], subject, [recording], split``; one row per subject, in the order of
        ``parts`` and then of each list.

    Raises
    ------
    DataError
        For a split name not in :data:`SPLIT_NAMES`, or a subject in two splits.
    """
    import pandas as pd

    unknown = sorted(set(parts) - set(SPLIT_NAMES))
    if unknown:
        raise DataError(f"splits_table: splits {unknown} are not among {list(SPLIT_NAMES)}.")
    split_of: dict[str, str] = {}
    for name, subjects in parts.items():
        for subject in map(str, subjects):
            if split_of.setdefault(subject, name) != name:
                raise DataError(
                    f"splits_table: subject {subject} is in both {split_of[subject]} and {name}."
                )
    rows = []
    for subject, name in split_of.items():
        row = {**columns, "subject": subject}
        if recordings is not None:
            row["recording"] = recordings[subject]
        rows.append({**row, "split": name})
    names = [*columns, "subject", *(["recording"] if recordings is not None else []), "split"]
    return pd.DataFrame(rows, columns=names)
