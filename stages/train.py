"""Stage `train`: fit model.arch on the prepared train split, keep the best epoch by val accuracy."""

from __future__ import annotations

from pathlib import Path

from digitpipe.errors import run_main
from digitpipe.files import write_json
from digitpipe.limits import MODEL
from digitpipe.params import load_params
from digitpipe.prepared import load_prepared

PREPARED = Path("data/prepared")
LOGS = Path("dvclive")
METRICS = Path("metrics/train.json")
TIME = Path("metrics/time.json")
PLATFORM = Path("metrics/platform.json")


def main() -> None:
    params = load_params(["seed", "augment", "model", "train"])
    train, val = load_prepared(PREPARED / "train.npz"), load_prepared(PREPARED / "val.npz")
    from digitpipe.runtime import load_keras

    load_keras(pinned=True)  # only now: bad params and missing data are refused before TensorFlow's slow import
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from digitpipe import headline, training
    from digitpipe.card import Card
    from digitpipe.runtime import platform_facts

    seed, t, arch = params["seed"], params["train"], params["model"]["arch"]
    card = Card(classes=train.classes, normalize=train.normalize, params=params)
    print(f"train: {len(train.x)} train / {len(val.x)} val images ({len(train.classes)} classes, "
          f"data.normalize={train.normalize}), arch {arch}, {t['schedule']} lr {t['lr']}, "
          f"batch {t['batch_size']}, up to {t['epochs']} epochs")

    live = Live(dir=str(LOGS), save_dvc_exp=False, dvcyaml=False, report=None)
    run = training.train_model(arch, (train.x, train.y), (val.x, val.y), len(train.classes), params["augment"], t,
                               seed, MODEL, extra_callbacks=(DVCLiveCallback(live=live),), card=card)
    summary = training.summarize_history(run.history, run.seconds)
    write_json(summary, METRICS)
    write_json(headline.timing(summary), TIME)
    write_json(platform_facts(), PLATFORM)
    print(f"train: best val accuracy {summary['best_val_accuracy']:.4f} at epoch {summary['best_epoch']} "
          f"of {summary['epochs_run']}, {summary['train_seconds']} s; temperature {run.temperature} (fitted on "
          f"val) -> {MODEL}, {METRICS}, {TIME}, {PLATFORM}, {LOGS}/")


if __name__ == "__main__":
    run_main(main)
