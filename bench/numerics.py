"""Benchmark: which facts of a machine change the bits of a trained model, and what pinning them costs.

One training (3-epoch digitnet recipe on a fixed subset of the embedded MNIST sample) per
process, since oneDNN's ISA, TF_ENABLE_ONEDNN_OPTS and the thread pools are fixed when
TensorFlow initialises:

    python bench/numerics.py run [--pinned] [--intra N] [--inter N] [--isa-inside ISA] [--isa-cap ISA]
                        [--isa-after-import ISA] [--seed S] [--epochs E]

prints the settings in effect, the md5 of the concatenated weights and of the saved .keras
file, per-epoch val metrics and the median seconds per epoch, and a last line
``RESULT {json}`` for the driver.

    python bench/numerics.py sweep PLAN [--reps R] [--out results.jsonl]

runs the named plan (factors | candidate | pipeline | seeds | onednn; --only I,J picks entries), each setting in a fresh
subprocess (``env VAR=... [taskset -c 0] python bench/numerics.py run ...``), repetitions
alternated round-robin so background load hits every setting alike, and prints a table.

    python bench/numerics.py table bench/results/numerics.jsonl   # the committed table again

``--pinned`` sets the numerics up exactly as the pipeline's stages do (:func:`digitpipe.runtime.load_keras`
with ``pinned=True``: oneDNN capped at AVX2, 2 intra-op threads); the plan ``pipeline`` runs it on the
simulated machines (another ISA from outside, 1 core) against today's default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # the project root
sys.path.insert(0, str(HERE))

from bench.args import at_least  # noqa: E402
from digitpipe.runtime import capped_isa, onednn_enabled  # noqa: E402

RECIPE = {"epochs": 3, "batch_size": 64, "lr": 0.003, "schedule": "cosine", "warmup_epochs": 1,
          "label_smoothing": 0.1, "weight_decay": 0.0001, "class_weight": "none", "keep": "last",
          "patience": 10, "lr_patience": 3, "lr_factor": 0.5}
AUGMENT = {"rotation": 10, "translation": 0.1, "zoom": 0.1, "shear": 0.0}


# ----------------------------------------------------------------------------- one run

def run_one(args: argparse.Namespace) -> None:
    env_before = {k: os.environ.get(k) for k in ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS")}
    # ISA settings made inside Python, before TensorFlow is imported.
    if args.isa_inside:
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa_inside
    if args.isa_cap:
        os.environ["ONEDNN_MAX_CPU_ISA"] = capped_isa(os.environ.get("ONEDNN_MAX_CPU_ISA"), args.isa_cap)

    from digitpipe.runtime import load_keras

    t_import = time.perf_counter()
    keras = load_keras(pinned=args.pinned)
    import numpy as np
    import tensorflow as tf

    if args.isa_after_import:  # set after TF is imported, before the first op runs
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa_after_import
    # Thread pools: must be set before any op runs (they are created on first use).
    if args.intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
    if args.inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)

    from digitpipe import training
    from digitpipe.models import Augment
    from digitpipe.sample import load_mnist_sample

    images, labels = load_mnist_sample()
    order = np.random.default_rng(0).permutation(len(images))
    tr, va = order[:3500], order[3500:4250]
    x = (images.astype(np.float32) / 255.0)[..., None]
    y = labels.astype(np.int32)
    recipe = dict(RECIPE, epochs=args.epochs)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        t0, c0 = time.perf_counter(), time.process_time()
        run = training.train_model("digitnet", (x[tr], y[tr]), (x[va], y[va]), num_classes=10,
                                   augment=Augment(**AUGMENT), recipe=training.Recipe.from_params(recipe),
                                   seed=args.seed, model_path=path, quiet=True)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        file_md5 = hashlib.md5(path.read_bytes()).hexdigest()
    flat = np.concatenate([w.numpy().ravel() for w in run.model.weights])
    weights_md5 = hashlib.md5(flat.tobytes()).hexdigest()

    settings = {
        "ONEDNN_MAX_CPU_ISA(outside)": env_before["ONEDNN_MAX_CPU_ISA"],
        "ONEDNN_MAX_CPU_ISA(effective)": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "TF_ENABLE_ONEDNN_OPTS": env_before["TF_ENABLE_ONEDNN_OPTS"],
        "oneDNN_enabled(IsMklEnabled)": onednn_enabled(),
        "OMP_NUM_THREADS": env_before["OMP_NUM_THREADS"],
        "intra_op(set)": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op(set)": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "jit_compile": run.model.jit_compile,
        "seed": args.seed,
        "epochs": args.epochs,
        "tf": tf.__version__,
        "keras": keras.__version__,
    }
    result = {
        "weights_md5": weights_md5,
        "file_md5": file_md5,
        "s_per_epoch": float(np.median(run.seconds)),
        "epoch_seconds": [round(s, 3) for s in run.seconds],
        "fit_seconds": round(total, 2),
        "fit_cpu_seconds": round(cpu, 2),  # user+sys CPU of the whole process during fit (less load-sensitive)
        "import_seconds": round(t0 - t_import, 2),
        "val_accuracy": [float(v) for v in run.history["val_accuracy"]],
        "val_loss": [float(v) for v in run.history["val_loss"]],
        "settings": settings,
    }
    for key, value in settings.items():
        print(f"setting {key} = {value}")
    print(f"weights md5 {weights_md5}  (.keras file md5 {file_md5})")
    print(f"val_accuracy {result['val_accuracy']}  val_loss {result['val_loss']}")
    print(f"median s/epoch {result['s_per_epoch']:.3f}  (epochs {result['epoch_seconds']})")
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver

def setting(label: str, env: dict | None = None, flags: str = "", taskset: bool = False,
            unset: tuple = ()) -> dict:
    return {"label": label, "env": env or {}, "flags": flags, "taskset": taskset, "unset": list(unset)}


# Every setting starts from a clean environment for these variables (unset = TF default).
CLEAN = ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "ONEDNN_VERBOSE")

CAP = "--isa-cap AVX2"
CAP_INTRA = "--isa-cap AVX2 --intra 2"
PLANS = {
    "factors": [
        setting("default (baseline)"),
        setting("ISA=AVX512_CORE", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}),
        setting("ISA=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
        setting("ISA=AVX", {"ONEDNN_MAX_CPU_ISA": "AVX"}),
        setting("ISA=SSE41", {"ONEDNN_MAX_CPU_ISA": "SSE41"}),
        setting("ISA=AVX2 set in Python before TF import", flags="--isa-inside AVX2"),
        setting("ISA=AVX2 set in Python after TF import", flags="--isa-after-import AVX2"),
        setting("TF_ENABLE_ONEDNN_OPTS=0", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
        setting("TF_ENABLE_ONEDNN_OPTS=1", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
        setting("oneDNN off + ISA=AVX2", {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
        setting("OMP_NUM_THREADS=1", {"OMP_NUM_THREADS": "1"}),
        setting("OMP_NUM_THREADS=4", {"OMP_NUM_THREADS": "4"}),
        setting("intra=1", flags="--intra 1"),
        setting("intra=2", flags="--intra 2"),
        setting("intra=4", flags="--intra 4"),
        setting("inter=1", flags="--inter 1"),
        setting("inter=2", flags="--inter 2"),
        setting("inter=4", flags="--inter 4"),
        setting("taskset -c 0 (1 core), default threads", taskset=True),
        setting("oneDNN off, intra=1", {"TF_ENABLE_ONEDNN_OPTS": "0"}, "--intra 1"),
        setting("oneDNN off, intra=4", {"TF_ENABLE_ONEDNN_OPTS": "0"}, "--intra 4"),
        setting("oneDNN off, taskset -c 0", {"TF_ENABLE_ONEDNN_OPTS": "0"}, taskset=True),
        setting("ISA=AVX2, intra=1", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "--intra 1"),
        setting("ISA=AVX2, taskset -c 0", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, taskset=True),
    ],
    # The candidate fix under the simulated machines (outside ISA x cores x thread counts), and
    # today's default for the cost. CAP = the pipeline caps the ISA itself; CAP_INTRA also pins intra-op threads.
    "candidate": [
        setting("default (baseline), 2 cores"),
        setting("cap AVX2, outside AVX512_CORE, 2 cores", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, CAP),
        setting("cap AVX2, outside AVX2, 2 cores", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, CAP),
        setting("cap AVX2, outside unset, 2 cores", {}, CAP),
        setting("cap AVX2, outside AVX512_CORE, taskset -c 0", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, CAP,
                taskset=True),
        setting("cap AVX2, outside AVX2, taskset -c 0", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, CAP, taskset=True),
        setting("cap AVX2, outside AVX512_CORE, intra=4", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, CAP + " --intra 4"),
        setting("cap AVX2, outside AVX512_CORE, intra=8", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, CAP + " --intra 8"),
        setting("cap AVX2 + intra=2, outside AVX512_CORE, taskset -c 0", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
                CAP_INTRA, taskset=True),
        setting("cap AVX2 + intra=2, outside AVX512_CORE, 2 cores", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, CAP_INTRA),
    ],
    "pipeline": [
        setting("default (baseline), 2 cores"),
        setting("pipeline (--pinned), outside unset, 2 cores", {}, "--pinned"),
        setting("pipeline (--pinned), outside AVX512_CORE, 1 core", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "--pinned",
                taskset=True),
        setting("pipeline (--pinned), outside AVX2, 1 core", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "--pinned", taskset=True),
        setting("pipeline (--pinned), outside AVX (no AVX2)", {"ONEDNN_MAX_CPU_ISA": "AVX"}, "--pinned"),
    ],
    "seeds": [setting(f"default, seed {s}", flags=f"--seed {s}") for s in range(42, 47)],
    # The stages' pin of oneDNN's kernels (on), against them switched off from outside (TensorFlow's own kernels,
    # its default on CPUs without AVX-512 VNNI or BF16) and TensorFlow's defaults.
    "onednn": [
        setting("pipeline (--pinned): oneDNN's kernels on", {}, "--pinned"),
        setting("pipeline (--pinned), TF_ENABLE_ONEDNN_OPTS=0 outside", {"TF_ENABLE_ONEDNN_OPTS": "0"}, "--pinned"),
        setting("default (baseline), 2 cores"),
    ],
}


def command_line(s: dict) -> str:
    env = " ".join(f"{k}={v}" for k, v in s["env"].items())
    parts = ["env"] + [f"-u {k}" for k in CLEAN if k not in s["env"]] + ([env] if env else [])
    if s["taskset"]:
        parts.append("taskset -c 0")
    parts.append("python bench/numerics.py run")
    if s["flags"]:
        parts.append(s["flags"])
    return " ".join(parts)


def sweep(plan: list[dict], reps: int, out: Path, extra_flags: str = "") -> list[dict]:
    rows = []
    for rep in range(reps):
        for s in plan:
            cmd = command_line(s) + (f" {extra_flags}" if extra_flags else "")
            t0 = time.perf_counter()
            proc = subprocess.run(shlex.split(cmd), cwd=HERE, capture_output=True, text=True)
            line = next((out for out in proc.stdout.splitlines() if out.startswith("RESULT ")), None)
            if line is None:
                print(f"FAILED: {cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            row = dict(json.loads(line[7:]), label=s["label"], command=cmd, rep=rep,
                       wall=round(time.perf_counter() - t0, 1))
            rows.append(row)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[rep {rep}] {row['weights_md5'][:8]} {row['s_per_epoch']:.3f} s/ep  "
                  f"val_acc {row['val_accuracy'][-1]:.4f}  {cmd}", flush=True)
    return rows


def table(rows: list[dict]) -> None:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["command"], []).append(r)
    print(f"\n{'setting':<48} {'md5':<9} {'runs':>4} {'med s/ep':>8}  {'val_acc':>7} {'val_loss':>8}  command")
    for cmd, rs in groups.items():
        md5s = sorted({r["weights_md5"][:8] for r in rs})
        med = statistics.median(r["s_per_epoch"] for r in rs)
        print(f"{rs[0]['label']:<48} {','.join(md5s):<9} {len(rs):>4} {med:>8.3f}  "
              f"{rs[0]['val_accuracy'][-1]:>7.4f} {rs[0]['val_loss'][-1]:>8.5f}  {cmd}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="one training in this process")
    r.add_argument("--pinned", action="store_true", help="set up TensorFlow as the pipeline's stages do")
    r.add_argument("--intra", type=int, help="tf.config.threading.set_intra_op_parallelism_threads")
    r.add_argument("--inter", type=int, help="tf.config.threading.set_inter_op_parallelism_threads")
    r.add_argument("--isa-inside", help="set os.environ['ONEDNN_MAX_CPU_ISA'] in Python before importing TF")
    r.add_argument("--isa-cap", help="set ONEDNN_MAX_CPU_ISA to min(outside value, this) before importing TF")
    r.add_argument("--isa-after-import", help="set os.environ['ONEDNN_MAX_CPU_ISA'] after importing TF")
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--epochs", type=at_least(1), default=3)
    s = sub.add_parser("sweep", help="run a plan, one fresh process per setting")
    s.add_argument("plan", choices=[*PLANS, "custom"])
    s.add_argument("--reps", type=at_least(1), default=1)
    s.add_argument("--only", help="comma-separated indexes into the plan")
    s.add_argument("--out", type=Path, default=HERE / "bench/results/numerics.jsonl")
    t = sub.add_parser("table", help="print the table of a results file")
    t.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.cmd == "run":
        run_one(args)
    elif args.cmd == "sweep":
        plan = PLANS[args.plan]
        if args.only:
            plan = [plan[int(i)] for i in args.only.split(",")]
        table(sweep(plan, args.reps, args.out))
    else:
        table([json.loads(line) for line in args.results.read_text().splitlines() if line.strip()])


if __name__ == "__main__":
    main()
