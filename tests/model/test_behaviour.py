"""Behavioural tests of a small trained model: it reads clearly drawn digits and shrugs off 1-px shifts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from digitpipe.images import to_model_input
from digitpipe.inference import Predictor
from tests.helpers import photographed, small_model_split


def drawn(digit: str) -> Image.Image:
    """A digit drawn with a thick pen, white on black, roughly where MNIST puts its strokes."""
    img = Image.new("L", (28, 28), 0)
    pen = ImageDraw.Draw(img)
    if digit == "1":
        pen.line([(14, 5), (14, 23)], fill=255, width=3)
    elif digit == "0":
        pen.ellipse([8, 5, 20, 23], outline=255, width=3)
    elif digit == "7":
        pen.line([(8, 6), (20, 6), (12, 23)], fill=255, width=3, joint="curve")
    return img


@pytest.fixture(scope="module")
def predictor(small_model) -> Predictor:
    return Predictor.load(small_model)


@pytest.mark.parametrize("digit", ["0", "1", "7"])
def test_clearly_drawn_digits_are_recognised(predictor, digit):
    probs = predictor.probabilities(to_model_input(drawn(digit)))[0]
    assert str(int(probs.argmax())) == digit, np.round(probs, 3)


def test_a_one_pixel_shift_keeps_confident_predictions(predictor, mnist):
    images, labels = mnist
    x = images[small_model_split(labels)[2]].astype(np.float32) / 255.0  # none of these trained the model
    probs = predictor.probabilities(x)
    confident = probs.max(axis=1) > 0.9  # label smoothing keeps even sure answers near 0.9-0.95
    assert confident.sum() > 1500
    base = probs.argmax(axis=1)[confident]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        shifted = np.roll(x[confident], (dy, dx), axis=(1, 2))
        same = (predictor.probabilities(shifted).argmax(axis=1) == base).mean()
        assert same >= 0.995, f"shift {(dy, dx)} changed {1 - same:.1%} of confident predictions"


def test_the_small_model_is_accurate_on_unseen_digits(predictor, mnist):
    images, labels = mnist
    unseen = small_model_split(labels)[2]
    acc = (predictor.probabilities(images[unseen].astype(np.float32) / 255).argmax(axis=1) == labels[unseen]).mean()
    assert acc > 0.95


PHOTOS = {
    "lamp on one side": lambda im: photographed(im, "side"),
    "shadow over a corner": lambda im: photographed(im, "shadow"),
    "dark corners": lambda im: photographed(im, "corners"),
    "page turned on a dark desk": lambda im: ImageOps.expand(
        photographed(im, "side").rotate(8, expand=True, fillcolor=(70, 60, 50)), 60, (70, 60, 50)),
}


@pytest.mark.parametrize("photo", PHOTOS)
def test_phone_photos_of_digits_on_paper_are_read(predictor, mnist, photo):
    images, labels = mnist
    unseen = small_model_split(labels)[2][::50]  # 25 digits, every class
    x = np.stack([to_model_input(PHOTOS[photo](Image.fromarray(images[i]))) for i in unseen])
    flat = predictor.probabilities(images[unseen].astype(np.float32) / 255).argmax(axis=1)
    assert (predictor.probabilities(x).argmax(axis=1) == flat).mean() >= 0.9
