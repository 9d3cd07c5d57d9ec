"""Benchmark: `predict` latency for one image and throughput on a Kaggle-sized folder.

    dvc repro                       # the trained and exported models
    python bench/predict.py         # 28,000 images (about 2 minutes on 2 cores)
    python bench/predict.py -n 5000

In one run, for the pipeline's model (models/model.keras) and its float and int8 TFLite exports:

  latency     median time to classify one already-decoded image with the model loaded once,
              against the naive baseline: `model.predict()` per image;
  start-up    median wall time of `python -m digitpipe.predict img_1.jpg --model M`, a whole
              command for one file (interpreter start and model load included);
  throughput  `python -m digitpipe.predict FOLDER --submission out.csv` end to end on N
              unlabelled 28x28 JPGs named img_N.jpg (listing, decoding, preprocessing,
              inference and writing included; the model is loaded before the clock starts),
              against the naive baseline: decode each file and call `model.predict()` on it,
              one at a time (measured on 500 files). Median of 3 runs.

Targets: single-image latency <= 1 ms; folder >= 10,000 images/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import at_least  # noqa: E402
from digitpipe.runtime import load_keras  # noqa: E402


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=at_least(1), default=28_000, help="images in the folder (default 28,000)")
    return parser


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    command_line().parse_args()

keras = load_keras()

from digitpipe.decode import read_gray  # noqa: E402
from digitpipe.images import to_model_input  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.predict import predict  # noqa: E402
from digitpipe.sample import encode_jpeg, load_mnist_sample  # noqa: E402

MODELS = [ROOT / "models/model.keras", ROOT / "models/model.tflite", ROOT / "models/model_int8.tflite"]


def write_folder(args: tuple[Path, int, int]) -> None:
    out, start, stop = args
    images, _ = load_mnist_sample()
    for n in range(start, stop):
        rng = np.random.default_rng(n)
        noisy = np.clip(images[n % len(images)] + rng.integers(-6, 7, (28, 28)), 0, 255).astype(np.uint8)
        (out / f"img_{n + 1}.jpg").write_bytes(encode_jpeg(noisy))


def median_ms(fn, calls: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def command_seconds(image: Path, model: Path) -> float:
    """Median wall time of the whole command for one file, over 3 runs."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "digitpipe.predict", str(image), "--model", str(model)],
                       cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def folder_rate(folder: Path, model: Path, n: int, out: Path) -> float:
    """Median images/s of the folder command over 3 runs, the model already loaded once (it is cached)."""
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        code = predict([str(folder), "--model", str(model), "--submission", str(out)])
        rates.append(n / (time.perf_counter() - start))
        assert code == 0
    return statistics.median(rates)


def main() -> None:
    args = command_line().parse_args()
    missing = [str(m) for m in MODELS if not m.exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `dvc repro` first")
    images, _ = load_mnist_sample()
    one = images[0].astype(np.float32)[None, ..., None] / 255

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "testSet"
        folder.mkdir()
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(write_folder, [(folder, s, min(s + 2000, args.n)) for s in range(0, args.n, 2000)]))
        files = sorted(folder.iterdir())

        keras_model = keras.models.load_model(MODELS[0])
        naive_one = median_ms(lambda: keras_model.predict(one, verbose=0), 50)
        start = time.perf_counter()
        for f in files[:500]:
            keras_model.predict(to_model_input(read_gray(f))[None, ..., None] / 255, verbose=0)
        naive_rate = 500 / (time.perf_counter() - start)

        print(f"\ncommand: python bench/predict.py -n {args.n}   ({os.cpu_count()} cores)")
        print(f"{'':<44}{'1 image, ms':>12}{'1-file command, s':>19}{'folder, img/s':>15}")
        print(f"{'naive: model.predict() per image (keras)':<44}{naive_one:>12.2f}{'':>19}{naive_rate:>15,.0f}")
        for model in MODELS:
            predictor = Predictor.load(model)
            fast_one = median_ms(lambda p=predictor: p.probabilities(one), 300)
            startup = command_seconds(folder / "img_1.jpg", model)
            rate = folder_rate(folder, model, args.n, Path(tmp) / "s.csv")
            name = f"digitpipe.predict ({model.name})"
            print(f"{name:<44}{fast_one:>12.3f}{startup:>19.2f}{rate:>15,.0f}   "
                  f"x{naive_one / fast_one:,.0f} / x{rate / naive_rate:,.0f} the naive speed")
    print("\ntargets: 1 image <= 1 ms, folder >= 10,000 img/s")


if __name__ == "__main__":
    main()
