"""Training: seeded datasets, the callbacks by role, and the fit loop."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from digitpipe.images import load_inputs


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_split(manifest: pd.DataFrame, root: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode a manifest's images once into memory: ``(x (N, 28, 28, 1) float32, y (N,) int32)``."""
    x = load_inputs([root / p for p in manifest["path"]])
    lookup = {c: i for i, c in enumerate(classes)}
    y = manifest["label"].map(lookup).to_numpy(dtype=np.int32)
    return x, y


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int,
                 shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches of in-memory images; reshuffled every epoch (seeded) when ``shuffle_seed`` is set."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class EpochLog(keras.callbacks.Callback):
    """Print one line per epoch: metrics, seconds and training images per second."""

    def __init__(self, images: int, epochs: int):
        super().__init__()
        self.images, self.epochs, self.seconds = images, epochs, []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        took = time.perf_counter() - self.start
        self.seconds.append(took)
        logs = logs or {}
        shown = "  ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
        print(f"  epoch {epoch + 1:>3}/{self.epochs}  {shown}  {took:.1f} s  "
              f"{self.images / took:,.0f} img/s", flush=True)


def make_callbacks(model_path: Path, patience: int, lr_patience: int,
                   lr_factor: float) -> list[keras.callbacks.Callback]:
    """Keep the best model by val accuracy, stop when it stalls, lower the LR when val loss stalls."""
    return [
        keras.callbacks.ModelCheckpoint(model_path, monitor="val_accuracy", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=lr_factor, patience=lr_patience,
                                          min_lr=1e-6),
    ]


def compile_model(model: keras.Model, lr: float) -> keras.Model:
    """Adam and sparse categorical cross-entropy on integer labels."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def summarize_history(history: dict[str, list[float]], seconds: list[float]) -> dict:
    """The facts of a run for ``metrics/train.json``."""
    val_acc = history["val_accuracy"]
    best = int(np.argmax(val_acc))
    return {
        "best_epoch": best + 1,
        "epochs_run": len(val_acc),
        "best_val_accuracy": round(float(val_acc[best]), 6),
        "best_val_loss": round(float(history["val_loss"][best]), 6),
        "train_seconds": round(float(sum(seconds)), 1),
        "seconds_per_epoch": round(float(np.median(seconds)), 2),
    }
