"""Model builders and a short real training run on real digits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from digitpipe.errors import DigitpipeError
from digitpipe.params import ARCHS, RULES, load_params
from digitpipe.runtime import load_keras
from tests.helpers import ROOT, SMALL_RECIPE, sigterm_taken, swallow_a_sigterm

keras = load_keras()

from digitpipe import training  # noqa: E402
from digitpipe.models import Augment, augmentation, make_model  # noqa: E402

RECIPE = training.Recipe.from_params({**SMALL_RECIPE, "schedule": "plateau", "warmup_epochs": 0,
                                      "label_smoothing": 0.0, "weight_decay": 0.0, "epochs": 2})


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_maps_a_batch_to_probabilities(arch):
    augment = augmentation(Augment(rotation=10, translation=0.1, zoom=0.1), seed=0)
    model = make_model(arch, num_classes=10, augment=augment)
    probs = np.asarray(model(np.zeros((2, 28, 28, 1), dtype=np.float32), training=False))
    assert probs.shape == (2, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_augmentation_changes_images_only_while_training():
    aug = augmentation(Augment(rotation=20, translation=0.2, zoom=0.2), seed=0)
    x = np.zeros((1, 28, 28, 1), dtype=np.float32)
    x[0, 10:18, 12:16] = 1.0
    assert np.array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.array_equal(np.asarray(aug(x, training=True)), x)


def test_every_augment_param_reaches_the_augmentation_block():
    section = load_params(["augment"], ROOT / "params.yaml")["augment"]
    assert set(section) == set(RULES["augment"])
    augment = Augment.from_params(section)
    assert dataclasses.asdict(augment) == section  # a param that is checked but never used fails here
    kinds = [type(layer).__name__ for layer in augmentation(augment, seed=0).layers]
    expected = {"rotation": "RandomRotation", "translation": "RandomTranslation", "zoom": "RandomZoom",
                "shear": "RandomShear"}
    assert kinds == [expected[key] for key in expected if section[key]]
    assert augmentation(Augment(), seed=0).layers == []  # all zero: no augmentation at all


def test_shear_slants_a_vertical_stroke_both_ways_and_leaves_its_middle_row():
    aug = augmentation(Augment(shear=0.3), seed=0)
    x = np.zeros((64, 28, 28, 1), dtype=np.float32)
    x[:, 4:24, 13:15] = 1.0
    out = np.asarray(aug(x, training=True))[..., 0]
    columns = np.arange(28)
    top, bottom = ((out[:, rows].sum(axis=1) * columns).sum(axis=1) / out[:, rows].sum(axis=(1, 2))
                   for rows in (slice(4, 8), slice(20, 24)))
    slant = top - bottom
    assert (slant > 1).any() and (slant < -1).any()  # leans right and left
    assert np.abs(slant).max() < 0.3 * 28
    assert np.allclose(out[:, 14].sum(axis=1), 2.0, atol=0.1)  # shear about the centre row keeps it in place


def test_a_model_with_every_augmentation_saves_and_loads(tmp_path):
    model = make_model("compact", 10, augmentation(Augment(rotation=10, translation=0.1, zoom=0.1, shear=0.15), seed=0))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    assert np.allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))
    shear = loaded.get_layer("augment").layers[-1]
    assert type(shear).__name__ == "RandomShear"


def test_loss_goes_down_in_two_epochs(mnist):
    images, labels = mnist
    pick = np.concatenate([np.flatnonzero(labels == c)[:30] for c in range(10)])
    x = images[pick][..., None].astype(np.float32) / 255.0
    y = labels[pick].astype(np.int32)
    training.seed_everything(0)
    model = training.compile_model(make_model("compact", 10), RECIPE, steps_per_epoch=10)
    history = model.fit(training.make_dataset(x, y, 32, 10, shuffle_seed=0), epochs=2, shuffle=False, verbose=0)
    loss = history.history["loss"]
    assert loss[1] < loss[0]


def test_the_recipe_holds_every_train_param_but_where_training_runs():
    section = load_params(["train"], ROOT / "params.yaml")["train"]
    recipe = training.Recipe.from_params(section)
    fields = {f.name for f in dataclasses.fields(training.Recipe)}
    # a new `train` param must reach the fit (or be named here as the stage's own), never be dropped silently
    assert set(RULES["train"]) - fields == {"distribute", "replicas"}
    assert {name: getattr(recipe, name) for name in fields} == {name: section[name] for name in fields}
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.lr = 0.1


def callback_kinds(t: dict) -> dict[str, keras.callbacks.Callback]:
    return {type(c).__name__: c for c in training.make_callbacks(Path("unused.keras"), training.Recipe.from_params(t))}


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_keep_best_checkpoints_the_best_epoch_and_restores_it(schedule):
    kinds = callback_kinds({**SMALL_RECIPE, "schedule": schedule, "keep": "best", "epochs": 40})
    assert kinds["ModelCheckpoint"].save_best_only
    assert kinds["EarlyStopping"].restore_best_weights
    assert kinds["EarlyStopping"].start_from_epoch == (20 if schedule == "cosine" else 0)
    assert ("ReduceLROnPlateau" in kinds) == (schedule == "plateau")


def test_keep_last_with_cosine_runs_the_whole_schedule():
    kinds = callback_kinds({**SMALL_RECIPE, "schedule": "cosine", "keep": "last"})
    assert "ModelCheckpoint" not in kinds and "EarlyStopping" not in kinds


def test_keep_last_with_plateau_stops_early_and_keeps_the_weights_it_stopped_with():
    kinds = callback_kinds({**SMALL_RECIPE, "schedule": "plateau", "keep": "last"})
    assert "ModelCheckpoint" not in kinds
    assert not kinds["EarlyStopping"].restore_best_weights
    assert "ReduceLROnPlateau" in kinds


def test_the_best_epoch_is_the_best_val_accuracy_and_the_loss_only_breaks_ties():
    """`keep: best` keeps the epoch with the best val accuracy, ties to the lower loss: a score of accuracy minus
    0.01 x loss kept an epoch with one image of 750 fewer right, for a loss 0.2 lower."""
    history = {"val_accuracy": [0.9800, 0.9787, 0.9800, 0.5], "val_loss": [0.45, 0.25, 0.40, float("inf")]}
    summary = training.summarize_history(history, [1.0] * 4, "best")
    assert (summary["best_epoch"], summary["kept_epoch"], summary["best_val_accuracy"]) == (3, 3, 0.98)
    one_image = 1 / 1_000_000  # on a million validation images, the loss still never outweighs one
    assert training.selection_score(0.5 + one_image, 50.0) > training.selection_score(0.5, 0.0)
    assert training.selection_score(0.9, 0.1) > training.selection_score(0.9, 0.2) > training.selection_score(0.9, 1e9)


@pytest.mark.parametrize("keep", ["last", "best"])
def test_the_saved_model_is_the_epoch_keep_names(keep, mnist, tmp_path):
    """A real 4-epoch run: the model written is the final epoch's (last) or the best val score's (best),
    and metrics/train.json's kept_* numbers describe that epoch."""
    images, labels = mnist
    parts = [np.flatnonzero(labels == c) for c in range(10)]
    train = np.concatenate([p[:40] for p in parts])
    val = np.concatenate([p[40:60] for p in parts])
    x = images[..., None].astype(np.float32) / 255.0
    t = {**SMALL_RECIPE, "epochs": 4, "keep": keep}
    path = tmp_path / "m.keras"
    run = training.train_model("compact", (x[train], labels[train]), (x[val], labels[val]), num_classes=10,
                               augment=Augment(),
                               recipe=training.Recipe.from_params(t), seed=0, model_path=path, quiet=True)
    summary = training.summarize_history(run.history, run.seconds, keep)
    scores = [training.selection_score(a, v) for a, v in zip(run.history["val_accuracy"], run.history["val_loss"],
                                                                   strict=True)]
    assert summary["epochs_run"] == 4
    assert summary["kept_epoch"] == (4 if keep == "last" else int(np.argmax(scores)) + 1)
    saved = keras.models.load_model(path, compile=False)
    val_accuracy = float((saved.predict(x[val], verbose=0).argmax(1) == labels[val]).mean())
    assert val_accuracy == pytest.approx(summary["kept_val_accuracy"], abs=1e-6)
    if keep == "last":  # the weights training ended with, exactly
        assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), run.model.get_weights(), strict=True))


def test_a_sigterm_a_library_swallowed_still_stops_training_and_writes_no_model(mnist, tmp_path):
    """Keras, saving the best model so far, catches every exception (its fallback for a disk it cannot use), so a
    SIGTERM that arrived there was lost: training ran on to its end and wrote the model. Now it stops at the end
    of the epoch it is in, and the best model so far is removed as on any stop."""
    from digitpipe.errors import Terminated

    images, labels = mnist
    parts = [np.flatnonzero(labels == c) for c in range(10)]
    train, val = np.concatenate([p[:20] for p in parts]), np.concatenate([p[20:30] for p in parts])
    epochs = []

    class SwallowsASigterm(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                swallow_a_sigterm()

    path = tmp_path / "m.keras"
    with sigterm_taken(), pytest.raises(Terminated):
        training.train_model("mini", (images[train], labels[train]), (images[val], labels[val]), num_classes=10,
                             augment=Augment(), recipe=training.Recipe.from_params({**SMALL_RECIPE, "keep": "best"}),
                             seed=0, model_path=path, quiet=True, extra_callbacks=(SwallowsASigterm(),))
    assert epochs == [0]
    assert sorted(tmp_path.iterdir()) == []  # neither the model nor the best one so far

def test_images_used_as_decoded_are_standardised_inside_the_model_and_its_exports(mnist, small_model, tmp_path):
    """Under data.normalize: none the model's first layer maps the training pixels to mean 0 and standard
    deviation 1 (dark marks on white paper would otherwise feed it a sheet of ones, where training can collapse);
    it is a layer of the model, so every export applies it. MNIST-form models have no such layer."""
    from digitpipe.card import Card
    from digitpipe.export import calibration_images, export_saved_model, int8_tflite, to_tflite
    from digitpipe.inference import Predictor
    from digitpipe.limits import as_batch
    from tests.helpers import small_model_split

    images, labels = mnist
    paper = 255 - images  # dark ink on white: how letters, icons and scans come, used as decoded
    train, val, test = small_model_split(labels)
    path = tmp_path / "none.keras"
    card = Card(classes=[f"digit {i}" for i in range(10)], normalize="none", params={})
    training.train_model("digitnet", (paper[train], labels[train]), (paper[val], labels[val]), num_classes=10,
                         augment=Augment(rotation=10, translation=0.1, zoom=0.1),
                         recipe=training.Recipe.from_params(SMALL_RECIPE), seed=0, model_path=path, quiet=True,
                         card=card)
    keras_model = Predictor.load(path)
    standardize = keras_model.model.get_layer("standardize")
    seen = standardize(as_batch(paper[train])).numpy()
    assert abs(seen.mean()) < 1e-3 and abs(seen.std() - 1) < 1e-3
    reference = keras_model.probabilities(paper[test])
    assert (reference.argmax(1) == labels[test]).mean() > 0.9
    saved = export_saved_model(keras_model.model, tmp_path / "saved", keras_model.card)
    (tmp_path / "m.tflite").write_bytes(to_tflite(saved))
    for exported in (saved, tmp_path / "m.tflite"):
        assert np.abs(Predictor.load(exported).probabilities(paper[test]) - reference).max() < 1e-5
    (tmp_path / "m8.tflite").write_bytes(int8_tflite(keras_model.model, keras_model.card,
                                                     calibration_images(paper[train])))
    int8 = Predictor.load(tmp_path / "m8.tflite").probabilities(paper[test])
    assert (int8.argmax(1) == reference.argmax(1)).mean() > 0.97
    assert "standardize" not in [layer.name for layer in Predictor.load(small_model).model.layers]


def test_balanced_class_weights_give_every_class_the_same_total_weight():
    y = np.array([0] * 6 + [1] * 2 + [2] * 4)
    weights = training.class_weights(y, 3, "balanced")
    totals = np.bincount(y, weights=weights[y])
    assert np.allclose(totals, len(y) / 3)  # every class adds up to the same weight...
    assert weights[1] == pytest.approx(3 * weights[0])  # ...so a class with a third of the images weighs 3x each
    assert np.allclose(training.class_weights(np.repeat(np.arange(4), 5), 4, "balanced"), 1.0)  # balanced data: 1
    assert training.class_weights(y, 3, "none") is None
    _, labels, weight = next(iter(training.make_dataset(np.zeros((12, 28, 28), np.uint8), y, 12, 3, weights=weights)))
    assert np.allclose(weight.numpy(), weights[y])  # each image carries its class's weight into the fit


def long_tailed(labels: np.ndarray, rare: int, n: int, n_rare: int) -> np.ndarray:
    """Indices of ``n`` images of every digit but ``rare``, and of ``n_rare`` of it."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:n_rare if c == rare else n] for c in range(10)]))


def test_balanced_class_weights_make_a_rare_class_recognised_more_often(mnist, tmp_path):
    """Digit 9 has a tenth of the others' images: the model trained with `train.class_weight: balanced` gives it
    more of its probability on unseen digits than the same model trained with every image counting once."""
    images, labels = mnist
    train, val = long_tailed(labels, 9, 60, 6), long_tailed(labels[1000:], 9, 20, 20) + 1000
    test = np.flatnonzero(np.isin(np.arange(len(labels)), np.concatenate([train, val]), invert=True))[:1500]
    rare_share = {}
    for how in ("none", "balanced"):
        run = training.train_model("compact", (images[train], labels[train]), (images[val], labels[val]),
                                   num_classes=10, augment=Augment(),
                                   recipe=training.Recipe.from_params({**SMALL_RECIPE, "epochs": 4,
                                                                       "class_weight": how}),
                                   seed=0, model_path=tmp_path / f"{how}.keras", quiet=True)
        probs = run.model.predict(images[test][..., None].astype(np.float32) / 255.0, verbose=0)
        rare_share[how] = float(probs[:, 9].mean())
    assert rare_share["balanced"] > 1.5 * rare_share["none"]


def test_the_distributed_fit_weighs_classes_as_keras_fit_does(mnist, tmp_path):
    """`train.distribute` runs its own training loop; with class weights it must give the loss and accuracy Keras'
    `fit` gives (here on one device under a distribution strategy, the same batches from the same weights)."""
    import tensorflow as tf

    images, labels = mnist
    train, val = long_tailed(labels, 9, 30, 3), long_tailed(labels[1000:], 9, 10, 10) + 1000
    history = {}
    for how in ("none", "balanced"):
        for strategy in (None, tf.distribute.MirroredStrategy(["/cpu:0"])):
            run = training.train_model("mini", (images[train], labels[train]), (images[val], labels[val]),
                                       num_classes=10, augment=Augment(),
                                       recipe=training.Recipe.from_params({**SMALL_RECIPE, "epochs": 2,
                                                                           "class_weight": how}),
                                       seed=0, model_path=tmp_path / f"{how}.keras", quiet=True, strategy=strategy)
            history[how, strategy is None] = run.history
    for how in ("none", "balanced"):  # the first epoch: from the second on, the loops reshuffle differently
        keras_fit, loop = history[how, True], history[how, False]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert loop[key][0] == pytest.approx(keras_fit[key][0], rel=1e-5), (how, key)
    assert abs(history["balanced", True]["val_loss"][0] / history["none", True]["val_loss"][0] - 1) > 0.02


def test_no_batch_leaves_a_replica_without_an_image():
    """On 2 replicas a last batch of 1 would give one of them nothing: training leaves it out (another image each
    epoch, as the set is reshuffled), validation joins it to the batch before, so every image is still scored."""
    x, y = np.zeros((41, 28, 28), np.uint8), np.arange(41) % 10
    sizes = lambda ds: [int(b[0].shape[0]) for b in ds]  # noqa: E731
    assert sizes(training.make_dataset(x, y, 10, 10, replicas=2)) == [10, 10, 10, 11]
    assert sizes(training.make_dataset(x, y, 10, 10, shuffle_seed=0, replicas=2)) == [10, 10, 10, 10]
    assert sizes(training.make_dataset(x, y, 10, 10)) == [10, 10, 10, 10, 1]  # one device: as it always was
    labels = np.concatenate([b[1].numpy().argmax(1) for b in training.make_dataset(x, y, 10, 10, replicas=2)])
    assert labels.tolist() == y.tolist()  # every validation image once, in order
    with pytest.raises(DigitpipeError, match="^1 validation images cannot be shared between 2 replicas"):
        training.make_dataset(x[:1], y[:1], 10, 10, replicas=2, name="validation images")


def test_an_int8_model_the_fast_kernels_refuse_is_run_by_tflites_own(tmp_path):
    """A training run that collapsed leaves units that barely ever fire; their int8 output scale comes out a
    million times finer than their weights', and XNNPACK refuses the model. The export stage must still measure
    it (and predict run it), with TFLite's reference kernels, rather than stop the pipeline."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from digitpipe.card import Card
    from digitpipe.export import int8_tflite
    from digitpipe.inference import Predictor

    keras.utils.set_random_seed(0)
    model = make_model("mini")
    images = np.random.default_rng(0).random((100, 28, 28, 1)).astype(np.float32)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    w, b = conv.get_weights()
    top = keras.ops.convert_to_numpy(keras.ops.conv(images, w) + b).reshape(-1, len(b)).max(0)
    conv.set_weights([w, b - top + 1e-6])  # every unit's largest output on these images: 1e-6
    path = tmp_path / "collapsed.tflite"
    path.write_bytes(int8_tflite(model, Card(), images))
    with pytest.raises(RuntimeError, match="XNNPACK"):  # the premise: the default kernels refuse it
        Interpreter(model_path=str(path)).allocate_tensors()
    probs = Predictor.load(path).probabilities(images[:20])
    assert probs.shape == (20, 10)
    assert np.abs(probs - model.predict(images[:20], verbose=0)).max() < 0.02
