"""Stage `sample`: write the embedded MNIST sample as JPGs into data/sample/<label>/img_N.jpg."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from digitpipe.errors import run_main
from digitpipe.sample import load_mnist_sample, write_sample

OUT = Path("data/sample")


def main() -> None:
    start = time.perf_counter()
    images, labels = load_mnist_sample()
    if OUT.exists():
        shutil.rmtree(OUT)
    counts = write_sample(images, labels, OUT)
    per_class = "  ".join(f"{k}:{v}" for k, v in counts.items())
    print(f"sample: wrote {len(labels)} JPGs to {OUT}/ in {time.perf_counter() - start:.1f} s ({per_class})")


if __name__ == "__main__":
    run_main(main)
