"""Training: seeded datasets, the optimiser and its schedule, the callbacks by role, and the fit."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from digitpipe.calibration import fit_temperature
from digitpipe.card import CARD_NAME, Card, zip_entry
from digitpipe.errors import DigitpipeError, raise_if_terminated
from digitpipe.files import atomic_path
from digitpipe.inference import KerasPredictor
from digitpipe.limits import as_batch
from digitpipe.models import Augment, augmentation, make_model


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass(frozen=True)
class Recipe:
    """How one model is fitted: the ``train`` params that shape the fit (``params.yaml`` documents each and
    holds the defaults). ``train.distribute`` and ``train.replicas`` say where it runs, not how, so the stage
    keeps them."""

    epochs: int
    batch_size: int
    lr: float
    schedule: str           # cosine | plateau
    warmup_epochs: int      # cosine only
    label_smoothing: float
    weight_decay: float     # 0: Adam; else AdamW
    class_weight: str       # none | balanced: every class weighs the same in the loss (:func:`class_weights`)
    keep: str               # last | best
    patience: int
    lr_patience: int        # plateau only
    lr_factor: float        # plateau only

    @classmethod
    def from_params(cls, section: dict) -> Recipe:
        """The recipe in a (checked) ``train`` params section; its other keys are left out."""
        return cls(**{f.name: section[f.name] for f in dataclasses.fields(cls)})


def class_weights(y: np.ndarray, num_classes: int, how: str) -> np.ndarray | None:
    """Each class's weight in the training loss under ``train.class_weight``: ``None`` for ``none`` (every image
    counts once), and for ``balanced`` n / (classes x n_c), so that every class adds the same total weight, as
    scikit-learn's ``class_weight="balanced"`` does: a class with a tenth of the images weighs ten times as much
    per image, and on balanced data every weight is 1."""
    if how == "none":
        return None
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes)
    return np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0).astype(np.float32)


def short_last_batch(images: int, batch_size: int, replicas: int) -> bool:
    """Whether the last batch of ``images`` would leave one of ``replicas`` replicas without an image: TensorFlow's
    oneDNN kernels fail on an empty share (a max-pooling gradient aborts the process, a convolution refuses)."""
    return 0 < images % batch_size < replicas


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, num_classes: int,
                 shuffle_seed: int | None = None, weights: np.ndarray | None = None,
                 replicas: int = 1, name: str = "images") -> tf.data.Dataset:
    """Batches of in-memory images with one-hot labels (and each image's class weight, when ``weights`` gives
    one per class); reshuffled every epoch when ``shuffle_seed`` is set.

    The images were decoded once, by the prepare stage; augmentation runs inside the model on whole
    batches, so the input pipeline does no per-image work and never bottlenecks training.

    Under a strategy of ``replicas`` replicas no batch may give a replica nothing (:func:`short_last_batch`): a
    shuffled (training) set then leaves its short last batch out, a different few images each epoch, and an
    unshuffled (validation) set joins it to the batch before, so that every image is still scored.
    """
    parts = (as_batch(x), keras.utils.to_categorical(y, num_classes))
    if weights is not None:
        parts += (weights[np.asarray(y, dtype=np.int64)],)
    short = short_last_batch(len(x), batch_size, replicas)
    if short and len(x) < batch_size:
        raise DigitpipeError(f"{len(x)} {name} cannot be shared between {replicas} replicas: use fewer "
                             "train.replicas or more data")
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=short).prefetch(tf.data.AUTOTUNE)
    if short:
        head = len(x) - len(x) % batch_size - batch_size  # all but the last full batch and the short one after it
        tail = tf.data.Dataset.from_tensor_slices(tuple(p[head:] for p in parts))
        ds = ds.take(head).batch(batch_size).concatenate(tail.batch(len(x) - head))
        return ds.prefetch(tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def input_standardization(x: np.ndarray, normalize: str) -> tuple[float, float] | None:
    """The (mean, std) of the training pixels in [0, 1] that the model's first layer standardises by, or
    ``None`` under ``data.normalize: mnist``.

    MNIST-form inputs are a known distribution, dark paper with light ink, that the recipe was tuned on.
    Images used as decoded can be anything, and the common case, dark marks on white paper (letters, icons,
    scans), feeds the first convolutions a sheet of ones: with AdamW at the default rate, training then
    collapsed to chance on a 26-letter set for some seeds, every ReLU dead after the first steps.
    Standardised, the same runs reach 100%. Rounded to 6 significant digits, so the model's config reads
    the same everywhere."""
    if normalize == "mnist" or len(x) == 0:
        return None
    x = np.asarray(x)
    if x.dtype == np.uint8:  # from the pixel histogram: exact, and no float copy of the whole training set
        counts = np.bincount(x.ravel(), minlength=256).astype(np.float64)
        levels = np.arange(256) / 255.0
        mean = float(counts @ levels / counts.sum())
        std = float(np.sqrt(counts @ (levels - mean) ** 2 / counts.sum()))
    else:
        mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    return float(f"{mean:.6g}"), float(f"{max(std, 1e-3):.6g}")  # a blank set: no division by 0


def make_optimizer(r: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam (AdamW when ``weight_decay`` > 0) at ``lr``; for ``schedule: cosine`` a linear warm-up
    to ``lr`` over ``warmup_epochs`` then a cosine decay to 0 at the last epoch."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = r.lr
    if r.schedule == "cosine":
        warmup = r.warmup_epochs * steps_per_epoch
        decay = max(1, r.epochs * steps_per_epoch - warmup)
        lr = keras.optimizers.schedules.CosineDecay(r.lr / 10 if warmup else r.lr, decay,
                                                    warmup_target=r.lr if warmup else None,
                                                    warmup_steps=warmup)
    if r.weight_decay:
        return keras.optimizers.AdamW(lr, weight_decay=r.weight_decay)
    return keras.optimizers.Adam(lr)


def compile_model(model: keras.Model, r: Recipe, steps_per_epoch: int) -> keras.Model:
    """Optimiser per :func:`make_optimizer`, cross-entropy with ``label_smoothing``, accuracy."""
    model.compile(optimizer=make_optimizer(r, steps_per_epoch),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=r.label_smoothing),
                  metrics=["accuracy"])
    return model


class EpochLog(keras.callbacks.Callback):
    """Print one line per epoch: metrics, seconds and training images per second."""

    def __init__(self, images: int, epochs: int, quiet: bool = False):
        super().__init__()
        self.images, self.epochs, self.quiet, self.seconds = images, epochs, quiet, []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        took = time.perf_counter() - self.start
        self.seconds.append(took)
        if self.quiet:
            return
        logs = logs or {}
        shown = "  ".join(f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs)
        print(f"  epoch {epoch + 1:>3}/{self.epochs}  {shown}  {took:.1f} s  "
              f"{self.images / took:,.0f} img/s", flush=True)


class StopWhenTerminated(keras.callbacks.Callback):
    """End training at the end of the epoch when a SIGTERM's exception went missing (see
    :func:`digitpipe.errors.raise_if_terminated`): Keras, writing the best model so far, catches every error. Only
    at epoch ends: a hook after every batch would make Keras wait for each batch's numbers before the next."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        raise_if_terminated()


def selection_score(val_accuracy: float, val_loss: float) -> float:
    """Validation accuracy, with ties (common on a few hundred images) going to the lower loss. The loss's part
    stays below a millionth, less than one image's share of the accuracy on up to a million validation images,
    so a lower loss never outweighs an image more right (at 0.01 x loss, a loss 0.15 lower beat one image of
    750 more right)."""
    return val_accuracy - 1e-6 * (1.0 - 1.0 / (1.0 + val_loss))


class SelectionScore(keras.callbacks.Callback):
    """Add ``val_score`` (see :func:`selection_score`) to the epoch logs for the callbacks after it."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and "val_accuracy" in logs:
            logs["val_score"] = selection_score(logs["val_accuracy"], logs["val_loss"])


def make_callbacks(model_path: Path, r: Recipe) -> list[keras.callbacks.Callback]:
    """The callbacks that decide which weights are kept (``train.keep``) and when training ends.

    ``keep: last`` keeps the weights training ends with. Under the cosine schedule that is the end of the
    schedule (the LR has decayed to 0, so these are the settled weights) and every epoch runs; under the
    plateau schedule early stopping ends training after ``patience`` epochs without a better validation
    score. Nothing is chosen by the validation split, which stays an unbiased check (and fits the temperature).

    ``keep: best`` keeps the epoch with the best validation accuracy (ties: lower val loss) and stops when it
    stalls; under the cosine schedule validation accuracy often stalls while the LR is high and climbs again
    as it anneals, so early stopping only starts watching in the second half. On 750 validation images one
    image is 0.13 points, so this choice follows the validation split's noise (README, Models).

    With the plateau schedule the LR is also lowered when val loss stalls (the cosine schedule sets it itself).
    """
    best, cosine = r.keep == "best", r.schedule == "cosine"
    callbacks: list[keras.callbacks.Callback] = [SelectionScore()]
    if best:
        callbacks.append(keras.callbacks.ModelCheckpoint(model_path, monitor="val_score", mode="max",
                                                         save_best_only=True))
    if best or not cosine:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=r.patience,
                                                       restore_best_weights=best,
                                                       start_from_epoch=r.epochs // 2 if cosine else 0))
    if not cosine:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=r.lr_factor,
                                                           patience=r.lr_patience, min_lr=1e-6))
    return callbacks


def renumber_shared_objects(node, ids: dict) -> None:
    """Replace Keras' ``shared_object_id`` values (memory addresses) by 1, 2, ... in order of appearance."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "shared_object_id":
                node[key] = ids.setdefault(value, len(ids) + 1)
            else:
                renumber_shared_objects(value, ids)
    elif isinstance(node, list):
        for value in node:
            renumber_shared_objects(value, ids)


def stabilise_keras_file(path: Path, card: Card | None = None) -> None:
    """Rewrite a ``.keras`` archive so equal weights give equal bytes, with the model's card in it.

    Keras stamps the save time into ``metadata.json`` and the zip entries and memory addresses into
    ``config.json``; all are fixed here, so DVC sees an unchanged model as unchanged."""
    with zipfile.ZipFile(path) as archive:
        entries = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in entries:
            if name == CARD_NAME and card is not None:  # replaced by the new card below
                continue
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            elif name == "config.json":
                config = json.loads(data)
                renumber_shared_objects(config, {})
                data = json.dumps(config).encode()
            archive.writestr(zip_entry(name), data)
        if card is not None:
            archive.writestr(zip_entry(CARD_NAME), card.to_bytes())


@dataclass
class Run:
    """A trained model and the facts of its training."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: list[float]
    temperature: float = 1.0  # fitted on the validation split (see digitpipe.calibration); in the model's card


def train_model(arch: str, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
                num_classes: int, augment: Augment, recipe: Recipe, seed: int, model_path: Path,
                extra_callbacks: tuple = (), quiet: bool = False, card: Card | None = None,
                strategy=None, chief: bool = True, watchdog=None) -> Run:
    """Seed, build ``arch`` with ``augment``, fit it by ``recipe`` on ``train`` (``val``
    is evaluated every epoch), save the weights ``recipe.keep`` says (:func:`make_callbacks`) to ``model_path``
    with ``card`` in it. Images are uint8 model inputs (N, 28, 28) or floats in [0, 1].

    With a :mod:`tf.distribute` ``strategy`` the same recipe runs on its replicas (:func:`digitpipe.distribute.fit`);
    only the ``chief`` writes the model (``extra_callbacks`` are the chief's too), and the returned temperature
    is 1.0 on the other workers."""
    seed_everything(seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        normalize = card.normalize if card is not None else "mnist"
        fill = "constant" if normalize == "mnist" else "nearest"  # past the edge: MNIST's black, else the edge's own
        model = make_model(arch, num_classes, augmentation(augment, seed, fill_mode=fill),
                           input_standardization(train[0], normalize))
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        dropped = short_last_batch(len(train[0]), recipe.batch_size, replicas)  # see make_dataset
        steps = len(train[0]) // recipe.batch_size if dropped else int(np.ceil(len(train[0]) / recipe.batch_size))
        compile_model(model, recipe, steps)
    log = EpochLog(len(train[0]), recipe.epochs, quiet or not chief)
    partial = partial_path(model_path)
    callbacks = [c for c in make_callbacks(partial, recipe)
                 if chief or not isinstance(c, keras.callbacks.ModelCheckpoint)]
    callbacks += [log, *extra_callbacks, StopWhenTerminated()]  # last: after the best model so far is saved
    train_ds = make_dataset(*train, recipe.batch_size, num_classes, shuffle_seed=seed,
                            weights=class_weights(train[1], num_classes, recipe.class_weight), replicas=replicas,
                            name="training images")
    val_ds = make_dataset(*val, recipe.batch_size, num_classes, replicas=replicas, name="validation images")
    if dropped and chief and not quiet:
        print(f"train: {len(train[0]) % recipe.batch_size} of the {len(train[0])} training images, a different few "
              f"each epoch, sit out every epoch: a last batch that small would leave one of the {replicas} "
              "replicas without an image")
    if chief:
        model_path.parent.mkdir(parents=True, exist_ok=True)
    temperature = 1.0
    try:
        if strategy is None:
            history = model.fit(train_ds, validation_data=val_ds, epochs=recipe.epochs, callbacks=callbacks,
                                shuffle=False, verbose=0).history  # the dataset shuffles, seeded
        else:
            from digitpipe import distribute

            history = distribute.fit(model, strategy, train_ds, val_ds, recipe.epochs, callbacks,
                                     recipe.label_smoothing, watchdog)
        if chief:
            if recipe.keep == "last":
                model.save(partial)
            temperature = fitted_temperature(partial, val)
            if card is not None:
                card = dataclasses.replace(card, temperature=temperature)
            stabilise_keras_file(partial, card)
            raise_if_terminated()  # never a model written after the run was told to stop
            partial.replace(model_path)
    finally:
        if chief:
            partial.unlink(missing_ok=True)
    return Run(model=model, history=history, seconds=log.seconds, temperature=temperature)


def fitted_temperature(model_path: Path, val: tuple[np.ndarray, np.ndarray]) -> float:
    """The temperature that calibrates the saved (kept) model's probabilities on the validation split, fitted
    on exactly the raw probabilities that evaluate, ``predict`` and the web page compute (one traced call per
    batch, no ``tf.data`` pipeline: ``model.predict`` built one that made TensorFlow log an error line)."""
    return fit_temperature(KerasPredictor(model_path).raw_probabilities(val[0]), np.asarray(val[1]))


def partial_path(model_path: Path) -> Path:
    """Where the best model so far is kept while training runs: a hidden file beside ``model_path`` that
    replaces it (one rename) only once training has ended, so a run that is stopped or killed never
    leaves a partial or half-trained model under the model's name."""
    return model_path.with_name(f".{model_path.stem}.partial{model_path.suffix}")


def summarize_history(history: dict[str, list[float]], seconds: list[float], keep: str) -> dict:
    """The facts of a run for ``metrics/train.json``: the epoch with the best validation score and its
    numbers, and the epoch whose weights were kept (``keep``: ``best``, or ``last``: the final epoch)."""
    val_acc = history["val_accuracy"]
    best = int(np.argmax([selection_score(a, v) for a, v in zip(val_acc, history["val_loss"], strict=True)]))
    kept = best if keep == "best" else len(val_acc) - 1
    return {
        "best_epoch": best + 1,
        "epochs_run": len(val_acc),
        "best_val_accuracy": round(float(val_acc[best]), 6),
        "best_val_loss": round(float(history["val_loss"][best]), 6),
        "kept_epoch": kept + 1,
        "kept_val_accuracy": round(float(val_acc[kept]), 6),
        "kept_val_loss": round(float(history["val_loss"][kept]), 6),
        "train_seconds": round(float(sum(seconds)), 1),
        "seconds_per_epoch": round(float(np.median(seconds)), 2),
    }
