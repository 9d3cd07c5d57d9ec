"""Export a trained Keras model for serving: a SavedModel, a float TFLite model and an int8 TFLite model.

The SavedModel and the float TFLite model have the model's temperature (:mod:`digitpipe.calibration`) inside
their graphs, so their own outputs are the calibrated probabilities, whatever runtime loads them: TF Serving,
an app's TFLite interpreter or digitpipe; their cards say so (``calibrated``, temperature 1: nothing left to
apply). The int8 model outputs the raw softmax and its card keeps the temperature, which the reader applies
(digitpipe does): an int8 output moves in steps of 1/256, so a calibrated one could never say more than 99.6%,
while the raw softmax of a confident answer (about 90%, the label smoothing's) is well inside its range.
"""

from __future__ import annotations

import contextlib
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
from digitpipe.errors import DigitpipeError, raise_if_terminated
from digitpipe.files import write_bytes
from digitpipe.inference import folder_files
from digitpipe.limits import as_batch
from digitpipe.runtime import stderr_silenced

CALIBRATION = 500  # training images int8 quantisation measures its ranges on
# layers that pass their input through unchanged outside training: left out of the calibrated graph, so that it
# holds no random-seed state (drawn afresh in each process that builds or loads the model) for a SavedModel to store
TRAINING_ONLY = (layers.Dropout, layers.GaussianNoise, layers.GaussianDropout, layers.AlphaDropout)


def calibrated_model(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` (an inference model: :func:`digitpipe.models.inference_model`) with ``temperature`` inside: its
    output layer's logits are divided by the temperature before the softmax, which is the calibration
    :func:`digitpipe.calibration.scaled` applies (softmax(log softmax(z) / T) is softmax(z / T)). Built of
    Keras' own layers (Dense, Rescaling, Softmax), so an export needs no digitpipe code to give them. The layers
    that act only in training (:data:`TRAINING_ONLY`) are left out: outside training they change nothing."""
    head = model.layers[-1]
    if head.name != "probs" or not isinstance(head, layers.Dense) or head.activation is not keras.activations.softmax:
        raise DigitpipeError(f"the model's last layer is {head.name!r}, not the softmax layer 'probs' every "
                             "digitpipe model ends in: cannot build its temperature into the exports")
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:-1]:
        if not isinstance(layer, TRAINING_ONLY):
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
    exported = calibrated_model(model, card.temperature) if calibrated else model
    # written whole beside its place, then moved in: a kill mid-export never leaves a folder without its card,
    # which predict would load as a 0-9 model of the mnist policy
    partial = out.with_name(f".{out.name}.partial")
    old = out.with_name(f".{out.name}.old")
    for leftover in (partial, old):  # what a killed export left
        if leftover.exists():
            shutil.rmtree(leftover)
    try:
        with stderr_silenced(), stable_export():  # the exporter logs every traced function
            exported.export(str(partial), format="tf_saved_model", verbose=False)
        pin_fingerprint(partial)
        write_saved_model_card(partial, calibrated_card(card) if calibrated else card)
        raise_if_terminated()  # a SIGTERM TensorFlow's exporter caught: no export put in place after it
        if out.exists():
            out.rename(old)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out


@contextlib.contextmanager
def stable_export() -> Iterator[None]:
    """While a SavedModel is written, make its bytes a function of the weights alone, so that the
    same model exports to the same files in every process (and ``dvc.lock`` records one hash for them). Keras
    lists the variables the serving function reads in an order that differs between processes (TensorFlow
    collects them by object identity), and that order numbers the variables in the checkpoint and the restore
    ops in ``saved_model.pb``: here they are listed by name. (The random-seed state of dropout layers, which
    differs too, :func:`calibrated_model` leaves out; :func:`pin_fingerprint` does the fingerprint's identifier.)
    """
    from keras.src.export import saved_model_export_archive as archive

    listing = getattr(archive, "_list_variables_used_by_fns", None)

    def by_name(fns):
        trainable, other = listing(fns)
        return (sorted(trainable, key=lambda v: (v.name, tuple(v.shape))),
                sorted(other, key=lambda v: (v.name, tuple(v.shape))))

    if listing is not None:
        archive._list_variables_used_by_fns = by_name
    try:
        yield
    finally:
        if listing is not None:
            archive._list_variables_used_by_fns = listing


def pin_fingerprint(folder: Path) -> None:
    """Give a SavedModel's ``fingerprint.pb`` the identifier its own hashes make, in place of the random one
    TensorFlow writes each time: equal files get equal fingerprints, as they would under any other name."""
    import hashlib

    from tensorflow.core.protobuf import fingerprint_pb2

    path = folder / "fingerprint.pb"
    if not path.is_file():
        return
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    hashes = (fingerprint.saved_model_checksum, fingerprint.checkpoint_hash, fingerprint.signature_def_hash)
    fingerprint.uuid = str(int(hashlib.sha256(repr(hashes).encode()).hexdigest()[:32], 16))
    write_bytes(fingerprint.SerializeToString(deterministic=True), path)


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


def size_kb(path: Path) -> float:
    """A file's size in KiB; for a folder (a SavedModel) the sum of its files."""
    if path.is_dir():
        return round(sum((path / name).stat().st_size for name in folder_files(path)) / 1024, 1)
    return round(path.stat().st_size / 1024, 1)
