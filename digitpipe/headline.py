"""The headline numbers: the few that `dvc metrics show` and `dvc exp show` list.

Each stage writes everything it measures to a full report that is not a DVC metric
(``metrics/details/*.json``, ``metrics/train.json``, ``plots/data/per_class.csv``) and a few numbers to its
``metrics/*.json``, the files ``dvc.yaml`` declares as metrics. `dvc metrics show` prints one row per file
and one column per key of all the files together, so the keys are short, a key two files share is one
column (``images``: the data set's and the test split's; ``errors``: the Keras model's and the int8 export's
on the test split), and floats keep 4 decimals: the default pipeline's table fits a 120-column terminal,
with room for one more key.
"""

from __future__ import annotations

DECIMALS = 4


def rounded(value: float) -> float:
    return round(float(value), DECIMALS)


def data(summary: dict) -> dict:
    """``metrics/data.json`` from ingest's summary: the images indexed."""
    return {"images": int(summary["indexed"])}


def evaluation(report: dict) -> dict:
    """``metrics/eval.json`` from the full report on the test split (:func:`digitpipe.metrics.evaluate_predictions`):
    accuracy, ECE (calibrated, and ``ece_raw`` before temperature scaling), errors, macro F1, images, loss and
    top-2 accuracy, keys in sorted order. A model of two classes has no top-2 accuracy worth the name (its two
    guesses are every class: always 1), so the key is left out and `dvc metrics show` shows ``-``."""
    headline = {
        "accuracy": rounded(report["accuracy"]),
        "ece": rounded(report["ece"]),
        "ece_raw": rounded(report["ece_raw"]),
        "errors": int(report["counts"]["errors"]),
        "f1": rounded(report["macro"]["f1"]),
        "images": int(report["counts"]["test_images"]),
        "loss": rounded(report["loss"]),
        "top2": rounded(report["top2_accuracy"]),
    }
    if len(report["per_class"]) <= 2:
        del headline["top2"]
    return headline


def export(int8_errors: int, int8_size_kb: float) -> dict:
    """``metrics/export.json``: the int8 TFLite export's errors on the test split and its size in KiB."""
    return {"errors": int(int8_errors), "kb": round(float(int8_size_kb), 1)}


def timing(train_summary: dict) -> dict:
    """``metrics/time.json``, written by the train stage beside its full summary (``metrics/train.json``): the
    training seconds."""
    return {"train_s": round(float(train_summary["train_seconds"]), 1)}
