"""Train with ``train.distribute: mirrored`` on 2 logical CPUs where the last batch of both the training and the
validation images would leave a replica without an image (170 and 40 digits of all ten classes in batches of 13:
1 left over each).

    python -m tests.distributed.short_batches OUT.json

Before, TensorFlow's oneDNN max-pooling gradient aborted the process on the empty share; writes the history.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from digitpipe import distribute
from digitpipe.runtime import load_keras


def main(out: Path) -> None:
    load_keras(pinned=True)
    strategy = distribute.make_strategy("mirrored", 2, None, 60)
    from digitpipe import training
    from digitpipe.models import Augment
    from digitpipe.sample import load_mnist_sample

    images, labels = load_mnist_sample()  # sorted by class: take 17 and then 4 of each
    per_class = [np.flatnonzero(labels == c) for c in range(10)]
    train, val = (np.sort(np.concatenate([p[a:b] for p in per_class])) for a, b in ((0, 17), (17, 21)))
    recipe = training.Recipe.from_params({"epochs": 2, "batch_size": 13, "lr": 0.003, "schedule": "cosine",
                                          "warmup_epochs": 0, "label_smoothing": 0.1, "weight_decay": 0.0001,
                                          "class_weight": "none", "keep": "last", "patience": 6, "lr_patience": 3,
                                          "lr_factor": 0.5})
    run = training.train_model("mini", (images[train], labels[train]), (images[val], labels[val]),
                               num_classes=10, augment=Augment(rotation=10, translation=0.1, zoom=0.1), recipe=recipe,
                               seed=0, model_path=out.with_suffix(".keras"), strategy=strategy)
    out.write_text(json.dumps({key: [float(v) for v in values] for key, values in run.history.items()}))
    print("history:", out, flush=True)
    assert np.isfinite(run.history["loss"]).all()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
