"""Benchmark: how much the pipeline's model metrics move when only the training run's randomness changes.

    dvc repro prepare              # the prepared arrays it trains on
    python bench/variation.py      # 5 training seeds of the default recipe (about 10 minutes on 2 cores)

On the committed split (the data stages are exact everywhere), it trains the default `model.arch`
with the `train` and `augment` params of params.yaml and training seeds 0..N-1, and computes every
number the train, evaluate and export stages write for each: the headline metrics
(`metrics/{eval,export}.json`) and the full reports (`metrics/train.json`, `metrics/details/{eval,export}.json`).
A different CPU rounds floating point differently, which changes a trained model about as much as
another seed does; so the reproduce check, on a machine whose platform facts differ from the
committed ones, allows each metric a 99.9% band of this variation (digitpipe.reproduce.load_variation). Writes
bench/results/variation.json (`sd` per `file:key`) and prints the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitpipe.errors import run_main  # noqa: E402
from digitpipe.files import write_json  # noqa: E402
from digitpipe.params import load_params  # noqa: E402
from digitpipe.runtime import load_keras  # noqa: E402


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1 (default 5)")
    return parser


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, refused as argparse refuses it where it cannot be one."""
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: one seed has no spread to measure")
    return args


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    arguments(command_line())

load_keras(pinned=True)

from digitpipe import headline, training  # noqa: E402
from digitpipe.card import Card  # noqa: E402
from digitpipe.export import calibration_images, export_saved_model, int8_tflite, to_tflite  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.metrics import evaluate_predictions  # noqa: E402
from digitpipe.models import Augment  # noqa: E402
from digitpipe.prepared import load_prepared  # noqa: E402
from digitpipe.reproduce import TIMING_KEYS, flatten  # noqa: E402

OUT = ROOT / "bench" / "results" / "variation.json"


def one_run(seed: int, params: dict, data: dict, tmp: Path) -> dict[str, float]:
    """Every number the train, evaluate and export stages write, for one training seed, as ``file:key``."""
    train, val, test = data["train"], data["val"], data["test"]
    model = tmp / f"model-{seed}.keras"
    card = Card(classes=train.classes, normalize=train.normalize, params={})
    run = training.train_model(params["model"]["arch"], (train.x, train.y), (val.x, val.y),
                               num_classes=len(train.classes), augment=Augment.from_params(params["augment"]),
                               recipe=training.Recipe.from_params(params["train"]), seed=seed, model_path=model,
                               quiet=True, card=card)
    keras_model = Predictor.load(model)
    raw = keras_model.raw_probabilities(test.x)
    probs = keras_model.probabilities(test.x)  # calibrated, as the evaluate stage reports them
    evaluation = evaluate_predictions(test.y, probs, test.classes)
    evaluation["ece_raw"] = evaluate_predictions(test.y, raw, test.classes)["ece"]
    evaluation["temperature"] = keras_model.card.temperature
    saved = export_saved_model(keras_model.model, tmp / f"saved-{seed}", keras_model.card)
    accuracy = {"keras": evaluation["accuracy"], "saved_model": evaluation["accuracy"]}
    errors = {}
    for name in ("tflite", "tflite_int8"):  # as the export stage makes them
        path = tmp / f"{name}-{seed}.tflite"
        path.write_bytes(to_tflite(saved) if name == "tflite" else
                         int8_tflite(keras_model.model, keras_model.card, calibration_images(train.x)))
        correct = Predictor.load(path).probabilities(test.x).argmax(1) == test.y
        accuracy[name], errors[name] = float(correct.mean()), int((~correct).sum())
    export = {f"{k}.accuracy": v for k, v in accuracy.items()}
    export["int8_accuracy_drop"] = accuracy["keras"] - accuracy["tflite_int8"]
    summary = training.summarize_history(run.history, run.seconds, params["train"]["keep"])
    out = {f"metrics/eval.json:{k}": v for k, v in headline.evaluation(evaluation).items()}
    out["metrics/export.json:errors"] = errors["tflite_int8"]
    out.update({f"metrics/details/eval.json:{k}": v for k, v in flatten(evaluation).items()})
    out.update({f"metrics/details/export.json:{k}": v for k, v in export.items()})
    out.update({f"metrics/train.json:{k}": v for k, v in summary.items() if k not in TIMING_KEYS})
    return out


def main() -> None:
    parser = command_line()
    args = arguments(parser)
    params = load_params(["augment", "model", "train"], ROOT / "params.yaml")
    data = {s: load_prepared(ROOT / f"data/prepared/{s}.npz") for s in ("train", "val", "test")}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            runs.append(one_run(seed, params, data, Path(tmp)))
            print(f"  seed {seed}: test accuracy {runs[-1]['metrics/eval.json:accuracy']:.4f}, "
                  f"loss {runs[-1]['metrics/eval.json:loss']:.4f}", flush=True)
    sd = {key: round(statistics.stdev([r[key] for r in runs]), 6) for key in runs[0]}
    command = f"python bench/variation.py --seeds {args.seeds}"
    # atomic, as the stages write: the reproduce check reads it
    write_json({"command": command, "arch": params["model"]["arch"], "seeds": args.seeds, "sd": sd}, OUT)
    print(f"\ncommand: {command}")
    for key in ("metrics/eval.json:accuracy", "metrics/eval.json:loss", "metrics/eval.json:ece",
                "metrics/eval.json:f1", "metrics/details/export.json:tflite_int8.accuracy",
                "metrics/train.json:best_epoch", "metrics/train.json:best_val_accuracy"):
        values = [r[key] for r in runs]
        print(f"{key:<44} mean {np.mean(values):.4f}  sd {sd[key]:.4f}")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    run_main(main)
