"""Stage `plot`: the PNGs a person looks at, from the prepared images, training logs and predictions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from digitpipe import plots
from digitpipe.errors import run_main
from digitpipe.files import damaged, read_csv, read_json, read_training_log
from digitpipe.metrics import confusion_matrix
from digitpipe.prepared import load_prepared
from digitpipe.split import SPLITS

PREPARED = Path("data/prepared")
PREDICTIONS = Path("plots/data/predictions.csv")
CALIBRATION = Path("plots/data/calibration.csv")
LOGS = Path("dvclive/plots/metrics")
EVALUATION = Path("metrics/details/eval.json")  # the full report: ECE to the last decimal
OUT = Path("plots")
PER_CLASS_SAMPLES = 10
MAX_MISTAKES = 40


def main() -> None:
    written = []

    def save(fig, name: str) -> None:
        plots.save(fig, OUT / name)
        written.append(name)

    splits = {name: load_prepared(PREPARED / f"{name}.npz") for name in SPLITS}
    train, test = splits["train"], splits["test"]
    classes = train.classes
    boxes = plots.undrawable(classes)
    if boxes:
        print(f"plot: no installed font draws the class name(s) {', '.join(boxes)}: they show as empty boxes in "
              "the PNGs; install a font that has them (Noto Sans CJK for Chinese, Japanese and Korean) and run "
              "`dvc repro -f plot`", file=sys.stderr)
    counts = pd.DataFrame({name: np.bincount(s.y, minlength=len(classes)) for name, s in splits.items()},
                          index=classes)
    save(plots.class_balance(counts), "class_balance.png")

    picks = {c: list(train.x[train.y == i][:PER_CLASS_SAMPLES] / 255.0) for i, c in enumerate(classes)}
    title = "Sample training images per class, as the model sees them" + (
        "\n(drawn dark on white; the model's are light on black)" if train.normalize == "mnist" else "")
    cmap = plots.image_colormap(train.normalize)  # digits as ink on paper; other data as it is
    save(plots.sample_grid(picks, title, cmap), "samples.png")

    save(plots.training_curves(read_training_log(LOGS), read_json("metrics/train.json")["kept_epoch"]), "curves.png")

    preds = read_csv(PREDICTIONS, "predictions")  # class names as written: `01` and `true` stay text
    strays = sorted((set(preds["actual"]) | set(preds["predicted"])) - set(classes))
    if strays:  # dvc repro never leaves them so; a hand-edited or copied-in file can
        raise damaged(PREDICTIONS, "predictions", f"class(es) {', '.join(strays[:5])} that the prepared "
                      "data does not have")
    lookup = {c: i for i, c in enumerate(classes)}
    matrix = confusion_matrix(preds["actual"].map(lookup).to_numpy(), preds["predicted"].map(lookup).to_numpy(),
                              len(classes))
    save(plots.confusion_figure(matrix, classes), "confusion.png")

    correct = (preds["actual"] == preds["predicted"]).to_numpy()
    wrong = preds[~correct].sort_values(["confidence", "path"], ascending=[False, True]).head(MAX_MISTAKES)
    captions = [plots.mistake_caption(r.actual, r.predicted, r.confidence) for r in wrong.itertuples()]
    title = plots.mistakes_title(int((~correct).sum()), len(preds), MAX_MISTAKES)
    row_of = {path: i for i, path in enumerate(test.paths)}  # predictions are in the test split's order
    images = [test.x[row_of[p]] / 255.0 for p in wrong["path"]]
    save(plots.mistakes_gallery(images, captions, title=title, cmap=cmap), "mistakes.png")

    save(plots.confidence_histograms(preds["confidence"].to_numpy(), correct), "confidence.png")
    evaluation = read_json(EVALUATION)
    save(plots.reliability_diagram(read_csv(CALIBRATION, "calibration"), evaluation["ece"], evaluation.get("ece_raw")),
         "reliability.png")
    print(f"plot: wrote {len(written)} PNGs to {OUT}/: {', '.join(written)}")


if __name__ == "__main__":
    run_main(main)
