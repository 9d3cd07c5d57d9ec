"""Ingest on a hostile folder: every kind of file lands where it should, and nothing crashes."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, UnidentifiedImageError

from digitpipe.errors import DigitpipeError
from digitpipe.files import content_hash
from digitpipe.ingest import INDEX_COLUMNS, Policy, ingest, summarize
from digitpipe.sample import encode_jpeg
from tests.helpers import ENV, ROOT, eps_bytes, mpo_bytes, write_digits

CLASSES = [str(i) for i in range(10)]


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def digit(mnist, i: int) -> Image.Image:
    return Image.fromarray(mnist[0][i])


@pytest.fixture
def hostile(tmp_path, mnist) -> Path:
    """A data folder holding one file of every case ingest must handle."""
    root = tmp_path / "data"
    write_digits(root, mnist, per_class=4)  # 40 clean JPGs
    d = {c: root / c for c in CLASSES}
    # accepted and normalised
    (d["0"] / "png_inside.jpg").write_bytes(png_bytes(digit(mnist, 10)))
    (d["0"] / "UPPER.JPG").write_bytes(encode_jpeg(mnist[0][11]))
    (d["0"] / "long.jpeg").write_bytes(encode_jpeg(mnist[0][12]))
    digit(mnist, 13).convert("RGB").save(d["0"] / "colour.jpg", quality=95)
    digit(mnist, 14).convert("CMYK").save(d["0"] / "cmyk.jpg", quality=95)
    digit(mnist, 15).resize((56, 56)).save(d["0"] / "big56.png")
    (d["0"] / 'my digit, "one" ü.jpg').write_bytes(encode_jpeg(mnist[0][16]))
    (tmp_path / "elsewhere.jpg").write_bytes(encode_jpeg(mnist[0][600]))
    os.symlink(tmp_path / "elsewhere.jpg", d["1"] / "link_to_file.jpg")  # a symlink to a real file: followed
    # duplicates and conflicts
    (d["1"] / "copy_a.jpg").write_bytes(encode_jpeg(mnist[0][17]))
    (d["1"] / "copy_b.jpg").write_bytes(encode_jpeg(mnist[0][17]))
    (d["3"] / "conflict.jpg").write_bytes(encode_jpeg(mnist[0][18]))
    (d["5"] / "conflict.jpg").write_bytes(encode_jpeg(mnist[0][18]))
    # rejected
    good = encode_jpeg(mnist[0][19])
    (d["2"] / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (d["2"] / "zero.jpg").write_bytes(b"")
    (d["2"] / "notes.jpg").write_text("not an image at all")
    digit(mnist, 20).save(d["2"] / "icon.ico")
    (d["2"] / "bomb.png").write_bytes(png_bomb(60_000, 60_000))
    Image.new("L", (4, 4), 128).save(d["2"] / "tiny.png")
    frames = [digit(mnist, 21), digit(mnist, 22)]
    frames[0].save(d["2"] / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("L", (28, 28), 255).save(d["2"] / "blank.png")
    # skipped
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (d["4"] / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (d["4"] / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (d["4"] / "._img_0.jpg").write_bytes(b"\0\5\x16\7")
    (root / "extra").mkdir()
    (root / "extra" / "x.jpg").write_bytes(good)
    (root / "README.txt").write_text("labels by folder")
    (d["6"] / "nested").mkdir()
    (d["6"] / "nested" / "deep.jpg").write_bytes(good)
    os.symlink("loop", d["7"] / "loop")
    os.symlink("loop", root / "loop")  # beside the class folders too: listing them once died of it
    os.symlink(d["7"] / "nowhere", d["7"] / "dangling.jpg")
    return root


EXPECTED_REJECTS = {
    "1/copy_b.jpg": "duplicate", "3/conflict.jpg": "label_conflict", "5/conflict.jpg": "label_conflict",
    "2/truncated.jpg": "corrupt", "2/zero.jpg": "empty", "2/notes.jpg": "not_image",
    "2/icon.ico": "unsupported_format", "2/bomb.png": "too_large", "2/tiny.png": "too_small",
    "2/anim.gif": "multi_frame", "2/blank.png": "blank", "6/nested": "nested_folder",
}


def test_every_file_lands_where_it_should(hostile):
    result = ingest(hostile, CLASSES)
    rejects = dict(zip(result.rejects["path"], result.rejects["reason"], strict=True))
    assert rejects == EXPECTED_REJECTS
    indexed = set(result.index["path"])
    assert len(indexed) == 40 + 8 + 1  # clean + normalised + one copy of the duplicate
    assert {"0/png_inside.jpg", "0/UPPER.JPG", "0/long.jpeg", "0/colour.jpg", "0/cmyk.jpg", "0/big56.png",
            '0/my digit, "one" ü.jpg', "1/link_to_file.jpg", "1/copy_a.jpg"} <= indexed
    assert dict(result.skipped) == {
        "system or hidden file": 4, "folder that is not a class": 1, "file outside the class folders": 1,
        "broken or looping symlink": 3,
    }


def test_a_hidden_folder_beside_the_class_folders_is_counted_as_a_folder_not_a_file(tmp_path, mnist):
    """`.ipynb_checkpoints` or `.git` beside the class folders is skipped, as every hidden name is; it was counted
    as one "system or hidden file" however many images it held."""
    write_digits(tmp_path, mnist, per_class=3)
    (tmp_path / ".checkpoints").mkdir()
    for i in range(3):
        (tmp_path / ".checkpoints" / f"{i}.png").write_bytes(png_bytes(digit(mnist, 60 + i)))
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    result = ingest(tmp_path, CLASSES)
    assert dict(result.skipped) == {"hidden folder": 1, "system or hidden file": 1}
    assert len(result.index) == 30 and result.rejects.empty


def test_a_folder_inside_a_class_folder_holding_files_is_a_reject_naming_it(tmp_path, mnist):
    """Its files are not read: one row of rejects.csv says so, counting them at every depth (not hidden ones, not
    through a link to a folder); an empty nested folder is only counted as skipped."""
    write_digits(tmp_path, mnist, per_class=3)
    deep = tmp_path / "7" / "scans" / "2024" / "june"
    deep.mkdir(parents=True)
    for i in range(3):
        (tmp_path / "7" / "scans" / f"{i}.png").write_bytes(png_bytes(digit(mnist, 50 + i)))
    (deep / "late.png").write_bytes(png_bytes(digit(mnist, 53)))
    (deep / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "7" / "scans" / ".hidden").mkdir()
    (tmp_path / "7" / "scans" / ".hidden" / "x.png").write_bytes(b"x")
    os.symlink(tmp_path / "0", tmp_path / "7" / "scans" / "linked")  # not followed: its 3 files are 0's
    os.symlink(tmp_path / "0", tmp_path / "6" / "linked")  # a link to a folder in a class folder: never walked
    (tmp_path / "8" / "empty" / "inside").mkdir(parents=True)
    (tmp_path / "9" / "one").mkdir()
    (tmp_path / "9" / "one" / "a.png").write_bytes(b"not even an image")
    result = ingest(tmp_path, CLASSES, progress=False)
    assert len(result.index) == 30
    assert result.rejects.to_dict("records")[1:] == [
        {"path": "7/scans", "reason": "nested_folder",
         "message": "a folder inside class folder 7, holding 4 files, which are not read: only the files directly "
                    "in a class folder are; move them up into 7, or make the folder a class of its own"},
        {"path": "9/one", "reason": "nested_folder",
         "message": "a folder inside class folder 9, holding 1 file, which is not read: only the files directly in "
                    "a class folder are; move it up into 9, or make the folder a class of its own"}]
    assert result.rejects.to_dict("records")[0] == {
        "path": "6/linked", "reason": "nested_folder",  # never walked, whatever it holds: / could be behind one
        "message": "a folder inside class folder 6, not looked into (a link to a folder, never followed), so none "
                   "of its files is read: only the files directly in a class folder are; move them up into 6"}
    assert dict(result.skipped) == {"nested folder": 1}  # 8/empty
    summary = summarize(result, CLASSES)  # three rows of the rejects file, but folders: no file is counted twice
    assert summary["rejected_by_reason"] == {} and summary["rejected"] == 0 and summary["folders_not_read"] == 3


def test_class_folders_holding_nothing_but_nested_folders_say_where_the_files_are(tmp_path, mnist):
    for label in CLASSES:
        (tmp_path / label / "sub").mkdir(parents=True)
    (tmp_path / "3" / "sub" / "a.png").write_bytes(png_bytes(digit(mnist, 3)))
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, CLASSES, progress=False)
    assert str(err.value) == (f"data dir {tmp_path} holds no files in its class folders (but 1 file in folders "
                              "nested inside them, which ingest does not read: 3/sub; move the files up into their "
                              "class folders)")


def test_normalisations_are_recorded_in_the_index(hostile):
    index = ingest(hostile, CLASSES).index.set_index("path")
    assert index.loc["0/png_inside.jpg", "format"] == "PNG"
    assert "PNG content under a .jpg extension" in index.loc["0/png_inside.jpg", "notes"]
    assert index.loc["0/UPPER.JPG", "notes"] == ""
    assert index.loc["0/cmyk.jpg", "mode"] == "CMYK" and "CMYK converted to gray" in index.loc["0/cmyk.jpg", "notes"]
    assert "resized from 56x56" in index.loc["0/big56.png", "notes"]


def exif_jpeg(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, exif=exif)
    return buf.getvalue()


def test_a_sideways_photo_is_recorded_at_the_size_it_is_used(tmp_path, mnist):
    root = tmp_path / "data"
    write_digits(root, mnist, per_class=1)
    wide = digit(mnist, 30).resize((40, 30))  # stored 40 wide and 30 high
    (root / "0" / "turned.jpg").write_bytes(exif_jpeg(wide, 6))  # shown turned a quarter: 30 wide, 40 high
    (root / "0" / "mirrored.jpg").write_bytes(exif_jpeg(digit(mnist, 31).resize((40, 30)), 2))  # flipped only
    (root / "0" / "upright.jpg").write_bytes(exif_jpeg(digit(mnist, 32).resize((40, 30)), 1))
    index = ingest(root, CLASSES).index.set_index("path")
    turned, mirrored, upright = (index.loc[f"0/{name}.jpg"] for name in ("turned", "mirrored", "upright"))
    assert (turned["width"], turned["height"]) == (30, 40)
    assert "EXIF orientation 6 applied" in turned["notes"] and "resized from 30x40" in turned["notes"]
    assert (mirrored["width"], mirrored["height"]) == (40, 30) and "EXIF orientation 2 applied" in mirrored["notes"]
    assert (upright["width"], upright["height"]) == (40, 30) and "EXIF" not in upright["notes"]
    rejected = ingest(root, CLASSES, Policy(size_policy="reject")).rejects.set_index("path")["message"]
    assert rejected["0/turned.jpg"].startswith("30x40, not 28x28")


def test_messages_explain_duplicates_and_conflicts(hostile):
    rejects = ingest(hostile, CLASSES).rejects.set_index("path")["message"]
    assert "identical to 1/copy_a.jpg" in rejects["1/copy_b.jpg"]
    assert "labels 3 and 5" in rejects["3/conflict.jpg"] and "5/conflict.jpg" in rejects["3/conflict.jpg"]
    assert rejects["2/bomb.png"] == "3,600,000,000 pixels is over ingest.max_pixels=16777216; refused without decoding"


def one_picture_in_other_bytes(mnist) -> dict[str, bytes]:
    """One digit saved four ways: a plain PNG, the same with a text chunk, a BMP and a 16-bit PNG."""
    from PIL import PngImagePlugin

    picture = mnist[0][40]
    assert picture.max() == 255  # so that the 16-bit copy scales back to the same 8 bits
    chunk = PngImagePlugin.PngInfo()
    chunk.add_text("Comment", "scanned at the office")
    texted, bmp = io.BytesIO(), io.BytesIO()
    Image.fromarray(picture).save(texted, format="PNG", pnginfo=chunk)
    Image.fromarray(picture).save(bmp, format="BMP")
    return {"a.png": png_bytes(Image.fromarray(picture)), "texted.png": texted.getvalue(), "a.bmp": bmp.getvalue(),
            "deep.png": png_bytes(Image.fromarray(picture.astype(np.uint16) * 257))}


def test_the_same_picture_in_other_bytes_is_a_duplicate(tmp_path, mnist):
    """Copies that differ in their bytes only (a text chunk, another format, 16 bits) give the model one picture:
    indexed once, so they can never sit in two splits; two different pictures stay two."""
    copies = one_picture_in_other_bytes(mnist)
    assert len({content_hash(data) for data in copies.values()}) == 4
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    for name, data in copies.items():
        (tmp_path / "a" / name).write_bytes(data)
    (tmp_path / "a" / "other.png").write_bytes(png_bytes(digit(mnist, 41)))
    (tmp_path / "b" / "b.png").write_bytes(png_bytes(digit(mnist, 42)))
    (tmp_path / "b" / "b_copy.png").write_bytes(png_bytes(digit(mnist, 42)))
    result = ingest(tmp_path, ["a", "b"], progress=False)
    assert sorted(result.index["path"]) == ["a/a.bmp", "a/other.png", "b/b.png"]
    assert list(result.index.columns) == INDEX_COLUMNS
    rejects = result.rejects.set_index("path")
    assert dict(rejects["reason"]) == {"a/a.png": "duplicate", "a/deep.png": "duplicate",
                                       "a/texted.png": "duplicate", "b/b_copy.png": "duplicate"}
    assert rejects.loc["a/texted.png", "message"] == ("the same picture as a/a.bmp (same pixels, other file bytes), "
                                                      "which is indexed")
    assert rejects.loc["b/b_copy.png", "message"] == "identical to b/b.png, which is indexed"


def test_the_same_picture_in_other_bytes_under_two_labels_is_a_conflict(tmp_path, mnist):
    copies = one_picture_in_other_bytes(mnist)
    for folder, name, own in (("a", "a.png", 43), ("b", "texted.png", 44)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(copies[name])
        (tmp_path / folder / "own.png").write_bytes(png_bytes(digit(mnist, own)))
    result = ingest(tmp_path, ["a", "b"], progress=False)
    assert sorted(result.index["path"]) == ["a/own.png", "b/own.png"]
    rejects = result.rejects.set_index("path")
    assert dict(rejects["reason"]) == {"a/a.png": "label_conflict", "b/texted.png": "label_conflict"}
    assert rejects.loc["a/a.png", "message"] == ("same image filed under labels a and b: also b/texted.png (label b, "
                                                 "same pixels, other file bytes)")


@pytest.mark.parametrize("turn", range(2, 9))
def test_a_picture_stored_turned_with_its_exif_orientation_is_the_same_as_it_upright(tmp_path, mnist, turn):
    """Stored turned or mirrored, with the EXIF orientation that shows it upright: the picture the model sees
    (PIL's own ImageOps.exif_transpose says how it is shown) is the upright file's, so it is a duplicate."""
    from PIL import ImageOps

    upright = Image.fromarray(mnist[0][44]).resize((28, 36))  # not square: a quarter turn shows
    undone = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_270}[turn]  # stored so that the orientation shows it upright
    exif = Image.Exif()
    exif[0x0112] = turn
    buf = io.BytesIO()
    upright.transpose(undone).save(buf, format="PNG", exif=exif)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
    assert np.array_equal(np.asarray(shown), np.asarray(upright))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "upright.png").write_bytes(png_bytes(upright))
    (tmp_path / "a" / "turned.png").write_bytes(buf.getvalue())
    (tmp_path / "b" / "other.png").write_bytes(png_bytes(digit(mnist, 45)))
    result = ingest(tmp_path, ["a", "b"], progress=False)
    assert dict(zip(result.rejects["path"], result.rejects["reason"], strict=True)) == {"a/upright.png": "duplicate"}
    assert "the same picture as a/turned.png" in result.rejects["message"][0]


def test_reject_size_policy(hostile):
    result = ingest(hostile, CLASSES, Policy(size_policy="reject"))
    assert result.rejects.set_index("path").loc["0/big56.png", "reason"] == "wrong_size"


def test_parallel_and_serial_give_the_same_index(hostile, monkeypatch):
    import digitpipe.ingest as module

    serial = ingest(hostile, CLASSES)
    monkeypatch.setattr(module, "PARALLEL_FROM", 1)
    parallel = ingest(hostile, CLASSES, progress=False)
    pd.testing.assert_frame_equal(serial.index, parallel.index)
    pd.testing.assert_frame_equal(serial.rejects, parallel.rejects)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores raw byte names")
def test_file_name_that_is_not_utf8(tmp_path, mnist):
    write_digits(tmp_path, mnist, per_class=3)
    fd = os.open(os.path.join(os.fsencode(tmp_path / "0"), b"bad\xff.jpg"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, encode_jpeg(mnist[0][5]))
    os.close(fd)
    result = ingest(tmp_path, CLASSES)
    assert list(result.rejects["reason"]) == ["bad_name"]
    assert list(result.rejects["path"]) == ["0/bad\\xff.jpg"]  # as every output shows it: two such names differ
    assert len(result.index) == 30


def test_a_name_holding_a_carriage_return_comes_back_from_the_index_whole(tmp_path, mnist):
    """The CSV writer quotes a newline but not a lone carriage return, which a reader takes for a line end: the
    index must still read back one row per file, the name intact, so that prepare finds the file."""
    from digitpipe.files import read_csv, write_csv

    write_digits(tmp_path / "data", mnist, per_class=2)
    (tmp_path / "data/0/scan\r2.jpg").write_bytes(encode_jpeg(mnist[0][5]))
    (tmp_path / "data/1/two\nlines.jpg").write_bytes(encode_jpeg(mnist[0][6]))
    result = ingest(tmp_path / "data", CLASSES)
    write_csv(result.index, tmp_path / "index.csv")
    back = read_csv(tmp_path / "index.csv")
    assert len(back) == 22 and {"0/scan\r2.jpg", "1/two\nlines.jpg"} <= set(back["path"])
    assert back.equals(result.index.reset_index(drop=True).astype(back.dtypes.to_dict()))
    plain = result.index[~result.index["path"].str.contains("\r")]  # no carriage return: written as before
    write_csv(plain, tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text().count('"') == 2  # only the newline name is quoted


def test_what_dvc_cannot_track_in_a_data_folder_is_named_with_the_fix(tmp_path, monkeypatch):
    """DVC hangs on a fifo, stops on a name that is not UTF-8 or a broken link, and does not look inside a class
    folder that is a link (so a change there would never re-run the pipeline): each is named, with what to do."""
    from digitpipe.ingest import check_links, untrackable

    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for folder in (root / "0", root / "1", elsewhere):
        folder.mkdir(parents=True)
        (folder / "a.jpg").write_bytes(b"x")
    os.symlink(elsewhere, root / "2")
    (root / "0" / "nested").mkdir()
    os.symlink(elsewhere, root / "0" / "nested" / "linked")  # not a class folder: ingest skips it, as DVC does
    os.mkfifo(root / "0" / "pipe.jpg")
    os.symlink(root / "0" / "pipe.jpg", root / "1" / "to_pipe.jpg")  # DVC follows the link and waits on the fifo
    open(os.path.join(os.fsencode(root / "1"), b"bad_\xff.jpg"), "wb").close()
    os.symlink(tmp_path / "nowhere", root / "1" / "gone.jpg")
    monkeypatch.chdir(tmp_path)  # not a DVC project: nothing is ignored
    assert untrackable(root, ["0", "1", "2"]) == {
        "dangling": ["1/gone.jpg"], "special": ["0/pipe.jpg", "1/to_pipe.jpg"], "name": ["1/bad_\\xff.jpg"],
        "linked": ["2"]}
    with pytest.raises(DigitpipeError) as err:
        check_links(root, ["0", "1", "2"])
    assert str(err.value) == (
        "1 broken or looping symlink(s), on which DVC stops while hashing the folder: 1/gone.jpg; remove them or "
        "list them in .dvcignore; 2 special file(s) (a fifo, socket or device), on which DVC hangs or stops while "
        "hashing the folder: 0/pipe.jpg, 1/to_pipe.jpg; remove them or list them in .dvcignore; 1 name(s) that "
        "are not valid UTF-8, on which DVC stops while hashing the folder: 1/bad_\\xff.jpg; rename them; 1 class "
        "folder(s) that are links to a folder, inside which DVC does not look, so a change there would never re-run "
        "the pipeline: 2; put the folder itself in place of the link")
    for path in (root / "0/pipe.jpg", root / "1/to_pipe.jpg", root / "1/gone.jpg",
                 os.path.join(os.fsencode(root / "1"), b"bad_\xff.jpg")):
        os.unlink(path)
    (root / "2").unlink()
    (root / "2").mkdir()
    check_links(root, ["0", "1", "2"])  # nothing left that DVC cannot track


RAISED_WHILE_OPENING = [
    UnidentifiedImageError("cannot identify image file"),
    Image.DecompressionBombError("Image size (3600000000 pixels) exceeds limit of 178956970 pixels, could be "
                                 "decompression bomb DOS attack."),
    OSError("image file is truncated"), PermissionError(13, "Permission denied"), SyntaxError("not a PNG file"),
    ValueError("tile cannot extend outside image"), EOFError(), struct.error("unpack requires a buffer of 4 bytes"),
    IndexError("index out of range"), TypeError("bad operand"), ZeroDivisionError("division by zero"), MemoryError(),
    KeyError(273), NotImplementedError("a mode no one handles"),
]


@pytest.mark.parametrize("err", RAISED_WHILE_OPENING, ids=[type(e).__name__ for e in RAISED_WHILE_OPENING])
def test_any_error_while_opening_is_refused_by_ingest_and_predict_with_the_same_reason(tmp_path, mnist, monkeypatch,
                                                                                       err):
    """Whatever a decoder raises inside ``Image.open``, ingest rejects the file and predict reports it, with the
    one reason and the same words (:func:`digitpipe.decode.refusal`); nothing escapes."""
    from digitpipe.batch import read
    from digitpipe.decode import refusal
    from digitpipe.ingest import inspect_file

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "a.png").write_bytes(png_bytes(digit(mnist, 0)))

    def raising(*args, **kwargs):
        raise err

    monkeypatch.setattr(Image, "open", raising)
    row = inspect_file(("0/a.png", "0"), tmp_path, Policy())
    expected = refusal(err)
    if isinstance(err, Image.DecompressionBombError):  # a size from the header: ingest names its own limit
        assert (row["reason"], row["message"]) == ("too_large", "3,600,000,000 pixels is over ingest.max_pixels="
                                                   "16777216; refused without decoding")
        assert expected.message == "3,600,000,000 pixels is too large to classify"
    else:
        assert (row["reason"], row["message"]) == (expected.reason, expected.message)
    assert row["reason"] in {"not_image", "too_large", "unreadable", "corrupt"}
    assert read(str(tmp_path / "0" / "a.png")) == expected.message


def test_an_eps_file_is_an_unsupported_format_and_ghostscript_never_runs(tmp_path, mnist, fake_ghostscript):
    from digitpipe.ingest import inspect_file

    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "a.eps").write_bytes(eps_bytes(digit(mnist, 0)))
    (tmp_path / "0" / "phone.jpg").write_bytes(mpo_bytes(digit(mnist, 1)))
    row = inspect_file(("0/a.eps", "0"), tmp_path, Policy())
    assert (row["reason"], row["message"]) == ("unsupported_format", "EPS images are not supported; use BMP, GIF, "
                                               "JPEG, PNG, PPM, TIFF, WEBP")
    assert not fake_ghostscript.exists()
    assert inspect_file(("0/phone.jpg", "0"), tmp_path, Policy())["format"] == "MPO"  # a phone's JPEG: indexed


def run_stage(project: Path, data_dir: Path) -> subprocess.CompletedProcess:
    project.mkdir(exist_ok=True)
    params = (ROOT / "params.yaml").read_text().replace("dir: data/sample", f"dir: {data_dir}")
    (project / "params.yaml").write_text(params)
    env = {**ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stages.ingest"], cwd=project, env=env,
                          capture_output=True, text=True)



def test_ingest_counts_the_files_check_counts_and_names_the_folders_it_did_not_read(tmp_path, mnist):
    """A folder inside a class folder is a reject row of its own, but no file: ingest's count of files is
    `digitpipe check`'s, and the folder is named apart."""
    data = tmp_path / "data"
    write_digits(data, mnist, per_class=4)
    write_digits(data / "3" / "more", mnist, per_class=1)  # 10 files in folders inside class folder 3
    (data / "5" / "empty.jpg").write_bytes(b"")
    proc = run_stage(tmp_path / "project", data)
    assert proc.returncode == 0, proc.stderr
    assert ": 40 indexed, 1 rejected, 0 skipped; 1 folder inside class folders not read\n" in proc.stdout
    files = int(re.search(r"^ingest: ([\d,]+) files from ", proc.stdout).group(1))
    checked = subprocess.run([sys.executable, "-m", "digitpipe.check"], cwd=tmp_path / "project",
                             env={**ENV, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert files == 41
    assert f"class folders present, {files} files" in checked.stdout


def test_stage_on_the_hostile_folder_exits_cleanly_and_writes_valid_csv(hostile, tmp_path):
    proc = run_stage(tmp_path / "project", hostile)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert ": 49 indexed, 11 rejected, 9 skipped; 1 folder inside class folders not read\n" in proc.stdout
    index = pd.read_csv(tmp_path / "project/data/index/index.csv", keep_default_na=False)
    assert '0/my digit, "one" ü.jpg' in set(index["path"])
    rejects = pd.read_csv(tmp_path / "project/data/index/rejects.csv")
    assert len(rejects) == 12
    assert json.loads((tmp_path / "project/metrics/data.json").read_text()) == {"images": 49}
    details = json.loads((tmp_path / "project/metrics/details/data.json").read_text())
    assert (details["indexed"], details["rejected"], details["skipped"], details["folders_not_read"]) == (49, 11, 9, 1)
    assert "  rejected  nested_folder" not in proc.stdout  # named once, as a folder, not also as a rejected file


def test_stage_runs_are_byte_identical(hostile, tmp_path):
    outputs = []
    for name in ("a", "b"):
        assert run_stage(tmp_path / name, hostile).returncode == 0
        outputs.append([(tmp_path / name / f).read_bytes() for f in
                        ("data/index/index.csv", "data/index/rejects.csv", "metrics/data.json",
                         "metrics/details/data.json")])
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "is empty"),
    (lambda root: [(root / "trainingSet" / c).mkdir(parents=True) for c in CLASSES],
     "set data.dir to {root}/trainingSet"),
    (lambda root: (root.mkdir(), (root / "img_1.jpg").write_bytes(b"x")), "holds 1 files but no class folders"),
    (lambda root: [(root / c).mkdir(parents=True) for c in CLASSES[:9]], "no folder for class(es) 9"),
    (lambda root: [(root / c).mkdir(parents=True) for c in CLASSES], "holds no files in its class folders"),
])
def test_data_dir_errors_are_one_clear_line(tmp_path, setup, message):
    root = tmp_path / "trainingSet"
    setup(root)
    with pytest.raises(DigitpipeError) as err:
        ingest(root, CLASSES)
    assert message.format(root=root) in str(err.value)
    proc = run_stage(tmp_path / "project", root)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_summary_counts(hostile):
    summary = summarize(ingest(hostile, CLASSES), CLASSES)
    assert summary["indexed"] == 49 and summary["rejected"] == 11 and summary["skipped"] == 9
    assert summary["rejected_by_reason"]["label_conflict"] == 2
    assert summary["images_per_class"]["0"] == 4 + 7
    assert np.sum(list(summary["images_per_class"].values())) == 49


def test_a_class_folder_spelled_in_another_unicode_form_is_its_class(tmp_path):
    """macOS (and zips made there) write 'é' as 'e' plus a combining accent; params.yaml holds the 'é' typed."""
    import unicodedata

    classes = ["étoile", "lune"]
    nfd = unicodedata.normalize("NFD", "étoile")
    assert nfd != "étoile"
    rng = np.random.default_rng(0)
    for folder in (nfd, "lune"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    result = ingest(tmp_path, classes, progress=False)
    assert result.rejects.empty
    stars = result.index[result.index["label"] == "étoile"]
    assert len(stars) == 3
    assert all(path.startswith(nfd + "/") and (tmp_path / path).is_file() for path in stars["path"])
    assert summarize(result, classes)["images_per_class"]["étoile"] == 3

    (tmp_path / "étoile").mkdir()  # now two folders spell it: which one is meant is not ours to guess
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, classes, progress=False)
    assert str(err.value) == (f"data dir {tmp_path} has 2 folders that spell class étoile: {nfd!r} (decomposed) and "
                              f"{chr(0xE9) + 'toile'!r} (composed), the same letters in different Unicode forms; merge "
                              "them into one")


def test_check_refuses_what_ingest_would_refuse_in_ingest_words(tmp_path, monkeypatch):
    """`digitpipe check` passes only when ingest can start: a class without a folder stops both, with the same
    hint; folders that are no class are named, since ingest skips them."""
    import yaml

    from digitpipe.check import check

    data = tmp_path / "shapes"
    for folder in ("Cat", "dog", "extra", "more"):
        (data / folder).mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dir=str(data), classes=["cat", "dog"])
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(DigitpipeError) as ingest_err:
        ingest(data, ["cat", "dog"], progress=False)
    with pytest.raises(DigitpipeError) as check_err:
        check(Path("params.yaml"))
    assert str(check_err.value) == f"params.yaml: data.dir = {str(data)!r}: {ingest_err.value}"
    assert str(check_err.value).endswith("did you mean folder 'Cat' for class 'cat'?")
    (data / "Cat").rename(data / "cat")
    for folder, count in (("cat", 4), ("dog", 5)):
        for i in range(count):
            (data / folder / f"{i}.png").write_bytes(f"{folder} {i}: not decoded by check".encode())
    assert check(Path("params.yaml")) == (f"params.yaml: valid; data.dir {data}: 2 of 2 class folders present, "
                                          "9 files (4 to 5 a class); 2 other folder(s), not classes, skipped: extra, "
                                          "more; data.normalize=mnist, model.arch=digitnet")
    # counted as ingest keeps them: one file per content, none for content filed under both classes, none empty
    (data / "cat" / "copy.png").write_bytes(b"cat 0: not decoded by check")
    (data / "cat" / "4.png").write_bytes(b"dog 4: not decoded by check")
    (data / "dog" / "empty.png").write_bytes(b"")
    assert ("12 files, 8 once duplicates and files under two classes (by their bytes) and 1 file ingest refuses "
            "unread are left out (4 to 4 a class); refused unread: dog/empty.png (empty file)") in check(
        Path("params.yaml"))


@pytest.mark.parametrize(("cats", "fractions"), [(2, (0.7, 0.15, 0.15)), (0, (0.7, 0.15, 0.15)),
                                                 (25, (0.84, 0.01, 0.15))])
def test_check_refuses_classes_the_split_could_not_deal_in_the_split_stages_words(tmp_path, monkeypatch, cats,
                                                                                  fractions):
    """Too few images in a class, an empty class folder, or a fraction that rounds a split to none: the split
    stage would stop after ingest had run; check says so first, in the same words."""
    import yaml

    from digitpipe.check import check
    from digitpipe.split import check_dealable

    data = tmp_path / "shapes"
    for folder, count in (("cat", cats), ("dog", 25)):
        (data / folder).mkdir(parents=True)
        for i in range(count):
            (data / folder / f"{i}.png").write_bytes(f"{folder} {i}".encode())
    split = dict(zip(("train", "val", "test"), fractions, strict=True))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dir=str(data), classes=["cat", "dog"])
    params["split"] = split
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(DigitpipeError) as split_err:
        check_dealable({"cat": cats, "dog": 25}, split)
    with pytest.raises(DigitpipeError) as check_err:
        check(Path("params.yaml"))
    assert str(check_err.value) == f"params.yaml: data.dir = {str(data)!r}: {split_err.value}"


def test_check_names_the_folders_inside_class_folders_and_what_they_hold(tmp_path, monkeypatch):
    """A class whose images all sit in a folder inside its class folder has none that ingest reads: check says
    so where it says the class falls short, and names such folders when a run can start."""
    import yaml

    from digitpipe.check import check

    data = tmp_path / "answers"
    for folder, count in (("no", 25), ("yes/sub", 150), ("yes/sub/deeper", 2)):
        (data / folder).mkdir(parents=True)
        for i in range(count):
            (data / folder / f"{i}.png").write_bytes(f"{folder} {i}".encode())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dir=str(data), classes=["no", "yes"])
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(DigitpipeError) as err:
        check(Path("params.yaml"))
    assert str(err.value).endswith("add images or drop the class from data.classes; the folder of class 'yes' holds "
                                   "152 files in nested folders, which are not read (yes/sub): move them up into yes")
    for i in range(25):
        (data / "yes" / f"{i}.png").write_bytes(f"yes {i}".encode())
    assert check(Path("params.yaml")) == (
        f"params.yaml: valid; data.dir {data}: 2 of 2 class folders present, 50 files (25 to 25 a class); 1 folder(s) "
        "inside class folders, whose files are not read: yes/sub (152 files); data.normalize=mnist, "
        "model.arch=digitnet")


def test_a_missing_class_points_at_a_folder_of_a_near_name(tmp_path):
    for folder in ("Cat", "dgo", "bird"):
        (tmp_path / folder).mkdir()
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, ["cat", "dog", "bird"], progress=False)
    assert str(err.value).endswith("has no folder for class(es) cat, dog (add them, or drop them from "
                                   "data.classes); did you mean folder 'Cat' for class 'cat', folder 'dgo' for "
                                   "class 'dog'?")


def test_no_class_folder_at_all_names_the_folders_there_and_the_near_ones(tmp_path):
    for folder in ("x", "y", "z", "a", "b", "c", "d"):
        (tmp_path / folder).mkdir()
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, ["X", "Y", "Z"], progress=False)
    assert str(err.value) == (f"no class folders found in {tmp_path}: expected sub-folders named X, Y, Z (see "
                              "data.classes); its folders are a, b, c, d, x and 2 more; did you mean folder 'x' for "
                              "class 'X', folder 'y' for class 'Y', folder 'z' for class 'Z'?; to make its folders "
                              """the classes: -S 'data.classes=["a", "b", "c", "d", "x", "y", "z"]'""")
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, ["cat", "dog"], progress=False)
    assert str(err.value).endswith("(see data.classes); its folders are a, b, c, d, x and 2 more; to make its "
                                   """folders the classes: -S 'data.classes=["a", "b", "c", "d", "x", "y", "z"]'""")


def test_the_folders_offered_as_classes_are_a_setting_dvc_and_check_read_back(tmp_path):
    """All 47 names in a list a user can paste (the folders named above stop at five): read as `-S` reads it,
    it names every folder, spaces and accents included."""
    from digitpipe.params import set_values

    names = [f"upper_{chr(65 + i)}" for i in range(26)] + [f"digit {d}" for d in range(10)] + ["étoile"] * 1
    for name in names:
        (tmp_path / name).mkdir()
    with pytest.raises(DigitpipeError) as err:
        ingest(tmp_path, ["0", "1"], progress=False)
    setting = str(err.value).split(" -S ")[-1].strip("'")
    assert set_values({"data": {"classes": ["0", "1"]}}, [setting])["data"]["classes"] == sorted(names)
    for name in ("it's", "${x}"):  # a quote would end the shell's quoting, and DVC reads ${x} as key x: no setting
        (tmp_path / name).mkdir()
        with pytest.raises(DigitpipeError) as err:
            ingest(tmp_path, ["0", "1"], progress=False)
        assert "to make its folders the classes" not in str(err.value)
        (tmp_path / name).rmdir()


def test_check_looks_into_a_data_folder_a_stage_makes_once_it_is_there(tmp_path, monkeypatch):
    """data/sample is the sample stage's output: in a fresh clone check says so; once made, it is checked like any
    folder, so fractions the split could not deal are refused before a run, and an emptied or edited one is said to
    come back from DVC."""
    import shutil

    import yaml

    from digitpipe.check import check

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dir="made/digits", classes=["a", "b"])
    params["split"] = {"train": 0.9992, "val": 0.0004, "test": 0.0004}
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    Path("dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": {"cmd": "true", "outs": ["made/digits"]}}}))
    assert "data.dir made/digits: made by the `make` stage, which has not run yet;" in check(Path("params.yaml"))
    for label in ("a", "b"):
        (tmp_path / "made/digits" / label).mkdir(parents=True)
        for i in range(6):
            (tmp_path / "made/digits" / label / f"{i}.png").write_bytes(f"{label}{i}".encode())
    with pytest.raises(DigitpipeError, match=r"class 'a' has 6 distinct images: .* deal them out as train 6, val 0"):
        check(Path("params.yaml"))
    restore = ("made/digits is what the `make` stage writes: `dvc checkout made/digits` brings it back, or `dvc repro` "
               "writes it again")
    with pytest.raises(DigitpipeError) as err:
        check(Path("params.yaml"))
    assert str(err.value).endswith(f"; {restore}")
    shutil.rmtree(tmp_path / "made/digits/b")
    with pytest.raises(DigitpipeError) as err:  # a class folder removed from it
        check(Path("params.yaml"))
    assert "has no folder for class(es) b (" in str(err.value) and str(err.value).endswith(f"; {restore}")
    shutil.rmtree(tmp_path / "made/digits/a")
    with pytest.raises(DigitpipeError) as err:  # emptied: not "put one sub-folder per class in it" alone
        check(Path("params.yaml"))
    assert str(err.value) == (f"params.yaml: data.dir = 'made/digits': data dir made/digits is empty: put one "
                              f"sub-folder per class in it (a, b, ...); {restore}")


def test_check_with_a_value_set_checks_what_dvc_exp_run_would_run(tmp_path, monkeypatch, capsys):
    """`digitpipe check -S data.dir=scans` checks another folder before `dvc exp run -S data.dir=scans`, and
    leaves params.yaml as it was."""
    import sys

    import yaml

    from digitpipe import check

    for name, classes in (("shapes", ("cat", "dog")), ("scans", ("cat", "owl"))):
        for folder in classes:
            (tmp_path / name / folder).mkdir(parents=True)
            for i in range(5):
                (tmp_path / name / folder / f"{i}.png").write_bytes(f"{name} {folder} {i}".encode())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(dir="shapes", classes=["cat", "dog"])
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    before = Path("params.yaml").read_bytes()
    monkeypatch.setattr(sys, "argv", ["digitpipe check", "-S", "data.dir=scans", "-S", "seed=7"])
    with pytest.raises(DigitpipeError, match=r"^params\.yaml with data\.dir=scans seed=7: data\.dir = 'scans': "
                                             r"data dir scans has no folder for class\(es\) dog"):
        check.main()
    monkeypatch.setattr(sys, "argv", ["digitpipe check", "-S", "data.classes=[cat,owl]", "--set-param",
                                      "data.dir=scans"])
    check.main()
    assert capsys.readouterr().out == ("params.yaml with data.classes=[cat,owl] data.dir=scans: valid; data.dir "
                                       "scans: 2 of 2 class folders present, 10 files (5 to 5 a class); "
                                       "data.normalize=mnist, model.arch=digitnet\n")
    assert Path("params.yaml").read_bytes() == before


def as_a_user(command: list[str]) -> list[str]:
    """``command`` with file permissions enforced: root reads any folder whatever its mode, so as root it runs
    without the two capabilities that let it (still root, but refused as any user is)."""
    if os.geteuid() != 0:
        return command
    if not Path("/usr/bin/setpriv").exists():
        pytest.skip("root ignores file modes, and setpriv (util-linux), which drops that right, is missing")
    return ["/usr/bin/setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_a_data_dir_or_class_folder_that_cannot_be_listed_is_refused_in_one_line(tmp_path, mnist):
    root = tmp_path / "data"
    write_digits(root, mnist, per_class=4)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    check = as_a_user([sys.executable, "-m", "digitpipe.check", "-S", f"data.dir={root}"])
    env = {**ENV, "PYTHONPATH": str(ROOT)}
    try:
        (root / "3").chmod(0o311)  # can be entered, not listed
        proc = subprocess.run(check, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr == (f"error: params.yaml with data.dir={root}: data.dir = '{root}': cannot list the folder "
                               f"of class '3', {root}/3: Permission denied; ingest reads every file in it: give read "
                               "and search permission (chmod -R u+rX), or drop the class from data.classes\n")
        (root / "3").chmod(0o755)
        root.chmod(0)
        proc = subprocess.run(check, capture_output=True, text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"cannot list data dir {root}: Permission denied" in proc.stderr
    finally:
        root.chmod(0o755)
        (root / "3").chmod(0o755)


def test_a_folder_in_a_class_folder_that_cannot_be_listed_is_a_reject_row_never_an_empty_folder(tmp_path, mnist):
    """An empty nested folder is only counted as skipped; one that cannot be listed may hold anything, so it is
    reported by name, as deep as the folder that refused."""
    root = tmp_path / "data"
    write_digits(root, mnist, per_class=4)
    (root / "2" / "locked").mkdir()
    (root / "2" / "locked" / "x.jpg").write_bytes((root / "2").joinpath(sorted(os.listdir(root / "2"))[0]).read_bytes())
    (root / "5" / "outer" / "inner").mkdir(parents=True)
    (root / "5" / "empty").mkdir()
    script = ("import json, sys; from pathlib import Path; from digitpipe.ingest import ingest, summarize; "
              "r = ingest(Path(sys.argv[1]), [str(i) for i in range(10)], progress=False); "
              "print(json.dumps({'rejects': r.rejects.to_dict('records'), 'skipped': dict(r.skipped), "
              "'indexed': len(r.index)}))")
    try:
        (root / "2" / "locked").chmod(0)
        (root / "5" / "outer" / "inner").chmod(0)
        proc = subprocess.run(as_a_user([sys.executable, "-c", script, str(root)]), capture_output=True, text=True,
                              env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    finally:
        (root / "2" / "locked").chmod(0o755)
        (root / "5" / "outer" / "inner").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["indexed"] == 40
    assert found["skipped"] == {"nested folder": 1}  # 5/empty
    assert found["rejects"] == [
        {"path": "2/locked", "reason": "nested_folder",
         "message": "a folder inside class folder 2, not looked into (cannot list 2/locked: Permission denied), so "
                    "none of its files is read: only the files directly in a class folder are; move them up into 2"},
        {"path": "5/outer", "reason": "nested_folder",
         "message": "a folder inside class folder 5, not looked into (cannot list 5/outer/inner: Permission "
                    "denied), so none of its files is read: only the files directly in a class folder are; move "
                    "them up into 5"},
    ]


def test_the_params_stage_refuses_a_class_too_small_to_split_before_ingest_reads_a_file(tmp_path, mnist):
    """Counting the files (never reading them) finds a class that no split could hold: without it, ingest would
    index the whole folder and only then would split stop."""
    root = tmp_path / "digits"
    write_digits(root, mnist, per_class=4)
    nested = root / "7" / "scans"
    nested.mkdir()
    for path in sorted((root / "7").glob("*.jpg")):
        path.rename(nested / path.name)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("dir: data/sample", "dir: digits"))
    stage = [sys.executable, "-m", "stages.params"]
    proc = subprocess.run(stage, capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("error: params.yaml: data.dir = 'digits': class '7' has only 0 distinct image(s): too few "
                           "for 3 splits (each needs at least one image of every class); add images or drop the class "
                           "from data.classes (counting every file in the class folders); the folder of class '7' "
                           "holds 4 files in nested folders, which are not read (7/scans): move them up into 7\n")
    for path in sorted(nested.glob("*.jpg")):
        path.rename(root / "7" / path.name)
    proc = subprocess.run(stage, capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "params: params.yaml is valid\n", "")


def test_the_params_stage_checks_a_data_folder_a_stage_makes_once_it_is_there(tmp_path, mnist):
    """`dvc exp run -S 'data.classes=[a,b]'` on data/sample passed the params stage, which skipped the folder
    because a stage makes it; DVC then removed ingest's outputs and ingest stopped. A fresh clone's folder, not
    made yet, is left to ingest; once it is there, it is checked as any folder is, with how to get it back."""
    import yaml

    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"sample": {"cmd": "true", "outs": ["made/digits"]}}}))
    params = (ROOT / "params.yaml").read_text().replace("dir: data/sample", "dir: made/digits")
    (tmp_path / "params.yaml").write_text(params)
    stage = [sys.executable, "-m", "stages.params"]

    def run_stage() -> subprocess.CompletedProcess:
        return subprocess.run(stage, capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)

    assert run_stage().returncode == 0  # not made yet: the sample stage may run after this one
    write_digits(tmp_path / "made/digits", mnist, per_class=4)
    assert run_stage().stdout == "params: params.yaml is valid\n"
    (tmp_path / "params.yaml").write_text(params.replace("- '9'", "- '9'\n  - ten"))
    proc = run_stage()
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("error: params.yaml: data.dir = 'made/digits': data dir made/digits has no folder "
                                  "for class(es) ten")
    assert proc.stderr.endswith("; made/digits is what the `sample` stage writes: `dvc checkout made/digits` brings "
                                "it back, or `dvc repro` writes it again\n")
    files = [p for p in (tmp_path / "made/digits").rglob("*") if p.is_file()]
    lock = {"schema": "2.0", "stages": {"sample": {"cmd": "true", "outs": [
        {"path": "made/digits", "hash": "md5", "md5": "0" * 32 + ".dir", "size": sum(p.stat().st_size for p in files),
         "nfiles": len(files)}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    proc = run_stage()  # the folder as dvc.lock records it: the params are what is wrong, and only they are named
    assert proc.stderr == ("error: params.yaml: data.dir = 'made/digits': data dir made/digits has no folder for "
                           "class(es) ten (add them, or drop them from data.classes)\n")


def test_check_names_the_folders_in_class_folders_that_ingest_does_not_look_into(tmp_path, mnist, monkeypatch):
    from digitpipe.check import check

    root = tmp_path / "digits"
    write_digits(root, mnist, per_class=4)
    os.symlink(root / "0", root / "6" / "linked")
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace("dir: data/sample", "dir: digits"))
    monkeypatch.chdir(tmp_path)
    assert ("40 files (4 to 4 a class); 1 folder(s) inside class folders not looked into, whose files are not read: "
            "6/linked (a link to a folder, never followed); data.normalize=mnist") in check(Path("params.yaml"))
