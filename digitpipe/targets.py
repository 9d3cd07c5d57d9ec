"""The files a command is given: those named, and every file under the folders named, in natural order.

Hidden and system files are skipped, linked folders are not followed (a link can loop), and a path that gives
nothing to read is a failure with its reason, so that a run never ends in silence.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from digitpipe.decode import refusal
from digitpipe.limits import SYSTEM_FILES


@dataclass
class Failure:
    path: str
    reason: str


def find_images(targets: list[str]) -> tuple[list[str], list[Failure]]:
    """Files named directly plus every non-hidden file under the folders named (sorted); missing paths fail,
    and so does a folder that gives no file at all, so that a run never ends in silence."""
    files: list[str] = []
    failures = []
    for target in once(targets):  # a missing path named twice is one failure, as a file named twice is one answer
        path = Path(target)
        try:
            folder = bool(target) and path.is_dir()
            there = folder or bool(target) and (path.exists() or path.is_symlink())
        except OSError as err:  # a name too long, a folder on the way this user may not enter
            failures.append(Failure(target, refusal(err).message))
            continue
        if not target:  # Path("") is Path("."): it would be read as this folder
            failures.append(Failure(target, "no such file or folder (the path is empty)"))
        elif folder:
            found, unreadable, skipped = files_under(target)
            files += found
            failures += unreadable
            if not found and not unreadable:
                failures.append(Failure(target, "no image files found" + (f" ({skipped})" if skipped else "")))
        elif there:  # a file, or something read() will explain
            files.append(target)
        else:
            failures.append(Failure(target, "no such file or folder"))
    return once(files), failures


def once(files: list[str]) -> list[str]:
    """Each file once, where it was first named: ``photos/ photos/a.jpg`` or ``a.jpg ./a.jpg`` name it twice,
    and a second answer for it would only repeat the first (and give a submission one ImageId twice). Two
    names are one where their folders are one folder (``a/x.jpg`` and ``link_to_a/x.jpg``); ``lnk/../x.jpg``
    is the ``x.jpg`` beside the folder ``lnk`` leads to, not the one beside ``lnk``. A link to a file is a
    name of its own, answered as given."""
    seen: set[str] = set()
    kept = []
    for path in files:
        if not path:  # no file: kept, to be told as such
            kept.append(path)
            continue
        folder, name = os.path.split(os.path.join(os.getcwd(), path).rstrip(os.sep) or os.sep)  # `..` not yet undone
        key = os.path.join(os.path.realpath(folder), name) if name not in ("", ".", "..") else os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept


def files_under(folder: str) -> tuple[list[str], list[Failure], str]:
    """The files under ``folder`` in natural order, the sub-folders that could not be listed, and what was
    skipped in words: hidden and system files, and linked folders (not followed: a link can loop)."""
    found: list[tuple[str, str]] = []
    unreadable: list[Failure] = []
    skipped: Counter = Counter()

    def cannot_list(err: OSError) -> None:
        unreadable.append(Failure(err.filename or folder, refusal(err).message))

    for root, dirs, names in os.walk(folder, onerror=cannot_list):
        skipped["hidden or system file(s)"] += sum(name.startswith(".") or name.lower() in SYSTEM_FILES
                                                   for name in names)
        skipped["linked folder(s), not followed"] += sum(os.path.islink(os.path.join(root, d)) for d in dirs)
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # hidden folders are skipped
        found += [(root, name) for name in names if not name.startswith(".") and name.lower() not in SYSTEM_FILES]
    files = [os.path.join(root, name) for root, name in sorted(found, key=natural_key)]
    return files, unreadable, ", ".join(f"{n} {kind}" for kind, n in skipped.items() if n)


DIGITS = re.compile(r"(\d+)")


def natural_key(entry: tuple[str, str]) -> tuple:
    """Sort ``(folder, name)`` pairs by folder, then by name with numbers compared as numbers (img_2 < img_10)."""
    folder, name = entry
    parts: list = DIGITS.split(name)  # text at even positions, digit runs at odd ones
    parts[1::2] = map(int, parts[1::2])
    return folder, parts, name  # the name itself last: img_1 and img_01 in one order, whatever order they came in
