"""Index a folder-per-class image tree: every usable image once, every unusable file with a reason.

Every file is opened and decoded (its extension is never trusted), in parallel on all cores.
A file ends up in exactly one of three places:

- the **index**: a usable image, with what was normalised about it in ``notes``;
- the **rejects**: an unusable file, with a reason code and a human message;
- **skipped**: system files, hidden files, folders that are not a class, empty nested folders and
  broken or looping symlinks, which are only counted.

A folder inside a class folder that holds files is a reject of its own (``nested_folder``): its files are not
read, and the user should know. So is one ingest does not look into: a link to a folder (never followed), or a
folder that cannot be listed.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, ImageOps

from digitpipe.decode import (
    ORIENTATION,
    ORIENTATIONS,
    SIDEWAYS,
    Refusal,
    blank,
    bomb_pixels,
    frames,
    open_file,
    open_regular,
    quiet_decoder_warnings,
    read_up_to,
    refusal,
    to_gray,
    too_small,
)
from digitpipe.errors import DigitpipeError
from digitpipe.files import content_hash
from digitpipe.limits import MAX_FILE_BYTES, SIDE, SYSTEM_FILES
from digitpipe.output import counted, first_of, names_of, shown
from digitpipe.parallel import process_pool, worker_count

SHOWN_LINKS = 5  # links named in one message
NESTED = "nested folder"  # how an empty folder in a class folder is counted as skipped
NESTED_REASON = "nested_folder"  # the reject reason of one that holds files, or is not looked into

INDEX_COLUMNS = ["path", "label", "hash", "width", "height", "mode", "format", "notes"]
REJECT_COLUMNS = ["path", "reason", "message"]

# The extensions of the formats we train on (decode.ALLOWED_FORMATS, the only ones decode.open_file opens; another
# format is refused unopened, as unsupported_format)
JPG_NAMES = {".jpg", ".jpeg", ".jpe", ".jfif"}
EXTENSIONS = {"JPEG": JPG_NAMES, "MPO": JPG_NAMES, "PNG": {".png"}, "BMP": {".bmp", ".dib"},
              "GIF": {".gif"}, "TIFF": {".tif", ".tiff"}, "WEBP": {".webp"},
              "PPM": {".ppm", ".pgm", ".pbm", ".pnm"}}
PARALLEL_FROM = 2_000        # below this many files one process is faster than a pool

ImageFile.LOAD_TRUNCATED_IMAGES = False

PICTURE = "_picture"  # an index row's digest of its picture as the model sees it (:func:`picture_hash`); not written


@dataclass(frozen=True)
class Policy:
    """What ingest accepts: ``size_policy`` for images that are not 28x28, ``max_pixels`` for huge ones."""

    size_policy: str = "resize"
    max_pixels: int = 16_777_216


@dataclass
class Scan:
    """The candidate files of a tree and what was skipped on the way."""

    files: list[tuple[str, str]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    # the folders inside class folders that hold files, none of which is read: each one's path, class and file count
    nested: list[tuple[str, str, int]] = field(default_factory=list)
    # the folders inside class folders that are not looked into: links to a folder (never followed) and folders
    # that cannot be listed (no permission); each one's path, class and why
    unlisted: list[tuple[str, str, str]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # each class's folder (:func:`checked_class_folders`)


@dataclass
class IngestResult:
    """Rows of the index and of the rejects file, plus what was skipped."""

    index: pd.DataFrame
    rejects: pd.DataFrame
    skipped: Counter = field(default_factory=Counter)


def is_system_or_hidden(name: str) -> bool:
    """``.DS_Store``, ``Thumbs.db``, AppleDouble ``._x`` files and any other dotfile."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def diagnose_missing_classes(root: Path, classes: list[str]) -> str:
    """Explain why ``root`` holds no class folders, pointing at the right path when we can."""
    entries = [e for e in root.iterdir() if not is_system_or_hidden(e.name)]
    if not entries:
        return f"data dir {root} is empty: put one sub-folder per class in it ({', '.join(classes[:3])}, ...)"
    for sub in sorted(e for e in entries if e.is_dir()):
        if any(is_folder(sub / c) for c in classes):
            nested = " (the Kaggle download nests trainingSet/trainingSet/0..9)" if sub.name == root.name else ""
            return f"no class folders in {root}, but {sub} has them{nested}: set data.dir to {sub}"
    images = sum(1 for e in entries if e.is_file())
    expected = ", ".join(classes)
    near = near_folders(root, classes, {})
    if images:
        return (f"data dir {root} holds {images} files but no class folders ({expected}): training needs "
                f"one sub-folder per class; to label unlabelled images use `python -m digitpipe.predict`{near}")
    found = other_folders(root, {})
    present = f"; its folders are {first_of(names_of(found))}" if found else ""
    return (f"no class folders found in {root}: expected sub-folders named {expected} (see data.classes){present}"
            f"{near}{as_classes(found)}")


def as_classes(folders: list[str]) -> str:
    """``; to make its folders the classes: -S 'data.classes=["a", "b"]'``, ready to paste into
    ``dvc exp run`` (or the list into params.yaml), for two folders or more with plain names; else ""."""
    if len(folders) < 2 or any("'" in f or "${" in f or f != shown(f) for f in folders):  # ${: DVC reads a key
        return ""
    return f"; to make its folders the classes: -S 'data.classes={json.dumps(sorted(folders), ensure_ascii=False)}'"


def unicode_form(name: str) -> str:
    """How ``name`` spells its accented letters: composed (``é``, as most systems type it), decomposed (``e`` and an
    accent, as macOS names files), or a mix of both."""
    if unicodedata.normalize("NFC", name) == name:
        return "composed"
    return "decomposed" if unicodedata.normalize("NFD", name) == name else "partly decomposed"


def class_folders(root: Path, classes: list[str]) -> dict[str, str]:
    """The folder of each class that has one, as it is named on disk. A class name and its folder's name are
    compared as Unicode text, not bytes: macOS, and archives made there, spell "é" as "e" plus an accent,
    which looks the same as the "é" typed into ``params.yaml`` and must match it. Two folders that both
    spell one class are refused: which one holds it is the user's choice, not ours."""
    def text(name: str) -> str:
        return unicodedata.normalize("NFC", name)

    dirs = sorted(e.name for e in os.scandir(root) if is_folder(Path(e.path)))  # not a link that loops
    folders = {}
    for label in classes:
        same = [name for name in dirs if text(name) == text(label)]
        if len(same) > 1:
            spelled = " and ".join(f"{name!r} ({unicode_form(name)})" for name in same)
            raise DigitpipeError(f"data dir {root} has {len(same)} folders that spell class {label}: {spelled}, "
                                 "the same letters in different Unicode forms; merge them into one")
        if same:
            folders[label] = same[0]
    return folders


def near_folders(root: Path, missing: list[str], folders: dict[str, str]) -> str:
    """``; did you mean ...`` for the unclaimed folders whose names are close to a missing class's (``Cat`` for
    ``cat``, ``seven`` for ``sevn``), or nothing."""
    spare = other_folders(root, folders)
    by_case = {name.casefold(): name for name in spare}
    hints = []
    for label in missing:
        near = [by_case[label.casefold()]] if label.casefold() in by_case else difflib.get_close_matches(
            label, spare, n=1)
        hints += [f"folder {near[0]!r} for class {label!r}"] if near else []
    return f"; did you mean {', '.join(hints)}?" if hints else ""


def is_folder(path: Path) -> bool:
    """``path.is_dir()``, false too where a folder on the way cannot be entered (``is_dir`` raises there)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def listable(folder: Path, what: str, instead: str = "") -> None:
    """Raise, naming ``folder`` and the reason, when it cannot be listed (no read or no search permission): the
    scan would otherwise stop half-way with the file system's error."""
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
    except OSError as err:
        raise DigitpipeError(f"cannot list {what} {shown(str(folder))}: {err.strerror or err}; ingest reads every "
                             f"file in it: give read and search permission (chmod -R u+rX){instead}") from None


def checked_class_folders(root: Path, classes: list[str]) -> dict[str, str]:
    """The folder of every class (:func:`class_folders`); raises, naming what to change, when the data folder is
    missing, cannot be listed, or every class or some class has no folder there (or one that cannot be listed).
    Ingest and ``digitpipe check`` both ask this."""
    try:
        there, folder = root.exists(), root.is_dir()
    except OSError as err:  # a name too long, a folder on the way this user may not enter
        raise DigitpipeError(f"data dir {root} cannot be read: {err.strerror or err} (set data.dir in "
                             "params.yaml)") from None
    if not there:
        raise DigitpipeError(f"data dir {root} does not exist (set data.dir in params.yaml)")
    if not folder:
        raise DigitpipeError(f"data dir {root} is not a folder (set data.dir in params.yaml)")
    listable(root, "data dir")
    folders = class_folders(root, classes)
    if not folders:
        raise DigitpipeError(diagnose_missing_classes(root, classes))
    missing = [c for c in classes if c not in folders]
    if missing:
        raise DigitpipeError(f"data dir {root} has no folder for class(es) {', '.join(names_of(missing))} "
                             f"(add them, or drop them from data.classes){near_folders(root, missing, folders)}")
    for label in classes:
        listable(root / folders[label], f"the folder of class {label!r},", ", or drop the class from data.classes")
    return folders


# what DVC cannot track in a data folder, by kind: what DVC does on it, and what to do
UNTRACKABLE = {
    "dangling": ("broken or looping symlink(s), on which DVC stops while hashing the folder", "remove them"),
    "special": ("special file(s) (a fifo, socket or device), on which DVC hangs or stops while hashing the folder",
                "remove them"),
    "name": ("name(s) that are not valid UTF-8, on which DVC stops while hashing the folder", "rename them"),
    "linked": ("class folder(s) that are links to a folder, inside which DVC does not look, so a change there "
               "would never re-run the pipeline", "put the folder itself in place of the link"),
    "unreachable": ("file(s) or folder(s) in a folder this user may list but not enter, which DVC cannot hash",
                    "give read and search permission (chmod -R u+rX)"),
}


def untrackable(root: Path, class_dirs: list[str] = ()) -> dict[str, list[str]]:
    """What DVC cannot track under ``root``, by kind (:data:`UNTRACKABLE`), each sorted and relative to
    ``root`` (names shown as :func:`~digitpipe.output.shown` writes them): broken or looping symlinks, special
    files and names that are not UTF-8 that DVC sees (not ignored by ``.dvcignore``), and the class folders
    among ``class_dirs`` that are links to a folder (ingest reads through them, DVC does not: ignoring one in
    .dvcignore would not help)."""
    found: dict[str, list[Path]] = {kind: [] for kind in UNTRACKABLE}
    for folder, dirs, names in os.walk(root):  # symlinks not followed: a looping one cannot trap the walk
        dirs.sort()
        for name in sorted(dirs + names):
            path = Path(folder) / name
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                found["name"].append(path)
                continue
            try:
                if path.is_symlink() and not path.exists():  # exists() follows the link: false if it dangles or loops
                    found["dangling"].append(path)
                elif not (path.is_file() or path.is_dir()):  # both follow a link: a link to a fifo is a fifo to DVC
                    found["special"].append(path)
            except OSError:  # its folder may be read but not searched (chmod 400)
                found["unreachable"].append(path)
    if any(found.values()):
        try:
            from dvc.repo import Repo

            with Repo() as repo:
                found = {kind: [p for p in paths if not repo.dvcignore.is_ignored_file(os.path.abspath(p))]
                         for kind, paths in found.items()}
        except Exception:  # noqa: BLE001 - no DVC project here: nothing is ignored
            pass
    found["linked"] = [root / d for d in class_dirs if (root / d).is_symlink() and (root / d).is_dir()]
    return {kind: sorted(shown(p.relative_to(root).as_posix()) for p in paths) for kind, paths in found.items()
            if paths}


def check_links(root: Path, class_dirs: list[str] = ()) -> None:
    """Refuse a data folder holding what DVC cannot track (:func:`untrackable`), naming each and the fix."""
    found = untrackable(root, class_dirs)
    if not found:
        return
    inside = root.resolve().is_relative_to(Path.cwd().resolve())
    parts = []
    for kind, paths in found.items():
        what, fix = UNTRACKABLE[kind]
        if kind in ("dangling", "special"):  # a bad name cannot be written in .dvcignore; a linked folder is read
            fix += " or list them in .dvcignore" if inside else " (.dvcignore applies only inside the project)"
        more = ", ..." if len(paths) > SHOWN_LINKS else ""
        parts.append(f"{len(paths)} {what}: {', '.join(paths[:SHOWN_LINKS])}{more}; {fix}")
    raise DigitpipeError("; ".join(parts))


def other_folders(root: Path, folders: dict[str, str]) -> list[str]:
    """The folders in ``root`` that are no class's (ingest skips them), sorted."""
    return sorted(e.name for e in os.scandir(root) if is_folder(Path(e.path)) and e.name not in folders.values()
                  and not is_system_or_hidden(e.name))


def scan(root: Path, classes: list[str]) -> Scan:
    """List the files to inspect, sorted; count what is skipped and why."""
    folders = checked_class_folders(root, classes)
    result = Scan(folders=folders)
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name in folders.values():
            continue
        hidden = is_system_or_hidden(entry.name)
        kind = ("hidden folder" if is_folder(Path(entry.path)) else "system or hidden file") if hidden else (
            "folder that is not a class" if is_folder(Path(entry.path)) else
            "broken or looping symlink" if entry.is_symlink() and not os.path.exists(entry.path) else
            "file outside the class folders")
        result.skipped[kind] += 1
    for label in classes:
        for entry in sorted(os.scandir(root / folders[label]), key=lambda e: e.name):
            kind = classify_entry(entry)
            rel = f"{folders[label]}/{entry.name}"
            if kind == NESTED:  # a link to a folder is never followed, whatever it holds: it can loop, or lead to /
                held, unlisted = (0, "a link to a folder, never followed") if entry.is_symlink() else \
                    files_under(entry.path)
                if unlisted:
                    result.unlisted.append((rel, label, unlisted))
                elif held:
                    result.nested.append((rel, label, held))
                else:
                    result.skipped[kind] += 1
            elif kind:
                result.skipped[kind] += 1
            else:
                result.files.append((rel, label))
    if not result.files:
        unread = sum(held for _, _, held in result.nested)
        nested = (f" (but {counted(unread, 'file')} in folders nested inside them, which ingest does not read: "
                  f"{first_of([shown(path) for path, _, _ in result.nested])}; move the files up into their class "
                  "folders)") if unread else ""
        unlisted = (f" ({counted(len(result.unlisted), 'folder')} inside them not looked into: "
                    f"{first_of([f'{shown(path)} ({why})' for path, _, why in result.unlisted])})"
                    ) if result.unlisted else ""
        raise DigitpipeError(f"data dir {root} holds no files in its class folders{nested}{unlisted}")
    return result


def files_under(folder: str) -> tuple[int, str]:
    """How many files (not hidden or system ones) ``folder`` holds, at any depth, and why a folder in it could
    not be listed ("" when every one could: a folder that cannot be listed may hold anything, so it is never
    taken for an empty one); links to folders are not followed (:func:`scan` reports a link to a folder in a
    class folder without calling this), so neither a looping one nor one to ``/`` can trap the count."""
    count, unlisted = 0, []

    def cannot_list(err: OSError) -> None:
        root = os.path.dirname(os.path.dirname(folder))  # the data dir: the path as the reject rows give paths
        where = os.path.relpath(err.filename or folder, root)
        unlisted.append(f"cannot list {shown(Path(where).as_posix())}: {err.strerror or err}")

    for top, dirs, names in os.walk(folder, onerror=cannot_list):
        dirs[:] = sorted(d for d in dirs if not is_system_or_hidden(d))
        count += sum(1 for name in names if not is_system_or_hidden(name) and os.path.isfile(os.path.join(top, name)))
    return count, "; ".join(unlisted)


def nested_reject(rel: str, held: int) -> dict:
    """The reject row of a folder inside a class folder that holds ``held`` files, none of them read."""
    folder = rel.rpartition("/")[0]
    return reject(shown(rel), NESTED_REASON,
                  f"a folder inside class folder {shown(folder)}, holding {counted(held, 'file')}, which "
                  f"{'are' if held != 1 else 'is'} not read: only the files directly in a class folder are; move "
                  f"{'them' if held != 1 else 'it'} up into {shown(folder)}, or make the folder a class of its own")


def unlisted_reject(rel: str, why: str) -> dict:
    """The reject row of a folder inside a class folder that is not looked into: a link to a folder, or a folder
    that cannot be listed (or holds one that cannot)."""
    folder = rel.rpartition("/")[0]
    return reject(shown(rel), NESTED_REASON,
                  f"a folder inside class folder {shown(folder)}, not looked into ({why}), so none of its files is "
                  f"read: only the files directly in a class folder are; move them up into {shown(folder)}")


def classify_entry(entry: os.DirEntry) -> str | None:
    """Why a class folder entry is skipped, or ``None`` for a file to inspect."""
    if is_system_or_hidden(entry.name):
        return "system or hidden file"
    try:
        if entry.is_dir():
            return NESTED
        if entry.is_file():
            return None
        os.stat(entry.path)  # a symlink that loops or dangles raises here
        return "special file (socket, device, fifo)"
    except OSError:
        return "broken or looping symlink"


def reject(rel: str, reason: str, message: str) -> dict:
    return {"path": rel, "reason": reason, "message": message}


def read_bytes(path: Path) -> bytes:
    """The file's bytes; refuse files too large to be a digit without reading them (``OverflowError``), and a
    path that is no longer a regular file (:class:`~digitpipe.decode.NotAFile`) without waiting on it."""
    with open_regular(path) as f:
        if f.size > MAX_FILE_BYTES:
            raise OverflowError(f"{f.size / 2**20:.0f} MiB on disk; an image to classify needs far less")
        data = read_up_to(f, MAX_FILE_BYTES)
    if len(data) > MAX_FILE_BYTES:
        raise OverflowError(f"grew past {MAX_FILE_BYTES / 2**20:.0f} MiB while it was read; an image to classify "
                            "needs far less")
    return data


def inspect_file(item: tuple[str, str], root: Path, policy: Policy) -> dict:
    """Decode one file and return its index row, or a reject row (it has a ``reason``)."""
    rel, label = item
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return reject(shown(rel), "bad_name", "file name is not valid UTF-8; rename it")
    try:
        data = read_bytes(root / rel)
    except OverflowError as err:
        return reject(rel, "too_large", str(err))
    except OSError as err:
        return refused(rel, refusal(err))
    if not data:
        return reject(rel, "empty", "file is 0 bytes")
    try:
        return describe_image(rel, label, data, policy)
    except Exception as err:  # noqa: BLE001 - whatever a decoder raises is this file's reason, never the run's
        return refused(rel, refusal(err))


def refused(rel: str, why: Refusal) -> dict:
    """A reject row in the shared words of :mod:`digitpipe.decode`."""
    return reject(rel, why.reason, why.message)


def describe_image(rel: str, label: str, data: bytes, policy: Policy) -> dict:
    """Check a decodable file against the policy; header checks come before any pixel is decoded."""
    try:
        img = open_file(io.BytesIO(data))  # only ALLOWED_FORMATS' plugins: another format is refused unopened
    except Image.DecompressionBombError as err:  # Pillow's own limit, from the header: past ours unless raised
        pixels = bomb_pixels(err)
        if pixels and pixels > policy.max_pixels:
            return reject(rel, "too_large", f"{pixels:,} pixels is over ingest.max_pixels={policy.max_pixels}; "
                          "refused without decoding")
        raise
    with img:
        fmt, (width, height), mode = img.format, img.size, img.mode
        if width * height > policy.max_pixels:
            return reject(rel, "too_large", f"{width}x{height} is over ingest.max_pixels={policy.max_pixels}; "
                          "refused without decoding")
        if small := too_small(width, height):
            return reject(rel, "too_small", small)
        img.load()  # before counting frames, which seeks: a damaged file fails here as it does in predict
        if getattr(img, "n_frames", 1) > 1 and fmt != "MPO":  # MPO: phone JPEG, first frame is the photo
            return reject(rel, "multi_frame", frames(img.n_frames))
        gray = to_gray(img)
        empty = blank(np.asarray(gray))
        turn = img.getexif().get(ORIENTATION, 1)
        # upright as decode.open_image turns it (Pillow's own table of the orientations), only where it is turned
        picture = picture_hash(to_gray(ImageOps.exif_transpose(img)) if turn in ORIENTATIONS else gray)
    if empty:
        return refused(rel, empty)
    notes = []
    if turn in ORIENTATIONS:  # used the way its EXIF says it is shown (decode.open_image), so recorded that way
        notes.append(f"EXIF orientation {turn} applied")
        if turn in SIDEWAYS:
            width, height = height, width
    if Path(rel).suffix.lower() not in EXTENSIONS[fmt]:
        notes.append(f"{fmt} content under a {Path(rel).suffix or 'missing'} extension")
    if mode != "L":
        notes.append(f"{mode} converted to gray")
    if (width, height) != (SIDE, SIDE):
        if policy.size_policy == "reject":
            return reject(rel, "wrong_size", f"{width}x{height}, not {SIDE}x{SIDE} (ingest.size_policy=reject)")
        notes.append(f"resized from {width}x{height}")
    return {"path": rel, "label": label, "hash": content_hash(data), "width": width, "height": height,
            "mode": mode, "format": fmt, "notes": "; ".join(notes), PICTURE: picture}


def picture_hash(gray: Image.Image) -> str:
    """A digest of an upright 8-bit gray picture, its size included: the same for two files that give the model
    the same pixels, whatever their bytes (a PNG and its BMP copy, one with a text chunk or EXIF added)."""
    pixels = np.ascontiguousarray(np.asarray(gray, dtype=np.uint8))
    return hashlib.blake2b(f"{pixels.shape[0]}x{pixels.shape[1]}:".encode() + pixels.tobytes(),
                           digest_size=16).hexdigest()


def inspect_all(root: Path, files: list[tuple[str, str]], policy: Policy, progress: bool = True) -> list[dict]:
    """Inspect every file, in parallel for big folders; results keep the (sorted) input order."""
    work = partial(inspect_file, root=root, policy=policy)
    quiet_decoder_warnings()
    workers = worker_count()
    if len(files) < PARALLEL_FROM or workers == 1:
        return [work(item) for item in files]
    from tqdm import tqdm

    chunk = max(64, min(2_000, len(files) // (workers * 8)))
    with process_pool(workers, quiet_decoder_warnings) as pool:
        results: Iterator[dict] = pool.map(work, files, chunksize=chunk)
        bar = tqdm(results, total=len(files), unit="img", desc="ingest", file=sys.stderr,
                   disable=None if progress else True, mininterval=0.5, leave=False)
        return list(bar)


def resolve_duplicates(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Keep one row per picture (rows grouped by their :data:`PICTURE` digest: the same pixels, whatever the
    bytes): one picture under one label -> first path kept, the rest rejected as ``duplicate``; one picture
    under two labels -> every copy rejected as ``label_conflict``. A copy whose bytes differ is said to be one."""
    by_picture: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_picture[row[PICTURE]].append(row)
    kept, rejected = [], []
    for row in rows:
        group = by_picture[row[PICTURE]]
        labels = sorted({r["label"] for r in group})
        if len(labels) > 1:
            others = ", ".join(f"{r['path']} (label {r['label']}{other_bytes(r, row, ', ')})"
                               for r in group if r is not row)
            rejected.append(reject(row["path"], "label_conflict",
                                   f"same image filed under labels {' and '.join(labels)}: also {others}"))
        elif row is group[0]:
            kept.append(row)
        elif row["hash"] == group[0]["hash"]:
            rejected.append(reject(row["path"], "duplicate", f"identical to {group[0]['path']}, which is indexed"))
        else:
            rejected.append(reject(row["path"], "duplicate", f"the same picture as {group[0]['path']} "
                                   f"({other_bytes(group[0], row)}), which is indexed"))
    return kept, rejected


def other_bytes(copy: dict, row: dict, sep: str = "") -> str:
    """``same pixels, other file bytes`` (after ``sep``) when ``copy`` is ``row``'s picture in other bytes."""
    return "" if copy["hash"] == row["hash"] else f"{sep}same pixels, other file bytes"


def ingest(root: Path, classes: list[str], policy: Policy | None = None, progress: bool = True) -> IngestResult:
    """Scan ``root``, inspect every candidate file and sort it into index, rejects or skipped."""
    policy = policy or Policy()
    found = scan(root, classes)
    inspected = inspect_all(root, found.files, policy, progress)
    rows, rejects = [], []
    for row in inspected:
        (rejects if "reason" in row else rows).append(row)
    rows, dupes = resolve_duplicates(rows)
    nested = [nested_reject(rel, held) for rel, _, held in found.nested]
    nested += [unlisted_reject(rel, why) for rel, _, why in found.unlisted]
    rejects = sorted(rejects + dupes + nested, key=lambda r: r["path"])
    return IngestResult(index=pd.DataFrame(rows, columns=INDEX_COLUMNS),
                        rejects=pd.DataFrame(rejects, columns=REJECT_COLUMNS), skipped=found.skipped)


def summarize(result: IngestResult, classes: list[str]) -> dict:
    """Counts for ``metrics/details/data.json``: indexed per class, rejected files per reason, skipped per kind,
    and the folders inside class folders whose files are not read (a row of the rejects file each, but no file:
    ``rejected`` counts files, as the stage's summary line and ``digitpipe check`` do)."""
    per_class = result.index["label"].value_counts()
    reasons = result.rejects["reason"].value_counts()
    folders = int(reasons.pop(NESTED_REASON)) if NESTED_REASON in reasons.index else 0
    return {
        "indexed": int(len(result.index)),
        "rejected": int(len(result.rejects)) - folders,
        "skipped": int(sum(result.skipped.values())),
        "folders_not_read": folders,
        "images_per_class": {c: int(per_class.get(c, 0)) for c in classes},
        "rejected_by_reason": {r: int(reasons[r]) for r in sorted(reasons.index)},
        "skipped_by_kind": {k: int(result.skipped[k]) for k in sorted(result.skipped)},
    }
