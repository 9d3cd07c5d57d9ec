"""The Markdown report of the key plots (for CI job summaries)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from digitpipe.report import confusion_markdown, confusions_markdown, curves_markdown, per_class_markdown, sure_markdown


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


def test_confusions_of_many_classes_are_listed_most_frequent_first():
    frame = pd.DataFrame({"actual": list("bbaccca"), "predicted": list("cccaaca")})
    lines = confusions_markdown(frame, ["a", "b", "c"], top=2).splitlines()
    assert lines[0] == "| actual | predicted | test images |"
    assert lines[2:] == ["| b | c | 2 |", "| c | a | 2 |"]  # ties in label order; a -> c (1) is past the top 2
    assert confusions_markdown(frame[frame.actual == frame.predicted], ["a", "b", "c"]) == "No errors."


def test_per_class_scores_of_many_classes_take_a_row_each():
    few = pd.DataFrame({"class": list("012"), "precision": [1, .5, 1], "recall": [1, 1, .5], "f1": [1, .667, .667],
                        "support": [2, 1, 2]})
    assert per_class_markdown(few).splitlines()[2] == "| F1 | 1.000 | 0.667 | 0.667 |"
    many = pd.DataFrame({"class": [f"class {i}" for i in range(40)], "precision": [0.5] * 40, "recall": [0.25] * 40,
                         "f1": [1 / 3] * 40, "support": [4] * 40})
    lines = per_class_markdown(many).splitlines()
    assert lines[0] == "| class | precision | recall | F1 | test images |"
    assert len(lines) == 42 and lines[-1] == "| class 39 | 0.500 | 0.250 | 0.333 | 4 |"


def write_plot_data(actual: np.ndarray, predicted: np.ndarray, classes: list[str], rng: np.random.Generator) -> None:
    """What evaluate and train write for the report, in this folder, for these test predictions."""
    from digitpipe import report

    Path("plots/data").mkdir(parents=True)
    pd.DataFrame({"path": [f"{a}/{i}.png" for i, a in enumerate(actual)], "actual": actual, "predicted": predicted,
                  "confidence": rng.random(len(actual))}).to_csv(report.PREDICTIONS, index=False)
    pd.DataFrame({"class": classes, "precision": 0.8, "recall": 0.8, "f1": 0.8, "accuracy": 0.8,
                  "support": 5}).to_csv(report.PER_CLASS, index=False)
    for split in ("train", "eval"):
        (report.LOGS / split).mkdir(parents=True)
        for key in ("accuracy", "loss"):
            pd.DataFrame({"step": range(3), key: [0.5, 0.6, 0.7]}).to_csv(report.LOGS / split / f"{key}.tsv",
                                                                          sep="\t", index=False)


def test_the_report_of_62_classes_fits_a_terminal(tmp_path, monkeypatch):
    import string

    from digitpipe import report

    classes = list(string.digits + string.ascii_uppercase + string.ascii_lowercase)
    rng = np.random.default_rng(0)
    actual = np.repeat(classes, 5)
    predicted = np.where(rng.random(len(actual)) < 0.8, actual, rng.choice(classes, len(actual)))
    monkeypatch.chdir(tmp_path)
    write_plot_data(actual, predicted, classes, rng)
    text = report.report()
    assert "### Most frequent confusions (test set: 310 images" in text
    assert max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.parametrize("classes", [["01", "02", "10"], ["true", "false"], ["+1", "-1"], ["1", "01", "1.0"]])
def test_class_names_that_read_as_numbers_or_booleans_stay_as_written(classes, tmp_path, monkeypatch):
    """pandas read `01` as 1 and `true` as True: the plot stage's confusion matrix failed with an IndexError,
    the report named the classes `1`, `True`, and merged `1` with `01`."""
    from digitpipe import report
    from digitpipe.files import read_csv

    monkeypatch.chdir(tmp_path)
    actual = np.repeat(classes, 4)
    predicted = actual.copy()
    predicted[0] = classes[1]  # one error: the first class read as the second
    write_plot_data(actual, predicted, classes, np.random.default_rng(0))
    frame = read_csv(report.PREDICTIONS)
    assert list(frame["actual"]) == list(actual) and list(frame["predicted"]) == list(predicted)
    assert list(read_csv(report.PER_CLASS)["class"]) == classes
    text = report.report()
    assert f"| actual \\ predicted | {' | '.join(classes)} |" in text
    assert f"| **{classes[0]}** | 3 | **1** |" in text
    assert f"test set: {len(actual)} images, 1 error)" in text


def test_plot_data_that_is_not_the_evaluate_stages_is_one_line_naming_the_file(tmp_path):
    """A file cut short, emptied, edited or from other classes ended in a traceback, or in tables of it."""
    import subprocess
    import sys

    from tests.helpers import ENV, ROOT

    (tmp_path / "plots" / "data").mkdir(parents=True)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    good = (ROOT / "plots/data/predictions.csv").read_text()
    (tmp_path / "plots/data/per_class.csv").write_text((ROOT / "plots/data/per_class.csv").read_text())
    fix = "`dvc repro` makes it again, or `git checkout -- plots/data/predictions.csv` brings back the committed one"
    cases = {
        good[:20000]: f"plot data plots/data/predictions.csv is damaged (line {good[:20000].count(chr(10)) + 1}: "
                      "confidence '' is not a probability)",
        "": "predictions plots/data/predictions.csv is damaged (No columns to parse from file)",
        good.replace("path,actual,", "path,truth,", 1): "plot data plots/data/predictions.csv is damaged (no column "
                                                        "actual)",
        good.splitlines()[0] + "\n": "plot data plots/data/predictions.csv is damaged (no rows)",
        good.replace(",0,0,", ",0,X,", 1): "plot data plots/data/predictions.csv is damaged (class(es) X that "
                                           "plots/data/per_class.csv does not list)",
        good.replace(",0.9", ",9.9", 1): "plot data plots/data/predictions.csv is damaged (line 2: confidence",
    }
    for text, message in cases.items():
        (tmp_path / "plots/data/predictions.csv").write_text(text)
        proc = subprocess.run([sys.executable, "-m", "digitpipe.report"], capture_output=True, text=True,
                              env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
        assert (proc.returncode, proc.stdout) == (2, ""), message
        assert proc.stderr.startswith(f"error: {message}") and proc.stderr.endswith(f"{fix}\n"), proc.stderr
    if Path("/dev/full").exists():  # an output that cannot be written: one line, not an OSError's traceback
        import shutil

        shutil.copytree(ROOT / "dvclive/plots/metrics", tmp_path / "dvclive/plots/metrics")
        (tmp_path / "plots/data/predictions.csv").write_text(good)
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "digitpipe.report"], stdout=full, stderr=subprocess.PIPE,
                                  text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (2, "error: cannot write the output: No space left on device\n")


class Cells(HTMLParser):
    """The text of each cell of each row of rendered HTML tables."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def rendered(markdown: str) -> list[list[str]]:
    """What a reader sees: the cells' text once a CommonMark renderer with tables (as GitHub's) has read it."""
    cells = Cells()
    cells.feed(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown))
    return cells.rows


MARKUP_NAMES = ["a|b", "*bold*", "x_y_", "<b>", "back\\slash", "`code`", "[link](x)", "~~gone~~", "&amp;", "$1-$2"]


def test_class_names_that_look_like_markup_show_as_written_in_every_table():
    """A name with a `|` must not add a cell, and `*x*` must not turn into emphasis: the report shows names as
    the stages' files and plots do."""
    names = MARKUP_NAMES
    frame = pd.DataFrame({"actual": names + [names[0]], "predicted": names[1:] + names[:1] + [names[0]]})
    matrix = rendered(confusion_markdown(frame, names))
    assert matrix[0] == ["actual \\ predicted", *names]
    assert [row[0] for row in matrix[1:]] == names and all(len(row) == len(names) + 1 for row in matrix)
    assert matrix[1][2] == "1" and matrix[1][1] == "1"  # a|b taken once for itself, once for *bold*
    listed = rendered(confusions_markdown(frame, names))
    assert [row[:2] for row in listed[1:]] == [[a, p] for a, p in zip(names, names[1:] + names[:1], strict=True)]
    scores = pd.DataFrame({"class": names, "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1})
    assert rendered(per_class_markdown(scores))[0] == ["class", *names]
    assert re.search(r"(?<!\\)\$", per_class_markdown(scores)) is None  # GitHub would typeset $1-$ as math
    many = pd.concat([scores] * 2, ignore_index=True).assign(**{"class": names + [f"{n}2" for n in names]})
    assert [row[0] for row in rendered(per_class_markdown(many))[1:]] == list(many["class"])
