"""The one mapping from decoder errors to a reason code and words, the one blank check, and bounded reads."""

from __future__ import annotations

import io
import os
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from digitpipe.decode import (
    FAST_BYTES,
    EmptyFile,
    ImageTooLarge,
    NotAFile,
    Refusal,
    UnsupportedFormat,
    blank,
    failure_reason,
    gray_from_bytes,
    open_file,
    read_at_most,
    read_gray,
    refusal,
)
from tests.helpers import eps_bytes, mpo_bytes

BOMB = Image.DecompressionBombError("Image size (3600000000 pixels) exceeds limit of 178956970 pixels, could be "
                                    "decompression bomb DOS attack.")

MAPPING = [
    (UnidentifiedImageError("cannot identify image file <_io.BytesIO object at 0x7f>"), "not_image", "not an image"),
    (BOMB, "too_large", "3,600,000,000 pixels is too large to classify"),
    (ImageTooLarge("9000x9000 pixels is too large to classify"), "too_large",
     "9000x9000 pixels is too large to classify"),
    (MemoryError(), "too_large", "too large to decode: out of memory"),
    (PermissionError(13, "Permission denied"), "unreadable", "cannot read: Permission denied"),
    (OSError(40, "Too many levels of symbolic links"), "unreadable", "cannot read: Too many levels of symbolic links"),
    (OSError("image file is truncated (3 bytes not processed)"), "corrupt",
     "cannot decode: image file is truncated (3 bytes not processed)"),
    (SyntaxError("not a TIFF file"), "corrupt", "cannot decode: not a TIFF file"),
    (ValueError("tile cannot extend outside image"), "corrupt", "cannot decode: tile cannot extend outside image"),
    (EOFError(), "corrupt", "cannot decode: EOFError"),
    (struct.error("unpack requires a buffer of 4 bytes"), "corrupt",
     "cannot decode: unpack requires a buffer of 4 bytes"),
    (IndexError("index out of range"), "corrupt", "cannot decode: index out of range"),
    (TypeError("'NoneType' object is not subscriptable"), "corrupt",
     "cannot decode: 'NoneType' object is not subscriptable"),
    (ZeroDivisionError("division by zero"), "corrupt", "cannot decode: ZeroDivisionError: division by zero"),
    (KeyError(273), "corrupt", "cannot decode: KeyError: 273"),
    (RecursionError("maximum recursion depth exceeded"), "corrupt",
     "cannot decode: RecursionError: maximum recursion depth exceeded"),
]


@pytest.mark.parametrize(("err", "reason", "message"), MAPPING, ids=[type(e).__name__ for e, _, _ in MAPPING])
def test_every_error_gets_one_reason_and_one_line(err, reason, message):
    assert refusal(err) == Refusal(reason, message)


def test_a_decoders_message_is_kept_to_one_short_line():
    why = refusal(SyntaxError("broken\nheader\r\n" + "x" * 500))
    assert why.message.startswith("cannot decode: broken header xxx") and why.message.endswith("...")
    assert "\n" not in why.message and "\r" not in why.message and len(why.message) < 250


def test_failure_reason_still_tells_a_file_problem_from_a_program_error():
    """The web page's contract: the words of the mapping for decoder errors, ``None`` for anything else."""
    assert failure_reason(UnidentifiedImageError("x")) == "not an image"
    assert failure_reason(ImageTooLarge("6000x6000 pixels is too large to classify")) == (
        "6000x6000 pixels is too large to classify")
    assert failure_reason(BOMB) == "3,600,000,000 pixels is too large to classify"
    assert failure_reason(OSError("broken data stream")) == "cannot decode: broken data stream"
    assert failure_reason(ZeroDivisionError("division by zero")) == "cannot decode: ZeroDivisionError: division by zero"
    assert failure_reason(RuntimeError("a bug in the page")) is None
    assert failure_reason(KeyboardInterrupt()) is None


@pytest.mark.parametrize("value", [0, 128, 255])
def test_an_image_of_one_value_is_blank(value):
    assert blank(np.full((28, 40), value, np.uint8)) == Refusal(
        "blank", f"nothing to classify: every pixel has the gray value {value}")


def test_one_different_pixel_is_not_blank():
    gray = np.full((28, 28), 255, np.uint8)
    gray[5, 5] = 254
    assert blank(gray) is None
    assert blank(np.zeros((0, 28), np.uint8)) == Refusal("blank", "nothing to classify: the image has no pixels")


@pytest.mark.parametrize("size", [0, 1, 99, 100, 101, 250_000])
def test_read_at_most_gives_the_whole_file_or_one_byte_past_the_limit(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    got = read_at_most(tmp_path / "f", 100)
    assert got == data[:101]
    assert (len(got) > 100) == (size > 100)


def test_read_at_most_reads_a_file_whose_size_on_disk_says_less_than_it_holds():
    """/proc's files say 0 bytes on disk: the read goes on until the file ends, and still stops past the limit."""
    if not os.path.exists("/proc/cpuinfo"):
        pytest.skip("no /proc here")
    data = Path("/proc/cpuinfo").read_bytes()
    assert os.stat("/proc/cpuinfo").st_size == 0
    assert len(data) > 101
    assert read_at_most("/proc/cpuinfo", 1 << 20) == data
    assert read_at_most("/proc/cpuinfo", 100) == data[:101]


def test_a_fifo_is_refused_from_what_was_opened_without_waiting_for_a_writer(tmp_path):
    """A fifo put where a file was (after a listing or a look saw the file) would make a plain open wait for a
    writer for ever; the open cannot wait, and the check is made on the descriptor it opened."""
    fifo = tmp_path / "img_0.jpg"
    os.mkfifo(fifo)
    for read in (lambda: read_at_most(fifo, 100), lambda: read_gray(fifo)):
        with pytest.raises(NotAFile) as err:
            read()
        assert refusal(err.value) == Refusal("unreadable", "not a regular file: a fifo")


def test_a_fifo_holding_bytes_is_refused_too_and_never_read(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    end = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # both ends at once: opening it so never waits
    try:
        os.write(end, b"0123456789")
        with pytest.raises(NotAFile, match="^not a regular file: a fifo$"):
            read_at_most(fifo, 1 << 20)
        assert os.read(end, 100) == b"0123456789"  # all still there
    finally:
        os.close(end)


def test_a_socket_and_a_device_are_refused_by_name(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s"))
        with pytest.raises(NotAFile, match="^not a regular file: a socket$"):
            read_at_most(tmp_path / "s", 100)
    finally:
        server.close()
    with pytest.raises(NotAFile, match="^not a regular file: a device$"):
        read_at_most("/dev/zero", 100)  # where a read would give zeros without end


def test_read_at_most_on_a_folder_is_a_read_error(tmp_path):
    with pytest.raises(OSError) as err:
        read_at_most(tmp_path, 100)
    assert refusal(err.value) == Refusal("unreadable", "not a regular file: a folder")


def test_an_empty_file_is_refused_as_empty(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    with pytest.raises(EmptyFile) as err:
        read_gray(tmp_path / "e.jpg")
    assert refusal(err.value) == Refusal("empty", "empty file")


def test_a_big_file_is_decoded_from_the_file_it_opened(tmp_path, mnist):
    """Over FAST_BYTES PIL reads the image from the open file, not from the path a second time: the gray
    pixels are the image's, and a big file in another format is still named."""
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100), np.uint8)
    noise[:28, :28] = mnist[0][0]
    Image.fromarray(noise).save(tmp_path / "big.png", compress_level=0)
    assert (tmp_path / "big.png").stat().st_size > FAST_BYTES
    assert np.array_equal(read_gray(tmp_path / "big.png"), noise)
    (tmp_path / "big.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n" + b"%" * FAST_BYTES)
    with pytest.raises(UnsupportedFormat, match="^EPS images are not supported"):
        read_gray(tmp_path / "big.eps")


NOT_SUPPORTED = "EPS images are not supported; use BMP, GIF, JPEG, PNG, PPM, TIFF, WEBP"


def test_an_eps_file_is_refused_unopened_and_ghostscript_never_runs(fake_ghostscript, tmp_path, mnist):
    """Pillow decodes EPS by running Ghostscript on the file's bytes, with no time limit: only the formats
    digitpipe reads are ever opened, and an EPS is named as a format it does not read."""
    data = eps_bytes(Image.fromarray(mnist[0][0]))
    (tmp_path / "digit.eps").write_bytes(data)
    for reader, source in ((read_gray, tmp_path / "digit.eps"), (gray_from_bytes, data)):
        with pytest.raises(UnsupportedFormat) as err:
            reader(source)
        assert refusal(err.value) == Refusal("unsupported_format", NOT_SUPPORTED)
    assert Image.open(io.BytesIO(data)).format == "EPS"  # Pillow itself would have opened it
    assert not fake_ghostscript.exists()


def test_bytes_that_no_format_claims_are_still_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image at all")
    with pytest.raises(UnidentifiedImageError) as err:
        read_gray(tmp_path / "notes.jpg")
    assert refusal(err.value) == Refusal("not_image", "not an image")


@pytest.mark.parametrize(("data", "named"), [
    (b"/* a C comment, which Pillow's XBM check takes for an image */", None),
    (b"\x01\x00\x00\x00" + bytes(60), None),  # Pillow's WMF check would say WMF
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "AVIF"),
    (b"8BPS\x00\x01" + bytes(30), "PSD"),
])
def test_only_a_clear_magic_number_names_another_format(tmp_path, data, named):
    """A refusal names another image format only where the file's first bytes say so beyond doubt; text or
    data that a loose check would take for one is not an image, as before."""
    (tmp_path / "file.jpg").write_bytes(data)
    with pytest.raises(UnidentifiedImageError) as err:
        read_gray(tmp_path / "file.jpg")
    expected = (Refusal("not_image", "not an image") if named is None else
                Refusal("unsupported_format", NOT_SUPPORTED.replace("EPS", named)))
    assert refusal(err.value) == expected


def test_other_formats_pillow_could_decode_are_refused_too(tmp_path, mnist):
    """Formats without a magic number (TGA) or outside the list (ICO) never reach a decoder: the ICO is named,
    the TGA is not an image."""
    digit = Image.fromarray(mnist[0][0])
    digit.save(tmp_path / "digit.ico", format="ICO")
    digit.save(tmp_path / "digit.tga", format="TGA")
    assert Image.open(tmp_path / "digit.tga").format == "TGA"  # Pillow alone would have decoded both
    with pytest.raises(UnsupportedFormat) as err:
        read_gray(tmp_path / "digit.ico")
    assert refusal(err.value) == Refusal("unsupported_format", NOT_SUPPORTED.replace("EPS", "ICO"))
    with pytest.raises(UnidentifiedImageError) as err:
        read_gray(tmp_path / "digit.tga")
    assert refusal(err.value) == Refusal("not_image", "not an image")


def test_a_phones_mpo_photo_still_opens(mnist):
    """MPO has no opener of its own in Pillow: the JPEG one opens it, so limiting the openers keeps it."""
    data = mpo_bytes(Image.fromarray(mnist[0][0]).resize((56, 56)))
    with open_file(io.BytesIO(data)) as img:
        assert img.format == "MPO" and img.n_frames == 2
    assert gray_from_bytes(data).shape == (56, 56)


def test_a_tiff_in_lab_colour_is_read_as_its_gray_picture(mnist):
    """Pillow converts L*a*b* only to RGB: straight to gray it raised, and the image was refused as corrupt."""
    digit = mnist[0][0]
    buf = io.BytesIO()
    Image.fromarray(digit).convert("RGB").convert("LAB").save(buf, format="TIFF")
    with open_file(io.BytesIO(buf.getvalue())) as img:
        assert img.mode == "LAB"
    gray = gray_from_bytes(buf.getvalue())
    assert gray.shape == digit.shape
    assert np.abs(gray.astype(int) - digit).max() <= 8  # the round trip through L*a*b* and back rounds a little
