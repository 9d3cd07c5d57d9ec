"""Benchmark: what each export gives a program that runs it without digitpipe, against what digitpipe shows.

    python bench/exports.py        (after `dvc repro`; a few seconds)

Runs the committed exports the way TF Serving or an app would, with no digitpipe code (the SavedModel's ``serve``
signature, a bare TFLite interpreter), on the prepared test split, then applies the temperature the export's card
leaves to its reader (1 for the SavedModel and the float TFLite model, whose graphs apply it; the model's for the
int8 one, whose output is the raw softmax), and prints for each the largest difference from the Keras model's
calibrated probabilities (what ``predict`` and the web page show), how often it picks the Keras model's class,
its errors and its highest confidence: the differences are those of float arithmetic and of int8 quantisation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitpipe.errors import run_main  # noqa: E402
from digitpipe.runtime import load_keras, stderr_silenced  # noqa: E402

EXPORTS = ("models/saved_model", "models/model.tflite", "models/model_int8.tflite")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    load_keras(pinned=True)
    from digitpipe.calibration import scaled
    from digitpipe.card import read_card
    from digitpipe.inference import Predictor
    from digitpipe.prepared import load_prepared
    from tests.helpers import own_outputs

    test = load_prepared(ROOT / "data/prepared/test.npz")  # the project's files, from whatever folder it runs in
    reference = Predictor.load(ROOT / "models/model.keras").probabilities(test.x)
    print(f"command: python bench/exports.py ({len(test.x)} test images; reference: models/model.keras, calibrated)")
    print(f"{'export':<28} {'card temperature':>16} {'max |difference|':>16} {'same class':>12} {'errors':>7} "
          f"{'highest':>8}")
    for path in EXPORTS:
        temperature = read_card(ROOT / path).temperature
        with stderr_silenced():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" would cut the table
            own = scaled(own_outputs(ROOT / path, test.x), temperature)
        same = int((own.argmax(1) == reference.argmax(1)).sum())
        print(f"{path:<28} {temperature:>16g} {np.abs(own - reference).max():>16.2g} {f'{same}/{len(own)}':>12} "
              f"{int((own.argmax(1) != test.y).sum()):>7} {own.max():>8.6f}")


if __name__ == "__main__":
    run_main(main)
