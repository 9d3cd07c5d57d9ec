"""Stage `evaluate`: the best saved model on the prepared test split -> metrics and per-image predictions.

Writes the headline numbers `dvc metrics show` lists (metrics/eval.json), the full report with every
macro, weighted and per-class figure (metrics/details/eval.json) and the plot data (plots/data/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitpipe import headline
from digitpipe.calibration import scaled
from digitpipe.card import params_differences
from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import write_csv, write_json
from digitpipe.limits import MODEL
from digitpipe.metrics import calibration_bins, evaluate_predictions
from digitpipe.params import load_params
from digitpipe.prepared import load_prepared
from digitpipe.stats import wilson

TEST = Path("data/prepared/test.npz")
METRICS = Path("metrics/eval.json")
DETAILS = Path("metrics/details/eval.json")
PREDICTIONS = Path("plots/data/predictions.csv")
CALIBRATION = Path("plots/data/calibration.csv")
PER_CLASS = Path("plots/data/per_class.csv")


def main() -> None:
    params = load_params(["seed", "augment", "model", "train"])
    test = load_prepared(TEST)
    from digitpipe.inference import Predictor
    from digitpipe.runtime import load_keras

    load_keras(pinned=True)  # the numerics train used: the same probabilities on any machine

    predictor = Predictor.load(MODEL)
    stale = params_differences(predictor.card, params)
    if stale:  # the model on disk is not the one these params train: never report its numbers as theirs
        raise DigitpipeError(f"{MODEL} does not match params.yaml: {'; '.join(stale)}; run `dvc repro` to retrain "
                             "it, or `dvc checkout` to bring back the model these params made")
    if predictor.card.classes != test.classes:
        raise DigitpipeError(f"{MODEL} was trained on classes {predictor.card.classes}, the test split has "
                             f"{test.classes}: run `dvc repro`")
    classes = test.classes
    raw = predictor.raw_probabilities(test.x)
    probs = scaled(raw, predictor.card.temperature)  # calibrated: what predict and the web page show
    report = evaluate_predictions(test.y, probs, classes)
    report["ece_raw"] = evaluate_predictions(test.y, raw, classes)["ece"]  # before temperature scaling
    report["temperature"] = predictor.card.temperature
    write_json(report, DETAILS)
    write_json(headline.evaluation(report), METRICS)

    predicted = probs.argmax(axis=1)
    write_csv(pd.DataFrame({
        "path": test.paths,
        "actual": [classes[i] for i in test.y],
        "predicted": [classes[i] for i in predicted],
        "confidence": probs.max(axis=1).round(6),
    }), PREDICTIONS)
    bins = calibration_bins(probs.max(axis=1), predicted == test.y)
    used = [b for b in bins if b["count"]]  # empty bins have no accuracy to plot
    write_csv(pd.DataFrame(used, columns=list(bins[0])).round(6), CALIBRATION)
    write_csv(pd.DataFrame([{"class": c, **s} for c, s in report["per_class"].items()]), PER_CLASS)
    tested, errors = report["counts"]["test_images"], report["counts"]["errors"]
    low, high = wilson(tested - errors, tested)  # what this one split says: other splits land anywhere in it
    print(f"evaluate: test accuracy {report['accuracy']:.4f} ({errors} error{'' if errors == 1 else 's'} in "
          f"{tested}; 95% interval {low:.4f} to {high:.4f}), loss {report['loss']:.4f}, "
          f"macro F1 {report['macro']['f1']:.4f}, ECE {report['ece_raw']:.4f} -> {report['ece']:.4f} at temperature "
          f"{report['temperature']} -> {METRICS}, {DETAILS}, {PREDICTIONS}")

if __name__ == "__main__":
    run_main(main)
