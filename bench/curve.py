"""Benchmark: the learning curve. Would more labelled images help, and how many would a target need?

    dvc repro prepare                    # the prepared arrays it re-deals
    python bench/curve.py                # the default arch on splits 10-19, 1/8 to all of each training split
                                         # (about 45 minutes on 2 cores)
    python bench/curve.py --archs compact digitnet --splits 5
    python bench/curve.py --data DIR --normalize none   # any folder-per-class data set, as bench/models.py does

Each split k is dealt as `bench/models.py` deals it (the split stage with `seed: k`), and the model is
trained with seed k on a share of that split's training images only: 1/8, 1/4, 1/2 and all of them by
default, the same share of every class, each smaller set inside the larger ones, with the same params
(so a smaller set also takes fewer steps, as the pipeline would on it). The validation set (for the
temperature) and the test set stay whole, so every point of the curve is scored on the same images.

It prints the test errors per split and share, the mean accuracy with its 95% interval, and a fit of
errors against training images on a log-log scale (the power law that learning curves follow until they
flatten): how much each doubling of the training images divides the errors by, with a 95% interval from
resampling the splits, and how many training images the fit puts at the target accuracy (`--target`,
99.3% by default). Curves flatten as they near the errors no amount of data removes (ambiguous digits,
wrong labels), so that figure is the fewest images the trend asks for, not a promise. The table goes to
bench/results/curve-splits-K-L.md and the curve beside it as .png (named after the folder for `--data`,
and after the archs when `--archs` names them).
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

SHARES = (0.125, 0.25, 0.5, 1.0)


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=None, choices=ARCHS,
                        help="archs (default: params.yaml's model.arch)")
    parser.add_argument("--first", type=at_least(0), default=10, metavar="K", help="the first split (default 10)")
    parser.add_argument("--splits", type=at_least(1), default=10, metavar="N", help="splits K..K+N-1 (default 10)")
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES), metavar="S",
                        help="shares of each training split, above 0 and at most 1 (default: 1/8 1/4 1/2 1)")
    parser.add_argument("--target", type=float, default=0.993, help="the accuracy to extrapolate to (default 0.993)")
    add_data_options(parser, "another folder-per-class data set, as bench/models.py --data")
    return parser


def arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, refused as argparse refuses it where it cannot be one."""
    args = parser.parse_args()
    refuse_normalize_alone(parser, args)
    if not all(0 < s <= 1 for s in args.shares) or len(set(args.shares)) < 2:
        parser.error("--shares takes at least two different shares, each above 0 and at most 1")
    if not 0 < args.target < 1:
        parser.error("--target is an accuracy between 0 and 1")
    return args


if __name__ == "__main__":  # --help, and an option refused, answer at once: loading Keras takes seconds
    arguments(command_line())

import bench.models as bm  # noqa: E402  (loads Keras pinned)
from digitpipe import plots  # noqa: E402
from digitpipe.files import write_bytes  # noqa: E402

OUT = ROOT / "bench" / "results"
FAR = 1_000       # a target needing more than this many times a split's training images is called out of reach
MAX_POWER = 700   # np.exp overflows a float64 just above this


def nested_shares(y: np.ndarray, shares: list[float], seed: int) -> dict[float, np.ndarray]:
    """For each share, the rows of ``y`` to train on: that share of every class (at least one image), the
    smaller sets inside the larger ones (each class's rows in one seeded order, cut at each share)."""
    rng = np.random.default_rng(seed)
    order = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}
    return {share: np.sort(np.concatenate([rows[:max(1, round(share * len(rows)))] for rows in order.values()]))
            for share in shares}


def power_law(images: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of log(error rate) = a + slope * log(images); (a, slope). Points with no errors are
    left out (their log is not finite); fewer than two points give nan."""
    keep = errors > 0
    if keep.sum() < 2:
        return float("nan"), float("nan")
    slope, a = np.polyfit(np.log(images[keep]), np.log(errors[keep]), 1)
    return float(a), float(slope)


def fit_curve(images: np.ndarray, errors: np.ndarray, tested: np.ndarray, draws: int = 2000,
              seed: int = 0) -> dict:
    """The power law through the pooled error rates of every share, and a 95% interval of its slope from
    resampling the splits. ``images``: training images per share (the mean over the splits); ``errors``:
    (splits, shares) test errors; ``tested``: test images per split."""
    rates = errors.sum(axis=0) / tested.sum()
    a, slope = power_law(images, rates)
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(draws):
        pick = rng.integers(0, len(errors), len(errors))
        slopes.append(power_law(images, errors[pick].sum(axis=0) / tested[pick].sum())[1])
    slopes = np.array(slopes)
    slopes = slopes[np.isfinite(slopes)]
    low, high = np.percentile(slopes, [2.5, 97.5]) if len(slopes) else (float("nan"), float("nan"))
    return {"a": a, "slope": slope, "slope_low": float(low), "slope_high": float(high), "rates": rates}


def images_for(fit: dict, target: float) -> float:
    """Training images at which the fitted error rate reaches ``1 - target``; nan where the errors do not fall."""
    if not np.isfinite(fit["slope"]) or fit["slope"] >= 0:
        return float("nan")
    power = (np.log(1 - target) - fit["a"]) / fit["slope"]
    return float(np.exp(power)) if power < MAX_POWER else float("inf")  # a nearly flat line: out of reach


def fit_words(fit: dict, target: float, full: float) -> str:
    """The fit in a sentence: the power, what a doubling of the images does, and the images at ``target``."""
    if not np.isfinite(fit["slope"]):
        return ("No line to fit: fewer than two shares made any errors (a share without errors has no place on "
                "a log scale), so the test set is too small to tell these shares apart.")
    words = (f"Fit: errors ∝ images^{fit['slope']:.2f} (95% interval {fit['slope_low']:.2f} to "
             f"{fit['slope_high']:.2f}): ")
    if round(fit["slope"], 2) >= 0:  # -0.00 too: a flat curve, its slope only rounding noise
        return words + "the errors do not fall with more images here."
    need = images_for(fit, target)
    words += (f"each doubling of the training images divides the errors by {2 ** -fit['slope']:.2f} "
              f"({2 ** -fit['slope_high']:.2f} to {2 ** -fit['slope_low']:.2f}). ")
    if need > FAR * full:
        return words + (f"By the fit, {target:.1%} would take more than {FAR:,} times the {full:,.0f} training "
                        "images of a split: more images like these will not get there.")
    if need <= full:
        return words + f"By the fit, {target:.1%} is reached at about {need:,.0f} training images, within a split's."
    return words + (f"{target:.1%} at about {need:,.0f} training images by the fit, {need / full:.1f} times the "
                    f"{full:,.0f} of a split; a curve that flattens asks for more.")


def splits_words(seeds: range) -> str:
    return f"split {seeds[0]}" if len(seeds) == 1 else f"splits {seeds[0]} to {seeds[-1]}"


def render(results: dict[str, dict], shares: list[float], command: str, seeds: range, images: int, source: str,
           target: float) -> str:
    lines = [f"Command: `{command}` ({os.cpu_count()} CPU cores). {splits_words(seeds).capitalize()} of the "
             f"{images:,} images{source} (split k dealt as the split stage does with seed k; training seed k); "
             "each row trains on a share of every split's training images, every class alike, and is scored on "
             "the whole test set; accuracy is the mean over the splits with its 95% interval.", ""]
    for arch, r in results.items():
        fit = r["fit"]
        lines += [f"`{arch}`:", "", "| training images | errors per split | errors | test accuracy (95% interval) "
                  "| train s |", "|---|---|---|---|---|"]
        for j, share in enumerate(shares):
            errors = r["errors"][:, j]
            acc = (1 - errors / r["tested"]).tolist()
            lines.append(f"| {r['images'][j]:,.0f} ({share:g}) | {', '.join(map(str, errors))} | {errors.sum()} | "
                         f"{bm.plus_minus(acc)} | {statistics.median(r['seconds'][:, j]):.0f} |")
        lines += ["", fit_words(fit, target, r["images"][-1]), ""]
    return "\n".join(lines)


def figure(results: dict[str, dict], target: float, title: str):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    right = max(r["images"][-1] for r in results.values())
    for arch, r in results.items():
        fit, n = r["fit"], r["images"]
        # no errors has no place on a log scale: such points are drawn at half an error, as open triangles
        pooled_floor, split_floor = 0.5 / r["tested"].sum(), 0.5 / r["tested"][:, None]
        per_split = r["errors"] / r["tested"][:, None]
        line = ax.plot(n, 100 * np.maximum(fit["rates"], pooled_floor), "o-", label=f"{arch} (all splits pooled)")[0]
        colour = line.get_color()
        ax.plot(n, 100 * np.maximum(per_split, split_floor).T, ".", color=colour, alpha=0.35)
        none = per_split == 0
        if none.any():
            ax.plot(np.broadcast_to(n, none.shape)[none], 100 * np.broadcast_to(split_floor, none.shape)[none], "v",
                    mfc="none", color=colour, label=f"{arch}: a split with no errors (drawn at half an error)")
        if np.isfinite(fit["slope"]):
            need = images_for(fit, target)
            grid = np.geomspace(n[0], max(right, need) if np.isfinite(need) else right, 50)
            ax.plot(grid, 100 * np.exp(fit["a"] + fit["slope"] * np.log(grid)), "--", color=colour,
                    alpha=0.7, label=f"{arch}: fit, errors $\\propto$ images$^{{{fit['slope']:.2f}}}$")
    ax.axhline(100 * (1 - target), color="grey", lw=1, ls=":", label=f"{target:.1%} accuracy")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test error, % (log scale)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def main() -> None:
    parser = command_line()
    args = arguments(parser)
    shares = sorted(set(args.shares))
    params = bm.load_params(list(bm.RULES), ROOT / "params.yaml")
    archs = args.archs or [params["model"]["arch"]]
    normalize = args.normalize or params["data"]["normalize"]
    data = bm.folder_images(args.data, normalize, params["split"]) if args.data else bm.all_images()
    source = f" of `{args.data.name}/` (data.normalize={normalize})" if args.data else ""
    seeds = range(args.first, args.first + args.splits)
    print(f"{len(data.x):,} images{source}, {splits_words(seeds)}, shares {shares}", flush=True)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            errors = np.zeros((len(seeds), len(shares)), dtype=int)
            seconds = np.zeros_like(errors, dtype=float)
            sizes = np.zeros_like(seconds)
            tested = np.zeros(len(seeds), dtype=int)
            for i, seed in enumerate(seeds):
                (x, y), val, test = bm.split_arrays(params, seed, data)
                for j, rows in enumerate(nested_shares(y, shares, seed).values()):
                    r = bm.score_run(arch, params, ((x[rows], y[rows]), val, test), seed, data, Path(tmp))
                    errors[i, j] = round((1 - r["accuracy"]) * r["images"])
                    seconds[i, j], sizes[i, j], tested[i] = r["seconds"], len(rows), r["images"]
                    print(f"  {arch} split {seed}: {len(rows):,} training images, {errors[i, j]} errors in "
                          f"{r['images']} ({r['seconds']:.0f} s)", flush=True)
            images = sizes.mean(axis=0)
            results[arch] = {"errors": errors, "seconds": seconds, "images": images, "tested": tested,
                             "fit": fit_curve(images, errors, tested)}
    command = shlex.join(
        ["python", "bench/curve.py"] + (["--data", str(args.data), "--normalize", normalize] if args.data else []) +
        (["--archs", *args.archs] if args.archs else []) +
        (["--first", str(args.first)] if args.first != parser.get_default("first") else []) +
        (["--splits", str(args.splits)] if args.splits != parser.get_default("splits") else []) +
        (["--shares", *(repr(s) for s in shares)] if shares != list(SHARES) else []) +
        (["--target", repr(args.target)] if args.target != parser.get_default("target") else []))
    table = render(results, shares, command, seeds, len(data.x), source, args.target)
    print("\n" + table)
    name = "curve" + (f"-{args.data.name}-{normalize}" if args.data else "") + f"-splits-{seeds[0]}-{seeds[-1]}" + \
        (f"-{'-'.join(archs)}" if args.archs else "")
    write_bytes(table.encode(), OUT / f"{name}.md")  # atomic, as the stages write
    plots.save(figure(results, args.target, f"Learning curve: test error by training images, {splits_words(seeds)}"
                      f"{' of ' + args.data.name if args.data else ''}"), OUT / f"{name}.png")
    print(f"wrote {(OUT / name).relative_to(ROOT)}.md and .png")


if __name__ == "__main__":
    bm.run_main(main)
