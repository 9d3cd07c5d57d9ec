"""The one way an image becomes model input.

Training, evaluation, ``predict`` and the web page all call :func:`to_model_input`, so what
the model sees cannot drift apart between them. It accepts any real image (JPG, PNG, BMP, GIF,
any size, gray or colour, dark ink on white paper or a white digit on black) and produces what
MNIST looks like: a light digit on a black 28x28 background, scaled to fit a 20x20 box and
centred by its centre of mass. Images already in that form pass through unchanged, so the
training data is used exactly as decoded.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image, ImageFilter, ImageOps

SIDE = 28          # the model's input is SIDE x SIDE grayscale
BOX = 20           # MNIST scales each digit to fit a BOX x BOX square
WORK_SIDE = 512    # big photos are first shrunk to this (area-averaged, so thin strokes survive)
DIGIT_SIDE = 80    # the cropped digit is brought to at most this before its strokes are measured
STROKE = 0.11      # MNIST pen width as a share of the digit's height; thinner pens are thickened to it
MAX_PIXELS = 40_000_000  # images bigger than this (width x height) are refused before decoding
FAST_BYTES = 1 << 20     # files up to this size are read whole and tried on the fast gray-JPEG path
ORIENTATION = 0x0112     # the EXIF tag saying how a camera held the picture
INK = 0.2          # a pixel is ink when it is this far (0-1) from the background towards the darkest ink
UNEVEN = 24        # gray levels of spread along the border that mean the paper is lit unevenly
LIGHT_SIDE = 64    # uneven light is measured on a copy this long ...
LIGHT_WINDOW = 13  # ... with a median this wide (a fifth of it): it sees past pen strokes, not past shadows
DESK = 0.5         # a desk around the page is darker than this share of the page's brightness ...
DESK_WIDTH = 5     # ... wider than this (on the LIGHT_SIDE copy), which pen strokes are not, ...
DESK_EDGE = 0.15   # ... and along this share of the picture's edge at least, which a stroke touching it is not


class ImageTooLarge(ValueError):
    """The image's header claims more pixels than :data:`MAX_PIXELS`."""


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file (or its bytes) fully, refusing oversized images from their header, and
    turn it upright as its EXIF orientation says (the way viewers and browsers show it).

    Raises ``PIL.UnidentifiedImageError`` / ``OSError`` for files that are not images or are
    damaged, and :class:`ImageTooLarge` for decompression-bomb sizes.
    """
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    img = Image.open(fp)
    try:
        if img.width * img.height > max_pixels:
            raise ImageTooLarge(f"{img.width}x{img.height} pixels is too large for a digit image")
        img.load()  # decodes the (first) frame; PIL closes a single-frame file it opened itself
        if img.getexif().get(ORIENTATION, 1) != 1:  # a phone photo taken sideways: turn it the way it is shown
            upright = ImageOps.exif_transpose(img)
            img.close()
            img = upright
        if img.mode == "P" or getattr(img, "n_frames", 1) > 1:  # palette or animation: keep a plain copy
            frame = img.convert("RGBA") if img.mode == "P" else img.copy()
            img.close()
            return frame
        return img
    except BaseException:
        img.close()
        raise


def to_gray(img: Image.Image) -> Image.Image:
    """Any mode (RGB, CMYK, 16-bit, alpha...) to 8-bit gray; transparent pixels become white paper."""
    if img.mode in ("RGBA", "LA", "PA"):
        paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, img.convert("RGBA"))
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8), mode="L")
    return img.convert("L") if img.mode != "L" else img


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
    return np.clip(ink / top, 0.0, 1.0) if top > 0 else np.zeros_like(x)


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


def to_model_input(img: Image.Image) -> np.ndarray:
    """An image as the model's input: float32 array of shape (28, 28), values in [0, 1]."""
    return grays_to_model_input([np.asarray(to_gray(img))])[0]


def grays_to_model_input(grays: Sequence[np.ndarray]) -> np.ndarray:
    """8-bit gray arrays of any size as a stack (N, 28, 28) of model inputs (see :func:`to_model_input`).

    28x28 digits are checked together: one that is already in MNIST form, as it is or inverted when it
    sits on light paper, passes through unchanged; the rest are normalised one by one.
    """
    out = np.zeros((len(grays), SIDE, SIDE), dtype=np.float32)
    small = [i for i, g in enumerate(grays) if g.shape == (SIDE, SIDE)]
    todo = {i: g for i, g in enumerate(grays) if g.shape != (SIDE, SIDE)}
    if small:
        stack = np.stack([grays[i] for i in small])
        paper = background_level(stack) > 127
        stack[paper] = 255 - stack[paper]  # a digit on white paper: the inverse may already be MNIST form
        ready = mnist_form(stack)
        out[np.asarray(small)[ready]] = stack[ready].astype(np.float32) / 255.0
        todo.update((small[k], stack[k]) for k in np.flatnonzero(~ready))
    for i, gray in todo.items():
        out[i] = normalise(Image.fromarray(gray))
    return out


def decode_gray_jpeg(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """The pixels of a grayscale JPEG, decoded by libjpeg-turbo without PIL's per-file overhead (5x faster
    on 28x28 digits), or None when ``data`` is anything else: then :func:`open_image` decides.

    Only single-channel JPEGs without EXIF take this path: for them libjpeg-turbo's exact integer IDCT
    gives PIL's pixels bit for bit (a test holds it to that). Colour JPEGs need PIL's RGB-to-gray
    rounding, damaged ones PIL's error messages and photos their EXIF orientation, so all are left to PIL.
    """
    if not data.startswith(b"\xff\xd8") or b"Exif\0\0" in data:  # EXIF may turn the picture: PIL does that
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace != "Gray" or width * height > max_pixels:
            return None
        return simplejpeg.decode_jpeg(data, colorspace="GRAY")[..., 0]
    except ValueError:  # damaged, or a JPEG flavour libjpeg-turbo warns about: PIL gives the verdict
        return None


def read_gray(path: str | Path) -> np.ndarray:
    """A file's pixels as an 8-bit gray array (see :func:`open_image` and :func:`to_gray`)."""
    with open(path, "rb") as f:
        data = f.read(FAST_BYTES + 1)
    if len(data) > FAST_BYTES:  # a big file: PIL reads it from disk, refusing huge images from the header
        return np.asarray(to_gray(open_image(path)))
    gray = decode_gray_jpeg(data)
    return gray if gray is not None else np.asarray(to_gray(open_image(data)))


def load_input(path: str | Path) -> np.ndarray:
    """Decode one file into model input."""
    return grays_to_model_input([read_gray(path)])[0]


def load_inputs(paths: Sequence[str | Path], workers: int = 4) -> np.ndarray:
    """Decode many files (in threads: reading and decoding let each other run) into an array (N, 28, 28, 1)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        grays = list(pool.map(read_gray, paths))
    return grays_to_model_input(grays)[..., None]

