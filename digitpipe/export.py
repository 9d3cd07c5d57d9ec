"""Export a trained Keras model for serving: a SavedModel, a float TFLite model and an int8 TFLite model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitpipe.runtime import stderr_silenced


def export_saved_model(model: keras.Model, out: Path) -> Path:
    """A TensorFlow SavedModel (inference only: augmentation is inactive) at ``out``."""
    if out.exists():
        shutil.rmtree(out)
    with stderr_silenced():  # the exporter logs every traced function
        model.export(str(out), format="tf_saved_model", verbose=False)
    return out


def representative(images: np.ndarray, count: int = 500) -> Iterator[list[np.ndarray]]:
    """Calibration batches for int8 quantisation: the first ``count`` training images, one at a time."""
    for image in images[:count]:
        yield [image[None].astype(np.float32)]


def to_tflite(saved_model: Path, calibration: np.ndarray | None = None) -> bytes:
    """Convert a SavedModel to TFLite; with ``calibration`` images, fully int8-quantised (int8 in and out)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with stderr_silenced():  # the converter prints MLIR diagnostics for every run
        return converter.convert()


def size_kb(path: Path) -> float:
    """A file's or folder's size on disk in KiB."""
    if path.is_dir():
        return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1024, 1)
    return round(path.stat().st_size / 1024, 1)
