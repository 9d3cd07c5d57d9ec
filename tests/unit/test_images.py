"""The shared preprocessing: any image becomes a (28, 28) float32 array in [0, 1]."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitpipe.images import load_inputs, open_image, to_model_input


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "CMYK", "P", "I;16"])
def test_any_mode_becomes_gray_28x28_in_unit_range(mode):
    img = Image.new(mode, (28, 28))
    x = to_model_input(img)
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_mnist_style_image_passes_through_exactly(mnist):
    images, _ = mnist
    x = to_model_input(Image.fromarray(images[0]))
    assert np.array_equal(x, images[0].astype(np.float32) / 255.0)


def test_other_sizes_are_resized():
    x = to_model_input(Image.new("L", (280, 140), 200))
    assert x.shape == (28, 28) and np.allclose(x, 200 / 255, atol=1e-2)


def test_transparent_background_becomes_white():
    img = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    assert np.allclose(to_model_input(img), 1.0)


def test_decodes_bytes_and_files_the_same(tmp_path, mnist):
    images, _ = mnist
    data = encode(Image.fromarray(images[3]), "PNG")
    (tmp_path / "a.png").write_bytes(data)
    from_bytes = to_model_input(open_image(data))
    batch = load_inputs([tmp_path / "a.png", tmp_path / "a.png"])
    assert batch.shape == (2, 28, 28, 1)
    assert np.array_equal(batch[0, ..., 0], from_bytes)
