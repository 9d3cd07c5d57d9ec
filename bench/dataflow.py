"""Benchmark: the decode-once data flow at 70,000 images, against decoding the way every stage used to.

    python bench/dataflow.py             # 70,000 images (about 10 minutes on 2 cores)
    python bench/dataflow.py -n 20000    # quicker

Writes two folders of N 28x28 gray JPGs in the class layout, in the same run:

  digits  real MNIST digits, each shifted and noised so every file is unique (MNIST form);
  shapes  filled rectangles and discs on random backgrounds that touch the edges (any content).

In a throw-away git + DVC copy of the project it runs ingest and split on each, then measures
(medians of --repeat runs, alternated):

  prepare   `python -m stages.prepare`, whole process: digits under data.normalize=mnist, shapes
            under data.normalize=none; target >= 20,000 images/s on 2 cores for both;
  reading   what evaluate and export read before the model does any work: the prepared test arrays
            (evaluate) and the prepared train + test arrays (export), against the baseline of decoding
            the same files through the preprocessing (what both stages did before); target <= 10 s;
  no-op     `dvc repro` of the whole pipeline with the 70,000-file folder and nothing changed (the
            model stages are marked done with `dvc commit`, so nothing trains), next to a no-op
            `dvc status split` (a stage that does not depend on the folder); target <= 3 s.
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import at_least  # noqa: E402
from bench.ingest import make_folder  # noqa: E402
from bench.ingest import make_project as ingest_project  # noqa: E402
from digitpipe.files import read_csv  # noqa: E402
from digitpipe.parallel import worker_count  # noqa: E402
from digitpipe.prepare import prepare_images  # noqa: E402
from digitpipe.prepared import load_prepared  # noqa: E402
from tests.unit.test_images import filled_shapes  # noqa: E402


def write_shapes(args: tuple[Path, int, int]) -> int:
    root, start, stop = args
    for i, shape in enumerate(filled_shapes(np.random.default_rng(start), stop - start), start=start):
        Image.fromarray(shape).save(root / str(i % 10) / f"shape_{i}.jpg", quality=90)
    return stop - start


def make_shapes(root: Path, n: int) -> None:
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(worker_count()) as pool:
        list(pool.map(write_shapes, [(root, s, min(s + 2_500, n)) for s in range(0, n, 2_500)]))


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took, proc.stdout


def make_project(where: Path, data: Path, normalize: str) -> Path:
    """A committed throw-away copy of the project on ``data`` under ``normalize``, with a 1-epoch recipe."""
    project = ingest_project(where, data, f"project-{data.name}", normalize=normalize, epochs="1")
    for cmd in (["git", "add", "-A"],
                ["git", "-c", "user.name=bench", "-c", "user.email=bench@digitpipe.invalid", "commit", "-qm", "b"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reading(project: Path) -> dict[str, float]:
    """Seconds to obtain what evaluate and export feed the model: prepared arrays, and (the baseline)
    decoding the same files through the preprocessing, as both stages did before."""
    prepared = project / "data/prepared"
    root = Path((project / "params.yaml").read_text().split("dir: ")[1].split()[0])
    normalize = load_prepared(prepared / "test.npz").normalize
    test, train = (read_csv(project / f"data/splits/{s}.csv") for s in ("test", "train"))

    def decode(frame):
        return prepare_images(root, frame["path"].tolist(), frame["hash"].tolist(), normalize, progress=False)

    return {
        "evaluate": timed(lambda: load_prepared(prepared / "test.npz")),
        "evaluate, decoding": timed(lambda: decode(test)),
        "export": timed(lambda: (load_prepared(prepared / "train.npz"), load_prepared(prepared / "test.npz"))),
        "export, decoding": timed(lambda: (decode(train), decode(test))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=at_least(1), default=70_000, help="images per folder (default 70,000)")
    parser.add_argument("--repeat", type=at_least(1), default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digitpipe-bench-") as tmp:
        digits, shapes = Path(tmp) / "digits", Path(tmp) / "shapes"
        start = time.perf_counter()
        make_folder(digits, args.n)
        make_shapes(shapes, args.n)
        print(f"wrote 2 x {args.n:,} JPGs in {time.perf_counter() - start:.1f} s; {worker_count()} cores", flush=True)
        projects = {"digits, mnist": make_project(Path(tmp), digits, "mnist"),
                    "shapes, none": make_project(Path(tmp), shapes, "none")}
        for project in projects.values():
            run(["dvc", "repro", "prepare"], project)
        prepare = {name: [] for name in projects}
        reads: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for name, project in projects.items():
                took, out = run([sys.executable, "-m", "stages.prepare"], project)
                prepare[name].append(took)
                for key, seconds in reading(project).items():
                    reads.setdefault(f"{key} ({name})", []).append(seconds)
        print(out.strip(), flush=True)
        project = projects["digits, mnist"]
        took, _ = run(["dvc", "repro"], project)  # one epoch, so that every stage has run once
        print(f"one full `dvc repro` of the 1-epoch pipeline on {args.n:,} digits: {took:.0f} s", flush=True)
        noop, status = [], []
        for _ in range(args.repeat):
            noop.append(run(["dvc", "repro"], project)[0])
            status.append(run(["dvc", "status", "split"], project)[0])

    print(f"\ncommand: python bench/dataflow.py -n {args.n} --repeat {args.repeat}   ({worker_count()} cores)")
    print(f"{'measure':<58}{'median s':>10}{'images/s':>12}")
    for name, times in prepare.items():
        s = statistics.median(times)
        verdict = "PASS" if args.n / s >= 20_000 else "FAIL"
        print(f"{'prepare stage, whole process (' + name + ')':<58}{s:>10.2f}{args.n / s:>12,.0f}  target >= 20,000: "
              f"{verdict}")
    for name, times in reads.items():
        print(f"{'inputs of ' + name:<58}{statistics.median(times):>10.2f}")
    print(f"{'no-op dvc repro, the whole pipeline':<58}{statistics.median(noop):>10.2f}{'':>12}  target <= 3 s: "
          f"{'PASS' if statistics.median(noop) <= 3 else 'FAIL'}")
    print(f"{'no-op dvc status split (does not depend on the folder)':<58}{statistics.median(status):>10.2f}")


if __name__ == "__main__":
    main()
