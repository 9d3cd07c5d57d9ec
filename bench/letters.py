"""Write a data set unlike digits as class folders: printed capital letters, dark on white paper.

    python bench/letters.py DIR             # DIR/A..Z/*.png: 60 letters a class, 64x64
    python bench/models.py --data DIR --normalize none

Each letter is drawn in one of eight typefaces that Matplotlib ships (so the set is the same on every
machine, with no download), at a random size, shade, offset and slant, on white: the way letters, icons
and scans come, and the images `data.normalize: none` is for. Seeded: the same folder every time.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
         "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf")
PER_CLASS, SIDE = 60, 64


def write_letters(out: Path, seed: int = 3) -> int:
    """Write ``PER_CLASS`` letters of each class A-Z as ``out/<letter>/<letter>_<n>.png``; returns the count."""
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    rng = np.random.default_rng(seed)
    for letter in string.ascii_uppercase:
        (out / letter).mkdir(parents=True, exist_ok=True)
        for n in range(PER_CLASS):
            page = Image.new("L", (SIDE, SIDE), 255)
            font = ImageFont.truetype(str(fonts / FONTS[n % len(FONTS)]), int(rng.integers(30, 50)))
            at = (SIDE // 2 + int(rng.integers(-6, 6)), SIDE // 2 + int(rng.integers(-6, 6)))
            ImageDraw.Draw(page).text(at, letter, fill=int(rng.integers(0, 90)), font=font, anchor="mm")
            page.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR, fillcolor=255).save(
                out / letter / f"{letter}_{n}.png", optimize=False)
    return 26 * PER_CLASS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (one sub-folder per letter)")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty; give a new folder")
    print(f"wrote {write_letters(args.out):,} letters to {args.out}/A..Z/")


if __name__ == "__main__":
    main()
