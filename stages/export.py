"""Stage `export`: SavedModel, TFLite and int8 TFLite versions of the model, each evaluated on the test split.

Writes each one's test accuracy and size (metrics/details/export.json) and the headline `dvc metrics show`
lists: the int8 export's errors and size (metrics/export.json)."""

from __future__ import annotations

from pathlib import Path

from digitpipe import headline
from digitpipe.errors import run_main
from digitpipe.files import write_bytes, write_json
from digitpipe.limits import MODEL
from digitpipe.prepared import load_prepared

PREPARED = Path("data/prepared")
SAVED = Path("models/saved_model")
TFLITE = Path("models/model.tflite")
INT8 = Path("models/model_int8.tflite")
METRICS = Path("metrics/export.json")
DETAILS = Path("metrics/details/export.json")


def main() -> None:
    train, test = load_prepared(PREPARED / "train.npz"), load_prepared(PREPARED / "test.npz")
    from digitpipe.runtime import load_keras

    load_keras(pinned=True)  # the numerics train used; only after the data is found
    from digitpipe.export import (
        calibration_images,
        export_saved_model,
        int8_tflite,
        size_kb,
        to_tflite,
    )
    from digitpipe.inference import Predictor

    keras_model = Predictor.load(MODEL)
    card = keras_model.card  # the exports carry the model's classes and preprocessing policy
    export_saved_model(keras_model.model, SAVED, card)  # the float exports: the temperature inside
    write_bytes(to_tflite(SAVED), TFLITE)  # with the SavedModel's card
    write_bytes(int8_tflite(keras_model.model, card, calibration_images(train.x)), INT8)  # raw out, T in its card

    report, errors = {}, {}
    for name, path in (("keras", MODEL), ("saved_model", SAVED), ("tflite", TFLITE), ("tflite_int8", INT8)):
        predictor = keras_model if name == "keras" else Predictor.load(path)
        correct = predictor.probabilities(test.x).argmax(axis=1) == test.y
        errors[name] = int((~correct).sum())
        report[name] = {"accuracy": round(float(correct.mean()), 6), "size_kb": size_kb(path)}
    report["int8_accuracy_drop"] = round(report["keras"]["accuracy"] - report["tflite_int8"]["accuracy"], 6)
    write_json(report, DETAILS)
    write_json(headline.export(errors["tflite_int8"], report["tflite_int8"]["size_kb"]), METRICS)
    for name, r in report.items():
        if isinstance(r, dict):
            print(f"export: {name:<12} test accuracy {r['accuracy']:.4f}  {r['size_kb']:>9,.1f} KiB")
    print(f"export: int8 {versus_keras(report['int8_accuracy_drop'])} -> {SAVED}, {TFLITE}, {INT8}, {METRICS}, "
          f"{DETAILS}")


def versus_keras(drop: float) -> str:
    """The int8 export's test accuracy beside the Keras model's, in words (``drop``: Keras' minus int8's)."""
    points = round(abs(drop) * 100, 2)
    if points == 0:
        return "is as accurate as Keras"
    return f"is {points:.2f} points {'below' if drop > 0 else 'above'} Keras"


if __name__ == "__main__":
    run_main(main)
