"""The key plots as Markdown text, for places that show no images (a CI job summary, a terminal).

    python -m digitpipe.report >> "$GITHUB_STEP_SUMMARY"

Prints the confusion matrix of the test split, per-class F1, what answering only when sure would give
(``predict --min-confidence``) and the training curves (every few epochs) from the committed plot data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from digitpipe.errors import DigitpipeError, program, run_main
from digitpipe.files import damaged, read_csv, read_training_log
from digitpipe.limits import FEW_CLASSES  # past it, lists instead of a matrix and a one-row table
from digitpipe.metrics import selective
from digitpipe.output import counted

PREDICTIONS = Path("plots/data/predictions.csv")
PER_CLASS = Path("plots/data/per_class.csv")
LOGS = Path("dvclive/plots/metrics")
CONFUSIONS = 15    # the most frequent confusions listed in place of a larger matrix


MARKDOWN = re.compile(r"([\\`*_\[\]<>|~&$])")  # what a cell would read as markup: a cell break, emphasis, code, math


def named(name: object) -> str:
    """A class name as Markdown shows it as written: ``a|b`` stays one cell, ``*x*`` is not emphasis and
    ``$10-$20`` not math (GitHub typesets text between dollar signs)."""
    return MARKDOWN.sub(r"\\\1", str(name))


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def confusion_markdown(predictions: pd.DataFrame, classes: list[str] | None = None) -> str:
    """Rows = actual class, columns = predicted class, in ``classes``' order (the label order, as the per-class
    table and ``confusion.png`` have them; by default the classes seen, shorter names first); errors in bold."""
    actual, predicted = predictions["actual"].astype(str), predictions["predicted"].astype(str)
    classes = classes or sorted(set(actual) | set(predicted), key=lambda c: (len(c), c))
    counts = pd.crosstab(actual, predicted).reindex(index=classes, columns=classes, fill_value=0)
    rows = [[f"**{named(a)}**", *[(f"**{n}**" if a != p and n else (n or "")) for p, n in counts.loc[a].items()]]
            for a in classes]
    return table(["actual \\ predicted", *map(named, classes)], rows)


def confusions_markdown(predictions: pd.DataFrame, classes: list[str], top: int = CONFUSIONS) -> str:
    """The ``top`` most frequent (actual, predicted) pairs among the errors, most first, ties in ``classes``'
    order: what a matrix of many classes (``confusion.png`` draws it whole) would say, one line each."""
    actual, predicted = predictions["actual"].astype(str), predictions["predicted"].astype(str)
    wrong = pd.DataFrame({"actual": actual, "predicted": predicted})[actual != predicted]
    order = {c: i for i, c in enumerate(classes)}
    pairs = sorted(wrong.value_counts().items(),
                   key=lambda item: (-item[1], order.get(item[0][0], len(order)), order.get(item[0][1], len(order))))
    if not pairs:
        return "No errors."
    return table(["actual", "predicted", "test images"], [[named(a), named(p), n] for (a, p), n in pairs[:top]])


def per_class_markdown(per_class: pd.DataFrame) -> str:
    """F1 per class: one row of up to :data:`FEW_CLASSES` columns, or past that a row per class with its precision,
    recall, F1 and test images."""
    names = per_class["class"].astype(str)
    if len(per_class) <= FEW_CLASSES:
        return table(["class", *map(named, names)], [["F1", *[f"{v:.3f}" for v in per_class["f1"]]]])
    return table(["class", "precision", "recall", "F1", "test images"],
                 [[named(c), f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}", int(r.support)]
                  for c, r in zip(names, per_class.itertuples(), strict=True)])


def curves_markdown(logs: Path, every: int = 5) -> str:
    """Train and validation accuracy and loss at every ``every``-th epoch and the last."""
    history = read_training_log(logs)
    epochs = list(history["epoch"])
    shown = history[[e == epochs[0] or e % every == 0 or e == epochs[-1] for e in epochs]]
    header = ["epoch", "train accuracy", "val accuracy", "train loss", "val loss"]
    rows = [[int(r.epoch), *[f"{v:.4f}" for v in (r.accuracy, r.val_accuracy, r.loss, r.val_loss)]]
            for r in shown.itertuples()]
    return table(header, rows)


def sure_markdown(predictions: pd.DataFrame) -> str:
    """Answering only when sure (``predict --min-confidence``): at each level, the test images answered and how
    many of them are wrong; the rest would go to a person."""
    correct = predictions["actual"].astype(str) == predictions["predicted"].astype(str)
    rows = [[f"{r['level'] * 100:g}%", f"{r['answered']} ({r['share']:.1%})", len(predictions) - r["answered"],
             r["errors"], f"{r['accuracy']:.2%}" if r["answered"] else "-"]
            for r in selective(predictions["confidence"].to_numpy(), correct.to_numpy())]
    return table(["confidence at least", "answered", "left to a person", "errors among the answered",
                  "their accuracy"], rows)


def checked(predictions: pd.DataFrame, per_class: pd.DataFrame) -> None:
    """Refuse plot data that is not what the evaluate stage writes, naming the file and what is wrong with it,
    rather than print tables of it: a file cut short, edited, or from another model's classes."""
    for frame, path, columns in ((predictions, PREDICTIONS, ("actual", "predicted", "confidence")),
                                 (per_class, PER_CLASS, ("class", "f1"))):
        missing = [c for c in columns if c not in frame.columns]
        if missing or frame.empty:
            raise damaged(path, "plot data", f"no column {', '.join(missing)}" if missing else "no rows")
    confidence = pd.to_numeric(predictions["confidence"], errors="coerce")
    if not confidence.between(0, 1).all():  # NaN, text or an empty cell (a row cut short) fails the test too
        row = int((~confidence.between(0, 1)).to_numpy().argmax()) + 2  # the file's line: after the header
        raise damaged(PREDICTIONS, "plot data", f"line {row}: confidence {predictions['confidence'].iloc[row - 2]!r} "
                      "is not a probability")
    known = set(per_class["class"].astype(str))
    strays = sorted((set(predictions["actual"].astype(str)) | set(predictions["predicted"].astype(str))) - known)
    if strays:
        raise damaged(PREDICTIONS, "plot data", f"class(es) {', '.join(strays[:5])} that {PER_CLASS} does not list")


def report() -> str:
    predictions = read_csv(PREDICTIONS, "predictions")
    per_class = read_csv(PER_CLASS, "per-class scores")
    checked(predictions, per_class)
    errors = int((predictions["actual"].astype(str) != predictions["predicted"].astype(str)).sum())
    classes = list(per_class["class"].astype(str))
    test_set = f"test set: {len(predictions)} images, {counted(errors, 'error')}"
    confusion = [f"### Confusion matrix ({test_set})", confusion_markdown(predictions, classes)] \
        if len(classes) <= FEW_CLASSES else \
        [f"### Most frequent confusions ({test_set}; all of them: plots/confusion.png)",
         confusions_markdown(predictions, classes)]
    parts = [
        *confusion,
        "### Per-class F1",
        per_class_markdown(per_class),
        "### Answering only when sure (`predict --min-confidence`)",
        sure_markdown(predictions),
        "### Training curves",
        curves_markdown(LOGS),
    ]
    return "\n\n".join(parts) + "\n"


def main() -> None:
    import argparse

    argparse.ArgumentParser(prog=program("digitpipe.report"), description=__doc__.splitlines()[0]).parse_args()
    if not Path("dvc.yaml").is_file():
        raise DigitpipeError("no dvc.yaml here: run this in the project's root folder")
    print(report(), end="")


if __name__ == "__main__":
    run_main(main)
