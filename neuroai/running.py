"""Running statistics over streamed blocks of values (cohort steps, one run at a time).

:class:`RunningMoments` keeps the count, mean and sum of squared deviations of what it has
seen, merged block by block with the pairwise update of Chan, Golub and LeVeque (1979), so
that the mean and standard deviation of a cohort's values come out as ``numpy``'s
``mean``/``std`` of the stacked values would (to rounding), with memory for one block.
"""

from __future__ import annotations

import numpy as np


class RunningMoments:
    """Mean, standard deviation, minimum and maximum of values seen block by block.

    Parameters
    ----------
    shape : tuple of int
        Shape of one observation: ``()`` pools every value of a block into one statistic;
        ``(n_regions,)`` keeps one statistic per region, with blocks of shape
        ``(n, n_regions)``.

    Attributes
    ----------
    n : int
        Observations seen.
    mean_, m2_ : ndarray of ``shape``
        Mean, and sum of squared deviations from it.
    min_, max_ : ndarray of ``shape``
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.shape = tuple(shape)
        self.n = 0
        self.mean_ = np.zeros(self.shape)
        self.m2_ = np.zeros(self.shape)
        self.min_ = np.full(self.shape, np.inf)
        self.max_ = np.full(self.shape, -np.inf)

    def add(self, block) -> RunningMoments:
        """Add a block of observations: any shape when ``shape == ()``, else ``(n, *shape)``."""
        values = np.asarray(block, dtype=np.float64)
        values = values.reshape(-1, *self.shape) if self.shape else values.reshape(-1)
        n_b = values.shape[0]
        if n_b == 0:
            return self
        mean_b = values.mean(axis=0)
        m2_b = np.square(values - mean_b).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean_
        self.mean_ = self.mean_ + delta * (n_b / n)
        self.m2_ = self.m2_ + m2_b + np.square(delta) * (self.n * n_b / n)
        self.min_ = np.minimum(self.min_, values.min(axis=0))
        self.max_ = np.maximum(self.max_, values.max(axis=0))
        self.n = n
        return self

    @property
    def sd_(self) -> np.ndarray:
        """Population standard deviation (``ddof=0``, as ``numpy.std``); NaN before any value."""
        if not self.n:
            return np.full(self.shape, np.nan)
        return np.sqrt(self.m2_ / self.n)
