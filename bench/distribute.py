"""Benchmark: training throughput on one device, on 2 mirrored devices and on 2 workers, in the same run.

    python bench/distribute.py                 # the default model, 4 epochs, 3 repeats (about 6 minutes on 2 cores)
    python bench/distribute.py --arch compact --epochs 3 --repeat 1

Trains ``--arch`` with the default recipe on the prepared train split of the pipeline (`dvc repro` first),
``train.batch_size`` as the global batch, with ``train.distribute`` =

  none          one process, one device (Keras' fit): the baseline;
  mirrored      one process, the CPU split into 2 logical devices (on a GPU machine: every GPU);
  multi_worker  2 worker processes on 127.0.0.1 started by `python -m digitpipe.launch --workers 2`.

and reports training images/s (the median epoch, the first one left out: it builds the graphs) with the
ratio to `none`, the medians of ``--repeat`` alternated runs, plus the held-out check that each trained
correctly (val accuracy of the last epoch). On a machine whose cores one process already keeps busy, more
processes or devices gain nothing: they share the same cores and add the all-reduce of every step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import at_least  # noqa: E402

KINDS = ("none", "mirrored", "multi_worker")


def worker(kind: str, arch: str, epochs: int, out: Path) -> None:
    """One training run (in this process): writes ``out/<task>.json`` with its epoch seconds."""
    from digitpipe import distribute
    from digitpipe.params import load_params
    from digitpipe.prepared import load_prepared
    from digitpipe.runtime import load_keras

    params = load_params(["seed", "augment", "train"], ROOT / "params.yaml")
    t = {**params["train"], "epochs": epochs, "patience": epochs}
    cluster = distribute.cluster_from_env() if kind == "multi_worker" else None
    train = load_prepared(ROOT / "data/prepared/train.npz")
    val = load_prepared(ROOT / "data/prepared/val.npz")
    load_keras(pinned=True)
    from digitpipe import training
    from digitpipe.models import Augment

    watchdog = distribute.start_watchdog(cluster) if cluster else None
    strategy = distribute.make_strategy(kind, 2, cluster, distribute.peer_timeout())
    chief = cluster is None or cluster.is_chief
    run = training.train_model(arch, (train.x, train.y), (val.x, val.y), num_classes=len(train.classes),
                               augment=Augment.from_params(params["augment"]), recipe=training.Recipe.from_params(t),
                               seed=params["seed"], model_path=out / "model.keras", quiet=True, strategy=strategy,
                               chief=chief, watchdog=watchdog)
    distribute.barrier(strategy if cluster else None, watchdog)
    if watchdog:
        watchdog.stop()
    name = cluster.name.replace(" ", "") if cluster else kind
    (out / f"{name}.json").write_text(json.dumps({
        "images": len(train.x), "seconds": run.seconds, "val_accuracy": float(run.history["val_accuracy"][-1]),
        "replicas": strategy.num_replicas_in_sync if strategy else 1}))


def measure(kind: str, arch: str, epochs: int) -> dict:
    """Run one configuration in fresh processes; its images/s and last val accuracy."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        me = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--arch", arch, "--epochs", str(epochs),
              "--out", str(out)]
        cmd = [sys.executable, "-m", "digitpipe.launch", "--workers", "2", "--", *me] if kind == "multi_worker" else me
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        facts = json.loads((out / ("worker0.json" if kind == "multi_worker" else f"{kind}.json")).read_text())
    steady = facts["seconds"][1:] or facts["seconds"]
    return {"img_s": facts["images"] / statistics.median(steady), "val_accuracy": facts["val_accuracy"],
            "replicas": facts["replicas"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None, help="model.arch (default: params.yaml's)")
    parser.add_argument("--epochs", type=at_least(1), default=4, help="epochs of each training run (default 4)")
    parser.add_argument("--repeat", type=at_least(1), default=3, help="runs of each kind, alternated (default 3)")
    parser.add_argument("--worker", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arch is None:
        import yaml

        args.arch = yaml.safe_load((ROOT / "params.yaml").read_text())["model"]["arch"]
    if args.worker:
        worker(args.worker, args.arch, args.epochs, args.out)
        return
    runs: dict[str, list[dict]] = {k: [] for k in KINDS}
    for _ in range(args.repeat):
        for kind in KINDS:  # alternated, so a slow moment of the machine hits every kind alike
            runs[kind].append(measure(kind, args.arch, args.epochs))
    base = statistics.median(r["img_s"] for r in runs["none"])
    print(f"command: python bench/distribute.py --arch {args.arch} --epochs {args.epochs} --repeat {args.repeat}")
    print(f"machine: {os.cpu_count()} CPU cores, {'GPU' if has_gpu() else 'no GPU'}; arch {args.arch}, "
          f"{args.epochs} epochs, medians of {args.repeat} runs\n")
    print("| train.distribute | replicas | images/s | ratio to none | last val accuracy |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        img_s = statistics.median(r["img_s"] for r in runs[kind])
        acc = statistics.median(r["val_accuracy"] for r in runs[kind])
        print(f"| {kind} | {runs[kind][0]['replicas']} | {img_s:,.0f} | {img_s / base:.2f}x | {acc:.4f} |")


def has_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU (without importing TensorFlow)."""
    smi = shutil.which("nvidia-smi")
    return smi is not None and subprocess.run([smi, "-L"], capture_output=True).returncode == 0


if __name__ == "__main__":
    main()
