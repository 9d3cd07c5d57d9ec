"""Benchmark: how honest the confidences are on a small data set, whose temperature is fitted on few images.

    dvc repro prepare                       # the prepared arrays it draws from
    python bench/calibration.py             # the default arch on 10, 30 and 100 images a class, 8 draws each
                                            # (about 6 minutes on 2 cores)
    python bench/calibration.py --data DIR --normalize none   # any folder-per-class data set, as bench/models.py --data

The temperature that makes the percentages honest (README, What the percentage means) is fitted on the
validation split. On the embedded sample that is 750 images; on a data set of a few hundred it is a few
dozen, of which the model gets only a few wrong, so the fit rests on a handful of mistakes. This measures
what that does to the confidences a person is shown.

Draw k takes N images of every class (seed k), deals them by the split stage's shares (`split.train` and
`split.val` of each class; the test share is not needed here) and trains the default recipe with seed k on the
training share, as the train stage would, the temperature fitted on the validation share. The model is then
scored on every image that was not drawn: thousands, so that the ECE measured is the model's and not the noise
of a small test set. Three ECEs: the raw softmax's, with the fitted temperature (what `predict` shows), and with
the temperature fitted the same way on the held-out images themselves (what the fit would give if the
validation share held thousands of images; it minimises the likelihood, not the ECE, so a lucky fit on few
images can come out a little lower). The table goes to bench/results/calibration.md (named after the folder
for `--data`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import add_data_options, at_least, refuse_normalize_alone  # noqa: E402
from digitpipe.params import ARCHS  # noqa: E402

SIZES = (10, 30, 100)


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=at_least(2), nargs="+", default=list(SIZES), metavar="N",
                        help="images drawn of every class, one row each (default: 10 30 100)")
    parser.add_argument("--draws", type=at_least(2), default=8, metavar="K", help="draws a row, seeds 0..K-1 "
                        "(default 8)")
    parser.add_argument("--arch", choices=ARCHS, help="the arch (default: params.yaml's model.arch)")
    add_data_options(parser, "another folder-per-class data set, as bench/models.py --data")
    return parser


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, refused as argparse refuses it where it cannot be one."""
    args = parser.parse_args()
    refuse_normalize_alone(parser, args)
    return args


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    arguments(command_line())

import bench.models as bm  # noqa: E402  (loads Keras pinned)
from digitpipe.calibration import fit_temperature, scaled  # noqa: E402
from digitpipe.errors import DigitpipeError  # noqa: E402
from digitpipe.files import write_bytes  # noqa: E402

OUT = ROOT / "bench" / "results"


def small_split(y: np.ndarray, per_class: int, shares: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    """Rows of ``y`` for (train, val, held out): ``per_class`` images of every class drawn with ``seed``, dealt
    by the split's train and val shares (at least one image each), and every image not drawn, held out."""
    rng = np.random.default_rng(seed)
    train, val, held = [], [], []
    n_train = max(1, round(per_class * shares["train"]))
    n_val = max(1, round(per_class * shares["val"]))
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        if len(rows) <= per_class:
            raise DigitpipeError(f"--per-class {per_class}: class {c} has {len(rows)} images, and at least one must "
                                 "be left over to score on")
        train.append(rows[:n_train])
        val.append(rows[n_train:n_train + n_val])
        held.append(rows[per_class:])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, held))


def one_draw(arch: str, params: dict, data: bm.Images, per_class: int, seed: int, tmp: Path) -> dict:
    """One small data set drawn, trained on as the train stage would, and scored on every image left over."""
    train, val, held = small_split(data.y, per_class, params["split"], seed)
    arrays = tuple((data.x[rows], data.y[rows]) for rows in (train, val, held))
    r = bm.score_run(arch, params, arrays, seed, data, tmp)
    y_held = data.y[held]
    held_t = fit_temperature(r["raw"], y_held)
    return {"train": len(train), "val": len(val), "held": len(held),
            "val_errors": int((r["raw_val"].argmax(1) != data.y[val]).sum()),
            "accuracy": r["accuracy"], "temperature": r["temperature"], "held_temperature": held_t,
            "ece_raw": r["ece"], "ece": r["ece_calibrated"], "ece_held": bm.ece(scaled(r["raw"], held_t), y_held),
            "seconds": r["seconds"]}


def span(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)} to {format(max(values), fmt)}"


def render(rows: dict[int, list[dict]], arch: str, command: str, images: int, source: str, shares: dict) -> str:
    lines = [f"Command: `{command}` ({os.cpu_count()} CPU cores). `{arch}`, {images:,} images{source}. Each row: "
             f"N images of every class drawn {len(next(iter(rows.values())))} times (draw k with seed k), dealt "
             f"{shares['train']:g} / {shares['val']:g} into training and validation images (the temperature is "
             "fitted on the validation ones) and scored on every image not drawn. ECE: the mean over the draws "
             "(the largest in brackets); held-out T: the temperature fitted on the scored images themselves.", "",
             "| per class | training, validation images | validation errors | accuracy | fitted T | held-out T "
             "| ECE raw | ECE calibrated | ECE at held-out T | calibration lowered the ECE | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, draws in rows.items():
        d = draws[0]
        lowered = sum(r["ece"] < r["ece_raw"] for r in draws)
        mean = {k: statistics.mean(r[k] for r in draws) for k in ("ece_raw", "ece", "ece_held")}
        worst = {k: max(r[k] for r in draws) for k in mean}
        errors = sorted(r["val_errors"] for r in draws)
        lines.append(
            f"| {n} | {d['train']:,}, {d['val']:,} | {statistics.median(errors):g} ({errors[0]} to {errors[-1]}) "
            f"| {bm.plus_minus([r['accuracy'] for r in draws])} | {span([r['temperature'] for r in draws], '.2f')} "
            f"| {span([r['held_temperature'] for r in draws], '.2f')} | "
            + "".join(f"{mean[k]:.3f} ({worst[k]:.3f}) | " for k in mean)
            + f"{lowered} of {len(draws)} | {statistics.median(r['seconds'] for r in draws):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = command_line()
    args = arguments(parser)
    params = bm.load_params(list(bm.RULES), ROOT / "params.yaml")
    arch = args.arch or params["model"]["arch"]
    normalize = args.normalize or params["data"]["normalize"]
    data = bm.folder_images(args.data, normalize) if args.data else bm.all_images()
    source = f" of `{args.data.name}/` (data.normalize={normalize})" if args.data else ""
    sizes = sorted(set(args.per_class))
    print(f"{len(data.x):,} images{source}; {sizes} a class, {args.draws} draws each", flush=True)
    rows: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for seed in range(args.draws):
                r = one_draw(arch, params, data, n, seed, Path(tmp))
                rows.setdefault(n, []).append(r)
                print(f"  {n} a class, draw {seed}: {r['val_errors']} errors in {r['val']} validation images, T "
                      f"{r['temperature']:.3f} (held-out {r['held_temperature']:.3f}), ECE {r['ece_raw']:.3f} -> "
                      f"{r['ece']:.3f} (held-out T {r['ece_held']:.3f}) on {r['held']:,}", flush=True)
    command = shlex.join(
        ["python", "bench/calibration.py"] + (["--data", str(args.data), "--normalize", normalize] if args.data
                                              else []) +
        (["--arch", args.arch] if args.arch else []) +
        (["--per-class", *map(str, sizes)] if sizes != list(SIZES) else []) +
        (["--draws", str(args.draws)] if args.draws != parser.get_default("draws") else []))
    table = render(rows, arch, command, len(data.x), source, params["split"])
    print("\n" + table)
    out = OUT / ("calibration" + (f"-{args.data.name}-{normalize}" if args.data else "") + ".md")
    write_bytes(table.encode(), out)  # atomic, as the stages write
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    bm.run_main(main)
