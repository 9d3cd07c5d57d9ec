"""Stage `train`: fit model.arch on the train manifest, keep the best epoch by val accuracy."""

from __future__ import annotations

from pathlib import Path

from digitpipe.errors import run_main
from digitpipe.files import read_csv, write_json
from digitpipe.params import load_params
from digitpipe.runtime import load_keras

SPLITS = Path("data/splits")
MODEL = Path("models/model.keras")
LOGS = Path("dvclive")
METRICS = Path("metrics/train.json")


def main() -> None:
    params = load_params(["seed", "data", "augment", "model", "train"])
    load_keras()  # only now: bad params are refused before TensorFlow's slow import
    from dvclive.keras import DVCLiveCallback

    from digitpipe import training
    from dvclive import Live

    seed, t, classes = params["seed"], params["train"], params["data"]["classes"]
    root, arch = Path(params["data"]["dir"]), params["model"]["arch"]
    train = training.load_split(read_csv(SPLITS / "train.csv"), root, classes)
    val = training.load_split(read_csv(SPLITS / "val.csv"), root, classes)
    print(f"train: {len(train[0])} train / {len(val[0])} val images, arch {arch}, {t['schedule']} lr {t['lr']}, "
          f"batch {t['batch_size']}, up to {t['epochs']} epochs")

    live = Live(dir=str(LOGS), save_dvc_exp=False, dvcyaml=False, report=None)
    run = training.train_model(arch, train, val, len(classes), params["augment"], t, seed, MODEL,
                               extra_callbacks=(DVCLiveCallback(live=live),))
    summary = training.summarize_history(run.history, run.seconds)
    write_json(summary, METRICS)
    print(f"train: best val accuracy {summary['best_val_accuracy']:.4f} at epoch {summary['best_epoch']} "
          f"of {summary['epochs_run']}, {summary['train_seconds']} s -> {MODEL}, {METRICS}, {LOGS}/")


if __name__ == "__main__":
    run_main(main)
