"""Running moments against numpy on the stacked values."""

import numpy as np
import pytest

from neuroai.running import RunningMoments


def test_pooled_moments_equal_numpy_on_the_stacked_values():
    rng = np.random.default_rng(1)
    # Blocks of unequal size, far from zero (catastrophic cancellation in E[x^2] - E[x]^2
    # would show), one empty block.
    blocks = [1e4 + rng.standard_normal(n) * 1e-3 for n in (5, 0, 17, 1, 9)]
    stacked = np.concatenate(blocks)
    moments = RunningMoments()
    for block in blocks:
        moments.add(block)
    assert moments.n == stacked.size
    assert float(moments.mean_) == pytest.approx(stacked.mean(), rel=1e-15)
    assert float(moments.sd_) == pytest.approx(stacked.std(), rel=1e-6)
    assert float(moments.min_) == stacked.min() and float(moments.max_) == stacked.max()


def test_per_column_moments_and_empty_state():
    rng = np.random.default_rng(2)
    blocks = [rng.integers(0, 9, size=(n, 7)) for n in (3, 11, 4)]
    stacked = np.concatenate(blocks)
    moments = RunningMoments((7,))
    for block in blocks:
        moments.add(block)
    np.testing.assert_allclose(moments.mean_, stacked.mean(0), rtol=1e-12)
    np.testing.assert_allclose(moments.sd_, stacked.std(0), rtol=1e-12)
    np.testing.assert_array_equal(moments.max_, stacked.max(0))
    assert np.isnan(RunningMoments((2,)).sd_).all()
