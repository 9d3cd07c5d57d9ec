"""Export a trained Keras model for serving: a SavedModel, a float TFLite model and an int8 TFLite model.

The SavedModel and the float TFLite model have the model's temperature (:mod:`digitpipe.calibration`) inside
their graphs, so their own outputs are the calibrated probabilities, whatever runtime loads them: TF Serving,
an app's TFLite interpreter or digitpipe; their cards say so (``calibrated``, temperature 1: nothing left to
apply). The int8 model outputs the raw softmax and its card keeps the temperature, which the reader applies
(digitpipe does): an int8 output moves in steps of 1/256, so a calibrated one could never say more than 99.6%,
while the raw softmax of a confident answer (about 90%, the label smoothing's) is well inside its range.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from digitpipe.card import Card, read_card, with_card, write_saved_model_card
from digitpipe.errors import DigitpipeError
from digitpipe.limits import as_batch
from digitpipe.runtime import stderr_silenced

CALIBRATION = 500  # training images int8 quantisation measures its ranges on


def calibrated_model(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` (an inference model: :func:`digitpipe.models.inference_model`) with ``temperature`` inside: its
    output layer's logits are divided by the temperature before the softmax, which is the calibration
    :func:`digitpipe.calibration.scaled` applies (softmax(log softmax(z) / T) is softmax(z / T)). Built of
    Keras' own layers (Dense, Rescaling, Softmax), so an export needs no digitpipe code to give them."""
    head = model.layers[-1]
    if head.name != "probs" or not isinstance(head, layers.Dense) or head.activation is not keras.activations.softmax:
        raise DigitpipeError(f"the model's last layer is {head.name!r}, not the softmax layer 'probs' every "
                             "digitpipe model ends in: cannot build its temperature into the exports")
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:-1]:
        x = layer(x)
    logits = layers.Dense(head.units, name="logits")
    x = logits(x)
    logits.set_weights(head.get_weights())
    x = layers.Rescaling(1.0 / temperature, name="temperature")(x)
    return keras.Model(inputs, layers.Softmax(name="probs")(x), name=model.name)


def export_saved_model(model: keras.Model, out: Path, card: Card, calibrated: bool = True) -> Path:
    """A TensorFlow SavedModel at ``out`` of ``model`` (an inference model: no augmentation), with the card's
    temperature inside (:func:`calibrated_model`) and the card of :func:`calibrated_card`; with ``calibrated``
    False, the model as it is, with ``card`` as it is."""
    if card.calibrated:
        raise DigitpipeError("the model's card says that its graph applies a temperature already; export the "
                             "trained model (models/model.keras), not an export")
    if out.exists():
        shutil.rmtree(out)
    with stderr_silenced():  # the exporter logs every traced function
        (calibrated_model(model, card.temperature) if calibrated else model).export(
            str(out), format="tf_saved_model", verbose=False)
    write_saved_model_card(out, calibrated_card(card) if calibrated else card)
    return out


def calibrated_card(card: Card) -> Card:
    """The card of a model whose graph applies ``card``'s temperature: temperature 1, so that no reader (an older
    digitpipe either) applies it again, the temperature in the graph kept beside it."""
    return dataclasses.replace(card, temperature=1.0, calibrated=True, graph_temperature=card.temperature)


def calibration_images(train: np.ndarray, count: int = CALIBRATION) -> np.ndarray:
    """``count`` training images spread evenly over the (class-sorted) training split, so every class
    is in the calibration set; nothing else of the split is touched."""
    picks = np.unique(np.linspace(0, len(train) - 1, min(count, len(train))).round().astype(int))
    return as_batch(train[picks])


def representative(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    """Calibration batches for int8 quantisation, one image at a time."""
    for image in images:
        yield [image[None].astype(np.float32)]


def to_tflite(saved_model: Path, calibration: np.ndarray | None = None) -> bytes:
    """Convert a SavedModel (:func:`export_saved_model`) to TFLite with the SavedModel's own card appended, so
    that the card always says what the graph does; with ``calibration`` images (float, as
    :func:`calibration_images` gives), fully int8-quantised (int8 in and out), which only a SavedModel without
    the temperature inside may be (:func:`int8_tflite`)."""
    card = read_card(saved_model)
    if calibration is not None and card.calibrated:
        raise ValueError("an int8 model of a graph with the temperature inside could not say more than 99.6%: "
                         "use int8_tflite")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with stderr_silenced():  # the converter prints MLIR diagnostics for every run
        return with_card(converter.convert(), card)


def int8_tflite(model: keras.Model, card: Card, calibration: np.ndarray) -> bytes:
    """The int8 TFLite model of ``model`` (an inference model) as it is, its raw softmax out and ``card`` (with
    its temperature, for the reader to apply) appended: see the module's docstring for why."""
    with tempfile.TemporaryDirectory() as tmp:
        return to_tflite(export_saved_model(model, Path(tmp) / "raw", card, calibrated=False), calibration)


# Files of a SavedModel whose size changes from one export of the same model to the next: Keras lists the
# variables in an order that differs between processes, and these two encode that order (a prefix-compressed
# key table, and hashes). Together a few KiB; left out so equal models report equal sizes.
UNSTABLE_SIZE = frozenset({"variables.index", "fingerprint.pb"})


def size_kb(path: Path) -> float:
    """A file's size in KiB; for a folder (a SavedModel) the sum of its files but :data:`UNSTABLE_SIZE`."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.name not in UNSTABLE_SIZE]
        return round(sum(p.stat().st_size for p in files) / 1024, 1)
    return round(path.stat().st_size / 1024, 1)
