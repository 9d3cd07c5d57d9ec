"""Benchmark: model quality over several splits, with calibrated confidence, against `compact` in the same run.

    dvc repro prepare                       # the index and prepared arrays it re-deals
    python bench/models.py                  # compact and the default arch, 10 splits (about 25 minutes on 2 cores)
    python bench/models.py --splits 5       # a quicker screen: 5 splits, 3,750 test predictions a row
    python bench/models.py --first 10       # splits 10-19: a held-out check of a recipe chosen on 0-9
    python bench/models.py --archs compact digitnet deep wide mini mlp
    python bench/models.py --try train.epochs=60 --try augment.rotation=15   # candidate recipes, same splits
    python bench/models.py --first 10 --splits 5 --seeds 4   # 4 training seeds per split: a recipe's mean, not one draw
    python bench/optdigits.py /tmp/optdigits && python bench/models.py --data /tmp/optdigits --normalize none --splits 5
                                            # the same on another folder-per-class data set (here 8x8 digits)
    python bench/longtail.py /tmp/tail && python bench/models.py --data /tmp/tail --try train.class_weight=balanced
                                            # uneven classes: the table adds balanced accuracy and the rarest's recall

One split of 750 test images cannot tell 99.2% from 98.9% (one error is 0.13 points; the standard
error is about 0.36), so every row is trained and tested on N different splits (10 by default): split k
re-deals the whole index with seed k (stratified, as the split stage does with `seed: k`) and trains with
seed k, exactly what `dvc exp run -S seed=k` does. That puts N x 750 test predictions behind each mean;
splits differ by more than their sampling error alone suggests (some deal more of the sample's ambiguous
digits to test), so five splits still leave the mean uncertain by about 0.2 points, ten by about 0.15.

Every row uses the `train` and `augment` params of params.yaml; `--try KEY=VALUE` adds a row of the
default arch with one or more params changed, read as `dvc exp run -S` reads them (several in one
--try are separated by commas; `model.arch=...` among them changes the arch). For
each row: test accuracy (mean and 95% interval over the splits, Student's t), its difference from the
default's, paired split by split (the mean of the per-split differences with its 95% interval: a split that
deals hard digits to test is hard for every row, so pairing tells two rows apart where their own intervals
overlap; and every split trains each row afresh, so the training seed's luck is inside it), the expected
calibration error before and after temperature scaling (the temperature fitted on each split's
validation set, as the train stage does), training wall time (median) and its ratio to `compact`.
Below the table: each split's accuracy, and how many test images over all the splits each row gets right
where the default gets them wrong, and the reverse. The table and the accuracy of every split go to
stdout and (with 5 splits or more) to bench/results/models.md. `--first 10` runs splits 10 to 19 instead
(to bench/results/models-splits-10-19.md): fresh splits, never used to choose a recipe, that check whether
a figure of splits 0-9 holds.

The training seed alone moves a five-split total by several errors (on one CPU the default made 28 to 38
errors over splits 10-14 with five training seeds), as much as most recipe changes do. `--seeds R` trains
each row R times per split, with weights seeds k, k + 1000, ..., k + 1000 (R - 1) on the same split (the
first is the single-seed run), and each split's figures are the mean of its R models; the 95% interval is
then over the splits' means, and the file name says `-seeds-R`.

`--data DIR` runs the same on another folder-per-class data set instead of the pipeline's prepared one: it is
ingested and prepared here as the stages would with ``data.dir: DIR`` (and ``--normalize``), and dealt into
splits as above; the results file is named after the folder and the policy.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import add_data_options, at_least, refuse_normalize_alone  # noqa: E402
from digitpipe.errors import DigitpipeError, run_main  # noqa: E402
from digitpipe.files import read_csv, write_bytes  # noqa: E402
from digitpipe.ingest import ingest, is_system_or_hidden, scan  # noqa: E402
from digitpipe.output import counted  # noqa: E402
from digitpipe.params import ARCHS, RULES, check_params, load_params, set_values  # noqa: E402
from digitpipe.prepare import prepare_images  # noqa: E402
from digitpipe.runtime import load_keras  # noqa: E402
from digitpipe.targets import natural_key  # noqa: E402


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=None, choices=ARCHS,
                        help="archs to compare (default: compact and params.yaml's model.arch)")
    parser.add_argument("--splits", type=at_least(1), default=10, metavar="N",
                        help="splits (seeds K..K+N-1, K from --first; default 10, at least 5 for the results file)")
    parser.add_argument("--first", type=at_least(0), default=0, metavar="K",
                        help="the first split (default 0): --first 10 runs splits 10..19, fresh splits to check a "
                        "recipe chosen on 0..9")
    parser.add_argument("--seeds", type=at_least(1), default=1, metavar="R",
                        help="training seeds per split and row (default 1): each split's figures are the mean of R "
                        "models trained with seeds k, k+1000, ... on it")
    parser.add_argument("--ensemble", type=int, default=0, metavar="N",
                        help="also a row averaging N `compact` models trained with different seeds on each split")
    parser.add_argument("--try", dest="tries", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="a row of the default arch with these params changed (repeatable)")
    add_data_options(parser, "another folder-per-class data set, ingested and prepared here (default: the "
                     "pipeline's prepared data); its results file is named after it")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="the results file (default: bench/results/, named after the options)")
    return parser


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, refused as argparse refuses it where it cannot be one."""
    args = parser.parse_args()
    if args.ensemble == 1 or args.ensemble < 0:
        parser.error("--ensemble is a number of models to average: 2 or more (0, the default: no such row)")
    refuse_normalize_alone(parser, args)
    if args.seeds > 1 and args.ensemble > 1:
        parser.error("--ensemble needs --seeds 1 (its members use the same seeds)")
    return args


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    arguments(command_line())

load_keras(pinned=True)

from digitpipe import training  # noqa: E402
from digitpipe.calibration import fit_temperature, scaled  # noqa: E402
from digitpipe.card import Card  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.metrics import calibration_bins, expected_calibration_error  # noqa: E402
from digitpipe.models import Augment  # noqa: E402
from digitpipe.prepared import load_prepared  # noqa: E402
from digitpipe.split import SPLITS, check_dealable, stratified_split  # noqa: E402

OUT = ROOT / "bench" / "results" / "models.md"
TRIED = ("model", "train", "augment")  # the sections a --try row may change: the rest is the run's own
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
         20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}  # Student's t, 97.5%, by freedom


def t_975(freedom: int) -> float:
    """Student's t at 97.5% for ``freedom`` degrees: from the table, else the next smaller entry's (wider)."""
    return T_975[max(k for k in T_975 if k <= freedom)]


def interval(values: list[float]) -> float:
    """Half-width of the 95% interval of the mean (Student's t); NaN for one value, which has none."""
    n = len(values)
    return t_975(n - 1) * statistics.stdev(values) / np.sqrt(n) if n > 1 else float("nan")


def plus_minus(values: list[float]) -> str:
    """``99.19% ± 0.09%``, or ``99.19% (one split: no interval)``."""
    half = interval(values)
    return f"{np.mean(values):.2%} " + ("(one split: no interval)" if np.isnan(half) else f"± {half:.2%}")


def ece(probs: np.ndarray, y: np.ndarray) -> float:
    predicted = probs.argmax(axis=1)
    return expected_calibration_error(calibration_bins(probs.max(axis=1), predicted == y), len(y))


def with_overrides(params: dict, spec: str) -> dict:
    """``params`` with ``section.key=value`` pairs (comma-separated) set as ``dvc exp run -S`` sets them, and
    checked as the stages would."""
    try:
        pairs = list(filter(None, spec.split(",")))
        out = set_values(params, pairs)
        check_params(out)
    except DigitpipeError as err:
        sys.exit(f"--try {spec}: {err}")
    fixed = [pair for pair in pairs if pair.lstrip("+~").split(".")[0].split("=")[0] not in TRIED]
    if fixed:
        sys.exit(f"--try {spec}: {fixed[0].split('=')[0]} is the run's, not a row's: a row changes model, train and "
                 "augment keys (the data is --data and --normalize, the splits --first and --splits; split "
                 "fractions and the seed are params.yaml's)")
    return out


class Images(NamedTuple):
    """Every image of a data set as the model sees it: ``x[row[path]]`` with label ``y[row[path]]``, and
    ``index``, the ingest index the splits are dealt from."""

    row: dict[str, int]
    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    normalize: str
    index: pd.DataFrame


def all_images() -> Images:
    """Every image the pipeline prepared (``dvc repro prepare``), by path, in path order: what depends on the
    order (the folds of ``bench/errors.py``) depends on the images alone, not on how the committed split dealt
    them."""
    parts = [load_prepared(ROOT / f"data/prepared/{s}.npz") for s in SPLITS]
    paths = [p for part in parts for p in part.paths]
    order = sorted(range(len(paths)), key=paths.__getitem__)
    return Images({paths[i]: row for row, i in enumerate(order)}, np.concatenate([p.x for p in parts])[order],
                  np.concatenate([p.y for p in parts])[order], parts[0].classes, parts[0].normalize,
                  read_csv(ROOT / "data/index/index.csv", "index"))


def folder_images(root: Path, normalize: str, fractions: dict[str, float] | None = None) -> Images:
    """Every usable image of another folder-per-class data set, ingested and prepared as the stages would with
    ``data.dir: root`` and this ``data.normalize``; the classes are its sub-folders, in natural order. With the
    split ``fractions``, a class too small to give each split an image is refused before any file is read, as
    the pipeline's `params` stage refuses it (ingest can keep fewer files, never more)."""
    if not root.is_dir():
        raise DigitpipeError(f"--data {root}: {'no such folder' if not root.exists() else 'not a folder'} (one "
                             "sub-folder of images per class)")
    classes = sorted((e.name for e in os.scandir(root) if e.is_dir() and not is_system_or_hidden(e.name)),
                     key=lambda name: natural_key(("", name)))
    if len(classes) < 2:
        raise DigitpipeError(f"--data {root}: {len(classes)} class folder{'s' if len(classes) != 1 else ''}; a "
                             "classifier needs at least two (one sub-folder of images per class)")
    if fractions is not None:
        found = scan(root, classes)
        tally = Counter(label for _, label in found.files)
        try:
            check_dealable({label: tally[label] for label in classes}, fractions)
        except DigitpipeError as err:
            words = str(err).replace("drop the class from data.classes", "move its sub-folder out").replace(
                "drop these classes from data.classes", "move their sub-folders out")  # the classes are sub-folders
            raise DigitpipeError(f"--data {root}: {words} (counting every file in the class folders)") from None
    result = ingest(root, classes, progress=False)
    index = result.index
    if len(result.rejects):
        reasons = result.rejects["reason"].value_counts()
        print(f"{len(index) + len(result.rejects):,} files in {root}: {len(index):,} used, {len(result.rejects):,} "
              "left out (" + ", ".join(f"{why} {n:,}" for why, n in reasons.items()) + ")", flush=True)
    x, _ = prepare_images(root, index["path"].tolist(), index["hash"].tolist(), normalize)
    label = {c: i for i, c in enumerate(classes)}
    return Images({p: i for i, p in enumerate(index["path"])}, x, index["label"].map(label).to_numpy(np.int32),
                  classes, normalize, index)


def split_arrays(params: dict, seed: int, data: Images) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(train, val, test) of split ``seed``: the index re-dealt as the split stage does with ``seed: k``."""
    row, x, y, classes = data.row, data.x, data.y, data.classes
    split = stratified_split(data.index, classes, params["split"], seed)
    take = {name: np.array([row[p] for p in split[name]["path"]]) for name in SPLITS}
    return tuple((x[take[s]], y[take[s]]) for s in SPLITS)


def one_run(arch: str, params: dict, seed: int, data: Images, tmp: Path, weights_seed: int | None = None) -> dict:
    """Split ``seed`` dealt, a model trained on it (with ``weights_seed``, default ``seed``) and scored."""
    return score_run(arch, params, split_arrays(params, seed, data), seed if weights_seed is None else weights_seed,
                     data, tmp)


def score_run(arch: str, params: dict, arrays: tuple, weights_seed: int, data: Images, tmp: Path) -> dict:
    """A model trained on ``arrays``' (train, val, test) as the train stage would, then its figures on test."""
    classes, normalize = data.classes, data.normalize
    train, val, test = arrays
    path = tmp / f"{arch}-{weights_seed}-{len(train[1])}.keras"
    card = Card(classes=classes, normalize=normalize, params={})
    start = time.perf_counter()
    run = training.train_model(arch, train, val, num_classes=len(classes),
                               augment=Augment.from_params(params["augment"]),
                               recipe=training.Recipe.from_params(params["train"]), seed=weights_seed,
                               model_path=path, quiet=True, card=card)
    seconds = time.perf_counter() - start
    predictor = Predictor.load(path)
    raw, calibrated = predictor.raw_probabilities(test[0]), predictor.probabilities(test[0])
    recalls = class_recalls(calibrated.argmax(1), test[1], len(classes))
    rarest = int(np.argmin(np.bincount(train[1], minlength=len(classes))))
    return {"raw": raw, "raw_val": predictor.raw_probabilities(val[0]),
            "accuracy": float((calibrated.argmax(1) == test[1]).mean()), "correct": calibrated.argmax(1) == test[1],
            "ece": ece(raw, test[1]),
            "balanced": float(recalls.mean()), "rarest": float(recalls[rarest]),
            "ece_calibrated": ece(calibrated, test[1]), "seconds": seconds, "epochs": len(run.seconds),
            "temperature": run.temperature, "parameters": run.model.count_params(), "images": len(test[1])}


def class_recalls(predicted: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Each class's recall on the test split: the share of its images predicted as it."""
    hits = np.bincount(y[predicted == y], minlength=num_classes)
    return hits / np.maximum(np.bincount(y, minlength=num_classes), 1)


def uneven(data: Images) -> bool:
    """Whether the data set's largest class has at least twice the images of its smallest: then a table shows
    the balanced accuracy and the rarest class's recall beside the accuracy."""
    counts = np.bincount(data.y, minlength=len(data.classes))
    return bool(counts.max() >= 2 * counts.min())


def mean_of_runs(runs: list[dict]) -> dict:
    """One split's figures from its models trained with different seeds: accuracy, ECEs and seconds averaged,
    the rest (predictions, temperature, parameters) from the first model; ``accuracies`` keeps each model's."""
    out = dict(runs[0])
    for key in ("accuracy", "ece", "ece_calibrated", "seconds", "balanced", "rarest") & out.keys():
        out[key] = float(np.mean([r[key] for r in runs]))
    out["accuracies"] = [r["accuracy"] for r in runs]
    return out


def main() -> None:
    parser = command_line()
    args = arguments(parser)
    params = load_params(list(RULES), ROOT / "params.yaml")
    default = params["model"]["arch"]
    archs = ["compact"] + [a for a in (args.archs or [default]) if a != "compact"]
    rows = [(arch, arch, params) for arch in archs]
    for spec in args.tries:
        changed = with_overrides(params, spec)
        rows.append((f"{changed['model']['arch']}: {spec}" if "model.arch" in spec else f"{default} + {spec}",
                     changed["model"]["arch"], changed))
    normalize = args.normalize or params["data"]["normalize"]
    data = folder_images(args.data, normalize, params["split"]) if args.data else all_images()
    source = f" of `{args.data.name}/` (data.normalize={normalize})" if args.data else ""
    seeds = range(args.first, args.first + args.splits)
    print(f"{len(data.x):,} images{source}, splits {seeds[0]} to {seeds[-1]} (seed k re-deals the split and the "
          f"weights); recipe: {params['train']}", flush=True)
    if args.splits < 5:
        print(f"note: {args.splits} split{'s' if args.splits > 1 else ''}: the table is printed, but a results file "
              "takes at least 5", flush=True)

    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:  # split by split, so a slow machine slows every row alike
            for name, arch, row_params in rows:
                runs = [one_run(arch, row_params, seed, data, Path(tmp), weights_seed=seed + 1000 * i)
                        for i in range(args.seeds)]
                r = mean_of_runs(runs)
                results.setdefault(name, []).append(r)
                show(seed, name, r)
            if args.ensemble > 1:
                name = f"compact x {args.ensemble} (averaged)"
                members = [results["compact"][-1]] + [one_run("compact", params, seed, data, Path(tmp),
                                                              weights_seed=seed + 1000 * m)
                                                      for m in range(1, args.ensemble)]
                results.setdefault(name, []).append(averaged(members, split_arrays(params, seed, data)))
                show(seed, name, results[name][-1])
    command = shlex.join(
        ["python", "bench/models.py"] + (["--data", str(args.data), "--normalize", normalize] if args.data else []) +
        (["--archs", *args.archs] if args.archs else []) +
        (["--ensemble", str(args.ensemble)] if args.ensemble > 1 else []) +
        (["--first", str(args.first)] if args.first else []) +
        (["--splits", str(args.splits)] if args.splits != parser.get_default("splits") else []) +
        (["--seeds", str(args.seeds)] if args.seeds > 1 else []) +
        [word for t in args.tries for word in ("--try", t)])
    table = render(results, default, command, seeds, len(data.x), args.seeds, source, uneven(data))
    print("\n" + table)
    if args.splits >= 5:
        named = f"-{args.data.name}-{normalize}" if args.data else ""
        out = args.out or OUT.with_name("models" + named + (f"-splits-{seeds[0]}-{seeds[-1]}" if args.first else "")
                                        + (f"-seeds-{args.seeds}" if args.seeds > 1 else "") + ".md")
        kept = None if args.out else other_table(out, command)
        if kept:
            print(kept)
            return
        write_bytes(table.encode(), out)  # atomic, as the stages write
        print(f"wrote {shown_name(out)}")
    else:
        print(f"no results file: {args.splits} split{'s' if args.splits > 1 else ''} (it takes at least 5)")


def table_command(path: Path) -> str | None:
    """The command a results file says made its table (its first line's ``Command: `...` ``), or None."""
    try:
        first = path.read_text(encoding="utf-8").partition("\n")[0]
    except (OSError, UnicodeDecodeError):
        return None
    return first.split("`")[1] if first.startswith("Command: `") and first.count("`") >= 2 else None


def other_table(out: Path, command: str) -> str | None:
    """Why ``command``'s table must not replace ``out``, or None: ``out`` holds another command's table (a
    committed one: `--splits 5` on a data set also named ``letters`` would replace the ten-split table)."""
    other = table_command(out)
    if other in (None, command):
        return None
    return (f"not written: {shown_name(out)} holds the table of another command (`{other}`), which this would "
            "replace; the table is above, and --out FILE writes it elsewhere")


def shown_name(path: Path) -> str:
    """``path`` from the project root when it lies inside it."""
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def show(seed: int, name: str, r: dict) -> None:
    each = f" (each seed: {', '.join(f'{a:.4f}' for a in r['accuracies'])})" if len(r.get("accuracies", [])) > 1 else ""
    per_class = f" (balanced {r['balanced']:.4f}, rarest class {r['rarest']:.4f})" if "balanced" in r else ""
    print(f"  split {seed}  {name:<44} accuracy {r['accuracy']:.4f}{each}{per_class}  ECE {r['ece']:.4f} -> "
          f"{r['ece_calibrated']:.4f} (T {r['temperature']})  {r['seconds']:.0f} s, {r['epochs']} epochs", flush=True)


def averaged(members: list[dict], arrays: tuple) -> dict:
    """The ensemble of ``members``: their softmax averaged, then calibrated on validation like one model."""
    train, val, test = arrays
    raw, raw_val = (np.mean([m[k] for m in members], axis=0) for k in ("raw", "raw_val"))
    t = fit_temperature(raw_val, val[1])
    calibrated = scaled(raw, t)
    recalls = class_recalls(raw.argmax(1), test[1], raw.shape[1])
    rarest = int(np.argmin(np.bincount(train[1], minlength=raw.shape[1])))
    return {"raw": raw, "raw_val": raw_val, "accuracy": float((raw.argmax(1) == test[1]).mean()),
            "correct": raw.argmax(1) == test[1],
            "balanced": float(recalls.mean()), "rarest": float(recalls[rarest]),
            "ece": ece(raw, test[1]), "ece_calibrated": ece(calibrated, test[1]),
            "seconds": sum(m["seconds"] for m in members), "epochs": sum(m["epochs"] for m in members),
            "temperature": t, "parameters": sum(m["parameters"] for m in members)}


def paired(runs: list[dict], base: list[dict]) -> str:
    """A row's accuracy minus the default's on the same splits: the mean of the per-split differences with its
    95% interval (Student's t over the splits). Pairing removes what the splits share (a split that deals more
    hard digits to test is hard for both), so the interval is narrower than the two rows' own; and each split
    trains both afresh, so it includes the training seed's luck, which a test on one split's images cannot."""
    diffs = [r["accuracy"] - b["accuracy"] for r, b in zip(runs, base, strict=True)]
    half = interval(diffs)
    return f"{np.mean(diffs):+.2%}" + ("" if np.isnan(half) else f" ± {half:.2%}")


def image_by_image(name: str, runs: list[dict], default: str, base: list[dict]) -> str:
    """How many test images, over all the splits, a row gets right where the default gets them wrong, and the
    reverse: the images behind the paired difference."""
    fixed = sum(int((r["correct"] & ~b["correct"]).sum()) for r, b in zip(runs, base, strict=True))
    broken = sum(int((~r["correct"] & b["correct"]).sum()) for r, b in zip(runs, base, strict=True))
    return f"- {name}: right on {fixed} test images that `{default}` gets wrong, wrong on {broken} that it gets right"


def render(results: dict[str, list[dict]], default: str, command: str, seeds: range, images: int,
           repeats: int = 1, source: str = "", per_class: bool = False) -> str:
    compact_s = statistics.median(r["seconds"] for r in results["compact"])
    base = results.get(default)  # None with --archs leaving the default out: no column to pair against it
    trained = "trains with seed k" if repeats == 1 else \
        f"trains {repeats} models with seeds k, k+1000, ..., whose mean is the split's figure"
    lines = [
        f"Command: `{command}` ({os.cpu_count()} CPU cores). Each row: {counted(len(seeds), 'split')} of the "
        f"{images:,} images{source} (split k re-deals them with seed k and {trained}); accuracy is the mean with "
        f"its 95% interval; " + ("the difference from the default is paired (each split's accuracy minus the "
                                 "default's on it, with the 95% interval of their mean); " if base else "") +
        f"ECE before and after temperature scaling; train time is the median. `model.arch` default: `{default}`" +
        ("." if base else " (not among the rows, so no row is paired against it).") +
        (" The classes are uneven: balanced accuracy is the mean of the per-class recalls, and the rarest class "
         "is the one with the fewest training images." if per_class else ""),
        "",
        "| model | parameters | test accuracy (95% interval) | " +
        ("balanced accuracy (95% interval) | rarest class's recall | " if per_class else "") +
        ("vs default (paired) | " if base else "") + "ECE | ECE calibrated | train s | x compact |",
        "|---|---|---|---|---|---|---|" + ("---|" if base else "") + ("---|---|" if per_class else ""),
    ]
    for name, runs in results.items():
        acc = [r["accuracy"] for r in runs]
        seconds = statistics.median(r["seconds"] for r in runs)
        shown = f"**{name}** (default)" if name == default else name
        extra = ""
        if per_class:
            balanced, rarest = [r["balanced"] for r in runs], [r["rarest"] for r in runs]
            extra = f"{plus_minus(balanced)} | {np.mean(rarest):.2%} | "
        versus = "" if base is None else " | " if name == default else f"{paired(runs, base)} | "
        lines.append(f"| {shown} | {runs[0]['parameters']:,} | {plus_minus(acc)} | {extra}"
                     f"{versus}{np.mean([r['ece'] for r in runs]):.3f} | "
                     f"{np.mean([r['ece_calibrated'] for r in runs]):.3f} | {seconds:.0f} | "
                     f"{seconds / compact_s:.2f} |")
    lines += ["", f"Test accuracy per split ({seeds[0]} to {seeds[-1]}):", ""]
    lines += [f"- {name}: " + ", ".join(f"{r['accuracy']:.2%}" for r in runs) for name, runs in results.items()]
    others = [name for name in results if name != default]
    if base is not None and others and repeats == 1:
        lines += ["", f"Image by image, over the {counted(len(seeds), 'split')}:", ""]
        lines += [image_by_image(name, results[name], default, base) for name in others]
    if repeats > 1:
        lines += ["", f"Test errors over all {counted(len(seeds), 'split')}, by training seed (k, k+1000, ...):", ""]
        lines += [f"- {name}: " + ", ".join(str(sum(round((1 - r["accuracies"][i]) * r["images"]) for r in runs))
                                           for i in range(repeats)) for name, runs in results.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_main(main)
