"""The one way an image becomes model input.

Training, evaluation, ``predict`` and the web page all call :func:`to_model_input`, so
what the model sees cannot drift apart between them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 28  # the model's input is SIDE x SIDE grayscale


def open_image(source: str | Path | bytes) -> Image.Image:
    """Decode an image file (or its bytes) fully; raises ``PIL`` / ``OSError`` errors if it is bad."""
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(fp) as img:
        img.load()
        return img.copy() if img.mode != "P" else img.convert("RGBA")


def to_gray(img: Image.Image) -> Image.Image:
    """Any mode (RGB, CMYK, 16-bit, alpha...) to 8-bit gray; transparent pixels become white paper."""
    if img.mode in ("RGBA", "LA", "PA"):
        paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, img.convert("RGBA"))
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8), mode="L")
    return img.convert("L") if img.mode != "L" else img


def to_model_input(img: Image.Image) -> np.ndarray:
    """An image as the model's input: float32 array of shape (28, 28) with values in [0, 1]."""
    gray = to_gray(img)
    if gray.size != (SIDE, SIDE):
        gray = gray.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.asarray(gray, dtype=np.float32) / 255.0


def load_input(path: str | Path) -> np.ndarray:
    """Decode one file into model input."""
    return to_model_input(open_image(path))


def load_inputs(paths: Sequence[str | Path], workers: int = 4) -> np.ndarray:
    """Decode many files (in threads; PIL releases the GIL) into an array of shape (N, 28, 28, 1)."""
    if not paths:
        return np.zeros((0, SIDE, SIDE, 1), dtype=np.float32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(load_input, paths, chunksize=64))
    return np.stack(arrays)[..., None]
