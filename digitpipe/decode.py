"""Decoding: any image file (or its bytes) becomes an 8-bit gray array, or a reason it cannot.

Ingest, the prepare stage, ``predict`` and the web page all decode through here, so they accept the
same files and refuse the others for the same reasons, in the same words (:func:`refusal`, :func:`blank`).
Nothing here changes what an image shows; turning pixels into model input is :mod:`digitpipe.images`' job.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

from digitpipe.errors import one_line
from digitpipe.limits import MAX_PIXELS, MIN_SIDE

FAST_BYTES = 1 << 20     # files up to this size are read whole and tried on the fast gray-JPEG path
ORIENTATION = 0x0112     # the EXIF tag saying how a camera held the picture
XMP = b"http://ns.adobe.com/xap/1.0/\0"  # a JPEG's XMP segment, whose tiff:Orientation PIL reads as that tag too
ORIENTATIONS = range(2, 9)  # its values that turn or mirror the picture (1 is upright as stored)
SIDEWAYS = range(5, 9)      # those that turn it a quarter, so that its width and height swap
# The formats digitpipe reads (an image's ``format``), everywhere: ingest, ``predict`` and the web page. Any other
# (EPS, PDF, ICO, PSD, ...) is refused unopened: Pillow's EPS plugin would run Ghostscript on the file's bytes.
ALLOWED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM"})
# Pillow's openers for them, the one ``Image.open`` may try: MPO (a phone's JPEG) has no opener of its own, the
# JPEG one opens it, and naming it would make ``Image.open`` raise KeyError
OPENERS = tuple(sorted(ALLOWED_FORMATS - {"MPO"}))
# Other image formats a file may be, by a magic number long enough not to match text or other data by chance
# (Pillow's own first-bytes checks are looser: a C comment passes XBM's), so that a refusal can name the format
FOREIGN = {b"%!PS": "EPS", b"\xc5\xd0\xd3\xc6": "EPS", b"%PDF": "PDF", b"8BPS": "PSD", b"\x00\x00\x01\x00": "ICO",
           b"\x00\x00\x02\x00": "CUR", b"icns": "ICNS", b"\x00\x00\x00\x0cjP  \r\n\x87\n": "JPEG 2000",
           b"\xff\x4f\xff\x51": "JPEG 2000", b"qoif": "QOI", b"DDS ": "DDS", b"gimp xcf": "XCF"}
BOXES = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF"}  # ISO boxes: ftyp at 4
PREFIX = 16  # bytes of a file looked at for a magic number


class EmptyFile(ValueError):
    """A file of 0 bytes: nothing to decode."""


class ImageTooLarge(ValueError):
    """The image's header claims more pixels than allowed."""


class NotOneDigitImage(ValueError):
    """An image that decodes but cannot be classified as it is: a side too short to hold a digit
    (:func:`too_small`), or several frames (:func:`frames`). ``reason`` is ingest's code for it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def too_small(width: int, height: int) -> str | None:
    """Why an image of this size cannot be classified, or ``None``: a side under :data:`MIN_SIDE` pixels."""
    return f"{width}x{height}: a side under {MIN_SIDE} px is too small to classify" if min(width, height) < MIN_SIDE \
        else None


def frames(count: int) -> str:
    """Why an image of ``count`` frames (an animation, a multi-page TIFF) is refused: which frame is meant?"""
    return f"{count} frames (animation or multi-page); save one frame"


class UnsupportedFormat(UnidentifiedImageError):
    """An image in a format digitpipe does not read (its magic number says which); never opened."""


def open_file(fp: BinaryIO) -> Image.Image:
    """``Image.open`` limited to :data:`ALLOWED_FORMATS`: no other plugin ever parses the bytes (EPS would run
    Ghostscript on them). Raises :class:`UnsupportedFormat` for an image of another format, naming it, and
    ``PIL.UnidentifiedImageError`` for anything else that none of these opens."""
    try:
        return Image.open(fp, formats=OPENERS)
    except UnidentifiedImageError:
        fmt = foreign_format(head(fp))
        if fmt is None:
            raise
        raise UnsupportedFormat(f"{fmt} images are not supported; use "
                                + ", ".join(sorted(ALLOWED_FORMATS - {"MPO"}))) from None


def head(fp: BinaryIO) -> bytes:
    """The first bytes of an open file, where formats keep their magic number."""
    fp.seek(0)
    return fp.read(PREFIX)


def foreign_format(prefix: bytes) -> str | None:
    """The name of the other image format whose magic number ``prefix`` starts with (:data:`FOREIGN`, and the ISO
    formats of :data:`BOXES`), or ``None``: no plugin opens the file, and a file in no format named there (a text
    file, a TGA, which has no magic number) is simply not an image."""
    for magic, fmt in FOREIGN.items():
        if prefix.startswith(magic):
            return fmt
    return BOXES.get(prefix[8:12]) if prefix[4:8] == b"ftyp" else None


def open_image(source: bytes | BinaryIO, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image file's bytes (or the open file) fully, refusing oversized images from their header, and
    turn it upright as its EXIF orientation says (the way viewers and browsers show it).

    Raises ``PIL.UnidentifiedImageError`` / ``OSError`` for files that are not images (or not in one of
    :data:`ALLOWED_FORMATS`, :func:`open_file`) or are damaged, :class:`ImageTooLarge` for
    decompression-bomb sizes (also when Pillow's own bomb check fires first, inside ``Image.open``), and
    :class:`NotOneDigitImage` for what ingest refuses too: a side too short for a digit, or several frames
    (an animated GIF; a phone's MPO, whose first frame is the photo, is read).
    """
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        img = open_file(fp)
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(bomb_message(err)) from None
    try:
        if img.width * img.height > max_pixels:
            raise ImageTooLarge(f"{img.width}x{img.height} pixels is too large to classify")
        if small := too_small(img.width, img.height):  # from the header, as ingest refuses it
            raise NotOneDigitImage("too_small", small)
        img.load()  # decodes the (first) frame; PIL closes a single-frame file it opened itself
        if getattr(img, "n_frames", 1) > 1 and img.format != "MPO":
            raise NotOneDigitImage("multi_frame", frames(img.n_frames))
        if img.getexif().get(ORIENTATION, 1) != 1:  # a phone photo taken sideways: turn it the way it is shown
            upright = ImageOps.exif_transpose(img)
            img.close()
            img = upright
        if img.mode == "P" or getattr(img, "n_frames", 1) > 1:  # palette or animation: keep a plain copy
            frame = img.convert("RGBA") if img.mode == "P" else img.copy()
            img.close()
            return frame
        return img
    except BaseException:
        img.close()
        raise


def to_gray(img: Image.Image) -> Image.Image:
    """Any mode (RGB, CMYK, 16-bit, alpha...) to 8-bit gray; transparent pixels become white paper, whether
    the transparency is an alpha channel or a colour key (a GIF's or a palette PNG's transparent index, a
    PNG's tRNS colour), whose pixels hold any colour, often black. White ink on a transparent canvas (only
    the alpha channel draws the digit) would vanish on white paper, so it goes on black paper instead."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), rgba)
        lo, hi = img.convert("L").getextrema()
        alpha_lo, alpha_hi = rgba.getchannel("A").getextrema()
        if lo == hi and alpha_lo != alpha_hi:
            img = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit, 32-bit integer or float samples
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("some pixels are not numbers (NaN or infinite)")
        arr -= min(arr.min(), 0.0)  # negative samples (a float or signed scan) start the scale, never wrap round
        top = arr.max() or 1.0
        return Image.fromarray(np.rint(arr * (255.0 / top)).astype(np.uint8), mode="L")  # 100 * 2.55 is 254.99...
    if img.mode == "LAB":  # a TIFF in CIE L*a*b*: Pillow converts it to RGB, and only from there to gray
        img = img.convert("RGB")
    return img.convert("L") if img.mode != "L" else img


def decode_gray_jpeg(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """The pixels of a grayscale JPEG, decoded by libjpeg-turbo without PIL's per-file overhead (5x faster
    on 28x28 digits), or None when ``data`` is anything else: then :func:`open_image` decides.

    Only single-channel JPEGs without EXIF or XMP take this path: for them libjpeg-turbo's exact integer IDCT
    gives PIL's pixels bit for bit (a test holds it to that). Colour JPEGs need PIL's RGB-to-gray
    rounding, damaged ones PIL's error messages and photos their EXIF orientation, so all are left to PIL.
    """
    if not data.startswith(b"\xff\xd8") or XMP in data or b"Exif\0\0" in data:  # an orientation there turns
        return None                                                                # the picture: PIL does that
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace != "Gray" or width * height > max_pixels or too_small(width, height):
            return None  # PIL refuses the ones to refuse, in the words of every reader
        return simplejpeg.decode_jpeg(data, colorspace="GRAY")[..., 0]
    except ValueError:  # damaged, or a JPEG flavour libjpeg-turbo warns about: PIL gives the verdict
        return None


class NotAFile(OSError):
    """A path that names a fifo, a socket, a device or a folder, where a file to read was expected. Reading a
    fifo or a device could wait for ever; the check is made on what was opened (:func:`open_regular`), so a
    fifo put in a file's place after it was listed or looked at is refused too."""

    def __init__(self, kind: str):
        super().__init__(f"not a regular file: {kind}")
        self.kind = kind


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words, for a path that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


# opening never waits (a fifo with no writer) and never makes a terminal this process's own
OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
              | getattr(os, "O_NOCTTY", 0))


class RegularFile(io.FileIO):
    """A regular file open for reading (:func:`open_regular`), with its ``size`` on disk as it was opened."""

    size: int


def open_regular(path: str | Path) -> RegularFile:
    """``path`` opened for reading, refused with :class:`NotAFile` unless it is a regular file (a link is
    followed, as reading does). The check is made on the descriptor that is then read (``fstat``), after an open
    that cannot wait, so nothing swapped in between a look and the read can make the read wait for ever."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as err:
        if err.errno == errno.ENXIO:  # a socket, or a device with no driver: nothing there to open
            raise NotAFile(kind_of(os.stat(path).st_mode)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFile(kind_of(info.st_mode))
    except BaseException:
        os.close(fd)
        raise
    f = RegularFile(fd, "rb")
    f.size = info.st_size
    return f


def read_up_to(f: RegularFile, limit: int) -> bytes:
    """The rest of an open file, or its next ``limit + 1`` bytes when more is left (the caller refuses it).

    The buffer is sized from the file's size on disk and grows only if the file does (or its size on disk says
    less than it holds, as /proc's files do), so reading a small file costs a small buffer: ``f.read(limit + 1)``
    would map (and unmap) ``limit`` bytes of memory for every file, which costs more than decoding a 28x28 JPEG.
    """
    parts, got, want = [], 0, min(f.size, limit) + 1
    while got <= limit:
        part = f.read(min(max(want - got, 1 << 16), limit + 1 - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_at_most(path: str | Path, limit: int) -> bytes:
    """A regular file's bytes (:func:`open_regular`), or its first ``limit + 1`` when it is bigger than ``limit``
    (the caller refuses it): :func:`read_up_to`."""
    with open_regular(path) as f:
        return read_up_to(f, limit)


def read_gray(path: str | Path) -> np.ndarray:
    """A file's pixels as an 8-bit gray array (see :func:`open_image` and :func:`to_gray`); :class:`NotAFile`
    for a path that is not a regular file, and :class:`EmptyFile` for a file of 0 bytes."""
    with open_regular(path) as f:
        data = read_up_to(f, FAST_BYTES)
        if not data:
            raise EmptyFile("empty file")
        if len(data) > FAST_BYTES:  # a big file: PIL reads it from the open file, refusing huge images from the header
            f.seek(0)
            return np.asarray(to_gray(open_image(io.BufferedReader(f))))
    return gray_from_bytes(data)


def gray_from_bytes(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file as an 8-bit gray array: the fast path for gray JPEGs, PIL for the rest."""
    gray = decode_gray_jpeg(data, max_pixels)
    return gray if gray is not None else np.asarray(to_gray(open_image(data, max_pixels)))


@dataclass(frozen=True)
class Refusal:
    """Why a file gives no image to classify: a ``reason`` code (as ingest's ``rejects.csv`` records it) and a
    one-line ``message`` for a person."""

    reason: str
    message: str


# What decoders raise on files they cannot read. Pillow's plugins parse untrusted headers with plain Python, so
# a damaged file can surface as almost any built-in error; these are the ones Pillow is known to raise.
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError,
                  ZeroDivisionError, MemoryError, Image.DecompressionBombError)


def refusal(err: BaseException) -> Refusal:
    """The one mapping from an error raised while opening or decoding a file to its reason and words.

    Ingest and ``predict`` use it, the prepare stage (and the web page, when it asks) through
    :func:`failure_reason`, so a file is refused for the same reason, in the same words, everywhere. Any error
    at all gets an answer: one a decoder was not expected to raise is still the file's fault (``corrupt``,
    naming the error's type), never the run's.
    """
    if isinstance(err, UnsupportedFormat):
        return Refusal("unsupported_format", one_line(err))
    if isinstance(err, NotAFile):  # an OSError with no errno: before the file system's errors
        return Refusal("unreadable", one_line(err))
    if isinstance(err, EmptyFile):
        return Refusal("empty", one_line(err))
    if isinstance(err, UnidentifiedImageError):  # an OSError: before the file system's errors
        return Refusal("not_image", "not an image")
    if isinstance(err, ImageTooLarge):
        return Refusal("too_large", one_line(err))
    if isinstance(err, NotOneDigitImage):
        return Refusal(err.reason, one_line(err))
    if isinstance(err, Image.DecompressionBombError):  # Pillow's own limit, raised by Image.open from the header
        return Refusal("too_large", bomb_message(err))
    if isinstance(err, MemoryError):
        return Refusal("too_large", "too large to decode: out of memory")
    if isinstance(err, OSError) and err.errno is not None:  # the file system's refusal: no permission, a loop...
        return Refusal("unreadable", f"cannot read: {one_line(err.strerror or err)}")
    if isinstance(err, (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error)):
        return Refusal("corrupt", f"cannot decode: {one_line(err) or type(err).__name__}")
    detail = one_line(err)
    return Refusal("corrupt", f"cannot decode: {type(err).__name__}" + (f": {detail}" if detail else ""))


def bomb_message(err: Image.DecompressionBombError) -> str:
    """Pillow's refusal of a huge image in our words: the size it claims, not Pillow's limit (far above ours)."""
    pixels = bomb_pixels(err)
    return f"{pixels:,} pixels is too large to classify" if pixels else "the image is too large to classify"


def bomb_pixels(err: Image.DecompressionBombError) -> int | None:
    """The pixel count Pillow's refusal of a huge image names, from its header (``None`` if it names none)."""
    pixels = re.search(r"\((\d+) pixels\)", str(err))
    return int(pixels[1]) if pixels else None


def failure_reason(err: BaseException) -> str | None:
    """The words of :func:`refusal` for an error decoders raise, or ``None`` for one that is not about the file.

    Kept for the web page, which tells a bad upload from its own errors this way.
    """
    return refusal(err).message if isinstance(err, DECODER_ERRORS) else None


def quiet_decoder_warnings() -> None:
    """Silence Pillow's warnings (a big image, damaged metadata): every reader reports each file's fate itself,
    pixels or a :class:`Refusal`, so they are only noise around its output. Process-wide: for commands."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def blank(gray: np.ndarray) -> Refusal | None:
    """A blank image (every pixel the same) holds nothing to classify, whatever the classes: the refusal to
    report instead of a class, or ``None``.

    Ingest rejects such a file and ``predict`` reports it rather than giving it a confident class; the web page
    can say the same words.
    """
    if gray.size == 0:
        return Refusal("blank", "nothing to classify: the image has no pixels")
    lo, hi = int(gray.min()), int(gray.max())
    return Refusal("blank", f"nothing to classify: every pixel has the gray value {lo}") if lo == hi else None


def no_digit(pixels: np.ndarray) -> Refusal | None:
    """A model input (after the preprocessing policy) that is all background holds nothing either: the
    policy found no ink that stands out (a blank page with faint noise) or only a speck of it (a dot, a fleck of
    dust: :func:`digitpipe.images.speck`). ``None`` when it has some."""
    if np.asarray(pixels).any():
        return None
    return Refusal("blank", "nothing to classify: nothing the size of a digit stands out from the background")
