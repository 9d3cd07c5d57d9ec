"""Metric computations checked against small hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from digitpipe import headline
from digitpipe.metrics import calibration_bins, confusion_matrix, evaluate_predictions, selective

CLASSES = ["a", "b", "c"]


def one_hot(pred: list[int], confidence: float = 0.8, k: int = 3) -> np.ndarray:
    probs = np.full((len(pred), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def test_confusion_matrix_rows_are_actual():
    m = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_hand_worked_case_with_a_class_never_predicted():
    # actual a a b c, predicted a b b b: class c is never predicted
    report = evaluate_predictions(np.array([0, 0, 1, 2]), one_hot([0, 1, 1, 1]), CLASSES)
    a, b, c = (report["per_class"][k] for k in CLASSES)
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == (1.0, 0.5, pytest.approx(0.666667), 2)
    assert (b["precision"], b["recall"], b["f1"]) == (pytest.approx(0.333333), 1.0, 0.5)
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 1)
    assert report["accuracy"] == 0.5
    assert report["macro"]["f1"] == pytest.approx((2 / 3 + 0.5 + 0) / 3, abs=1e-6)
    assert report["weighted"]["recall"] == pytest.approx(0.5)  # weighted recall == accuracy
    assert report["counts"] == {"test_images": 4, "errors": 2}


def test_perfect_predictions():
    y = np.array([0, 1, 2, 2])
    report = evaluate_predictions(y, one_hot(list(y), 1.0), CLASSES)
    assert report["accuracy"] == 1.0 and report["macro"]["f1"] == 1.0
    assert report["loss"] == pytest.approx(0.0, abs=1e-6)
    assert report["ece"] == pytest.approx(0.0)


def test_all_wrong_predictions():
    y = np.array([0, 1, 2])
    report = evaluate_predictions(y, one_hot([1, 2, 0], 0.9), CLASSES)
    assert report["accuracy"] == 0.0 and report["macro"]["f1"] == 0.0
    assert report["loss"] == pytest.approx(-np.log(0.05), abs=1e-5)
    assert report["ece"] == pytest.approx(0.9)  # 90% sure, never right


def test_top2_counts_the_runner_up():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    report = evaluate_predictions(np.array([1, 2]), probs, CLASSES)
    assert report["accuracy"] == 0.0 and report["top2_accuracy"] == 1.0


def test_calibration_bins_and_ece():
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False])
    bins = calibration_bins(conf, correct, bins=10)
    full = [b for b in bins if b["count"]]
    assert [(b["bin"], b["count"], b["accuracy"]) for b in full] == [(5, 2, 0.5), (9, 2, 1.0)]
    report = evaluate_predictions(np.array([0, 0, 0, 1]),
                                  np.array([[.95, .05, 0], [.95, .05, 0], [.55, .45, 0], [.55, .45, 0]]),
                                  CLASSES)
    assert report["ece"] == pytest.approx((2 * 0.05 + 2 * 0.05) / 4)


def test_key_order_is_stable():
    report = evaluate_predictions(np.array([0]), one_hot([0]), CLASSES)
    assert list(report) == ["accuracy", "loss", "top2_accuracy", "ece", "macro", "weighted", "per_class", "counts"]


def test_headline_keeps_a_few_sorted_numbers_of_the_full_report():
    # actual a a b c, predicted a b b b: 2 errors in 4
    report = evaluate_predictions(np.array([0, 0, 1, 2]), one_hot([0, 1, 1, 1]), CLASSES)
    report["ece_raw"] = 0.123456  # evaluate adds the ECE before temperature scaling
    numbers = headline.evaluation(report)
    assert list(numbers) == sorted(numbers)
    assert numbers == {"accuracy": 0.5, "ece": round(report["ece"], 4), "ece_raw": 0.1235, "errors": 2,
                       "f1": round((2 / 3 + 0.5 + 0) / 3, 4), "images": 4, "loss": round(report["loss"], 4),
                       "top2": report["top2_accuracy"]}
    assert all(len(str(v)) <= 6 for v in numbers.values())  # 4 decimals: narrow columns in `dvc metrics show`
    two = evaluate_predictions(np.array([0, 1, 1]), one_hot([0, 0, 1], k=2), ["ok", "scratched"])
    two["ece_raw"] = 0.1
    assert "top2" not in headline.evaluation(two) and two["top2_accuracy"] == 1  # two guesses of two: always right


def test_headline_of_the_other_stages():
    assert headline.data({"indexed": 49, "rejected": 11, "skipped": 9, "images_per_class": {}}) == {"images": 49}
    assert headline.export(3, 462.46) == {"errors": 3, "kb": 462.5}
    assert headline.timing({"best_epoch": 2, "train_seconds": 170.94}) == {"train_s": 170.9}


def test_answering_only_when_sure_at_each_level():
    confidence = np.array([0.3, 0.6, 0.95, 0.995, 0.9999])
    correct = np.array([False, True, False, True, True])
    rows = selective(confidence, correct, (0.5, 0.99, 0.99999))
    assert [(r["answered"], r["errors"]) for r in rows] == [(4, 1), (2, 0), (0, 0)]
    assert rows[0]["share"] == pytest.approx(0.8) and rows[0]["accuracy"] == pytest.approx(0.75)
    assert rows[1]["accuracy"] == 1.0 and rows[2]["accuracy"] is None  # nothing that sure: no accuracy to give


def test_a_validation_score_no_better_than_a_constant_or_uniform_guess_is_called_learning_nothing():
    from digitpipe.metrics import learned_nothing

    labels = np.array([0, 1, 1, 1, 2, 2])  # 'b' is half of them
    assert learned_nothing(0.5, 0.9, labels, CLASSES) == ("val accuracy 0.5000 is no better than always answering "
                                                          "class 'b' (0.5000): training learned nothing")
    ten = np.arange(10)  # one image of each of ten classes: always answering one is right 0.1 of the time
    names = [str(i) for i in range(10)]
    assert float(np.float32(0.1)) > 0.1 and learned_nothing(np.float32(0.1), 0.9, ten, names) is not None  # Keras'
    assert learned_nothing(0.2, 0.9, ten, names) is None  # one image more than the constant answer's
    assert learned_nothing(0.3333, 0.9, labels, CLASSES) is not None
    assert learned_nothing(4 / 6, 0.9, labels, CLASSES) is None
    assert learned_nothing(4 / 6, 1.1, labels, CLASSES) == ("val loss 1.1 is no better than a uniform guess's "
                                                            "(1.0986): training learned nothing")
    assert learned_nothing(4 / 6, float("nan"), labels, CLASSES) is not None
    assert learned_nothing(0.0, 9.0, np.array([], dtype=int), CLASSES) is None


def test_uneven_classes_told_apart_below_the_constant_answers_accuracy_are_not_called_learning_nothing():
    """30 'ok' and 4 'scratched' validation images: a model that finds 3 of the scratches at the cost of 5 'ok'
    images is right 29/34 times, below the 30/34 of always answering 'ok', yet it learned: its balanced accuracy
    is (25/30 + 3/4) / 2 = 0.79, against 0.5 for any constant answer. A constant answer is still learning nothing."""
    from digitpipe.metrics import UNEVEN, learned_nothing

    labels = np.array([0] * 30 + [1] * 4)
    told_apart = np.array([0] * 25 + [1] * 5 + [1, 1, 1, 0])
    why = learned_nothing(29 / 34, 0.4, labels, ["ok", "scratched"], predicted=lambda: told_apart)
    assert why == (UNEVEN + "val accuracy 0.8529 is no better than always answering class 'ok' (0.8824), but its "
                   "balanced accuracy is 0.7917 (the mean of each class's recall; 0.5000 for a constant answer)")
    constant = np.zeros(34, dtype=int)
    assert learned_nothing(30 / 34, 0.4, labels, ["ok", "scratched"], predicted=lambda: constant).endswith(
        ": training learned nothing")
    calls = []  # the predictions are asked for only when the accuracy is in doubt
    assert learned_nothing(33 / 34, 0.2, labels, ["ok", "scratched"], predicted=lambda: calls.append(1)) is None
    assert calls == []
