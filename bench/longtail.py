"""Write a long-tailed copy of the embedded sample as class folders: the same real digits, fewer of each rarer class.

    dvc repro sample                        # data/sample, the embedded 5,000 digits
    python bench/longtail.py DIR            # DIR/0..9/: digit c keeps 1/10 ** (c / 9) of its images
    python bench/models.py --data DIR --normalize mnist --try train.class_weight=balanced

Own data is seldom balanced: a scanned form has more of some answers than others, a shop's photos more of
the common products. Here digit 0 keeps all its images and each next digit a constant share fewer, down
to a tenth for digit 9 (``--ratio``): about 2,000 images, 500 down to 50 a class. The images kept are the
first of each folder in natural order, so the copy is the same on every machine. It measures what
``train.class_weight: balanced`` buys on rare classes: the benchmark adds the balanced accuracy (the mean
of the per-class recalls) and the rarest class's recall to its table when the classes are this uneven.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digitpipe.targets import natural_key  # noqa: E402


def write_longtail(source: Path, out: Path, ratio: float) -> dict[str, int]:
    """Copy ``source/<c>/`` for c = 0..9 to ``out/<c>/``, keeping the first ``n_c / ratio ** (c / 9)`` files of
    each; returns the count kept per class."""
    kept = {}
    for c in range(10):
        files = sorted((p for p in (source / str(c)).iterdir() if p.is_file()),
                       key=lambda p: natural_key(("", p.name)))
        n = max(1, round(len(files) / ratio ** (c / 9)))
        (out / str(c)).mkdir(parents=True)
        for path in files[:n]:
            shutil.copyfile(path, out / str(c) / path.name)
        kept[str(c)] = n
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per digit)")
    parser.add_argument("--source", type=Path, default=ROOT / "data/sample", help="default: data/sample")
    parser.add_argument("--ratio", type=float, default=10.0, help="digit 0's images over digit 9's (default 10)")
    args = parser.parse_args()
    if not (args.source / "0").is_dir():
        sys.exit(f"error: {args.source}/0 not found: run `dvc repro sample` first")
    if args.ratio < 1:
        sys.exit("error: --ratio must be at least 1")
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty; give a new folder")
    kept = write_longtail(args.source, args.out, args.ratio)
    counts = ", ".join(f"{c}: {n}" for c, n in kept.items())
    print(f"wrote {sum(kept.values()):,} digits to {args.out}/0..9/: {counts}")


if __name__ == "__main__":
    main()
