"""Each figure function draws what it is given, including the edge cases."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.transforms import Bbox

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


def test_curves_zoom_into_the_second_half_only_when_the_first_epochs_squash_it():
    epochs = np.arange(1, 41)
    settled = 0.99 + 0.005 * np.sin(epochs)  # 40 epochs: early 0.4, then within a point of 0.99
    long = pd.DataFrame({"epoch": epochs, "accuracy": np.where(epochs < 3, 0.4, settled),
                         "val_accuracy": np.where(epochs < 3, 0.8, settled - 0.003),
                         "loss": 1 / epochs, "val_loss": 1 / epochs})
    accuracy_axes = plots.training_curves(long, kept_epoch=40).axes[0]
    (inset,) = accuracy_axes.child_axes
    low, high = inset.get_ylim()
    assert 0.98 < low < 0.99 and high <= 1.0005  # the axis the second half needs, not the 0.4 the first sets
    assert inset.get_xlim()[0] > 20
    short = long.head(3)
    assert plots.training_curves(short, kept_epoch=2).axes[0].child_axes == []


def test_digits_are_drawn_as_ink_on_paper_and_other_images_as_they_are():
    white = {"a": [np.ones((28, 28))]}  # a model input of 1.0 everywhere: white as decoded
    as_is = plots.sample_grid(white, cmap=plots.image_colormap("none")).axes[0].images[0]
    digit = plots.sample_grid(white, cmap=plots.image_colormap("mnist")).axes[0].images[0]
    assert as_is.to_rgba(1.0)[:3] == (1.0, 1.0, 1.0)   # `none`: the user's own image, not its negative
    assert digit.to_rgba(1.0)[:3] == (0.0, 0.0, 0.0)   # MNIST form: light ink on black, drawn dark on white
    mistake = plots.mistakes_gallery([np.zeros((28, 28))], ["x"], cmap=plots.image_colormap("none"))
    assert mistake.axes[0].images[0].to_rgba(0.0)[:3] == (0.0, 0.0, 0.0)


def test_long_class_names_stand_left_of_their_row_and_cover_no_image():
    rng = np.random.default_rng(1)
    fig = plots.sample_grid({name: [rng.random((28, 28))] * 2 for name in ("triangle", "a much longer name", "7")})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for row in range(3):
        first = fig.axes[row * 2]
        label = first.yaxis.label.get_window_extent(renderer)
        assert label.x1 <= first.get_window_extent(renderer).x0   # wholly left of the first image
        assert label.x0 >= 0                                         # and inside the figure


@pytest.mark.parametrize("count", [1, 3, 5, 8, 11])
def test_mistake_captions_of_long_class_names_stay_over_their_own_image(count):
    names = ["ring shape", "étoile", "a very long class name indeed", "circle", "7"]
    captions = [plots.mistake_caption(names[i % 5], names[(i + 2) % 5], 0.96) for i in range(count)]
    fig = plots.mistakes_gallery([np.zeros((28, 28))] * count, captions)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.images]
    width = fig.get_window_extent(renderer).x1
    for left, right in itertools.pairwise(boxes):
        if left.y0 == right.y0:  # neighbours in one row
            assert left.x1 <= right.x0
    assert all(box.x0 >= 0 and box.x1 <= width for box in boxes)


def test_a_digit_mistake_keeps_its_one_line_caption():
    assert plots.mistake_caption("4", "9", 0.963) == "true 4, said 9\n96.3% sure"
    assert plots.mistake_caption("ring shape", "étoile", 0.5) == "true ring shape\nsaid étoile\n50.0% sure"


def test_long_names_in_a_mistakes_caption_break_between_words_and_no_wrong_answer_is_100_percent_sure():
    """textwrap breaks only at spaces and hyphens: `Erythroblast_orthochromatic` came out as `Erythroblas` /
    `t_orthochromatic`; and a wrong answer at 0.9996 read "100% sure", a certainty the model never had."""
    caption = plots.mistake_caption("Erythroblast_orthochromatic", "Basophil_granulocyte", 0.9996)
    assert caption.split("\n") == ["true", "Erythroblast_", "orthochromatic", "said Basophil_", "granulocyte",
                                   ">99.9% sure"]
    assert plots.wrap_name("said abcdefghijklmnopqrstuvwxyz", 16) == ["said", "abcdefghijklmnop", "qrstuvwxyz"]
    for name in ("Immature_granulocyte_metamyelocyte", "a.b-c/d_e f", "x" * 40, "Lymphocyte_small mature"):
        lines = plots.wrap_name(f"true {name}", 16)
        assert all(0 < len(line) <= 16 for line in lines) and "".join(lines).replace(" ", "") == \
            f"true{name}".replace(" ", "")


def test_a_class_name_no_font_can_draw_is_named_not_drawn_as_boxes_in_silence():
    from digitpipe.plots import undrawable

    assert undrawable(["0", "cat", "café", "my class", "Ärger", "ß"]) == []  # DejaVu Sans draws them all
    unassigned = "\u0378"  # no character has this code point, so no font anywhere draws it
    assert undrawable(["cat", f"a{unassigned}", "dog"]) == [f"a{unassigned}"]


@pytest.mark.parametrize("name", ["a$\\b$c", "$10-$20 bills", "x^2 $y$"])
def test_class_names_with_dollar_signs_are_drawn_as_written_not_typeset_as_math(name, tmp_path):
    """Matplotlib reads text between two dollar signs as a formula: `a$\\b$c` stopped the plot stage with a
    mathtext traceback, and `$10-$20 bills` lost both signs. Names are drawn as they are written."""
    classes = [name, "plain"]
    figures = [plots.class_balance(pd.DataFrame({"train": [3, 3]}, index=classes)),
               plots.confusion_figure(np.array([[2, 1], [0, 3]]), classes),
               plots.sample_grid({c: [np.zeros((28, 28))] for c in classes}),
               plots.mistakes_gallery([np.zeros((28, 28))], [plots.mistake_caption(name, "plain", 0.9)])]
    for i, fig in enumerate(figures):
        plots.save(fig, tmp_path / f"{i}.png")  # drawing is where mathtext failed
        named = [t for t in fig.findobj(plt.Text) if "$" in t.get_text()]  # the name, or a caption line of it
        assert named and not any(t.get_parse_math() for t in named)


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_a_confusion_matrix_of_many_classes_grows_so_that_counts_fit_their_cells_and_names_stay_apart():
    import string

    classes = list(string.digits + string.ascii_uppercase + string.ascii_lowercase)  # 62, as EMNIST's
    rng = np.random.default_rng(2)
    matrix = np.diag(rng.integers(5, 15, 62)) + (rng.random((62, 62)) < 0.05) * rng.integers(10, 99, (62, 62))
    fig = plots.confusion_figure(matrix, classes)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    cell = ax.get_window_extent(renderer).width / 62
    counts = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(counts) == np.count_nonzero(matrix)
    assert max(box.width for box in counts) < cell and max(box.height for box in counts) < cell
    for axis in (ax.get_xticklabels(), ax.get_yticklabels()):
        labels = [t.get_window_extent(renderer) for t in axis]
        assert not any(boxes_overlap(a, b) for a, b in itertools.pairwise(labels))
    few = plots.confusion_figure(np.eye(10, dtype=int), list("0123456789"))
    assert tuple(few.get_size_inches()) == (7.5, 6.5)  # ten digits keep the layout they always had


def test_long_class_names_slant_under_the_confusion_matrix_and_the_class_balance():
    names = ["left turn arrow", "Straße", "class_with_a_very_long_name_indeed", "étoile ★", "circle"]
    confusion = plots.confusion_figure(np.eye(5, dtype=int) * 3, names).axes[0]
    balance = plots.class_balance(pd.DataFrame({"train": [9] * 5, "val": [2] * 5}, index=names)).axes[0]
    for ax in (confusion, balance):
        assert [t.get_text() for t in ax.get_xticklabels()] == names
        assert all(t.get_rotation() == 45 and t.get_horizontalalignment() == "right" for t in ax.get_xticklabels())
    digits = plots.confusion_figure(np.eye(10, dtype=int), list("0123456789")).axes[0]
    assert all(t.get_rotation() == 0 for t in digits.get_xticklabels())


def test_class_balance_of_many_classes_prints_no_counts_that_would_run_together_and_counts_whole_images():
    import string

    many = pd.DataFrame({"train": [25] * 26, "val": [5] * 26, "test": [5] * 26}, index=list(string.ascii_lowercase))
    ax = plots.class_balance(many).axes[0]
    assert len(ax.texts) == 0  # neighbours' 5 and 5 would read as 55
    few = pd.DataFrame({"train": [7, 7, 7], "val": [3, 2, 1]}, index=list("012"))
    fig = plots.class_balance(few)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "7", "7", "7"]
    assert all(float(t).is_integer() for t in ax.get_yticks())  # no 2.5 images on the axis


def test_the_reliability_count_axis_labels_only_powers_of_ten_as_plain_numbers():
    bins = pd.DataFrame({"lower": np.arange(0, 1, 0.1), "upper": np.arange(0.1, 1.01, 0.1)})
    bins["count"] = [0, 0, 3, 12, 20, 25, 30, 35, 40, 44]  # under two decades: matplotlib would label 3x10^1, 4x10^1
    bins["confidence"] = bins["lower"] + 0.05
    bins["accuracy"] = bins["confidence"] * 0.9
    fig = plots.reliability_diagram(bins, ece=0.03, ece_raw=0.1)
    fig.canvas.draw()
    bottom = fig.axes[1]
    low, high = bottom.get_ylim()
    shown = [(tick.get_loc(), tick.label1.get_text()) for tick in bottom.yaxis.get_major_ticks()
             if tick.label1.get_visible() and tick.label1.get_text() and low <= tick.get_loc() <= high]
    assert shown == [(1.0, "1"), (10.0, "10")]
    assert all(not t.label1.get_text() for t in bottom.yaxis.get_minor_ticks())


def test_the_confidence_count_axis_is_plain_numbers_also_within_one_decade():
    """Six test images of three classes gave matplotlib's 2x10^0 ... 6x10^0 as labels, a formula for a count."""
    confidence = np.array([0.99, 0.98, 0.97, 0.99, 0.96, 0.95, 0.6, 0.55])
    fig = plots.confidence_histograms(confidence, np.array([True] * 6 + [False] * 2))
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    labels = [(tick.get_loc(), tick.label1.get_text()) for tick in ax.yaxis.get_major_ticks()
              if tick.label1.get_text() and low <= tick.get_loc() <= high]
    assert labels == [(1.0, "1"), (2.0, "2"), (5.0, "5")]
    assert low < 1 < 6 < high  # the bar of one image and the tallest both show
    assert all(not t.label1.get_text() for t in ax.yaxis.get_minor_ticks())
    many = plots.confidence_histograms(np.r_[np.full(700, 0.99), [0.5]], np.r_[np.ones(700, bool), [False]])
    many.canvas.draw()
    ax = many.axes[0]
    low, high = ax.get_ylim()
    assert [t.label1.get_text() for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high] == \
        ["1", "10", "100", "1,000"]


def test_the_mistakes_title_says_when_only_the_most_confident_are_drawn():
    assert plots.mistakes_title(2, 750, 40) == "Test mistakes, most confident first (2 in 750 test images)"
    assert plots.mistakes_title(40, 93, 40) == "Test mistakes, most confident first (40 in 93 test images)"
    assert plots.mistakes_title(64, 93, 40) == "Test mistakes: the 40 most confident of 64 (in 93 test images)"


def test_legends_stand_beside_the_data_of_a_weak_model():
    """A model that is unsure of most answers puts its tallest bars where a fixed legend stood."""
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.1, 0.5, 400)
    fig = plots.confidence_histograms(confidence, rng.random(400) < 0.3)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches if p.get_height() > 0]
    assert bars and not any(boxes_overlap(legend, bar) for bar in bars)


def test_the_reliability_legend_covers_no_bar_and_no_axis_label():
    """A calibrated model is right in almost every bin, so its bars reach the top at low confidence too: the
    committed model's one test image at 35% once sat under the legend that matplotlib placed in the corner."""
    bins = pd.DataFrame({"lower": np.arange(0, 1, 0.1), "upper": np.arange(0.1, 1.01, 0.1)})
    bins["count"] = [0, 0, 0, 1, 0, 0, 2, 0, 7, 740]
    bins["confidence"] = bins["lower"] + 0.05
    bins["accuracy"] = np.where(bins["count"] > 0, 1.0, 0.0)
    fig = plots.reliability_diagram(bins, ece=0.004, ece_raw=0.07)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top, bottom = fig.axes
    (legend,) = fig.legends or [top.get_legend()]  # wherever it stands
    box = legend.get_window_extent(renderer)
    # what is drawn of each bar: the count panel's bars start at 0, below the bottom of its log axis
    bars = [Bbox.intersection(p.get_window_extent(renderer), ax.bbox) for ax in (top, bottom) for p in ax.patches
            if p.get_height() > 0]
    labels = [bottom.xaxis.label.get_window_extent(renderer), top.title.get_window_extent(renderer)]
    labels += [t.get_window_extent(renderer) for t in bottom.get_xticklabels() if t.get_text()]
    assert len(bars) == 8 and len(legend.get_texts()) == 3
    assert not any(boxes_overlap(box, other) for other in bars + labels)
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height  # inside the saved image


def test_a_plot_cut_short_while_written_leaves_the_last_whole_png(tmp_path):
    """A kill or a full disk mid-write left a truncated PNG where the last good one was."""
    path = tmp_path / "plots/confusion.png"
    fig = plt.figure()
    plots.save(fig, path)
    whole = path.read_bytes()
    assert whole.startswith(b"\x89PNG")
    fig = plt.figure()

    def cut_short(target, **_):
        Path(target).write_bytes(whole[:100])
        raise OSError(28, "No space left on device")

    fig.savefig = cut_short
    with pytest.raises(OSError):
        plots.save(fig, path)
    assert path.read_bytes() == whole and sorted(p.name for p in path.parent.iterdir()) == ["confusion.png"]
    plt.close(fig)
