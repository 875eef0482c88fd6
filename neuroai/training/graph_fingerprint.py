"""Which two segments of a subject's scans fingerprinting compares.

Finn et al. (2015, Nat Neurosci) identified subjects from one resting-state session
among the scans of another day (REST1 against REST2 of the HCP): the two profiles
of a subject share no scan, no session set-up and no day. With one run per subject
the best a dataset allows is the two halves of that run, an easier test (the same
session, head position and state; the halves abut in time). :func:`fingerprint_pairs`
picks the design a dataset allows, or the one asked for:

``"sessions"``
    the first run (by key) of a subject's first and second session (BIDS ``ses``);
``"runs"``
    a subject's first two runs (by key), of any session: whole runs, no time point
    shared;
``"halves"``
    the first and the second half in time of a subject's first run
    (:func:`~neuroai.evaluation.fingerprint.scan_halves`: whole windows only, no time
    point shared);
``"auto"``
    sessions when at least two subjects have two sessions, else runs when at least
    two subjects have two runs, else halves.

Subjects that the design cannot pair (one session, one run) are left out and counted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from neuroai.errors import DataError, check_option
from neuroai.evaluation.fingerprint import scan_halves
from neuroai.training.graph_splits import run_entities

DESIGNS = ("auto", "sessions", "runs", "halves")


@dataclass(frozen=True)
class Segment:
    """A stretch of one run: its windows ``[w0, w1)`` and the TRs ``[t0, t1)`` they cover."""

    run: int
    windows: tuple[int, int]
    timepoints: tuple[int, int]

    def to_dict(self, meta: Mapping) -> dict:
        return {
            "recording": meta["runs"][self.run]["key"],
            "windows": list(self.windows),
            "timepoints": list(self.timepoints),
        }


def _whole(meta: Mapping, run: int) -> Segment:
    n = int(meta["runs"][run]["n_windows"])
    window, step = int(meta["windowing"]["window"]), int(meta["windowing"]["step"])
    return Segment(run, (0, n), (0, (n - 1) * step + window))


def _halves(meta: Mapping, run: int) -> tuple[Segment, Segment]:
    window, step = int(meta["windowing"]["window"]), int(meta["windowing"]["step"])
    halves = scan_halves(int(meta["runs"][run]["n_windows"]), window, step)
    return tuple(
        Segment(run, tuple(halves[p]["windows"]), tuple(halves[p]["timepoints"]))
        for p in ("first", "second")
    )


def fingerprint_pairs(
    meta: Mapping, *, subjects: Collection[str] | None = None, design: str = "auto"
) -> tuple[str, dict[str, tuple[Segment, Segment]]]:
    """The design used and, per subject, its two segments (database, target).

    Parameters
    ----------
    meta : mapping
        The graph dataset's ``dataset.json`` (``runs`` with ``key``, ``subject``,
        ``n_windows``; ``windowing``).
    subjects : collection of str | None
        Only these subjects (the held-out ones); None: all.
    design : {"auto", "sessions", "runs", "halves"}

    Returns
    -------
    design : str
        The design used (never ``"auto"``).
    pairs : dict
        Subject -> (first segment, second segment), subjects sorted.
    """
    check_option("fingerprint design", design, DESIGNS)
    by_subject: dict[str, list[int]] = {}
    for r, run in enumerate(meta["runs"]):
        subject = str(run["subject"])
        if subjects is None or subject in subjects:
            by_subject.setdefault(subject, []).append(r)
    for runs in by_subject.values():
        runs.sort(key=lambda r: meta["runs"][r]["key"])

    def sessions(runs: list[int]) -> dict[str, int]:
        first: dict[str, int] = {}
        for r in runs:
            first.setdefault(run_entities(meta["runs"][r]["key"]).get("ses", ""), r)
        return dict(sorted(first.items()))

    if design == "auto":
        if sum(len(sessions(r)) >= 2 for r in by_subject.values()) >= 2:
            design = "sessions"
        elif sum(len(r) >= 2 for r in by_subject.values()) >= 2:
            design = "runs"
        else:
            design = "halves"
    pairs: dict[str, tuple[Segment, Segment]] = {}
    for subject in sorted(by_subject):
        runs = by_subject[subject]
        if design == "sessions":
            firsts = list(sessions(runs).values())
            if len(firsts) >= 2:
                pairs[subject] = (_whole(meta, firsts[0]), _whole(meta, firsts[1]))
        elif design == "runs":
            if len(runs) >= 2:
                pairs[subject] = (_whole(meta, runs[0]), _whole(meta, runs[1]))
        else:
            pairs[subject] = _halves(meta, runs[0])
    if len(pairs) < 2:
        raise DataError(
            f"Fingerprinting by {design} needs two subjects with two segments; "
            f"{len(pairs)} of the {len(by_subject)} subjects considered have them."
        )
    return design, pairs
