"""Group quality control: which subjects stand out from their cohort, and why.

A run or recording is flagged when one of its QC measures is far from the
cohort's centre on a robust scale, or past an absolute limit that holds
whatever the cohort looks like. The robust scale is Iglewicz and Hoaglin's
modified z-score, ``0.6745 * (x - median) / MAD``, flagged above 3.5: unlike
the mean and standard deviation it is not dragged along by the outliers it is
meant to find, and it stays meaningful for the ten-subject cohorts a demo has.
Only the worse side counts (more motion, more censored volumes, more rejected
windows); a subject that moved less than the others is not an outlier to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Modified z-score above which a value is flagged (Iglewicz and Hoaglin, 1993).
ROBUST_Z = 3.5


def robust_z(values: Sequence[float]) -> np.ndarray:
    """Modified z-scores of ``values``, NaN where a value is missing.

    Parameters
    ----------
    values : sequence of float, shape (n,)
        One QC measure across the cohort; NaN marks a missing value.

    Returns
    -------
    ndarray, shape (n,)
        ``0.6745 * (x - median) / MAD``. When more than half the values are
        equal (MAD = 0), the mean absolute deviation scaled by 1.2533 takes its
        place, as Iglewicz and Hoaglin suggest; when every value is equal, all
        scores are 0.
    """
    x = np.asarray(values, dtype=float)
    z = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return np.where(ok, 0.0, np.nan)
    centre = np.median(x[ok])
    mad = np.median(np.abs(x[ok] - centre))
    if mad > 0:
        z[ok] = 0.6745 * (x[ok] - centre) / mad
        return z
    mean_ad = np.mean(np.abs(x[ok] - centre))
    z[ok] = 0.0 if mean_ad == 0 else (x[ok] - centre) / (1.2533 * mean_ad)
    return z


@dataclass(frozen=True)
class Measure:
    """One QC measure and how it is judged.

    Attributes
    ----------
    name : str
        Shown in the table and in the reasons.
    limit : float | None
        Absolute limit: a value above it is flagged whatever the cohort.
    unit : str
        Printed after values in the reasons.
    floor : float | None
        Values at or below it are never flagged on the robust scale: when most
        of a cohort sits at zero (no rejected window, no censored volume), the
        scale is tiny and a single rejected window would otherwise stand out.
    """

    name: str
    limit: float | None = None
    unit: str = ""
    floor: float | None = None


def flag_outliers(
    values: Mapping[Measure, Sequence[float]], *, threshold: float = ROBUST_Z
) -> list[list[str]]:
    """Reasons each subject is flagged (an empty list when it is not).

    Parameters
    ----------
    values : mapping
        :class:`Measure` to its values across subjects, shape (n_subjects,);
        higher is worse for every measure.
    threshold : float
        Modified z-score above which a value is flagged.

    Returns
    -------
    list of list of str
        Per subject, one reason per measure that flagged it.
    """
    n = len(next(iter(values.values()))) if values else 0
    reasons: list[list[str]] = [[] for _ in range(n)]
    for measure, column in values.items():
        x = np.asarray(column, dtype=float)
        if x.shape != (n,):
            raise ValueError(f"{measure.name}: {x.size} values for {n} subjects.")
        z = robust_z(x)
        for i in range(n):
            if not np.isfinite(x[i]):
                continue
            if measure.limit is not None and x[i] > measure.limit:
                reasons[i].append(
                    f"{measure.name} {x[i]:.3g}{measure.unit} > {measure.limit:g}{measure.unit}"
                )
            elif z[i] > threshold and (measure.floor is None or x[i] > measure.floor):
                reasons[i].append(f"{measure.name} {x[i]:.3g}{measure.unit} (robust z {z[i]:.1f})")
    return reasons


__all__ = ["ROBUST_Z", "Measure", "flag_outliers", "robust_z"]
