"""Each figure function draws what it is given, including the edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from digitpipe import plots


def test_every_figure_renders_to_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = {c: [rng.random((28, 28)) for _ in range(3)] for c in "012"}
    history = pd.DataFrame({"epoch": [1, 2, 3], "accuracy": [.5, .7, .8], "val_accuracy": [.6, .7, .75],
                            "loss": [1, .6, .4], "val_loss": [.9, .7, .6]})
    bins = pd.DataFrame({"lower": [.8, .9], "upper": [.9, 1.0], "count": [3, 40],
                         "confidence": [.85, .97], "accuracy": [.66, 1.0]})
    figures = {
        "samples": plots.sample_grid(images),
        "curves": plots.training_curves(history, kept_epoch=2),
        "confusion": plots.confusion_figure(np.array([[5, 1, 0], [0, 6, 0], [2, 0, 0]]), list("012")),
        "balance": plots.class_balance(pd.DataFrame({"train": [7, 7, 7], "val": [2, 2, 1]}, index=list("012"))),
        "mistakes": plots.mistakes_gallery([rng.random((28, 28))] * 3, ["a", "b", "c"]),
        "none": plots.mistakes_gallery([], []),
        "confidence": plots.confidence_histograms(rng.random(50), rng.random(50) > 0.2),
        "reliability": plots.reliability_diagram(bins, ece=0.02),
    }
    for name, fig in figures.items():
        plots.save(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_figure_gives_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        plots.save(plots.confusion_figure(np.eye(3, dtype=int) * 4, list("xyz")), tmp_path / f"{name}.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
