"""Stage `export`: SavedModel, TFLite and int8 TFLite versions of the model, each evaluated on the test split."""

from __future__ import annotations

from pathlib import Path

from digitpipe.errors import run_main
from digitpipe.files import read_csv, write_json
from digitpipe.params import load_params
from digitpipe.runtime import load_keras

SPLITS = Path("data/splits")
MODEL = Path("models/model.keras")
SAVED = Path("models/saved_model")
TFLITE = Path("models/model.tflite")
INT8 = Path("models/model_int8.tflite")
METRICS = Path("metrics/export.json")


def main() -> None:
    params = load_params(["data"])
    load_keras()  # only now: bad params are refused before TensorFlow's slow import
    from digitpipe.export import export_saved_model, size_kb, to_tflite
    from digitpipe.inference import Predictor
    from digitpipe.training import load_split

    classes, root = params["data"]["classes"], Path(params["data"]["dir"])
    keras_model = Predictor.load(MODEL)
    x_train, _ = load_split(read_csv(SPLITS / "train.csv"), root, classes)
    x_test, y_test = load_split(read_csv(SPLITS / "test.csv"), root, classes)

    export_saved_model(keras_model.model, SAVED)
    TFLITE.write_bytes(to_tflite(SAVED))
    INT8.write_bytes(to_tflite(SAVED, calibration=x_train))

    report = {}
    for name, path in (("keras", MODEL), ("saved_model", SAVED), ("tflite", TFLITE), ("tflite_int8", INT8)):
        predictor = keras_model if name == "keras" else Predictor.load(path)
        accuracy = float((predictor.probabilities(x_test).argmax(axis=1) == y_test).mean())
        report[name] = {"accuracy": round(accuracy, 6), "size_kb": size_kb(path)}
    report["int8_accuracy_drop"] = round(report["keras"]["accuracy"] - report["tflite_int8"]["accuracy"], 6)
    write_json(report, METRICS)
    for name, r in report.items():
        if isinstance(r, dict):
            print(f"export: {name:<12} test accuracy {r['accuracy']:.4f}  {r['size_kb']:>9,.1f} KiB")
    print(f"export: int8 is {report['int8_accuracy_drop'] * 100:+.2f} points below Keras -> {SAVED}, {TFLITE}, "
          f"{INT8}, {METRICS}")


if __name__ == "__main__":
    run_main(main)
