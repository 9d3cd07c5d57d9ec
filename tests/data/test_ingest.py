"""Ingest on real files: what is indexed, what is rejected and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from digitpipe.errors import DigitpipeError
from digitpipe.ingest import ingest, summarize
from tests.conftest import write_digits

CLASSES = [str(i) for i in range(10)]


@pytest.fixture
def folder(tmp_path, mnist) -> Path:
    write_digits(tmp_path / "data", mnist, per_class=3)
    return tmp_path / "data"


def test_indexes_every_image_with_relative_paths(folder):
    result = ingest(folder, CLASSES)
    assert len(result.index) == 30 and result.rejects.empty
    row = result.index.iloc[0]
    assert row["path"] == "0/img_0.jpg" and row["label"] == "0"
    assert (row["width"], row["height"], row["mode"], row["format"]) == (28, 28, "L", "JPEG")
    assert list(result.index["path"]) == sorted(result.index["path"])
    assert summarize(result, CLASSES)["images_per_class"]["3"] == 3


def test_bad_files_are_rejected_with_a_reason(folder):
    (folder / "1" / "empty.jpg").write_bytes(b"")
    (folder / "2" / "notes.jpg").write_text("hello")
    good = (folder / "3" / "img_1500.jpg").read_bytes()
    (folder / "3" / "cut.jpg").write_bytes(good[: len(good) // 2])
    Image.new("L", (40, 30), 255).save(folder / "4" / "big.png")
    result = ingest(folder, CLASSES, size_policy="reject")
    reasons = dict(zip(result.rejects["path"], result.rejects["reason"], strict=True))
    assert reasons == {"1/empty.jpg": "empty", "2/notes.jpg": "not_image", "3/cut.jpg": "corrupt",
                       "4/big.png": "wrong_size"}
    assert len(result.index) == 30
    resized = ingest(folder, CLASSES, size_policy="resize")
    assert "4/big.png" in set(resized.index["path"])


def test_missing_or_classless_data_dir(tmp_path):
    with pytest.raises(DigitpipeError, match="does not exist"):
        ingest(tmp_path / "nope", CLASSES)
    (tmp_path / "cats").mkdir()
    with pytest.raises(DigitpipeError, match="no class folders found"):
        ingest(tmp_path, CLASSES)
