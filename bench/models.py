"""Benchmark: every model.arch on the embedded sample, same split, same recipe, 3 seeds each.

    dvc repro split                  # the manifests the benchmark trains on
    python bench/models.py           # all archs x 3 seeds (about 15 minutes on 2 cores)
    python bench/models.py --archs compact digitnet --seeds 0

Every arch is trained with the `train` and `augment` params of params.yaml (only `model.arch`
changes), exactly as `dvc exp run -S model.arch=<arch>` would, on data/splits/{train,val,test}.csv.
For each it reports the test accuracy (mean ± sd over the seeds), training wall time, seconds
per epoch and the median single-image latency of the saved model, with ratios against `compact`
measured in the same run. The table goes to stdout and to bench/results/models.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitpipe.params import ARCHS, load_params  # noqa: E402
from digitpipe.runtime import load_keras  # noqa: E402

keras = load_keras()

from digitpipe import training  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.prepared import load_prepared  # noqa: E402

OUT = ROOT / "bench" / "results" / "models.md"


def latency_ms(model_path: Path, image: np.ndarray, calls: int = 300) -> float:
    """Median milliseconds to classify one image with the predictor `predict` uses (model loaded once)."""
    predictor = Predictor.load(model_path)
    for _ in range(20):
        predictor.probabilities(image)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        predictor.probabilities(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    archs = ["compact"] + [a for a in args.archs if a != "compact"]

    params = load_params(["augment", "model", "train"], ROOT / "params.yaml")
    prepared = {s: load_prepared(ROOT / f"data/prepared/{s}.npz") for s in ("train", "val", "test")}
    splits = {s: (p.x, p.y) for s, p in prepared.items()}
    classes = prepared["train"].classes
    x_test, y_test = splits["test"]
    print(f"{len(splits['train'][0])} train / {len(splits['val'][0])} val / {len(x_test)} test images; "
          f"recipe: {params['train']}", flush=True)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            accs, walls, per_epoch, lat, n_params = [], [], [], [], 0
            for seed in args.seeds:
                path = Path(tmp) / f"{arch}-{seed}.keras"
                start = time.perf_counter()
                run = training.train_model(arch, splits["train"], splits["val"], len(classes), params["augment"],
                                           params["train"], seed, path, quiet=True)
                walls.append(time.perf_counter() - start)
                per_epoch.append(statistics.median(run.seconds))
                n_params = run.model.count_params()
                accs.append(float((Predictor.load(path).probabilities(x_test).argmax(1) == y_test).mean()))
                lat.append(latency_ms(path, x_test[0]))
                print(f"  {arch:<9} seed {seed}: test accuracy {accs[-1]:.4f}, {walls[-1]:.1f} s, "
                      f"{len(run.seconds)} epochs", flush=True)
            rows[arch] = {"params": n_params, "acc": accs, "wall": statistics.median(walls),
                          "epoch": statistics.median(per_epoch), "latency": statistics.median(lat)}
    table = render(rows, params["model"]["arch"], args)
    print("\n" + table)
    if set(args.archs) == set(ARCHS) and args.seeds == [0, 1, 2]:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(table)
        print(f"wrote {OUT.relative_to(ROOT)}")


def render(rows: dict, default: str, args: argparse.Namespace) -> str:
    base = rows["compact"]
    seeds = " ".join(map(str, args.seeds))
    lines = [
        f"Command: `python bench/models.py --seeds {seeds}` (2 CPU cores; medians over seeds for times).",
        f"Default `model.arch`: `{default}`. Ratios are against `compact` in the same run.",
        "",
        "| arch | parameters | test accuracy (mean ± sd) | train s | x compact | s / epoch | latency ms | x compact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch, r in rows.items():
        sd = statistics.stdev(r["acc"]) if len(r["acc"]) > 1 else 0.0
        name = f"**{arch}** (default)" if arch == default else arch
        lines.append(f"| {name} | {r['params']:,} | {np.mean(r['acc']):.2%} ± {sd:.2%} | {r['wall']:.1f} | "
                     f"{r['wall'] / base['wall']:.2f} | {r['epoch']:.2f} | {r['latency']:.2f} | "
                     f"{r['latency'] / base['latency']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
