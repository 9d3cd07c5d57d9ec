"""The one way a decoded image becomes model input, under the data's preprocessing policy.

The prepare stage, ``predict`` and the web page all call :func:`model_pixels`, so what the model sees
cannot drift apart between them. The policy (``data.normalize``) is a property of the data and is
recorded with the model it trains:

- ``mnist``: any real image of a digit (a scan, a phone photo, a drawing; any size, dark ink on white
  paper or a white digit on black) is brought to what MNIST looks like: a light digit on a black
  28x28 background, scaled to fit a 20x20 box and centred by its centre of mass (a photo's paper and
  desk are first dealt with by :mod:`digitpipe.photo`). Images already in
  that form pass through unchanged, so MNIST-style training data is used exactly as decoded.
- ``none``: the image is used as decoded: gray, brought to 28x28 when it has another size, nothing
  else. For data sets whose objects fill the frame (clothing, letters, symbols, icons).

Model input is 8-bit (``uint8``, 0-255); the model divides by 255 (see :func:`digitpipe.inference.as_batch`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from digitpipe.decode import to_gray
from digitpipe.limits import SIDE
from digitpipe.params import NORMALIZE
from digitpipe.photo import background_level, contain, ink_on_black, page_only

BOX = 20           # MNIST scales each digit to fit a BOX x BOX square
WORK_SIDE = 512    # big photos are first shrunk to this (area-averaged, so thin strokes survive)
DIGIT_SIDE = 80    # the cropped digit is brought to at most this before its strokes are measured
STROKE = 0.11      # MNIST pen width as a share of the digit's height; thinner pens are thickened to it
INK = 0.2          # a pixel is ink when it is this far (0-1) from the background towards the darkest ink
SPECK = 0.1        # ink spanning less than this share of the image's longer side is a speck, not a digit
BLACK = 10         # a 28x28 image is on black when its border's median is at most this (0-255; MNIST's is 0)


def is_mnist_form(gray: np.ndarray, dark_background: bool | None = None) -> bool:
    """28x28, black background, digit inside a 22x22 box near the centre: already what the model expects."""
    if dark_background is None:
        dark_background = gray.shape == (SIDE, SIDE) and background_level(gray) <= 127
    if gray.shape != (SIDE, SIDE) or not dark_background:
        return False
    return bool(mnist_form(gray[None])[0])


def mnist_form(grays: np.ndarray) -> np.ndarray:
    """For a stack (N, 28, 28) of 8-bit digits on a dark background: which are already in MNIST form (on
    black, digit inside a 22x22 box, centre of mass within 2.5 px of the middle). Ink and mass are measured
    above the background, so a digit on gray is not judged centred by its ground; and only one on black
    passes, since the model was shown no other. Vectorised over the stack; every sum is of integers, so the
    answer does not depend on how many images are checked together."""
    ground = background_level(grays).astype(np.int16)[:, None, None]
    on_black = ground[:, 0, 0] <= BLACK
    grays = np.maximum(grays.astype(np.int16) - ground, 0)
    row_max, col_max = grays.max(axis=2), grays.max(axis=1)  # a row holds ink when its brightest pixel does
    level = 0.2 * np.maximum(row_max.max(axis=1), 1).astype(np.float64)[:, None]
    ink_rows, ink_cols = row_max > level, col_max > level

    def extent(ink: np.ndarray) -> np.ndarray:
        return SIDE - 1 - ink[:, ::-1].argmax(axis=1) - ink.argmax(axis=1)

    row_sum, col_sum = grays.sum(axis=2, dtype=np.int64), grays.sum(axis=1, dtype=np.int64)
    total = np.maximum(row_sum.sum(axis=1), 1).astype(np.float64)
    centred = (np.abs(row_sum @ AXIS / total - SIDE / 2) <= 2.5) & (np.abs(col_sum @ AXIS / total - SIDE / 2) <= 2.5)
    return on_black & (~ink_rows.any(axis=1) | ((extent(ink_rows) < 22) & (extent(ink_cols) < 22) & centred))


AXIS = np.arange(SIDE, dtype=np.float64)


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    """(row, column) of the brightness-weighted centre of a 2-D array."""
    total = x.sum()
    if total <= 0:
        return (x.shape[0] - 1) / 2, (x.shape[1] - 1) / 2
    rows, cols = np.indices(x.shape)
    return float((rows * x).sum() / total), float((cols * x).sum() / total)


def speck(x: np.ndarray) -> bool:
    """Whether a light-on-black image holds no ink (pixels above :data:`INK`) or only a speck: ink whose extent
    is under :data:`SPECK` of the image's longer side (a dot, a fleck of dust), which scaling to the 20x20 box
    would blow up into a blob that the model reads as a confident 8 or 0."""
    ink = x > INK
    if not ink.any():
        return True
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 < SPECK * max(x.shape)


def specks(grays: np.ndarray) -> np.ndarray:
    """:func:`speck` for a stack (N, 28, 28) of 8-bit light-on-black images at once: which hold no ink or only
    a speck. A 28x28 dot passes :func:`mnist_form` (small and centred), so it is checked here before it could go
    to the model as it is; every digit of the embedded sample spans 17 px or more. Ink is measured against each
    image's brightest pixel, as :func:`normalise` measures it after stretching the contrast (and as
    :func:`mnist_form` does), so a faint digit is no speck."""
    peak = np.maximum(grays.max(axis=(1, 2)), 1).astype(np.float64)[:, None, None]
    ink = grays > INK * peak

    def extent(any_ink: np.ndarray) -> np.ndarray:
        first, last = any_ink.argmax(axis=1), any_ink.shape[1] - 1 - any_ink[:, ::-1].argmax(axis=1)
        return np.where(any_ink.any(axis=1), last - first + 1, 0)

    return np.maximum(extent(ink.any(axis=2)), extent(ink.any(axis=1))) < SPECK * SIDE


def crop_to_ink(x: np.ndarray) -> np.ndarray:
    """The bounding box of the ink (pixels above :data:`INK`), or the whole image when there is none."""
    ink = x > INK
    if not ink.any():
        return x
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return x[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def fit_and_centre(digit: np.ndarray) -> np.ndarray:
    """Scale the cropped digit to fit BOX x BOX (keeping its aspect) and centre its mass in SIDE x SIDE."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS),
                       dtype=np.float32) / 255.0
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    top, left = (SIDE - size[1]) // 2, (SIDE - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = small
    cy, cx = centre_of_mass(canvas)
    dy, dx = round(SIDE / 2 - cy), round(SIDE / 2 - cx)  # MNIST puts the centre of mass at (14, 14)
    dy = int(np.clip(dy, -top, SIDE - top - size[1]))
    dx = int(np.clip(dx, -left, SIDE - left - size[0]))
    return np.clip(np.roll(canvas, (dy, dx), axis=(0, 1)), 0.0, 1.0)


def shrink(x: np.ndarray, side: int) -> np.ndarray:
    """Area-average ``x`` down so its longer side is at most ``side``, then restretch to a peak of 1."""
    h, w = x.shape
    if max(h, w) <= side:
        return x
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    small = np.asarray(Image.fromarray(x, mode="F").resize(size, Image.Resampling.BOX), dtype=np.float32)
    return np.clip(small / (small.max() or 1.0), 0.0, 1.0)


def stroke_width(x: np.ndarray) -> float:
    """Mean pen width in pixels: twice the ink area over its outline length."""
    ink = np.pad(x > 0.35, 1)
    inner = ink[1:-1, 1:-1] & ink[:-2, 1:-1] & ink[2:, 1:-1] & ink[1:-1, :-2] & ink[1:-1, 2:]
    area, outline = int(ink.sum()), int(ink.sum() - inner.sum())
    return 2.0 * area / outline if outline else 1.0


def thicken(digit: np.ndarray) -> np.ndarray:
    """Widen strokes drawn with a thin pen to MNIST's relative width (a max filter)."""
    grow = int((STROKE * max(digit.shape) - stroke_width(digit)) / 2)
    if grow < 1:
        return digit
    padded = np.pad(digit, grow)
    wide = Image.fromarray((padded * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(2 * grow + 1))
    return np.asarray(wide, dtype=np.float32) / 255.0


def normalise(gray: Image.Image) -> np.ndarray:
    """A gray image of any size as an MNIST-style (28, 28) float32 array in [0, 1]:
    light digit on black, cropped to its ink, strokes at MNIST width, fit into 20x20, centred by mass."""
    if max(gray.size) > WORK_SIDE:
        gray = contain(gray, WORK_SIDE)
    whole = np.asarray(gray)
    page = page_only(whole)
    x = ink_on_black(page)
    if page is not whole and speck(x):  # no digit on the "page": the dark "desk" along the edge cut away was the
        x = ink_on_black(whole)         # digit itself (a drawing's stroke along the board's edge), so it stays
    if speck(x):  # nothing digit-sized: the model is shown nothing (decode.no_digit) rather than a blown-up dot
        return np.zeros((SIDE, SIDE), dtype=np.float32)
    digit = thicken(shrink(crop_to_ink(x), DIGIT_SIDE))
    return fit_and_centre(crop_to_ink(digit))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as 8-bit pixels (rounded to the nearest level)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def resized(gray: np.ndarray) -> np.ndarray:
    """A gray image brought to SIDE x SIDE as it is: area-averaged when both sides shrink, else bilinear."""
    if gray.shape == (SIDE, SIDE):
        return gray
    shrinking = gray.shape[0] >= SIDE and gray.shape[1] >= SIDE
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(gray).resize((SIDE, SIDE), method))


def to_model_input(image: np.ndarray | Image.Image, normalize: str = "mnist") -> np.ndarray:
    """One image (a gray array, or a decoded image of any mode) as the model's (28, 28) uint8 input under
    ``normalize`` (see :func:`model_pixels`)."""
    gray = np.asarray(to_gray(image)) if isinstance(image, Image.Image) else image
    return model_pixels([gray], normalize)[0]


def model_pixels(grays: Sequence[np.ndarray], normalize: str = "mnist") -> np.ndarray:
    """8-bit gray arrays of any size as a stack (N, 28, 28) of uint8 model inputs under ``normalize``.

    ``none``: each image as decoded, resized to 28x28 when it is not. ``mnist``: 28x28 digits are
    checked together; one already in MNIST form, as it is or inverted when it sits on light paper, passes
    through unchanged; the rest are normalised one by one.
    """
    return model_pixels_changed(grays, normalize)[0]


def model_pixels_changed(grays: Sequence[np.ndarray], normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`model_pixels`, and which images the policy changed beyond a resize (inverted or normalised)."""
    if normalize not in NORMALIZE:
        raise ValueError(f"unknown preprocessing policy {normalize!r}; expected one of {', '.join(NORMALIZE)}")
    out = np.zeros((len(grays), SIDE, SIDE), dtype=np.uint8)
    changed = np.zeros(len(grays), dtype=bool)
    if normalize == "none":
        for i, gray in enumerate(grays):
            out[i] = resized(gray)
        return out, changed
    small = [i for i, g in enumerate(grays) if g.shape == (SIDE, SIDE)]
    todo = {i: g for i, g in enumerate(grays) if g.shape != (SIDE, SIDE)}
    if small:
        stack = np.stack([grays[i] for i in small])
        paper = background_level(stack) > 127
        stack[paper] = 255 - stack[paper]  # a digit on white paper: the inverse may already be MNIST form
        ready = mnist_form(stack) & ~specks(stack)  # a dot goes to normalise, which shows the model nothing
        out[np.asarray(small)[ready]] = stack[ready]
        changed[np.asarray(small)[ready & paper]] = True
        todo.update((small[k], stack[k]) for k in np.flatnonzero(~ready))
    for i, gray in todo.items():
        out[i] = to_uint8(normalise(Image.fromarray(gray)))
        changed[i] = True
    return out, changed
