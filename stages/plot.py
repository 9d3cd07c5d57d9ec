"""Stage `plot`: PNGs of sample digits, training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitpipe import plots
from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import read_csv, read_json
from digitpipe.images import load_inputs
from digitpipe.metrics import confusion_matrix
from digitpipe.params import load_params

TRAIN = Path("data/splits/train.csv")
PREDICTIONS = Path("plots/data/predictions.csv")
LOGS = Path("dvclive/plots/metrics")
OUT = Path("plots")
PER_CLASS_SAMPLES = 10


def read_history(logs: Path) -> pd.DataFrame:
    """DVCLive's per-epoch TSVs as one frame: epoch, accuracy, val_accuracy, loss, val_loss."""
    frame = pd.DataFrame()
    for split, prefix in (("train", ""), ("eval", "val_")):
        for key in ("accuracy", "loss"):
            path = logs / split / f"{key}.tsv"
            if not path.is_file():
                raise DigitpipeError(f"training log {path} not found: run `dvc repro` first")
            tsv = pd.read_csv(path, sep="\t")
            frame[f"{prefix}{key}"] = tsv[key].to_numpy()
            frame["epoch"] = tsv["step"].to_numpy() + 1
    return frame


def main() -> None:
    params = load_params(["data"])
    classes, root = params["data"]["classes"], Path(params["data"]["dir"])

    train = read_csv(TRAIN)
    picks = {c: train[train["label"] == c]["path"].head(PER_CLASS_SAMPLES).tolist() for c in classes}
    images = {c: list(load_inputs([root / p for p in paths])[..., 0]) for c, paths in picks.items()}
    plots.save(plots.sample_grid(images, "Sample training digits per class"), OUT / "samples.png")

    best = read_json("metrics/train.json")["best_epoch"]
    plots.save(plots.training_curves(read_history(LOGS), best), OUT / "curves.png")

    preds = read_csv(PREDICTIONS, "predictions")
    lookup = {c: i for i, c in enumerate(classes)}
    matrix = confusion_matrix(preds["actual"].astype(str).map(lookup).to_numpy(),
                              preds["predicted"].astype(str).map(lookup).to_numpy(), len(classes))
    plots.save(plots.confusion_figure(matrix, classes), OUT / "confusion.png")
    print(f"plot: wrote {OUT}/samples.png, {OUT}/curves.png, {OUT}/confusion.png")


if __name__ == "__main__":
    run_main(main)
