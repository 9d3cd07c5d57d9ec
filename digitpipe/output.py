"""What ``predict`` writes: paths shown so that each stays one line of valid UTF-8, honest percentages, the
CSV of every prediction and Kaggle's submission file, each written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import sys
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from digitpipe.errors import DigitpipeError
from digitpipe.files import atomic_path


def percent(p: float, decimals: int = 1) -> str:
    """A probability to one decimal (or ``decimals``), never rounded to a certainty it is not: ``>99.9%`` and
    ``<0.1%`` at the ends."""
    text = f"{p:.{decimals}%}"
    if text.startswith("100"):
        return f">{100 - 10 ** -decimals:.{decimals}f}%"
    if float(text[:-1]) == 0:
        return f"<{10 ** -decimals:.{decimals}f}%"
    return text


def confidence_level(text: str) -> float:
    """A confidence level as given on a command line: ``0.99`` or ``99%``, strictly between 0 and 1 (0% and 100%)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r} is not a confidence level: give one above 0 and below 1 (0.99, "
                                         "or 99%); at 1 every answer would be unsure, at 0 none")
    return value


def below_level(p: float, level: float, decimals: int) -> float:
    """An unsure answer's probability as it is shown: rounded to ``decimals`` (of a percentage) like any other,
    unless that would make it read as the ``level`` it is below (89.96% below 90% as 90.0%); then rounded down
    (89.9%). The web page shows it by the same rule."""
    if float(f"{p:.{decimals}%}"[:-1]) < round(level * 100, decimals):  # what percent() would show is below
        return p
    scale = 10 ** (decimals + 2)
    return float(math.floor(Decimal(p) * scale) / scale)  # exact: p * scale in floats may round up to the level


def decimals_of(level: float) -> int:
    """The decimals a percentage needs to tell a probability from ``level`` (0.9999 = 99.99%: 2), at least one
    and at most six."""
    digits = f"{level * 100:.6f}".rstrip("0").partition(".")[2]
    return max(1, len(digits))


def level_text(level: float) -> str:
    """``level`` as a percentage to those decimals, without trailing zeros: 0.99 as ``99``, 0.99999999 as
    ``99.999999`` (never rounded up to 100)."""
    text = f"{level * 100:.{decimals_of(level)}f}".rstrip("0").rstrip(".")
    return text if float(text) < 100 else f"{math.floor(level * 1e8) / 1e6:.6f}"


KAGGLE_NAME = re.compile(r"img_([0-9]+)(\.[^.]*)?")  # ASCII digits: \d would take img_٣٣ for ImageId 33


def image_id(path: str) -> int:
    """Kaggle's ImageId: the number in ``img_N.jpg``."""
    name = os.path.basename(path)
    match = KAGGLE_NAME.fullmatch(name)
    if not match:
        raise DigitpipeError(f"--submission needs files named img_N.jpg (Kaggle's testSet); got {shown(name)}")
    return int(match.group(1))


def check_submission_names(files: list[str]) -> None:
    """Every file must give one ImageId (img_N.jpg), each N once."""
    seen: dict[int, str] = {}
    for path in files:
        n = image_id(path)
        if n in seen:
            raise DigitpipeError(f"--submission: ImageId {n} would come from both {shown(seen[n])} and {shown(path)}")
        seen[n] = path


def missing_ids(failed: list[str]) -> tuple[list[int], list[str]]:
    """What a submission written without the ``failed`` paths lacks: the ImageIds of the failed img_N.jpg files
    (sorted), and the failed paths that name none (a folder that could not be listed, a path that does not
    exist), each as :func:`shown`."""
    ids = {int(m[1]) for m in (KAGGLE_NAME.fullmatch(os.path.basename(p)) for p in failed) if m}
    return sorted(ids), [shown_path(p) for p in failed if not KAGGLE_NAME.fullmatch(os.path.basename(p))]


def incomplete(out: Path, ids: list[int], other: list[str]) -> str:
    """A submission's gaps in words (:func:`missing_ids`): the first few ImageIds and how many, since Kaggle
    rejects a submission that misses any."""
    rule = "Kaggle rejects a submission without every ImageId"
    if not ids:
        return f"{shown(str(out))} may be incomplete: what {first_of(other, 3)} held is missing; {rule}"
    more = f", and perhaps more from {first_of(other, 3)}" if other else ""
    return (f"{shown(str(out))} is incomplete, missing {len(ids)} ImageId(s): {first_of([str(n) for n in ids])} "
            f"(their images failed){more}; {rule}")


def write_submission(rows: list[dict], out: Path) -> None:
    """``ImageId,Label`` sorted by ImageId."""
    pairs = sorted((image_id(r["path"]), r["label"]) for r in rows)

    def write(f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ImageId", "Label"])
        writer.writerows(pairs)

    write_output(out, write)


def probability_text(p: float, level: float | None = None) -> str:
    """A probability as the CSV writes it, to six decimals, rounded down where rounding would make it read as
    what it is not: certain (``1.000000`` for 0.9999996), or at the ``level`` it is below (``0.900000`` for
    0.8999996, marked unsure beside it). The text output and the web page round by the same rule
    (:func:`below_level`)."""
    text = f"{p:.6f}"
    if (p < 1 and float(text) >= 1) or (level is not None and p < level <= float(text)):
        text = f"{math.floor(Decimal(p) * 10**6) / 10**6:.6f}"  # exact: p * 1e6 in floats may round up
    return text


def write_csv(rows: list[dict], out: Path, top_k: int, min_confidence: float | None = None,
              failures: list | None = None, order: dict[str, int] | None = None) -> None:
    """Every image, one row each: path (as :func:`shown`), label, confidence, with ``min_confidence`` whether it
    is below it (``unsure``: 1 or 0), the next best classes, and ``error``: empty for a prediction; for each of
    the ``failures`` (:class:`digitpipe.targets.Failure`: a file that could not be read or classified, a path that
    gave no file) the reason, its other columns empty. Rows follow ``order`` (a path's place among the files
    classified); a path it lacks (a folder that gave nothing) comes after them, in the order given."""
    marked = min_confidence is not None
    width = 3 + marked + top_k - 1  # the columns before ``error``
    lines = [([shown(r["path"]), r["label"], probability_text(r["confidence"], min_confidence),
               *([int(r["confidence"] < min_confidence)] if marked else []),
               *[f"{c}:{probability_text(p)}" for c, p in r["top"][1:top_k]], ""], r["path"]) for r in rows]
    lines += [([shown_path(f.path), *[""] * (width - 1), f.reason], f.path) for f in failures or []]
    last = len(order or {})
    lines.sort(key=lambda line: (order or {}).get(line[1], last))  # stable: the given order within each place

    def write(f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "confidence", *(["unsure"] if marked else []),
                         *[f"top{k}" for k in range(2, top_k + 1)], "error"])
        writer.writerows(line for line, _ in lines)

    write_output(out, write)


def is_stdout(out: Path) -> bool:
    """Whether ``out`` names this process's standard output: ``/dev/stdout`` (or ``/dev/fd/1``), or the very file
    the shell sent it to (``--csv out.csv > out.csv``)."""
    try:
        return os.path.samestat(os.stat(out), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no stdout, or not a real file
        return False


def write_output(out: Path, write: Callable[[TextIO], None]) -> None:
    """Write an output file with ``write``. A regular file (or a new one) is written beside itself and renamed
    into place (:func:`digitpipe.files.atomic_path`), so a kill or a full disk leaves the old file or the whole
    new one, never part of one; a device or a pipe cannot be replaced, so it is written directly. Standard
    output (:func:`is_stdout`) is written through its own descriptor, as the shell opened it: renamed over, a
    file that ``>>`` appends to would lose what it held (and opened anew by name, ``/dev/stdout`` would empty
    it). A failure either way is one line naming the file (exit 2), never a traceback; a pipe whose reader has
    gone raises ``BrokenPipeError`` on, for :func:`digitpipe.errors.run_main` to stop quietly (141)."""
    try:
        if is_stdout(out):
            sys.stdout.flush()
            with os.fdopen(os.dup(sys.stdout.fileno()), "w", newline="", encoding="utf-8") as f:
                write(f)
            return
        if out.exists() and not out.is_file():
            with open(out, "w", newline="", encoding="utf-8") as f:
                write(f)
            return
        target = Path(os.path.realpath(out)) if out.is_file() else out  # through a link, not over it
        with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
    except BrokenPipeError:  # `--csv /dev/stdout | head`: the reader has gone, and the command stops quietly
        raise
    except OSError as err:
        raise DigitpipeError(f"cannot write {shown(str(out))}: {err.strerror or err}") from None


# what could end or garble a line of output, the bytes of a name that are not UTF-8 (as surrogateescape decodes
# them), and the backslash itself, so that an escape in the output always means one thing
SPECIAL = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")
ESCAPES = {"\\": "\\\\", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
# the format characters a name may hold and is shown with: zero-width (non-)joiners spell Persian, Indic and emoji
# text; every other format character (a bidirectional override, a zero-width space, a soft hyphen) is escaped
JOINERS = frozenset({"\u200c", "\u200d"})


def first_of(items: list[str], most: int = 5, sep: str = ", ") -> str:
    """The first ``most`` items joined, and how many more there are: ``"a, b, c and 4 more"``."""
    return sep.join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def names_of(names: list[str]) -> list[str]:
    """Class or folder names for a list in a message (:func:`first_of`), each :func:`shown`, and quoted where the
    list would hide where it starts or ends: empty, a space at either end, a comma or a quote
    (``'cat '``, ``'a, b'``, ``"it's"``); plain names, most of them, stay as written."""
    return [repr(name) if not name or name != name.strip() or any(c in name for c in ",'\"") else name
            for name in map(shown, names)]


def in_lines(items: list[str], lead: str, width: int = 100) -> list[str]:
    """``items`` two spaces apart in lines of at most ``width`` characters (one item may be longer), the first
    led by ``lead`` and the others indented under it: 47 classes are six lines, not one of 575 characters."""
    lines = [lead]
    for item in items:
        if len(lines[-1]) > len(lead) and len(lines[-1]) + 2 + len(item) > width:
            lines.append(" " * len(lead))
        lines[-1] += ("  " if len(lines[-1]) > len(lead) else "") + item
    return lines


def counted(n: int, word: str) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1: ``"1 file"``, ``"1,500 files"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def shown(path: str) -> str:
    """A path as every output writes it (text, errors, CSV, JSON): UTF-8, each byte of the name that is not
    UTF-8 as ``\\xNN``, each control character as ``\\n``, ``\\t``, ``\\r``, ``\\xNN`` or ``\\uNNNN``, each
    invisible format character (Unicode category Cf: the bidirectional overrides and marks that would show a
    name reversed, zero-width characters) as ``\\uNNNN`` too, and a backslash as two. So every output stays
    valid UTF-8 whatever bytes the file system holds, one file is always one line, shown as it is named, and
    two names are never shown alike (``a\\nb.jpg`` is a newline, ``a\\\\nb.jpg`` a backslash). Letters of any
    script (``é``, ``中``) are shown as they are."""
    text = SPECIAL.sub(lambda m: escaped(m[0]), os.fsencode(path).decode("utf-8", "surrogateescape"))
    if text.isascii():  # nearly every name: no format character to look for
        return text
    return "".join(escaped(c) if unicodedata.category(c) == "Cf" and c not in JOINERS else c for c in text)


def quoted(text: str) -> str:
    """:func:`shown`, in quotes as ``repr`` puts them (``'a b'``, ``"it's"``): a byte that is not UTF-8 as
    ``\\xff``, where ``repr`` would write the surrogate Python decoded it to (``\\udcff``)."""
    text = shown(text)
    if "'" in text and '"' not in text:
        return f'"{text}"'
    return "'" + text.replace("'", "\\'") + "'"


def shown_path(path: str) -> str:
    """:func:`shown`, and an empty path as ``""`` (a line naming it would otherwise read ``error: : ...``)."""
    return shown(path) or '""'


def is_raw_byte(char: str) -> bool:
    """Whether ``char`` stands for a byte of a name that is not UTF-8: the lone surrogate Python decodes it to."""
    return "\udc80" <= char <= "\udcff"


def escaped(char: str) -> str:
    """A control or format character or a backslash as Python writes it in a string literal; a byte that is
    not UTF-8 (:func:`is_raw_byte`) as the byte."""
    if is_raw_byte(char):
        return f"\\x{ord(char) - 0xdc00:02x}"
    if char in ESCAPES:
        return ESCAPES[char]
    code = ord(char)  # \xNN is kept for the bytes above, and for ASCII controls, which no such byte can be
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
