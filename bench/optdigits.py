"""Write a second, unlike digit data set as class folders: the 1,797 8x8 digits that scikit-learn ships.

    python bench/optdigits.py DIR           # DIR/0..9/img_N.png (16 gray levels, light ink on black)
    python bench/models.py --data DIR --normalize none --splits 5

They are the UCI "optical recognition of handwritten digits" set: 43 other writers than MNIST's, each
32x32 bitmap counted down to 8x8 blocks of 0-16 ink pixels, so every image is tiny, blocky and fills its
frame. It checks that the default recipe and its calibration hold on digits unlike the embedded sample, with
no download: scikit-learn is installed with the pipeline (``mlxtend`` needs it). PNG keeps the pixels exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_optdigits(out: Path) -> int:
    """Write every image as ``out/<digit>/img_<n>.png`` (ink 0-16 scaled to 0-255); returns the count."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    for n, (image, label) in enumerate(zip(pixels, digits.target, strict=True)):
        folder = out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"img_{n}.png", optimize=False)
    return len(pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per digit)")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty; give a new folder")
    count = write_optdigits(args.out)
    print(f"wrote {count:,} 8x8 digits to {args.out}/0..9/")


if __name__ == "__main__":
    main()
