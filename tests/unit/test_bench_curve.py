"""How ``bench/curve.py`` takes its shares of a training split, fits the learning curve and reports it."""

import numpy as np
import pytest

from bench.curve import fit_curve, images_for, nested_shares, power_law, render


def test_shares_are_stratified_nested_and_never_leave_a_class_out():
    y = np.array([0] * 40 + [1] * 20 + [2] * 3)
    picked = nested_shares(y, [0.125, 0.5, 1.0], seed=7)
    counts = {share: np.bincount(y[rows], minlength=3).tolist() for share, rows in picked.items()}
    assert counts == {0.125: [5, 2, 1], 0.5: [20, 10, 2], 1.0: [40, 20, 3]}  # 3/8 rounds to 0: one is kept
    assert set(picked[0.125]) <= set(picked[0.5]) <= set(picked[1.0]) == set(range(len(y)))
    assert all(np.array_equal(rows, np.sort(rows)) and len(set(rows)) == len(rows) for rows in picked.values())
    again = nested_shares(y, [0.125, 0.5, 1.0], seed=7)
    assert all(np.array_equal(picked[share], again[share]) for share in picked)  # the same seed, the same sets
    assert not np.array_equal(picked[0.5], nested_shares(y, [0.125, 0.5, 1.0], seed=8)[0.5])


def test_the_fit_recovers_a_power_law_and_extrapolates_to_the_target():
    images = np.array([500.0, 1000.0, 2000.0, 4000.0])
    rates = 0.02 * (images / 500) ** -0.5  # each doubling divides the errors by sqrt(2)
    a, slope = power_law(images, rates)
    assert slope == pytest.approx(-0.5) and np.exp(a + slope * np.log(500)) == pytest.approx(0.02)
    tested = np.full(5, 10_000)
    errors = np.tile(np.round(rates * 10_000).astype(int), (5, 1))  # five identical splits
    fit = fit_curve(images, errors, tested, draws=50)
    assert fit["slope"] == pytest.approx(-0.5, abs=0.01)
    assert fit["slope_low"] == pytest.approx(fit["slope_high"], abs=1e-9)  # no spread between splits
    assert images_for(fit, 0.995) == pytest.approx(500 * 4 ** 2, rel=0.03)  # 2% -> 0.5% errors: 16x the images


def test_the_interval_widens_with_disagreeing_splits_and_flat_curves_extrapolate_to_nothing():
    images = np.array([400.0, 800.0, 1600.0])
    errors = np.array([[40, 20, 10], [30, 30, 30], [50, 10, 5], [20, 25, 15]])
    fit = fit_curve(images, errors, np.full(4, 1000), draws=400)
    assert fit["slope_low"] < fit["slope"] < fit["slope_high"]
    flat = fit_curve(images, np.array([[10, 10, 10], [10, 11, 12]]), np.full(2, 1000), draws=20)
    assert flat["slope"] >= 0 and np.isnan(images_for(flat, 0.999))
    assert np.isnan(power_law(images, np.array([0.0, 0.0, 0.01]))[1])  # one point with errors: no line


def test_render_gives_each_share_its_errors_and_the_fit_in_words():
    images = np.array([437.5, 875.0, 1750.0, 3500.0])
    errors = np.array([[30, 18, 11, 7], [26, 16, 10, 6]])
    result = {"errors": errors, "seconds": np.array([[12.0, 24, 47, 95], [12, 25, 48, 96]]), "images": images,
              "tested": np.array([750, 750])}
    result["fit"] = fit_curve(images, errors, result["tested"], draws=50)
    table = render({"digitnet": result}, [0.125, 0.25, 0.5, 1.0], "python bench/curve.py --splits 2", range(10, 12),
                   5000, "", 0.993)
    assert "| 3,500 (1) | 7, 6 | 13 | 99.13% ± " in table and "| 438 (0.125) | 30, 26 | 56 | 96.27% ± " in table
    assert "| 96 |" in table  # the median of 95 and 96 s
    assert "each doubling of the training images divides the errors by" in table
    assert "99.3% at about" in table and "times the 3,500 of a split" in table


def test_a_curve_with_shares_without_errors_is_told_in_words_and_drawn_at_half_an_error():
    from bench.curve import figure, fit_words

    images = np.array([546.0, 1092.0])
    result = {"errors": np.array([[1, 0]]), "seconds": np.array([[22.0, 34]]), "images": images,
              "tested": np.array([234])}
    result["fit"] = fit_curve(images, result["errors"], result["tested"], draws=10)
    words = fit_words(result["fit"], 0.993, 1092)
    assert words.startswith("No line to fit") and "nan" not in words
    assert "nan" not in render({"digitnet": result}, [0.5, 1.0], "c", range(10, 11), 1560, "", 0.993)
    assert "Split 10 of the 1,560 images" in render({"digitnet": result}, [0.5, 1.0], "c", range(10, 11), 1560, "",
                                                   0.993)
    assert "do not fall" in fit_words(fit_curve(images, np.array([[3, 4]]), np.array([234]), draws=10), 0.993, 1092)
    ax = figure({"digitnet": result}, 0.993, "t").axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert not any("fit" in label for label in labels)  # no line through one point
    (floor,) = [line for line in ax.lines if "no errors" in line.get_label()]
    assert floor.get_xdata().tolist() == [1092.0] and floor.get_ydata()[0] == pytest.approx(100 * 0.5 / 234)
    assert ax.get_ylim()[0] < 100 * 0.5 / 234  # the open triangle is inside the axes


def test_a_target_already_met_is_not_asked_of_more_images():
    from bench.curve import fit_words

    images = np.array([250.0, 500.0, 1000.0])
    fit = fit_curve(images, np.array([[40, 4, 1], [44, 2, 1]]), np.array([250, 250]), draws=20)
    words = fit_words(fit, 0.99, 1000)
    assert "is reached at about" in words and "within a split's" in words and "times the" not in words
    assert images_for(fit, 0.99) < 1000


def test_a_nearly_flat_curve_is_out_of_reach_in_words_not_infinity():
    import warnings

    from bench.curve import fit_words

    images = np.array([48.0, 96.0, 192.0])
    errors = np.array([[70, 69, 69], [71, 70, 70]])  # a class the images cannot tell: errors barely fall
    fit = fit_curve(images, errors, np.full(2, 90), draws=50)
    assert -0.02 < fit["slope"] < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        need = images_for(fit, 0.993)
        words = fit_words(fit, 0.993, 192.0)
    assert need == np.inf or need > 1_000 * 192
    assert "more than 1,000 times the 192 training images of a split" in words and "inf" not in words
