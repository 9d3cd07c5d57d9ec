"""Benchmark: which images the models get wrong, by 5-fold cross-validation over the whole sample.

    dvc repro prepare              # the prepared arrays it folds
    python bench/errors.py         # compact and the default arch (about 11 minutes on 2 cores)

`bench/models.py` re-deals random splits, so an image may be tested on several of them or on none.
Here the 5,000 images are dealt once into five folds (stratified by class, seed 0) and each fold is the
test set of one run: every image gets exactly one prediction from a model that never saw it. Each run
trains on 3,500 images of the other four folds and fits its temperature on the last 500, the sizes of
the pipeline's 70/15/15 split, with the `train` and `augment` params of params.yaml and training seed k
for fold k.

It prints, for each arch, the errors per fold and the accuracy over all 5,000 images (95% Wilson
interval), how many of the errors the two archs share, and the confidence the default gave its own
errors, and what answering only when sure would give: at each confidence level, how many images are
answered and how many of those are wrong (the rest go to a person, as ``predict --min-confidence``
marks them). It writes bench/results/errors.md and bench/results/errors.png: every error of the default
arch, most confident first, titled true -> predicted and the calibrated confidence, * where `compact`
made the same mistake. Look at that picture before chasing the last errors with a new recipe.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitpipe.params import ARCHS  # noqa: E402


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=None, choices=ARCHS,
                        help="archs to compare (default: compact and params.yaml's model.arch, which is pictured)")
    return parser


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    command_line().parse_args()

import bench.models as bm  # noqa: E402  (loads Keras pinned)
from digitpipe import plots, training  # noqa: E402
from digitpipe.card import Card  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.metrics import selective  # noqa: E402
from digitpipe.models import Augment  # noqa: E402
from digitpipe.output import percent  # noqa: E402
from digitpipe.stats import wilson  # noqa: E402  (one Wilson interval: the one evaluate and `digitpipe compare` show)

FOLDS = 5
VAL = 500
OUT = ROOT / "bench" / "results"


def folds(y: np.ndarray, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """The fold of every image: each class shuffled with ``seed`` and dealt round-robin, so every fold
    holds a fifth of every class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = np.arange(len(members)) % k
    return fold


def out_of_fold(arch: str, params: dict, data: bm.Images, fold: np.ndarray, tmp: Path) -> tuple[np.ndarray, list[int]]:
    """Calibrated probabilities of every image from the run whose test fold holds it; errors per fold."""
    x, y, classes, normalize = data.x, data.y, data.classes, data.normalize
    probs = np.zeros((len(y), len(classes)), dtype=np.float32)
    errors = []
    for k in range(FOLDS):
        test = np.flatnonzero(fold == k)
        rest = np.random.default_rng(k).permutation(np.flatnonzero(fold != k))
        val, train = rest[:VAL], rest[VAL:]
        path = tmp / f"{arch}-{k}.keras"
        start = time.perf_counter()
        training.train_model(arch, (x[train], y[train]), (x[val], y[val]), num_classes=len(classes),
                             augment=Augment.from_params(params["augment"]),
                             recipe=training.Recipe.from_params(params["train"]), seed=k, model_path=path,
                             quiet=True, card=Card(classes=classes, normalize=normalize, params={}))
        probs[test] = Predictor.load(path).probabilities(x[test])
        errors.append(int((probs[test].argmax(1) != y[test]).sum()))
        print(f"{arch} fold {k}: {errors[-1]} errors in {len(test)} ({time.perf_counter() - start:.0f} s)", flush=True)
    return probs, errors


def picture(wrong: list[int], probs: np.ndarray, data: bm.Images, shared: set[int], path: Path) -> None:
    """The evaluate stage's mistakes gallery of ``wrong``, * where the other archs made the same mistake."""
    x, y, classes = data.x, data.y, data.classes
    captions = [f"{classes[y[i]]} -> {classes[probs[i].argmax()]} {percent(probs[i].max())}"  # as predict shows it
                + (" *" if i in shared else "") for i in wrong]
    fig = plots.mistakes_gallery([x[i] / 255.0 for i in wrong], captions, cols=12,
                                 title="Out-of-fold errors of the default model: true -> predicted, confidence "
                                 "(* compact too)")
    plots.save(fig, path)


def main() -> None:
    args = command_line().parse_args()
    params = bm.load_params(list(bm.RULES), ROOT / "params.yaml")
    default = params["model"]["arch"]
    archs = args.archs or list(dict.fromkeys(["compact", default]))
    data = bm.all_images()
    y = data.y
    fold = folds(y)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            results[arch] = out_of_fold(arch, params, data, fold, Path(tmp))
    wrong = {arch: set(np.flatnonzero(p.argmax(1) != y).tolist()) for arch, (p, _) in results.items()}
    command = "python bench/errors.py" + (f" --archs {' '.join(args.archs)}" if args.archs else "")
    lines = [f"Command: `{command}` ({os.cpu_count()} CPU cores). {FOLDS}-fold cross-validation over the "
             f"{len(y):,} images: every image predicted once, by a model trained on 3,500 of the others.", "",
             "| model | errors per fold | errors | accuracy (95% interval) |", "|---|---|---|---|"]
    for arch, (_, errors) in results.items():
        low, high = wilson(len(y) - len(wrong[arch]), len(y))
        acc = 1 - len(wrong[arch]) / len(y)
        lines.append(f"| {arch} | {', '.join(map(str, errors))} | {len(wrong[arch])} | "
                     f"{acc:.2%} ({low:.2%} to {high:.2%}) |")
    pictured = default if default in results else archs[-1]
    probs = results[pictured][0]
    others = [a for a in archs if a != pictured]
    shared = set.intersection(wrong[pictured], *(wrong[a] for a in others)) if others else set()
    confidence = np.sort(probs[sorted(wrong[pictured])].max(1))[::-1]
    lines += ["", f"Errors of `{pictured}` that {' and '.join(f'`{a}`' for a in others) or 'no other arch'} "
              f"also made: {len(shared)} of {len(wrong[pictured])}. Union: "
              f"{len(set.union(*wrong.values()))}.",
              f"Confidence `{pictured}` gave its errors: median {np.median(confidence):.0%}; "
              f"{int((confidence >= 0.9).sum())} at 90% or more, {int((confidence < 0.6).sum())} under 60%.",
              "", "Every error of the default, most confident first: bench/results/errors.png.", "",
              "Answering only when sure: the images whose calibrated confidence reaches each level are answered, "
              "the rest go to a person; errors and accuracy are those of the answered images.", "",
              "| model | level | answered | left to a person | errors among the answered | their accuracy |",
              "|---|---|---|---|---|---|"]
    for arch, (p, _) in results.items():
        for row in selective(p.max(1), p.argmax(1) == y):
            lines.append(f"| {arch} | {row['level']:.1%} | {row['answered']:,} ({row['share']:.1%}) | "
                         f"{len(y) - row['answered']:,} | {row['errors']} | "
                         + (f"{row['accuracy']:.2%} |" if row["answered"] else "- |"))
    text = "\n".join(lines) + "\n"
    print(text)
    bm.write_bytes(text.encode(), OUT / "errors.md")  # atomic, as the stages write
    order = sorted(wrong[pictured], key=lambda i: (-probs[i].max(), i))
    picture(order, probs, data, shared, OUT / "errors.png")


if __name__ == "__main__":
    bm.run_main(main)
