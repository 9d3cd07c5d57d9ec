"""Classification metrics from true labels and predicted probabilities (plain NumPy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-7


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = actual class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (e.g. precision of a class never predicted)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of every class from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    precision = safe_divide(tp, matrix.sum(axis=0))
    recall = safe_divide(tp, matrix.sum(axis=1))
    f1 = safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": matrix.sum(axis=1)}


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> list[dict]:
    """Equal-width confidence bins: count, mean confidence and accuracy of each (empty bins kept)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append({
            "bin": b, "lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
            "confidence": float(confidence[mask].mean()) if n else 0.0,
            "accuracy": float(correct[mask].mean()) if n else 0.0,
        })
    return out


SURE_LEVELS = (0.5, 0.9, 0.99, 0.999)  # the confidences the "answer only when sure" tables are given at


def selective(confidence: np.ndarray, correct: np.ndarray, levels: tuple[float, ...] = SURE_LEVELS) -> list[dict]:
    """Answering only when sure: for each confidence level, how many images reach it (``answered``, and as a
    ``share`` of all), how many of those are wrong and the accuracy on them (``None`` when none reach it). The
    rest would go to a person. With calibrated confidences the accuracy on the answered is about the level or
    above (over the sample's 5,000 out-of-fold predictions, 99.87% at 99% and 99.89% at 99.9%: README, Predict)."""
    confidence, correct = np.asarray(confidence), np.asarray(correct, dtype=bool)
    out = []
    for level in levels:
        sure = confidence >= level
        answered = int(sure.sum())
        errors = int((sure & ~correct).sum())
        out.append({"level": level, "answered": answered, "share": answered / max(len(confidence), 1),
                    "errors": errors, "accuracy": 1 - errors / answered if answered else None})
    return out


def expected_calibration_error(bins: list[dict], total: int) -> float:
    """Mean gap between confidence and accuracy, weighted by how many predictions fall in each bin."""
    if total == 0:
        return 0.0
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total)


def learned_nothing(accuracy: float, loss: float, labels: np.ndarray, classes: list[str],
                    predicted: Callable[[], np.ndarray] | None = None) -> str | None:
    """Why a validation ``accuracy`` and ``loss`` say training learned nothing, or None: an accuracy no better
    than always answering the most common class of ``labels``, or a loss no better than the uniform guess's,
    ln(classes) (the same with label smoothing). A collapsed run, e.g. at too high a learning rate, does both.

    On uneven classes a model can tell the classes apart and still be right less often than the constant answer
    (it trades a few of the common class for many of the rare one): ``predicted``, called only then, gives the
    validation predictions, and a balanced accuracy (the mean of each class's recall, 1/classes for a constant
    answer) above chance says "uneven classes" (:func:`uneven`) instead."""
    if len(labels) == 0:
        return None
    counts = np.bincount(labels, minlength=len(classes))
    majority = counts.max() / len(labels)
    if accuracy <= majority + 0.5 / len(labels):  # half an image: Keras reports accuracies in float32
        constant = (f"val accuracy {accuracy:.4f} is no better than always answering class "
                    f"{classes[int(counts.argmax())]!r} ({majority:.4f})")
        balanced = balanced_accuracy(labels, predicted()) if predicted is not None else None
        present = counts[counts > 0]
        if balanced is not None and balanced > 1 / len(present) + 0.5 / present.min():  # half the rarest's image
            return UNEVEN + f"{constant}, but its balanced accuracy is {balanced:.4f} (the mean of each class's " \
                f"recall; {1 / len(present):.4f} for a constant answer)"
        return f"{constant}: training learned nothing"
    uniform = float(np.log(len(classes)))
    if not loss < uniform:  # NaN too
        return f"val loss {loss:.4g} is no better than a uniform guess's ({uniform:.4f}): training learned nothing"
    return None


UNEVEN = "uneven classes: "  # how learned_nothing's reason starts when the model tells the classes apart


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall of the classes present in ``labels``."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))


def rounded(value: float) -> float:
    """Metrics are stored with 6 decimals so files stay readable and stable."""
    return round(float(value), 6)


def evaluate_predictions(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    """Every metric of the full report ``metrics/details/eval.json``, as a nested dict with a stable key order
    (:func:`digitpipe.headline.evaluation` picks the few of ``metrics/eval.json``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    n, k = len(y_true), len(classes)
    y_pred = probs.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, k)
    scores = per_class_scores(matrix)
    support = scores["support"].astype(np.float64)
    weights = support / support.sum() if n else np.zeros(k)
    p_true = probs[np.arange(n), y_true] if n else np.zeros(0)
    top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2] if n else np.zeros((0, 2), dtype=int)
    confidence = probs.max(axis=1) if n else np.zeros(0)
    bins = calibration_bins(confidence, y_pred == y_true)
    correct = int((y_pred == y_true).sum())
    return {
        "accuracy": rounded(correct / n if n else 0.0),
        "loss": rounded(-np.mean(np.log(np.clip(p_true, EPS, 1.0))) if n else 0.0),
        "top2_accuracy": rounded((top2 == y_true[:, None]).any(axis=1).mean() if n else 0.0),
        "ece": rounded(expected_calibration_error(bins, n)),
        "macro": {m: rounded(scores[m].mean()) for m in ("precision", "recall", "f1")},
        "weighted": {m: rounded((scores[m] * weights).sum()) for m in ("precision", "recall", "f1")},
        "per_class": {
            c: {
                "precision": rounded(scores["precision"][i]),
                "recall": rounded(scores["recall"][i]),
                "f1": rounded(scores["f1"][i]),
                "accuracy": rounded(scores["recall"][i]),
                "support": int(scores["support"][i]),
            }
            for i, c in enumerate(classes)
        },
        "counts": {"test_images": n, "errors": n - correct},
    }
