"""The facts several parts share, each in one place: the model's input, the size limits, the model's path.

Ingest, the prepare stage, ``predict`` and the web page read them from here, so a file one of them
accepts is not refused by another for being too large, and the stages write the model where the
commands look for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIDE = 28                    # the model's input is SIDE x SIDE gray pixels
MIN_SIDE = 8                 # images with a side shorter than this cannot hold a legible digit: refused
MAX_PIXELS = 40_000_000      # images bigger than this (width x height) are refused from their header, never decoded
MAX_FILE_BYTES = 64 * 2**20  # files bigger than this are refused before reading: a digit never needs more
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})  # never images
MODEL = Path("models/model.keras")  # the trained model: written by the train stage, the default of predict and web
FEW_CLASSES = 12             # up to this many classes (digits: 10) plots and the report keep their compact layout


def as_batch(x: np.ndarray) -> np.ndarray:
    """(28, 28), (28, 28, 1) or (N, 28, 28[, 1]) input as a (N, 28, 28, 1) float32 batch in [0, 1]: 8-bit
    pixels (what :func:`digitpipe.images.model_pixels` gives) are divided by 255, floats taken as they are."""
    x = np.asarray(x)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3 and x.shape[-1] != 1:
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    return x
