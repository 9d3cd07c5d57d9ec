"""How ``predict`` shows file names: one line each, never two names alike, never a name that displays as another."""

from __future__ import annotations

import pytest

from digitpipe.errors import DigitpipeError
from digitpipe.output import check_submission_names, image_id, shown


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
