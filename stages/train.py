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
    from digitpipe.models import augmentation, make_model
    from dvclive import Live

    seed, t, classes = params["seed"], params["train"], params["data"]["classes"]
    root = Path(params["data"]["dir"])
    x_train, y_train = training.load_split(read_csv(SPLITS / "train.csv"), root, classes)
    x_val, y_val = training.load_split(read_csv(SPLITS / "val.csv"), root, classes)
    print(f"train: {len(x_train)} train / {len(x_val)} val images, arch {params['model']['arch']}, "
          f"lr {t['lr']}, batch {t['batch_size']}, up to {t['epochs']} epochs")

    training.seed_everything(seed)
    model = make_model(params["model"]["arch"], len(classes), augmentation(**params["augment"], seed=seed))
    training.compile_model(model, t["lr"])
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    log = training.EpochLog(len(x_train), t["epochs"])
    live = Live(dir=str(LOGS), save_dvc_exp=False, dvcyaml=False, report=None)
    callbacks = [*training.make_callbacks(MODEL, t["patience"], t["lr_patience"], t["lr_factor"]),
                 log, DVCLiveCallback(live=live)]
    history = model.fit(
        training.make_dataset(x_train, y_train, t["batch_size"], shuffle_seed=seed),
        validation_data=training.make_dataset(x_val, y_val, t["batch_size"]),
        epochs=t["epochs"], callbacks=callbacks, shuffle=False, verbose=0,  # shuffled by the dataset
    )
    summary = training.summarize_history(history.history, log.seconds)
    write_json(summary, METRICS)
    print(f"train: best val accuracy {summary['best_val_accuracy']:.4f} at epoch {summary['best_epoch']} "
          f"of {summary['epochs_run']}, {summary['train_seconds']} s -> {MODEL}, {METRICS}, {LOGS}/")


if __name__ == "__main__":
    run_main(main)
