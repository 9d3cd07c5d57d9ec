"""The cross-validation folds and interval of ``bench/errors.py``."""

import numpy as np

from bench.errors import folds, wilson


def test_folds_deal_every_image_once_with_a_fifth_of_every_class():
    y = np.repeat(np.arange(10), [500, 503, 497, 510, 480, 520, 499, 501, 490, 500])
    fold = folds(y)
    assert fold.shape == y.shape and set(fold.tolist()) == {0, 1, 2, 3, 4}
    for c in range(10):
        counts = np.bincount(fold[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1, (c, counts)
    assert np.array_equal(fold, folds(y)), "same labels and seed must give the same folds"
    assert not np.array_equal(fold, folds(y, seed=1)), "the seed re-deals the folds"


def test_wilson_interval_brackets_the_proportion_and_narrows_with_n():
    low, high = wilson(4956, 5000)
    assert 0 < low < 4956 / 5000 < high < 1
    low_small, high_small = wilson(99, 100)
    assert high_small - low_small > high - low
    assert wilson(100, 100)[1] <= 1.0 + 1e-12 and wilson(0, 100)[0] >= -1e-12
