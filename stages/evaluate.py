"""Stage `evaluate`: the best saved model on the test manifest -> metrics and per-image predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitpipe.errors import run_main
from digitpipe.files import read_csv, write_csv, write_json
from digitpipe.params import load_params
from digitpipe.runtime import load_keras

TEST = Path("data/splits/test.csv")
MODEL = Path("models/model.keras")
METRICS = Path("metrics/eval.json")
PREDICTIONS = Path("plots/data/predictions.csv")
CALIBRATION = Path("plots/data/calibration.csv")
PER_CLASS = Path("plots/data/per_class.csv")


def main() -> None:
    params = load_params(["data"])
    load_keras()  # only now: bad params are refused before TensorFlow's slow import
    from digitpipe.inference import Predictor
    from digitpipe.metrics import calibration_bins, evaluate_predictions
    from digitpipe.training import load_split

    classes = params["data"]["classes"]
    predictor = Predictor.load(MODEL)
    test = read_csv(TEST)
    x, y = load_split(test, Path(params["data"]["dir"]), classes)
    probs = predictor.probabilities(x)
    report = evaluate_predictions(y, probs, classes)
    write_json(report, METRICS)

    predicted = probs.argmax(axis=1)
    write_csv(pd.DataFrame({
        "path": test["path"],
        "actual": test["label"],
        "predicted": [classes[i] for i in predicted],
        "confidence": probs.max(axis=1).round(6),
    }), PREDICTIONS)
    bins = calibration_bins(probs.max(axis=1), predicted == y)
    used = [b for b in bins if b["count"]]  # empty bins have no accuracy to plot
    write_csv(pd.DataFrame(used, columns=list(bins[0])).round(6), CALIBRATION)
    write_csv(pd.DataFrame([{"class": c, **{k: v for k, v in s.items() if k != "support"}}
                            for c, s in report["per_class"].items()]), PER_CLASS)
    print(f"evaluate: test accuracy {report['accuracy']:.4f} ({report['counts']['errors']} errors "
          f"in {report['counts']['test_images']}), loss {report['loss']:.4f}, "
          f"macro F1 {report['macro']['f1']:.4f} -> {METRICS}, {PREDICTIONS}")


if __name__ == "__main__":
    run_main(main)
