"""Figures a person looks at. Each function takes plain data and returns a Matplotlib figure."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from digitpipe.files import atomic_path  # noqa: E402
from digitpipe.limits import FEW_CLASSES  # noqa: E402  (past it, the confusion matrix and class balance grow)
from digitpipe.output import percent  # noqa: E402

# Fonts Matplotlib falls back on, character by character, for class names DejaVu Sans cannot draw (Chinese,
# Japanese, Korean...), where they are installed: DejaVu Sans draws every character of a digit or a Latin name, so
# the PNGs of such data do not depend on what else is installed.
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "WenQuanYi Zen Hei",
                  "Droid Sans Fallback", "Arial Unicode MS", "Noto Sans")
INSTALLED = {font.name for font in font_manager.fontManager.ttflist}
# text is drawn as written: a class named "$10-$20" or "a$\b$" is a name, not a formula to typeset (or fail on)
plt.rcParams.update({"text.parse_math": False, "font.size": 11, "axes.titlesize": 13, "figure.titlesize": 14,
                     "axes.spines.top": False, "axes.spines.right": False,
                     "font.family": ["DejaVu Sans", *[f for f in FALLBACK_FONTS if f in INSTALLED]]})
# a character no font has is reported once, by name (undrawable), not once per figure and glyph
warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)


def undrawable(names: list[str]) -> list[str]:
    """The names that hold a character none of the plots' fonts can draw (it would show as an empty box)."""
    faces = [ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties(family=family)))
             for family in plt.rcParams["font.family"]]
    return [name for name in names
            if any(not c.isspace() and all(face.get_char_index(ord(c)) == 0 for face in faces) for c in name)]


def label_class_ticks(ax: plt.Axes, classes: list[str], x: bool = True, y: bool = False) -> bool:
    """Class names as tick labels that stay apart however many or long they are: smaller past 30 classes, and
    on the x axis slanted (ending under their tick) once a name is longer than two characters, or than one
    among many classes, so that neighbours never run into each other. Returns whether they slant."""
    size = 8 if len(classes) > 30 else None
    longest = max(map(len, classes), default=0)
    slanted = longest > 2 or (longest > 1 and len(classes) > FEW_CLASSES)
    if x:
        ax.set_xticks(range(len(classes)), classes, fontsize=size)
        if slanted:
            ax.tick_params(axis="x", labelrotation=45)
            for text in ax.get_xticklabels():
                text.set_horizontalalignment("right")
                text.set_rotation_mode("anchor")
    if y:
        ax.set_yticks(range(len(classes)), classes, fontsize=size)
    return slanted


def save(fig: plt.Figure, path: Path) -> None:
    """Write a PNG with fixed metadata (so the same figure gives the same bytes), atomically (a kill mid-write
    leaves the last whole PNG, never half of one), and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def image_colormap(normalize: str) -> str:
    """How to draw a model input in [0, 1]: MNIST-form digits (``data.normalize: mnist``, light ink on black)
    as dark ink on white paper, as a person writes them; any other data (``none``) as it is, 0 black and 1
    white, so a person sees their own images, not their negatives."""
    return "gray_r" if normalize == "mnist" else "gray"


def sample_grid(images: dict[str, list[np.ndarray]], title: str = "Sample digits per class",
                cmap: str = "gray_r") -> plt.Figure:
    """One row per class, a few example images each, the class name right-aligned before its row (long
    names widen the figure instead of covering the first image)."""
    classes = list(images)
    cols = max((len(v) for v in images.values()), default=1)
    fig, axes = plt.subplots(len(classes), cols, figsize=(cols * 0.8 + 0.6, len(classes) * 0.8 + 0.6),
                             squeeze=False, layout="constrained")
    for r, label in enumerate(classes):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images[label]):
                ax.imshow(images[label][c], cmap=cmap, vmin=0, vmax=1)
        axes[r][0].set_ylabel(label, rotation=0, labelpad=8, fontsize=13, ha="right", va="center")
    fig.suptitle(title)
    return fig


def training_curves(history: pd.DataFrame, kept_epoch: int | None = None) -> plt.Figure:
    """Accuracy and loss per epoch, train vs validation, with a line at the epoch whose weights were kept;
    ``history`` has columns epoch, accuracy, val_accuracy, loss, val_loss. The first epochs set the accuracy
    axis, so an inset repeats the second half of training at a scale where a tenth of a point shows."""
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((acc, "accuracy", "Accuracy"), (loss, "loss", "Loss (cross-entropy)")):
        ax.plot(history["epoch"], history[key], "o-", ms=3, label="train (augmented)")
        ax.plot(history["epoch"], history[f"val_{key}"], "o-", ms=3, label="validation")
        if kept_epoch:
            ax.axvline(kept_epoch, color="grey", ls="--", lw=1, label=f"model kept (epoch {kept_epoch})")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{label.split(' ')[0]} per epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss.legend(loc="best")  # where the lines are not: a model that learns slowly keeps its loss high
    tail = history[history["epoch"] > history["epoch"].max() / 2]
    low = float(min(tail["accuracy"].min(), tail["val_accuracy"].min()))
    high = float(max(tail["accuracy"].max(), tail["val_accuracy"].max()))
    span = float(max(history["accuracy"].max(), history["val_accuracy"].max())
                 - min(history["accuracy"].min(), history["val_accuracy"].min()))
    if len(tail) >= 5 and high - low < span / 4:  # a zoom shows something the main axis does not
        pad = max((high - low) * 0.15, 0.002)
        inset = acc.inset_axes([0.33, 0.1, 0.62, 0.5])
        inset.plot(tail["epoch"], tail["accuracy"], "o-", ms=2)
        inset.plot(tail["epoch"], tail["val_accuracy"], "o-", ms=2)
        if kept_epoch and kept_epoch >= tail["epoch"].min():
            inset.axvline(kept_epoch, color="grey", ls="--", lw=1)
        inset.set_ylim(low - pad, min(high + pad, 1.0005))
        inset.set_title("second half, zoomed", fontsize=9)
        inset.tick_params(labelsize=8)
        inset.xaxis.set_major_locator(MaxNLocator(integer=True))
        inset.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, classes: list[str], title: str = "Confusion matrix (test set)") -> plt.Figure:
    """Counts in every cell, shaded by the row-normalised share (so rare classes read the same). Past
    :data:`FEW_CLASSES` classes the figure grows with them (a quarter of an inch a cell, so that a count
    fits its cell in small type) and the names slant."""
    n = len(classes)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    many = n > FEW_CLASSES
    fig, ax = plt.subplots(figsize=(n * 0.26 + 2.5, n * 0.26 + 1.5) if many else (7.5, 6.5))
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6 if many else 10,
                        color="white" if share[i, j] > 0.5 else "black")
    label_class_ticks(ax, classes, x=True, y=True)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("Actual class")
    ax.set_title(title)
    fig.colorbar(shown, ax=ax, label="Share of the actual class (row)", shrink=0.8 if many else 1.0)
    return fig


def class_balance(counts: pd.DataFrame) -> plt.Figure:
    """Images per class in each split; ``counts`` has one row per class and a column per split. Up to
    :data:`FEW_CLASSES` classes each bar carries its count; past that the bars are too narrow for one (two
    neighbours' 5 and 5 would read as 55), so the figure widens and a grid gives the counts instead."""
    n = len(counts)
    many = n > FEW_CLASSES
    fig, ax = plt.subplots(figsize=(max(9, n * 0.28 + 1.5), 4))
    width = 0.8 / len(counts.columns)
    positions = np.arange(n)
    for i, split in enumerate(counts.columns):
        bars = ax.bar(positions + (i - (len(counts.columns) - 1) / 2) * width, counts[split], width, label=split)
        if not many:
            ax.bar_label(bars, fontsize=8, padding=1)
    if many:
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # images come whole: no 2.5
    slanted = label_class_ticks(ax, [str(c) for c in counts.index])
    ax.set_xlabel("Class")
    ax.set_ylabel("Images")
    ax.set_title(f"Images per class and split (total {int(counts.to_numpy().sum()):,})")
    if slanted:  # beside the axes: below them it would sit on the slanted names
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    else:
        ax.legend(ncols=len(counts.columns), loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    return fig


CAPTION_WIDTH = 16  # characters of a mistake's caption line: what fits above the narrowest panel (1.2 in) at 9 pt


def mistake_caption(actual: str, predicted: str, confidence: float) -> str:
    """``true 4, said 9`` over ``96.3% sure`` (never rounded up to a certainty it is not: a wrong answer at 0.9996
    is ``>99.9% sure``, not ``100%``); class names too long for one line get a line each, and a name longer than
    a line is wrapped after ``_ - . /`` or a space where it can be, so that no caption reaches into its
    neighbour's and no word is cut where another would do."""
    both = f"true {actual}, said {predicted}"
    lines = [both] if len(both) <= CAPTION_WIDTH else \
        [*wrap_name(f"true {actual}", CAPTION_WIDTH), *wrap_name(f"said {predicted}", CAPTION_WIDTH)]
    return "\n".join([*lines, f"{percent(confidence)} sure"])


def wrap_name(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken after a space, ``_``, ``-``, ``.`` or ``/``
    (``Erythroblast_`` / ``orthochromatic``); a part longer than a line is cut where it must be."""
    lines = [""]
    for part in re.findall(r"[^ _\-./]*[ _\-./]?", text)[:-1]:  # each part with the mark after it
        if lines[-1] and len(lines[-1]) + len(part.rstrip(" ")) > width:
            lines[-1] = lines[-1].rstrip(" ")
            lines.append("")
        while len(lines[-1]) + len(part) > width and len(part.rstrip(" ")) > width - len(lines[-1]):
            room = width - len(lines[-1])
            lines[-1] += part[:room]
            part = part[room:]
            lines.append("")
        lines[-1] += part
    return [line.rstrip(" ") for line in lines if line.strip()]


def mistakes_gallery(images: list[np.ndarray], captions: list[str], cols: int = 8,
                     title: str = "Test mistakes, most confident first", cmap: str = "gray_r") -> plt.Figure:
    """The wrongly classified test images with true and predicted class and confidence (``cmap``: see
    :func:`image_colormap`)."""
    if not images:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "No mistakes on the test set", ha="center", va="center", fontsize=14)
        return fig
    cols = min(cols, len(images))
    rows = int(np.ceil(len(images) / cols))
    lines = max(caption.count("\n") + 1 for caption in captions)
    fig, axes = plt.subplots(rows, cols, figsize=(max(cols * 1.45, 6), rows * (1.35 + 0.2 * lines) + 0.5),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions, strict=False):
        ax.imshow(image, cmap=cmap, vmin=0, vmax=1)
        ax.set_title(caption, fontsize=9)
    fig.suptitle(title)
    return fig


def confidence_histograms(confidence: np.ndarray, correct: np.ndarray) -> plt.Figure:
    """How sure the model is when it is right vs when it is wrong (log count axis)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.linspace(0, 1, 21)
    ax.hist(confidence[correct], bins=bins, alpha=0.7, label=f"correct ({int(correct.sum())})", color="tab:blue")
    ax.hist(confidence[~correct], bins=bins, alpha=0.8, label=f"wrong ({int((~correct).sum())})", color="tab:red")
    ax.set_yscale("log")
    counts = np.histogram(confidence, bins=bins)[0]
    plain_log_axis(ax, max(float(counts.max()), 1.0), steps=(1.0, 2.0, 5.0))
    ax.set_xlabel("Confidence (probability of the predicted class)")
    ax.set_ylabel("Test images (log scale)")
    ax.set_title("Confidence of correct and wrong predictions")
    ax.legend(loc="best")  # where the bars are not: a weak model's wrong answers sit on the left
    ax.grid(alpha=0.3)
    return fig


def mistakes_title(errors: int, total: int, most: int) -> str:
    """The mistakes gallery's title: how many mistakes there are, and that only the ``most`` most confident of
    them are drawn when there are more."""
    if errors > most:
        return f"Test mistakes: the {most} most confident of {errors} (in {total} test images)"
    return f"Test mistakes, most confident first ({errors} in {total} test images)"


def plain_log_axis(ax: plt.Axes, top: float, steps: tuple[float, ...] = (1.0,)) -> None:
    """A log count axis from 1 to above ``top``, labelled as plain numbers (``1``, ``10``, ``1,000``) at the
    powers of ten, and at ``steps`` within each decade while the counts span fewer than two (1, 2, 5, 10, 20):
    matplotlib's own labels for a range under a decade are ``3x10^0`` next to ``4x10^0``, which run into each
    other and read as a formula. A bar of one image still shows, from 0.8 up."""
    ax.set_ylim(0.8, top * 1.6)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=steps if top < 100 else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def reliability_diagram(bins: pd.DataFrame, ece: float, ece_raw: float | None = None) -> plt.Figure:
    """Accuracy vs confidence per bin against the diagonal of perfect calibration, with bin counts; the title
    gives the ECE, and the raw softmax's ECE when the probabilities were calibrated."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6.5), sharex=True, height_ratios=[3, 1],
                                      layout="constrained")
    width = (bins["upper"] - bins["lower"]).to_numpy()
    top.bar(bins["lower"], bins["accuracy"], width=width, align="edge", edgecolor="black", alpha=0.8,
            label="accuracy in bin")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    top.plot(bins["confidence"], bins["accuracy"], "o", color="tab:red", ms=4, label="bin's mean confidence")
    top.set_ylabel("Accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    before = "" if ece_raw is None else f"; {ece_raw:.2%} before temperature scaling"
    top.set_title(f"Reliability of the calibrated model (ECE {ece:.2%}{before})" if ece_raw is not None
                  else f"Reliability diagram (ECE {ece:.2%})")
    # under the figure, not inside the panel: a calibrated model's bars reach the top in any bin, even one image's
    # at low confidence, so no corner of the panel is sure to be empty
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    bottom.bar(bins["lower"], bins["count"], width=width, align="edge", edgecolor="black", color="tab:grey")
    bottom.set_yscale("log")
    # labels at the powers of ten only: on a short panel even 1, 2, 5 would run into each other
    plain_log_axis(bottom, max(float(bins["count"].max()), 1.0))
    bottom.set_xlabel("Confidence (probability of the predicted class)")
    bottom.set_ylabel("Images")
    return fig
