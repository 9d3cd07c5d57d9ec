"""Stage `plot`: the PNGs a person looks at, from the manifests, training logs and predictions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitpipe import plots
from digitpipe.errors import run_main
from digitpipe.files import read_csv, read_json, read_training_log
from digitpipe.images import load_inputs
from digitpipe.metrics import confusion_matrix
from digitpipe.params import load_params

SPLITS = Path("data/splits")
PREDICTIONS = Path("plots/data/predictions.csv")
CALIBRATION = Path("plots/data/calibration.csv")
LOGS = Path("dvclive/plots/metrics")
OUT = Path("plots")
PER_CLASS_SAMPLES = 10
MAX_MISTAKES = 40


def images_of(paths: list[str], root: Path) -> list:
    return list(load_inputs([root / p for p in paths])[..., 0])


def main() -> None:
    params = load_params(["data"])
    classes, root = params["data"]["classes"], Path(params["data"]["dir"])
    written = []

    def save(fig, name: str) -> None:
        plots.save(fig, OUT / name)
        written.append(name)

    splits = {name: read_csv(SPLITS / f"{name}.csv") for name in ("train", "val", "test")}
    counts = pd.DataFrame({name: frame["label"].value_counts().reindex(classes, fill_value=0)
                           for name, frame in splits.items()})
    save(plots.class_balance(counts), "class_balance.png")

    train = splits["train"]
    picks = {c: images_of(train[train["label"] == c]["path"].head(PER_CLASS_SAMPLES).tolist(), root) for c in classes}
    save(plots.sample_grid(picks, "Sample training digits per class"), "samples.png")

    save(plots.training_curves(read_training_log(LOGS), read_json("metrics/train.json")["best_epoch"]), "curves.png")

    preds = read_csv(PREDICTIONS, "predictions")
    preds["actual"], preds["predicted"] = preds["actual"].astype(str), preds["predicted"].astype(str)
    lookup = {c: i for i, c in enumerate(classes)}
    matrix = confusion_matrix(preds["actual"].map(lookup).to_numpy(), preds["predicted"].map(lookup).to_numpy(),
                              len(classes))
    save(plots.confusion_figure(matrix, classes), "confusion.png")

    correct = (preds["actual"] == preds["predicted"]).to_numpy()
    wrong = preds[~correct].sort_values(["confidence", "path"], ascending=[False, True]).head(MAX_MISTAKES)
    captions = [f"true {r.actual}, said {r.predicted}\n{r.confidence:.0%} sure" for r in wrong.itertuples()]
    title = f"Test mistakes, most confident first ({int((~correct).sum())} of {len(preds)})"
    save(plots.mistakes_gallery(images_of(wrong["path"].tolist(), root), captions, title=title), "mistakes.png")

    save(plots.confidence_histograms(preds["confidence"].to_numpy(), correct), "confidence.png")
    save(plots.reliability_diagram(read_csv(CALIBRATION, "calibration"), read_json("metrics/eval.json")["ece"]),
         "reliability.png")
    print(f"plot: wrote {len(written)} PNGs to {OUT}/: {', '.join(written)}")


if __name__ == "__main__":
    run_main(main)
