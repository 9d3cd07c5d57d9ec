"""Model builders and a short real training run on real digits."""

from __future__ import annotations

import numpy as np
import pytest

from digitpipe.params import ARCHS
from digitpipe.runtime import load_keras

keras = load_keras()

from digitpipe import training  # noqa: E402
from digitpipe.models import augmentation, make_model  # noqa: E402

RECIPE = {"lr": 0.003, "schedule": "plateau", "warmup_epochs": 0, "label_smoothing": 0.0, "weight_decay": 0.0,
          "epochs": 2}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_maps_a_batch_to_probabilities(arch):
    model = make_model(arch, num_classes=10, augment=augmentation(10, 0.1, 0.1, seed=0))
    probs = np.asarray(model(np.zeros((2, 28, 28, 1), dtype=np.float32), training=False))
    assert probs.shape == (2, 10)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_augmentation_changes_images_only_while_training():
    aug = augmentation(20, 0.2, 0.2, seed=0)
    x = np.zeros((1, 28, 28, 1), dtype=np.float32)
    x[0, 10:18, 12:16] = 1.0
    assert np.array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.array_equal(np.asarray(aug(x, training=True)), x)


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
