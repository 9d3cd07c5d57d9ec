"""Train a small batch-normed CNN with ``train.distribute`` = KIND on real digits and write what a test compares.

    python -m tests.distributed.replica_train KIND OUT_DIR

Run once for ``none`` and ``mirrored``, and under ``python -m digitpipe.launch --workers 2 --`` for
``multi_worker``. Every process writes ``OUT_DIR/<task>.json`` (its weights' fingerprint, val history and
accuracy on held-out digits); only the chief writes ``OUT_DIR/model.keras``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from digitpipe import distribute
from digitpipe.runtime import load_keras

TRAIN, VAL, TEST = 100, 30, 100  # digits per class
ARCH = "batch_normed"  # registered below, for this test only
RECIPE = {"epochs": 3, "batch_size": 64, "lr": 0.003, "schedule": "cosine", "warmup_epochs": 1,
          "label_smoothing": 0.1, "weight_decay": 0.0001, "class_weight": "none", "keep": "last",
          "patience": 6, "lr_patience": 3, "lr_factor": 0.5}


def batch_normed() -> list:
    """Two conv blocks with batch norm: the replicas end with the same weights only if the statistics of
    batch norm are synchronised across them (the default arch has no batch norm to test that with)."""
    from keras import layers

    def block(filters: int) -> list:
        return [layers.Conv2D(filters, 3, use_bias=False), layers.BatchNormalization(momentum=0.9), layers.ReLU(),
                layers.MaxPooling2D()]

    return [*block(32), *block(64), layers.Flatten(), layers.Dropout(0.3)]


def main(kind: str, out: Path) -> None:
    cluster = distribute.cluster_from_env() if kind == "multi_worker" else None
    load_keras(pinned=True)
    from digitpipe import models, training
    from digitpipe.models import Augment
    from digitpipe.sample import load_mnist_sample

    models.BUILDERS[ARCH] = batch_normed
    images, labels = load_mnist_sample()
    parts = [np.flatnonzero(labels == c) for c in range(10)]
    train, val, test = (np.sort(np.concatenate([p[a:b] for p in parts]))
                        for a, b in ((0, TRAIN), (TRAIN, TRAIN + VAL), (TRAIN + VAL, TRAIN + VAL + TEST)))
    watchdog = distribute.start_watchdog(cluster) if cluster else None
    strategy = distribute.make_strategy(kind, 2, cluster, 60)
    chief = cluster is None or cluster.is_chief
    run = training.train_model(ARCH, (images[train], labels[train]), (images[val], labels[val]), num_classes=10,
                               augment=Augment(rotation=10, translation=0.1, zoom=0.1),
                               recipe=training.Recipe.from_params(RECIPE), seed=0, model_path=out / "model.keras",
                               quiet=True, strategy=strategy, chief=chief, watchdog=watchdog)
    probs = run.model.predict(images[test][..., None].astype(np.float32) / 255.0, verbose=0)
    facts = {"replicas": strategy.num_replicas_in_sync if strategy else 1,
             "fingerprint": distribute.fingerprint(run.model.get_weights()),
             "val_accuracy": [float(v) for v in run.history["val_accuracy"]],
             "test_accuracy": float(np.mean(probs.argmax(1) == labels[test]))}
    distribute.barrier(strategy if cluster else None, watchdog)
    if watchdog:
        watchdog.stop()
    name = cluster.name.replace(" ", "") if cluster else kind
    (out / f"{name}.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
