"""The Markdown report of the key plots (for CI job summaries)."""

from __future__ import annotations

import pandas as pd

from digitpipe.report import confusion_markdown, curves_markdown, sure_markdown


def test_confusion_rows_are_actual_and_errors_bold():
    frame = pd.DataFrame({"actual": [0, 0, 1, 2], "predicted": [0, 1, 1, 2]})
    lines = confusion_markdown(frame).splitlines()
    assert lines[0] == "| actual \\ predicted | 0 | 1 | 2 |"
    assert lines[2] == "| **0** | 1 | **1** |  |"
    assert lines[3] == "| **1** |  | 1 |  |"


def test_confusion_keeps_the_label_order_it_is_given():
    """The per-class table and confusion.png list classes in label order; the Markdown matrix does too."""
    classes = ["my class", "café", "日本", "1st"]
    frame = pd.DataFrame({"actual": ["日本", "1st", "café"], "predicted": ["日本", "café", "café"]})
    lines = confusion_markdown(frame, classes).splitlines()
    assert lines[0] == "| actual \\ predicted | my class | café | 日本 | 1st |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| **my class**", "| **café**", "| **日本**", "| **1st**"]
    assert lines[5] == "| **1st** |  | **1** |  |  |"


def test_curves_show_every_fifth_epoch_and_the_last(tmp_path):
    for split in ("train", "eval"):
        (tmp_path / split).mkdir()
        for key in ("accuracy", "loss"):
            pd.DataFrame({"step": range(12), key: [i / 100 for i in range(12)]}).to_csv(
                tmp_path / split / f"{key}.tsv", sep="\t", index=False)
    rows = curves_markdown(tmp_path).splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| 1", "| 5", "| 10", "| 12"]
    assert rows[-1] == "| 12 | 0.1100 | 0.1100 | 0.1100 | 0.1100 |"


def test_answering_only_when_sure_counts_the_answered_and_their_errors():
    frame = pd.DataFrame({"actual": [0, 1, 1, 2, 2], "predicted": [0, 1, 2, 2, 0],
                          "confidence": [0.9995, 0.95, 0.992, 0.6, 0.3]})
    lines = sure_markdown(frame).splitlines()
    assert lines[0].split(" | ")[1:3] == ["answered", "left to a person"]
    assert lines[2:] == ["| 50% | 4 (80.0%) | 1 | 1 | 75.00% |",    # the 0.3 (wrong) goes to a person
                         "| 90% | 3 (60.0%) | 2 | 1 | 66.67% |",
                         "| 99% | 2 (40.0%) | 3 | 1 | 50.00% |",    # the confident 1 -> 2 stays
                         "| 99.9% | 1 (20.0%) | 4 | 0 | 100.00% |"]
