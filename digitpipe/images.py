"""The one way a decoded image becomes model input, under the data's preprocessing policy.

The prepare stage, ``predict`` and the web page all call :func:`model_pixels`, so what the model sees
cannot drift apart between them. The policy (``data.normalize``) is a property of the data and is
recorded with the model it trains:

- ``mnist``: any real image of a digit (a scan, a phone photo, a drawing; any size, dark ink on white
  paper or a white digit on black) is brought to what MNIST looks like: a light digit on a black
  28x28 background, scaled to fit a 20x20 box and centred by its centre of mass. Images already in
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

BOX = 20           # MNIST scales each digit to fit a BOX x BOX square
WORK_SIDE = 512    # big photos are first shrunk to this (area-averaged, so thin strokes survive)
DIGIT_SIDE = 80    # the cropped digit is brought to at most this before its strokes are measured
STROKE = 0.11      # MNIST pen width as a share of the digit's height; thinner pens are thickened to it
INK = 0.2          # a pixel is ink when it is this far (0-1) from the background towards the darkest ink
UNEVEN = 24        # gray levels of spread along the border that mean the paper is lit unevenly
LIGHT_SIDE = 64    # uneven light is measured on a copy this long ...
LIGHT_WINDOW = 13  # ... with a median this wide (a fifth of it): it sees past pen strokes, not past shadows
DESK = 0.5         # a desk around the page is darker than this share of the page's brightness ...
DESK_WIDTH = 5     # ... wider than this (on the LIGHT_SIDE copy), which pen strokes are not, ...
DESK_EDGE = 0.15   # ... and along this share of the picture's edge at least, which a stroke touching it is not
CONTRAST = 16      # gray levels: ink fainter than this against the paper is noise (camera, JPEG), not a digit




def border(gray: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, where the bare paper shows (of each image, for a stack)."""
    return np.concatenate([gray[..., 0, :], gray[..., -1, :], gray[..., 1:-1, 0], gray[..., 1:-1, -1]], axis=-1)


def background_level(gray: np.ndarray) -> float | np.ndarray:
    """The paper's brightness: the median of the outermost ring of pixels (one per image, for a stack)."""
    ring = border(gray)
    middle = ring.shape[-1] // 2
    level = np.partition(ring, middle, axis=-1)[..., middle]
    return float(level) if level.ndim == 0 else level


def unevenly_lit(gray: np.ndarray) -> bool:
    """The paper is lit unevenly (a lamp on one side, a shadow, dark corners): the border's brightness
    spreads over more than UNEVEN gray levels (10th to 90th percentile; camera noise stays well under)."""
    low, high = np.percentile(border(gray), [10, 90])
    return bool(high - low > UNEVEN)


def ink_on_black(gray: np.ndarray) -> np.ndarray:
    """Float image in [0, 1]: background at 0 and the strongest ink at 1 (light paper is inverted).

    Evenly lit paper has one brightness, the border's median. Unevenly lit paper is measured at every
    pixel (:func:`paper_level`) and dark ink is taken as the share of that light it absorbs, so a
    photo lit from one side, with a shadow across it or dark corners, gives as clean a digit as a scan.
    """
    x = gray.astype(np.float32) / 255.0
    level = background_level(gray)
    light = level > 127
    if unevenly_lit(gray):
        paper = paper_level(gray)
        ink = 1.0 - x / np.maximum(paper, 1 / 255) if light else x - paper
    else:
        paper = level / 255.0
        ink = (1.0 - x) - (1.0 - paper) if light else x - paper
    top = ink.max()
    if top * 255 < CONTRAST:  # nothing stands out from the paper: stretching noise would invent a digit
        return np.zeros_like(x)
    return np.clip(ink / top, 0.0, 1.0)


def contain(img: Image.Image, side: int) -> Image.Image:
    """Area-average ``img`` down so its longer side is ``side``, keeping its shape (and at least 1 px across)."""
    w, h = img.size
    size = (side, max(1, round(h / w * side))) if w >= h else (max(1, round(w / h * side)), side)
    return img.resize(size, Image.Resampling.BOX)


def paper_level(gray: np.ndarray) -> np.ndarray:
    """The bare paper's brightness (0-1) under each pixel, pen strokes left out.

    On a copy at most LIGHT_SIDE pixels long, a median over LIGHT_WINDOW x LIGHT_WINDOW pixels keeps
    the paper wherever strokes cover less than half of the window, and follows the light as it
    changes across the page; the result is smoothed and scaled back up.
    """
    h, w = gray.shape
    img = Image.fromarray(gray)
    if max(h, w) > LIGHT_SIDE:
        img = contain(img, LIGHT_SIDE)
    paper = img.filter(ImageFilter.MedianFilter(LIGHT_WINDOW)).filter(ImageFilter.BoxBlur(LIGHT_WINDOW // 2))
    return np.asarray(paper.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


def page_only(gray: np.ndarray) -> np.ndarray:
    """A photo of a light page with a dark desk or table around it: the page alone, any desk left in
    its corners painted over with the light of the paper next to it. Anything else comes back as it was.

    On a copy at most LIGHT_SIDE pixels long, the desk is what is darker than DESK times the
    page's brightness (the picture's median), wider than pen strokes where it meets the picture's
    edge (it survives an opening by DESK_WIDTH pixels), with the thinner dark parts it runs into
    (the corners a turned page leaves), and runs along at least DESK_EDGE of the picture's edge.
    """
    h, w = gray.shape
    if max(h, w) < 2 * LIGHT_SIDE:  # a photo, not a digit-sized picture
        return gray
    small = np.asarray(contain(Image.fromarray(gray), LIGHT_SIDE))
    page = float(np.median(small))
    if page <= 127 or min(small.shape) <= 2 * DESK_WIDTH:
        return gray
    dark = small < DESK * page
    wide = filtered(dark, ImageFilter.MinFilter(DESK_WIDTH), ImageFilter.MaxFilter(DESK_WIDTH))
    desk = np.zeros_like(wide)
    desk[[0, -1], :], desk[:, [0, -1]] = wide[[0, -1], :], wide[:, [0, -1]]
    while True:  # grow from the wide dark regions at the edge through everything dark they touch (thin corners too)
        grown = filtered(desk, ImageFilter.MaxFilter(3)) & dark
        if (grown == desk).all():
            break
        desk = grown
    if border(desk).mean() < DESK_EDGE:  # a stroke that touches the edge, not a desk along it
        return gray
    desk = filtered(desk, ImageFilter.MaxFilter(5))  # and its edge
    if desk.all():
        return gray
    inner = np.zeros_like(desk)
    inner[2:-2, 2:-2] = True  # slivers of desk thinner than the copy's pixels lie along the edge: not paper to copy
    paper = Image.fromarray(carried_into(small.astype(np.float32), ~desk & inner)).resize((w, h),
                                                                                         Image.Resampling.BILINEAR)
    paper = np.clip(np.asarray(paper), 0, 255).round().astype(np.uint8)
    sy, sx = h / desk.shape[0], w / desk.shape[1]
    painted = np.asarray(Image.fromarray(desk).resize((w, h), Image.Resampling.NEAREST)) > 0
    frame = int(np.ceil(2 * max(sy, sx)))  # the same two copy pixels along the edge, at full size
    painted[:frame], painted[-frame:], painted[:, :frame], painted[:, -frame:] = True, True, True, True
    rows, cols = np.flatnonzero((~desk).any(axis=1)), np.flatnonzero((~desk).any(axis=0))
    keep = (slice(int(rows[0] * sy), int(np.ceil((rows[-1] + 1) * sy))),
            slice(int(cols[0] * sx), int(np.ceil((cols[-1] + 1) * sx))))
    return np.where(painted, paper, gray)[keep]


def filtered(mask: np.ndarray, *filters: ImageFilter.Filter) -> np.ndarray:
    """A boolean mask after PIL's rank filters (MinFilter erodes it, MaxFilter dilates it)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    for f in filters:
        img = img.filter(f)
    return np.asarray(img) > 0


def carried_into(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` where ``known``; elsewhere the mean of the known neighbours, spreading ring by ring."""
    values, known = np.where(known, values, 0.0).astype(np.float32), known.copy()
    while not known.all():
        total, count = around(values * known), around(known.astype(np.float32))
        reached = ~known & (count > 0)
        if not reached.any():
            break
        values[reached] = total[reached] / count[reached]
        known |= reached
    return values


def around(x: np.ndarray) -> np.ndarray:
    """The sum over each pixel's 3x3 neighbourhood."""
    padded = np.pad(x, 1)
    return sum(padded[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3))


def is_mnist_form(gray: np.ndarray, dark_background: bool | None = None) -> bool:
    """28x28, dark background, digit inside a 22x22 box near the centre: already what the model expects."""
    if dark_background is None:
        dark_background = gray.shape == (SIDE, SIDE) and background_level(gray) <= 127
    if gray.shape != (SIDE, SIDE) or not dark_background:
        return False
    return bool(mnist_form(gray[None])[0])


def mnist_form(grays: np.ndarray) -> np.ndarray:
    """For a stack (N, 28, 28) of 8-bit digits on a dark background: which are already in MNIST form
    (digit inside a 22x22 box, centre of mass within 2.5 px of the middle). Vectorised over the stack;
    every sum is of integers, so the answer does not depend on how many images are checked together."""
    row_max, col_max = grays.max(axis=2), grays.max(axis=1)  # a row holds ink when its brightest pixel does
    level = 0.2 * np.maximum(row_max.max(axis=1), 1).astype(np.float64)[:, None]
    ink_rows, ink_cols = row_max > level, col_max > level

    def extent(ink: np.ndarray) -> np.ndarray:
        return SIDE - 1 - ink[:, ::-1].argmax(axis=1) - ink.argmax(axis=1)

    row_sum, col_sum = grays.sum(axis=2, dtype=np.int64), grays.sum(axis=1, dtype=np.int64)
    total = np.maximum(row_sum.sum(axis=1), 1).astype(np.float64)
    centred = (np.abs(row_sum @ AXIS / total - SIDE / 2) <= 2.5) & (np.abs(col_sum @ AXIS / total - SIDE / 2) <= 2.5)
    return ~ink_rows.any(axis=1) | ((extent(ink_rows) < 22) & (extent(ink_cols) < 22) & centred)


AXIS = np.arange(SIDE, dtype=np.float64)


def centre_of_mass(x: np.ndarray) -> tuple[float, float]:
    """(row, column) of the brightness-weighted centre of a 2-D array."""
    total = x.sum()
    if total <= 0:
        return (x.shape[0] - 1) / 2, (x.shape[1] - 1) / 2
    rows, cols = np.indices(x.shape)
    return float((rows * x).sum() / total), float((cols * x).sum() / total)


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
    x = ink_on_black(page_only(np.asarray(gray)))
    if not (x > INK).any():
        return np.zeros((SIDE, SIDE), dtype=np.float32)
    digit = thicken(shrink(crop_to_ink(x), DIGIT_SIDE))
    return fit_and_centre(crop_to_ink(digit))



def to_uint8(x: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as 8-bit pixels (rounded to the nearest level)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def resized(gray: np.ndarray) -> np.ndarray:
    """A gray image brought to SIDE x SIDE as it is: area-averaged when shrinking, bilinear when enlarging."""
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
        ready = mnist_form(stack)
        out[np.asarray(small)[ready]] = stack[ready]
        changed[np.asarray(small)[ready & paper]] = True
        todo.update((small[k], stack[k]) for k in np.flatnonzero(~ready))
    for i, gray in todo.items():
        out[i] = to_uint8(normalise(Image.fromarray(gray)))
        changed[i] = True
    return out, changed
