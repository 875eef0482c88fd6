"""Downstream EEG tasks as the TUH corpus subsets define them, turned into window targets.

A task says which windows of a patch store it uses and what each window's target
is, from the two kinds of labels a store keeps (see :mod:`neuroai.eeg.store`): the
*recording label* of every window (TUAB's ``normal``/``abnormal`` folders) and the
*annotation labels* overlapping it (``events``: TUAR artifact codes, TUSL/TUSZ
term-based spans ...). Four tasks are built in, named after the four TUH subsets EEGFormer
is evaluated on:

``abnormal`` (TUAB)
    binary, from the recording label: ``abnormal`` is positive, ``normal`` negative;
    windows of recordings with another or no label are left out. Recording-level
    predictions average the window probabilities.
``artifacts`` (TUAR)
    multi-label over the artifact classes ``eyem`` (eye movement), ``chew``,
    ``shiv`` (shivering), ``musc`` (muscle), ``elpp`` (electrode pop) and ``elec``
    (electrode artifact); TUAR's combined labels (``eyem_musc``, ``musc_elec``) count
    for each of their parts. Classes that never occur in the data are dropped
    (and reported).
``slowing`` (TUSL)
    binary: a window overlapping a ``slow`` span against every other window
    (TUSL's ``seiz`` and ``bckg`` alike).
``seizure`` (TUSZ)
    binary: a window overlapping a seizure span (``seiz`` or any TUSZ seizure type:
    ``fnsz gnsz spsz cpsz absz tnsz cnsz tcsz atsz mysz``) against every other window.

Event tasks aggregate windows to recordings with the maximum (a recording is
positive if any of its windows is). Every field can be changed per task (the demo
counts its simulated 3 Hz spike-and-wave bursts, ``spsw``, as seizures), and new
tasks can be defined with the same fields.

What differs from EEGFormer's evaluation, as far as can be said: the definitions above are
ours, written from the TUH corpora's own label conventions, not from the paper's code (none
is public) or its evaluation section (not re-read here). So the class sets (TUAR's six
artifact classes as a multi-label task; TUSL and TUSZ as binary window tasks, where a
benchmark may instead classify seizure, slowing and background as three classes), the
window length (``eeg.window_s``, 12 s in the demo), the recording-level aggregation (mean for
``abnormal``, max for the event tasks) and the metrics (AUROC, AUPRC, balanced accuracy at
window and recording level, with patient bootstrap intervals) are our choices and may differ
from the paper's. The report's EEGFormer fidelity table says the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neuroai.errors import ConfigError, DataError, check_option, did_you_mean

KINDS = ("recording_label", "binary_events", "multilabel_events")
AGGREGATES = ("mean", "max")
SEIZURE_TYPES = ("seiz", "fnsz", "gnsz", "spsz", "cpsz", "absz", "tnsz", "cnsz", "tcsz", "atsz",
                 "mysz")  # fmt: skip
ARTIFACT_CLASSES = ("eyem", "chew", "shiv", "musc", "elpp", "elec")


@dataclass(frozen=True)
class EEGTask:
    """One downstream task (see the module docstring).

    Attributes
    ----------
    name : str
        Task name (``abnormal``, ``artifacts`` ...).
    kind : {"recording_label", "binary_events", "multilabel_events"}
        Where the target comes from and its form.
    positive : tuple of str
        Recording labels (``recording_label``) or annotation labels
        (``binary_events``) that make a window positive.
    negative : tuple of str
        Recording labels that make a window negative (``recording_label`` only);
        other labels are left out.
    classes : tuple of str
        The classes of a ``multilabel_events`` task; an annotation label counts
        for a class if it is the class or has it as a ``_``-separated part.
    aggregate : {"mean", "max"}
        How window probabilities become a recording's.
    """

    name: str
    kind: str
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    aggregate: str = "max"

    def __post_init__(self) -> None:
        check_option(f"kind (task {self.name!r})", self.kind, KINDS)
        check_option(f"aggregate (task {self.name!r})", self.aggregate, AGGREGATES)
        if self.kind == "multilabel_events" and not self.classes:
            raise ConfigError(f"Task {self.name!r} is multi-label but lists no classes.")
        if self.kind != "multilabel_events" and not self.positive:
            raise ConfigError(f"Task {self.name!r} lists no positive labels.")
        if self.kind == "recording_label" and not self.negative:
            raise ConfigError(
                f"Task {self.name!r} takes its target from the recording label and needs "
                "negative labels too (for example ['normal'])."
            )

    @property
    def multilabel(self) -> bool:
        return self.kind == "multilabel_events"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "positive": list(self.positive),
            "negative": list(self.negative),
            "classes": list(self.classes),
            "aggregate": self.aggregate,
        }

    def targets(
        self, labels: Sequence[str], events: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Targets of windows from their recording labels and annotation labels.

        Parameters
        ----------
        labels : sequence of str, length n_windows
            Recording label of each window (``n/a`` or empty when none).
        events : sequence of str, length n_windows
            ``;``-separated annotation labels overlapping each window.

        Returns
        -------
        targets : ndarray
            ``(n_kept,)`` int64 0/1, or ``(n_kept, n_classes)`` float32 multi-hot.
        kept : ndarray, shape (n_windows,), bool
            Windows the task uses.
        classes : list of str
            Class names: ``[negative, positive]`` names for binary tasks, the classes
            present in the data for multi-label ones.
        """
        labels = [str(v) for v in labels]
        sets = [{e for e in str(v).split(";") if e} for v in events]
        if len(labels) != len(sets):
            raise DataError(f"Task {self.name!r}: {len(labels)} labels for {len(sets)} windows.")
        if self.kind == "recording_label":
            kept = np.array([lab in self.positive or lab in self.negative for lab in labels])
            y = np.array([lab in self.positive for lab in labels], dtype=np.int64)[kept]
            return y, kept, ["/".join(self.negative), "/".join(self.positive)]
        kept = np.ones(len(labels), dtype=bool)
        if self.kind == "binary_events":
            wanted = set(self.positive)
            y = np.array([bool(s & wanted) for s in sets], dtype=np.int64)
            return y, kept, ["other", "/".join(self.positive)]
        parts = [{p for e in s for p in (e, *e.split("_"))} for s in sets]
        multi = np.array([[c in p for c in self.classes] for p in parts], dtype=np.float32)
        present = multi.reshape(len(labels), len(self.classes)).sum(0) > 0
        classes = [c for c, keep in zip(self.classes, present, strict=True) if keep]
        return multi.reshape(len(labels), -1)[:, present], kept, classes


TUH_TASKS: dict[str, EEGTask] = {
    "abnormal": EEGTask(
        "abnormal", "recording_label", ("abnormal",), ("normal",), aggregate="mean"
    ),
    "artifacts": EEGTask("artifacts", "multilabel_events", classes=ARTIFACT_CLASSES),
    "slowing": EEGTask("slowing", "binary_events", ("slow",)),
    "seizure": EEGTask("seizure", "binary_events", SEIZURE_TYPES),
}


def make_task(name: str, overrides: Mapping[str, Any] | None = None) -> EEGTask:
    """A built-in task (:data:`TUH_TASKS`) with fields changed, or a new task.

    Parameters
    ----------
    name : str
        A built-in name, or a new name (then ``overrides`` must give ``kind`` and
        the labels).
    overrides : mapping | None
        Fields of :class:`EEGTask` (``kind``, ``positive``, ``negative``,
        ``classes``, ``aggregate``); other keys are errors.
    """
    overrides = dict(overrides or {})
    fields = ("kind", "positive", "negative", "classes", "aggregate")
    for key in overrides:
        if key not in fields:
            raise ConfigError(
                f"Unknown field {key!r} of task {name!r}.{did_you_mean(key, fields)} "
                f"Valid fields: {', '.join(fields)}."
            )
    values = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in overrides.items()}
    if name in TUH_TASKS:
        return replace(TUH_TASKS[name], **values)
    if "kind" not in values:
        raise ConfigError(
            f"Task {name!r} is not built in ({', '.join(TUH_TASKS)}): give its kind "
            f"({', '.join(KINDS)}) and labels.{did_you_mean(name, TUH_TASKS)}"
        )
    return EEGTask(name, **values)


@dataclass
class TaskTargets:
    """Targets of a task over a window table.

    Attributes
    ----------
    task : EEGTask
    rows : ndarray, shape (n_kept,), int64
        Positions (in the window table) of the windows the task uses.
    targets : ndarray
        ``(n_kept,)`` int64 or ``(n_kept, n_classes)`` float32.
    classes : list of str
    dropped_classes : list of str
        Multi-label classes that never occur.
    """

    task: EEGTask
    rows: np.ndarray
    targets: np.ndarray
    classes: list[str]
    dropped_classes: list[str] = field(default_factory=list)

    def positives(self) -> dict[str, int]:
        """Positive windows per class (the positive class of a binary task)."""
        if self.targets.ndim == 2:
            counts = self.targets.sum(0)
            return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}
        return {self.classes[1]: int(self.targets.sum())}


def task_targets(task: EEGTask, table) -> TaskTargets:
    """Targets of ``task`` for the windows of ``table`` (``label`` and ``events`` columns).

    Raises
    ------
    DataError
        When no window is positive (or, for a binary task, none negative): the
        task cannot be learned or evaluated on these data.
    """
    y, kept, classes = task.targets(list(table["label"]), list(table["events"]))
    dropped = [c for c in task.classes if c not in classes] if task.multilabel else []
    if task.multilabel and not classes:
        raise DataError(
            f"Task {task.name!r}: none of the classes {list(task.classes)} occurs in the "
            "annotations of these windows; check the stores' events or the task's classes."
        )
    if not task.multilabel and (y.size == 0 or y.min() == y.max()):
        found = sorted({e for v in table["events"] for e in str(v).split(";") if e})
        raise DataError(
            f"Task {task.name!r} needs positive and negative windows; these data have "
            f"{int(y.sum())} positive of {y.size} (positive labels {list(task.positive)}; "
            f"recording labels found: {sorted(set(map(str, table['label'])))}; annotation "
            f"labels found: {found})."
        )
    return TaskTargets(task, np.flatnonzero(kept).astype(np.int64), y, classes, dropped)
