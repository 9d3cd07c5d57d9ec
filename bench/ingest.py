"""Benchmark: ingest throughput against the raw read + hash + decode limit of the same machine.

    python bench/ingest.py            # 70,000 images (about 2 minutes on 2 cores)
    python bench/ingest.py -n 10000   # quicker

Writes N synthetic 28x28 JPGs (real MNIST digits, each shifted and noised so every file is
unique) in the class layout, then, in the same run and on the same warm folder, measures:

  raw     every file read, hashed and decoded on all cores, nothing else: the ceiling;
  ingest  `python -m stages.ingest` on the folder, start to finish (interpreter start, the
          checks, the CSV and JSON writes included);
  status  a no-op `dvc status ingest` of a project whose ingest stage depends on the folder.

Each is repeated (--repeat, default 3) alternately and the median is reported, with the ratio
ingest/raw. Targets: ingest >= 50% of raw and >= 5,000 images/s.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
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
from digitpipe.ingest import worker_count  # noqa: E402
from digitpipe.sample import encode_jpeg, load_mnist_sample  # noqa: E402


def write_chunk(args: tuple[Path, int, int]) -> int:
    """Write images start..stop-1: digit (i mod 5000), shifted and noised with seed i."""
    root, start, stop = args
    images, labels = load_mnist_sample()
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        base = images[i % len(images)].astype(np.int16)
        shifted = np.roll(base, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
        noisy = np.clip(shifted + rng.integers(-8, 9, size=base.shape), 0, 255).astype(np.uint8)
        label = labels[i % len(labels)]
        (root / str(label) / f"img_{i}.jpg").write_bytes(encode_jpeg(noisy))
    return stop - start


def make_folder(root: Path, n: int) -> None:
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
    step = 2_500
    with ProcessPoolExecutor(worker_count()) as pool:
        list(pool.map(write_chunk, [(root, s, min(s + step, n)) for s in range(0, n, step)]))


def raw_one(path: str) -> int:
    data = Path(path).read_bytes()
    hashlib.blake2b(data, digest_size=16).hexdigest()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
    return len(data)


def raw_limit(paths: list[str]) -> float:
    """Seconds to read, hash and decode every file on all cores, with nothing else."""
    start = time.perf_counter()
    with ProcessPoolExecutor(worker_count()) as pool:
        sum(pool.map(raw_one, paths, chunksize=max(64, len(paths) // (worker_count() * 8))))
    return time.perf_counter() - start


def run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def make_project(where: Path, data: Path, name: str = "project", **params: str) -> Path:
    """A throw-away git + DVC copy of the project whose data.dir is the benchmark folder; ``params`` replace
    other values of params.yaml by text (``normalize="none"`` turns ``normalize: mnist`` into ``normalize: none``)."""
    project = where / name
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for rel in listed.stdout.split():
        if (ROOT / rel).is_file():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, project / rel)
    text = (project / "params.yaml").read_text().replace("dir: data/sample", f"dir: {data}")
    for key, value in params.items():
        text = re.sub(rf"(\n\s*{key}: )\S+", rf"\g<1>{value}", text, count=1)
    (project / "params.yaml").write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=at_least(1), default=70_000, help="number of images (default 70,000)")
    parser.add_argument("--repeat", type=at_least(1), default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="digitpipe-bench-") as tmp:
        data = Path(tmp) / "data"
        start = time.perf_counter()
        make_folder(data, args.n)
        print(f"wrote {args.n:,} JPGs in {time.perf_counter() - start:.1f} s; {worker_count()} cores")
        paths = sorted(str(p) for p in data.glob("*/*.jpg"))
        project = make_project(Path(tmp), data)
        stage = [sys.executable, "-m", "stages.ingest"]
        run(["dvc", "repro", "ingest"], project)  # records the folder's hash in dvc.lock
        raw, ingest, status = [], [], []
        for _ in range(args.repeat):
            raw.append(raw_limit(paths))
            ingest.append(run(stage, project))
            status.append(run(["dvc", "status", "ingest"], project))

    raw_s, ingest_s, status_s = (statistics.median(v) for v in (raw, ingest, status))
    raw_rate, ingest_rate = args.n / raw_s, args.n / ingest_s
    ratio = ingest_rate / raw_rate
    print(f"\ncommand: python bench/ingest.py -n {args.n} --repeat {args.repeat}")
    print(f"{'measure':<34}{'median s':>10}{'images/s':>12}")
    print(f"{'raw limit (read+hash+decode)':<34}{raw_s:>10.2f}{raw_rate:>12,.0f}")
    print(f"{'ingest stage (whole process)':<34}{ingest_s:>10.2f}{ingest_rate:>12,.0f}")
    print(f"{'no-op dvc status ingest':<34}{status_s:>10.2f}")
    print(f"\ningest / raw = {ratio:.0%} (target >= 50%): {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(f"ingest = {ingest_rate:,.0f} images/s (target >= 5,000): {'PASS' if ingest_rate >= 5000 else 'FAIL'}")


if __name__ == "__main__":
    main()
