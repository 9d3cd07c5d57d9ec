"""A picture of ink on paper, cleaned up before its digit is measured: which pixels are ink and how much.

A scan or a phone photo shows a page, not a digit: the paper may be lit from one side, shadowed or darker
in the corners, and a desk may show around it. :func:`page_only` cuts the desk away and :func:`ink_on_black`
turns what is left into ink on black, the paper's own light measured wherever it changes. The digit is
then cropped, thickened and centred by :mod:`digitpipe.images`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

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
