"""How ``bench/calibration.py`` draws a small data set and what its table says."""

import numpy as np
import pytest

from bench.calibration import render, small_split
from digitpipe.errors import DigitpipeError

SHARES = {"train": 0.7, "val": 0.15, "test": 0.15}


def test_a_small_set_is_drawn_alike_from_every_class_and_every_other_image_is_held_out():
    y = np.array([0] * 40 + [1] * 25 + [2] * 12)
    train, val, held = small_split(y, 10, SHARES, seed=3)
    assert np.bincount(y[train], minlength=3).tolist() == [7, 7, 7]
    assert np.bincount(y[val], minlength=3).tolist() == [2, 2, 2]  # 1.5 rounds to 2
    assert np.bincount(y[held], minlength=3).tolist() == [30, 15, 2]  # all but the 10 drawn of each class
    assert not (set(train) & set(val)) and not ((set(train) | set(val)) & set(held))
    assert all(np.array_equal(rows, np.sort(rows)) for rows in (train, val, held))
    again = small_split(y, 10, SHARES, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, held), again, strict=True))
    assert not np.array_equal(train, small_split(y, 10, SHARES, seed=4)[0])
    assert len(small_split(y, 2, SHARES, seed=0)[1]) == 3  # a share that rounds to nothing still gets one image


def test_a_class_with_nothing_left_over_to_score_on_is_refused():
    y = np.array([0] * 40 + [1] * 10)
    with pytest.raises(DigitpipeError, match="--per-class 10: class 1 has 10 images, and at least one must be left"):
        small_split(y, 10, SHARES, seed=0)


def test_the_table_counts_the_draws_calibration_helped_and_shows_the_worst_ece():
    def draw(ece_raw, ece, val_errors):
        return {"train": 70, "val": 20, "held": 4900, "val_errors": val_errors, "accuracy": 0.8,
                "temperature": 0.5, "held_temperature": 0.6, "ece_raw": ece_raw, "ece": ece, "ece_held": 0.02,
                "seconds": 5.0}

    table = render({10: [draw(0.12, 0.04, 1), draw(0.10, 0.11, 5), draw(0.14, 0.06, 3)]}, "digitnet", "python x",
                   5000, "", SHARES)
    row = table.splitlines()[-1].split(" | ")
    assert row[0] == "| 10" and row[1] == "70, 20" and row[2] == "3 (1 to 5)"
    assert row[7] == "0.070 (0.110)"  # the mean calibrated ECE, and the worst draw's
    assert row[9] == "2 of 3"  # the second draw's calibration made it worse
