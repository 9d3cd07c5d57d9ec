"""Benchmark: how well the pipeline's model reads phone photos of digits, against the digits themselves.

    dvc repro                       # the trained model and the test split
    python bench/photos.py          # 300 test digits (about a minute on 2 cores)
    python bench/photos.py -n 750 --model models/model_int8.tflite

Each test digit is drawn as dark ink on an 800x800 page, 20x its size and off-centre, with
camera noise, under several kinds of light and on several desks (the same synthetic photos the
tests use), and as a small 28x28 scan on gray paper, centred and not, and classified through
`predict`'s preprocessing. The baseline is the test digit
itself, classified in the same run. Two ablations switch off one part of the preprocessing for
comparison: `--one-paper-level` takes the paper as one brightness (the border's median) instead
of measuring its light pixel by pixel, `--whole-picture` takes the whole picture as the page
instead of looking for a page on a desk.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import at_least  # noqa: E402
from digitpipe import images  # noqa: E402
from digitpipe import photo as paper  # noqa: E402
from digitpipe.images import to_model_input  # noqa: E402
from digitpipe.inference import Predictor  # noqa: E402
from digitpipe.prepared import load_prepared  # noqa: E402
from tests.helpers import photographed  # noqa: E402

DARK_DESK = (70, 60, 50)
LIGHTS = {
    "even light": lambda d: photographed(d, "flat"),
    "a lamp on one side": lambda d: photographed(d, "side"),
    "a shadow over a corner": lambda d: photographed(d, "shadow"),
    "dark corners (vignetting)": lambda d: photographed(d, "corners"),
    "page on a dark desk": lambda d: ImageOps.expand(photographed(d, "flat"), 80, DARK_DESK),
    "dark desk along one side": lambda d: ImageOps.expand(photographed(d, "flat"), (160, 0, 0, 0), DARK_DESK),
    "page turned 8 degrees on a dark desk": lambda d: ImageOps.expand(
        photographed(d, "flat").rotate(8, Image.Resampling.BICUBIC, expand=True, fillcolor=DARK_DESK), 40, DARK_DESK),
    "lamp on one side, page on a dark desk": lambda d: ImageOps.expand(photographed(d, "side"), 80, DARK_DESK),
    "page on a light wooden desk": lambda d: ImageOps.expand(photographed(d, "flat"), 80, (165, 125, 85)),
    "28x28 scan on gray paper (215)": lambda d: small_scan(d, 215, 0),
    "28x28 scan on gray paper, off-centre": lambda d: small_scan(d, 215, 3),
    "28x28 scan on darker paper, off-centre": lambda d: small_scan(d, 190, 3),
    "28x28, light ink on a gray ground (40)": lambda d: small_scan(d, 40, 3),
}


def small_scan(digit: Image.Image, ground: int, shift: int) -> Image.Image:
    """The 28x28 digit as a small scan: dark ink on paper of gray ``ground`` (or light ink on a dark ground
    under 128), moved up to ``shift`` pixels in each direction towards the corner with the most room, keeping
    every stroke inside the frame."""
    x = np.asarray(digit, dtype=np.float32) / 255.0
    rows, cols = np.flatnonzero(x.max(axis=1) > 0.05), np.flatnonzero(x.max(axis=0) > 0.05)
    top, bottom, left, right = rows[0], 27 - rows[-1], cols[0], 27 - cols[-1]
    dy = min(shift, bottom - 1) if bottom >= top else -min(shift, top - 1)
    dx = min(shift, right - 1) if right >= left else -min(shift, left - 1)
    x = np.roll(x, (max(dy, -top), max(dx, -left)), axis=(0, 1))
    ink = ground - x * (ground - 15) if ground > 127 else ground + x * (240 - ground)
    return Image.fromarray(np.rint(ink).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=at_least(1), default=300,
                        help="test digits, spread over the test split (default 300)")
    parser.add_argument("--model", type=Path, default=ROOT / "models/model.keras",
                        help="the model to measure (default: models/model.keras)")
    parser.add_argument("--one-paper-level", action="store_true",
                        help="ablation: take the paper's brightness from the border only, as if lit evenly")
    parser.add_argument("--whole-picture", action="store_true",
                        help="ablation: do not look for the page on a desk, take the whole picture as the page")
    args = parser.parse_args()
    if args.one_paper_level:
        paper.UNEVEN = 256  # no border spreads that far: every page takes the evenly lit path
    if args.whole_picture:
        images.page_only = lambda gray: gray
    split = ROOT / "data/prepared/test.npz"
    if not split.exists() or not args.model.exists():
        sys.exit("run `dvc repro` first: the benchmark needs the prepared test split and the trained model")
    test = load_prepared(split)
    picks = np.linspace(0, len(test.y) - 1, min(args.n, len(test.y))).astype(int)
    clean, labels = test.x[picks], test.y[picks]
    predictor = Predictor.load(args.model)
    base = (predictor.probabilities(clean).argmax(1) == labels).mean()

    ablation = " --one-paper-level" * args.one_paper_level + " --whole-picture" * args.whole_picture
    where = args.model.resolve()
    shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else args.model  # a model elsewhere as given
    print(f"\ncommand: python bench/photos.py -n {len(picks)} --model {shown}{ablation}")
    print(f"{'photo of the test digit':<40}{'accuracy':>10}{'vs the digit itself':>22}")
    print(f"{'(the test digit itself)':<40}{base:>10.1%}{'':>22}")
    for name, photo in LIGHTS.items():
        x = np.stack([to_model_input(photo(Image.fromarray(c))) for c in clean])
        acc = (predictor.probabilities(x).argmax(1) == labels).mean()
        print(f"{name:<40}{acc:>10.1%}{acc - base:>+21.1%}")


if __name__ == "__main__":
    main()
