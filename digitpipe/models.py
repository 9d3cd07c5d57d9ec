"""Model builders: one small function per architecture, chosen by ``model.arch``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from digitpipe.limits import SIDE


@dataclass(frozen=True)
class Augment:
    """How far training images are randomly moved: the ``augment`` params (``params.yaml`` documents each and
    holds the defaults). All zero, as here, is no augmentation."""

    rotation: float = 0.0     # degrees, either way
    translation: float = 0.0  # fraction of the side, along each axis, either way
    zoom: float = 0.0         # fraction, in or out
    shear: float = 0.0        # horizontal slant, fraction, either way

    @classmethod
    def from_params(cls, section: dict) -> Augment:
        """The augmentation in a (checked) ``augment`` params section."""
        return cls(**{f.name: section[f.name] for f in dataclasses.fields(cls)})


def augmentation(augment: Augment, seed: int, fill_mode: str = "constant") -> keras.Sequential:
    """Random rotation, shift, zoom and horizontal shear by ``augment``; active only while training.

    Shear slants the strokes as a writer's hand does (the top of a digit moves sideways against its
    bottom) without turning the whole digit as rotation does.
    """
    steps: list[layers.Layer] = []
    if augment.rotation:
        steps.append(layers.RandomRotation(augment.rotation / 360.0, fill_mode=fill_mode, seed=seed))
    if augment.translation:
        steps.append(layers.RandomTranslation(augment.translation, augment.translation, fill_mode=fill_mode,
                                              seed=seed + 1))
    if augment.zoom:
        steps.append(layers.RandomZoom(augment.zoom, fill_mode=fill_mode, seed=seed + 2))
    if augment.shear:
        # (0, shear): the layer flips the sign of each draw itself, so this shears both ways; a symmetric
        # (-shear, shear) range is refused when a saved model is loaded again.
        steps.append(layers.RandomShear((0.0, augment.shear), (0.0, 0.0), fill_mode=fill_mode, seed=seed + 3))
    return keras.Sequential(steps, name="augment")


def compact() -> list[layers.Layer]:
    """The reference notebook's CNN: Conv32-Pool-Conv64-Pool-Dense128-Dropout0.3."""
    return [
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.3),
    ]


def deep() -> list[layers.Layer]:
    """Three Conv-BN blocks (32/64/128) with dropout, then Dense512-BN-Dropout0.5."""
    def block(filters: int, pool: bool) -> list[layers.Layer]:
        out = [layers.Conv2D(filters, 3, activation="relu", padding="same"), layers.BatchNormalization()]
        if pool:
            out += [layers.Conv2D(filters, 3, activation="relu", padding="same"), layers.MaxPooling2D()]
        return out + [layers.Dropout(0.25)]

    return [*block(32, True), *block(64, True), *block(128, False), layers.Flatten(),
            layers.Dense(512, activation="relu"), layers.BatchNormalization(), layers.Dropout(0.5)]


def wide() -> list[layers.Layer]:
    """Three conv blocks 32/64/128 with pooling and dropout, then Dense256-Dense128-Dropout."""
    convs = [[layers.Conv2D(f, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
              layers.Dropout(0.25)] for f in (32, 64, 128)]
    return [*sum(convs, []), layers.Flatten(), layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"), layers.Dropout(0.5)]


def mini() -> list[layers.Layer]:
    """The smallest reference CNN: Conv28-Pool-Dense128-Dropout0.2."""
    return [layers.Conv2D(28, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
            layers.Dense(128, activation="relu"), layers.Dropout(0.2)]


def mlp() -> list[layers.Layer]:
    """A plain dense net: two hidden layers with dropout."""
    return [layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dropout(0.2),
            layers.Dense(128, activation="relu"), layers.Dropout(0.2)]


def digitnet() -> list[layers.Layer]:
    """The default: two pairs of unpadded 3x3 convolutions (32, then 64 filters), max-pooling after each
    pair, then Dense128 with dropout.

    Two stacked 3x3 convolutions see as far as one 5x5 with an extra non-linearity between them; over five
    splits of the embedded sample this beat `compact` and the earlier batch-normed default, with fewer
    parameters than `compact` (README, Results on the embedded sample).
    """
    return [layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"), layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.3)]


BUILDERS: dict[str, Callable[[], list[layers.Layer]]] = {
    "compact": compact, "deep": deep, "wide": wide, "mini": mini, "mlp": mlp, "digitnet": digitnet,
}


def make_model(arch: str, num_classes: int = 10, augment: keras.Sequential | None = None,
               standardize: tuple[float, float] | None = None) -> keras.Model:
    """Build ``arch`` for 28x28x1 inputs in [0, 1], ending in a softmax over ``num_classes``.

    ``standardize`` = (mean, std) of the training pixels makes the first layer map them to mean 0 and
    standard deviation 1 (see :func:`digitpipe.training.input_standardization`). ``augment`` (see
    :func:`augmentation`) runs next and only while training. Both are layers of the model, so the
    saved model and its exports need no separate preprocessing at inference.
    """
    inputs = keras.Input((SIDE, SIDE, 1), name="image")
    x = inputs
    if standardize is not None:
        mean, std = standardize
        x = layers.Rescaling(1.0 / std, offset=-mean / std, name="standardize")(x)
    x = augment(x) if augment is not None and augment.layers else x
    for layer in BUILDERS[arch]():
        x = layer(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=arch)


def inference_model(model: keras.Model) -> keras.Model:
    """The same layers and weights without the augmentation block: what serving and export need
    (the random ops of augmentation are no-ops at inference but still cost time and block TFLite)."""
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:]:
        if layer.name != "augment":
            x = layer(x)
    return keras.Model(inputs, x, name=model.name)
