"""How ``predict`` shows file names: one line each, never two names alike, never a name that displays as another."""

from __future__ import annotations

import itertools
import os
import stat

import pytest

from digitpipe.errors import DigitpipeError
from digitpipe.files import write_bytes
from digitpipe.output import check_submission_names, image_id, shown
from digitpipe.targets import natural_key


@pytest.mark.parametrize(("name", "expected"), [
    ("img_1.jpg", "img_1.jpg"),
    ("two\nlines.jpg", "two\\nlines.jpg"),
    ("bell\a.jpg", "bell\\x07.jpg"),
    ("back\\slash.jpg", "back\\\\slash.jpg"),
    ("img_1\u202egpj.exe", "img_1\\u202egpj.exe"),  # RIGHT-TO-LEFT OVERRIDE: would display as "img_1exe.jpg"
    ("a\u200eb\u200fc.jpg", "a\\u200eb\\u200fc.jpg"),  # LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK
    ("\u2066x\u2067y\u2068z\u2069.jpg", "\\u2066x\\u2067y\\u2068z\\u2069.jpg"),  # the isolates
    ("zero\u200bwidth.jpg", "zero\\u200bwidth.jpg"),
    ("tag\U000e0041.jpg", "tag\\U000e0041.jpg"),  # a format character beyond the 16-bit range
    ("café 中文 ß.jpg", "café 中文 ß.jpg"),  # letters of any script stay as they are
])
def test_control_and_format_characters_are_escaped_and_letters_kept(name, expected):
    assert shown(name) == expected


def test_a_name_that_is_not_a_kaggle_name_is_shown_escaped_in_the_submission_error():
    with pytest.raises(DigitpipeError) as err:
        image_id("photos/two\nlines\u202e.jpg")
    assert str(err.value) == ("--submission needs files named img_N.jpg (Kaggle's testSet); got "
                              "two\\nlines\\u202e.jpg")


def test_two_files_of_one_image_id_are_shown_escaped():
    with pytest.raises(DigitpipeError) as err:
        check_submission_names(["a\nb/img_3.jpg", "c\td/img_3.png"])
    assert str(err.value) == "--submission: ImageId 3 would come from both a\\nb/img_3.jpg and c\\td/img_3.png"


@pytest.mark.parametrize(("p", "level", "decimals", "shown_as"), [
    (0.71059, 0.9, 1, "71.1%"),      # far below the level: rounded as any other answer (the page says 71.1% too)
    (0.8996, 0.9, 1, "89.9%"),       # would round up to the level: rounded down instead
    (0.89949, 0.9, 1, "89.9%"),      # rounds to 89.9% by itself
    (0.98996, 0.99, 1, "98.9%"),
    (0.99949, 0.9995, 2, "99.94%"),  # a level with more decimals: told apart at its own precision
    (0.9004500000000001, 0.9005, 2, "90.04%"),  # shows 90.05% when rounded: the level, so rounded down
    (0.9994999999999999, 0.9995, 2, "99.94%"),  # p * 10000 is 9995.0 in floats: floored exactly instead
])
def test_an_unsure_answer_is_rounded_down_only_where_it_would_read_as_the_level(p, level, decimals, shown_as):
    from digitpipe.output import below_level, percent

    assert percent(below_level(p, level, decimals), decimals) == shown_as


def test_names_in_a_list_are_quoted_where_the_list_would_hide_where_one_ends():
    """`its folders are cat , dog` hid a trailing space, and `class(es) it's, a,b, C:\\dir` could not be split
    back into names; plain names, most of them, stay as written."""
    from digitpipe.output import names_of

    assert names_of(["0", "cat", "étoile [2]", "my class", "C:\\dir"]) == ["0", "cat", "étoile [2]", "my class",
                                                                         "C:\\\\dir"]
    assert names_of(["cat ", "a,b", "it's", 'say "hi"', ""]) == ["'cat '", "'a,b'", '"it\'s"', "'say \"hi\"'", "''"]
    assert names_of(["two\nlines"]) == ["two\\nlines"]  # shown first: one line, whatever the name holds


def test_only_ascii_digits_make_an_image_id():
    """``\\d`` also matches other scripts' digits: img_٣٣.jpg (Arabic-Indic 33) was taken for ImageId 33."""
    assert image_id("test/img_33.jpg") == 33
    assert [image_id(name) for name in ("img_4.png", "img_5.JPG", "img_6")] == [4, 5, 6]  # the README's other forms
    for name in ("img_7.tar.gz", "image_8.jpg", "img_.jpg"):
        with pytest.raises(DigitpipeError, match="needs files named img_N.jpg"):
            image_id(name)
    with pytest.raises(DigitpipeError, match="needs files named img_N.jpg"):
        image_id("test/img_\u0663\u0663.jpg")


@pytest.mark.parametrize("order", list(itertools.permutations(["a1.png", "a01.png", "a001.png", "a2.png"])))
def test_names_of_one_number_are_listed_in_one_order_whatever_order_they_came_in(order):
    """img_1 and img_01 compare equal as numbers; the order they came in (the folder's) once decided it."""
    assert [name for _, name in sorted((("d", name) for name in order), key=natural_key)] == \
        ["a001.png", "a01.png", "a1.png", "a2.png"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_an_output_gets_the_permissions_open_would_give_it_and_keeps_those_it_had(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_bytes(b"new", tmp_path / "new.csv")
        assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o666 & ~umask
        (tmp_path / "kept.csv").write_bytes(b"old")
        (tmp_path / "kept.csv").chmod(0o640)
        write_bytes(b"new", tmp_path / "kept.csv")
        assert stat.S_IMODE((tmp_path / "kept.csv").stat().st_mode) == 0o640
        assert (tmp_path / "kept.csv").read_bytes() == b"new"
    finally:
        os.umask(old)


def test_a_long_list_of_counts_is_laid_out_in_lines_under_its_lead():
    from digitpipe.output import in_lines

    items = [f"upper_{chr(65 + i)}:20" for i in range(26)] + [f"lower_{chr(97 + i)}:20" for i in range(21)]
    lines = in_lines(items, "  per class: ")
    assert len(lines) == 7 and all(len(line) <= 100 for line in lines)
    assert lines[0].startswith("  per class: upper_A:20  upper_B:20") and lines[1].startswith(" " * 13 + "upper_H")
    assert "  ".join(line.strip() for line in lines).removeprefix("per class: ") == "  ".join(items)
    assert in_lines(["0:500", "1:500"], "  per class: ") == ["  per class: 0:500  1:500"]
    assert in_lines(["x" * 120, "y"], "> ") == ["> " + "x" * 120, "  y"]  # an item longer than a line stays whole


def test_the_csv_never_shows_a_probability_as_certain_or_at_the_level_it_is_below(tmp_path):
    """0.9999996 was written 1.000000, and 0.8999996 with --min-confidence 0.9 was written 0.900000 beside
    unsure 1: rounded down there, as the text output does; every other probability is rounded as before."""
    from digitpipe.output import write_csv

    rows = [{"path": "a.jpg", "label": "7", "confidence": 0.9999996, "top": [("7", 0.9999996), ("1", 3.5e-7)]},
            {"path": "b.jpg", "label": "3", "confidence": 0.8999996, "top": [("3", 0.8999996), ("5", 0.0999998)]},
            {"path": "c.jpg", "label": "2", "confidence": 0.8765437, "top": [("2", 0.8765437), ("7", 0.1234562)]},
            {"path": "d.jpg", "label": "1", "confidence": 1.0, "top": [("1", 1.0), ("7", 0.0)]}]
    write_csv(rows, tmp_path / "out.csv", 2, 0.9)
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "path,label,confidence,unsure,top2,error", "a.jpg,7,0.999999,0,1:0.000000,", "b.jpg,3,0.899999,1,5:0.100000,",
        "c.jpg,2,0.876544,1,7:0.123456,", "d.jpg,1,1.000000,0,7:0.000000,"]
