"""Classify images and folders of images with a trained model.

    python -m digitpipe.predict my_digit.png                      # one image
    python -m digitpipe.predict photos/ scan.jpg --top-k 3        # folders and files
    python -m digitpipe.predict testSet/testSet --submission submission.csv
    python -m digitpipe.predict img.png --json                    # machine-readable
    python -m digitpipe.predict img.png --model models/model_int8.tflite

Every image goes through the same preprocessing as training (:mod:`digitpipe.images`). A file
that cannot be read is reported on stderr and the others are still classified; the exit code is
0 when all went well, 1 when some file failed, 2 for a usage or model problem.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

import numpy as np

from digitpipe.decode import blank, no_digit, quiet_decoder_warnings, read_gray, refusal
from digitpipe.errors import DigitpipeError, program, run_main
from digitpipe.files import atomic_path
from digitpipe.images import model_pixels
from digitpipe.inference import Predictor, TFLitePredictor
from digitpipe.limits import MODEL, SIDE, SYSTEM_FILES
from digitpipe.parallel import worker_count

PARALLEL_FROM = 2_000  # below this many files, decoding in this process is faster than a pool
CHUNK = 1_024         # files per unit of work: decoded together, then classified together


@dataclass
class Failure:
    path: str
    reason: str


def find_images(targets: list[str]) -> tuple[list[str], list[Failure]]:
    """Files named directly plus every non-hidden file under the folders named (sorted); missing paths fail,
    and so does a folder that gives no file at all, so that a run never ends in silence."""
    files: list[str] = []
    failures = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found, unreadable, skipped = files_under(target)
            files += found
            failures += unreadable
            if not found and not unreadable:
                failures.append(Failure(target, "no image files found" + (f" ({skipped})" if skipped else "")))
        elif path.exists() or path.is_symlink():  # a file, or something read() will explain
            files.append(target)
        else:
            failures.append(Failure(target, "no such file or folder"))
    return files, failures


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
    return folder, parts


def percent(p: float) -> str:
    """A probability to one decimal, never rounded to a certainty it is not: ``>99.9%`` and ``<0.1%`` at the ends."""
    if p >= 0.9995:
        return ">99.9%"
    if p < 0.0005:
        return "<0.1%"
    return f"{p:.1%}"


def read(path: str) -> np.ndarray | str:
    """One file's gray pixels, or the reason it gives none: unreadable, not an image, damaged, too large,
    or blank (no digit to classify), in the words ingest and the web page use (:func:`digitpipe.decode.refusal`)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a pipe or a device: opening it could wait for ever
            return "not a regular file"
        if info.st_size == 0:
            return "empty file"
        gray = read_gray(path)
    except Exception as err:  # noqa: BLE001 - any decoder error is this file's problem, never the run's
        return refusal(err).message
    empty = blank(gray)
    return empty.message if empty else gray


def decode_chunk(files: list[str], normalize: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The uint8 model inputs of the readable files under the model's preprocessing policy, stacked, and
    ``(position, reason)`` for the others."""
    grays, kept, failed = [], [], []
    for i, path in enumerate(files):
        gray = read(path)
        if isinstance(gray, str):
            failed.append((i, gray))
        else:
            grays.append(gray)
            kept.append(i)
    try:
        inputs = model_pixels(grays, normalize)
    except Exception:  # noqa: BLE001 - one image the preprocessing trips on must not cost the others
        parts, done = [np.zeros((0, SIDE, SIDE), np.uint8)], []
        for i, gray in zip(kept, grays, strict=True):
            try:
                parts.append(model_pixels([gray], normalize))
                done.append(i)
            except Exception as err:  # noqa: BLE001
                failed.append((i, f"cannot preprocess: {type(err).__name__}: {err}"))
        inputs, kept = np.concatenate(parts), done
    empty = [k for k, x in enumerate(inputs) if no_digit(x)]  # the policy found nothing to classify
    if empty:
        failed += [(kept[k], no_digit(inputs[k]).message) for k in empty]
        inputs = np.delete(inputs, empty, axis=0)
    return inputs, sorted(failed)


def predicted(files: list[str], predictor: Predictor) -> Iterator[tuple[list[str], np.ndarray, list[tuple[int, str]]]]:
    """``(files, probabilities, failures)`` chunk by chunk, in order.

    Big folders use one worker process per core. A TFLite model is small and has no threads, so each
    worker loads its own copy and classifies what it decoded: every core does both jobs and only
    probabilities come back. TensorFlow's runtime does not survive being forked, so for a Keras model
    the workers only decode and the model, here, uses every core on the chunks as they arrive.
    """
    chunks = [files[i:i + CHUNK] for i in range(0, len(files), CHUNK)]
    workers = worker_count()
    if len(files) < PARALLEL_FROM or workers == 1:
        for chunk in chunks:
            yield chunk, *classify_chunk(chunk, predictor)
        return
    if isinstance(predictor, TFLitePredictor):
        with ProcessPoolExecutor(workers, initializer=load_worker_model, initargs=(predictor.path,)) as pool:
            for chunk, (probs, failed) in zip(chunks, pool.map(classify_chunk, chunks), strict=True):
                yield chunk, probs, failed
        return
    with ProcessPoolExecutor(workers) as pool:
        decode = partial(decode_chunk, normalize=predictor.card.normalize)
        for chunk, (inputs, failed) in zip(chunks, pool.map(decode, chunks), strict=True):
            yield chunk, predictor.probabilities(inputs), failed


_worker_model: Predictor | None = None


def load_worker_model(path: Path) -> None:
    global _worker_model
    _worker_model = Predictor.load(path)


def classify_chunk(files: list[str], predictor: Predictor | None = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode a chunk and classify it; in a worker process, with the worker's own copy of the model."""
    predictor = predictor or _worker_model
    inputs, failed = decode_chunk(files, predictor.card.normalize)
    return predictor.probabilities(inputs), failed


def classify(files: list[str], predictor: Predictor, classes: list[str],
             top_k: int) -> tuple[list[dict], list[Failure]]:
    """Rows of predictions for the readable files, and the failures."""
    rows, failures = [], []
    names_of = np.array(classes, dtype=object)
    for chunk, probs, failed in predicted(files, predictor):
        failures += [Failure(chunk[i], reason) for i, reason in failed]
        bad = {i for i, _ in failed}
        paths = [path for i, path in enumerate(chunk) if i not in bad]
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        picked = np.take_along_axis(probs, order, axis=1).tolist()
        for path, names, ps in zip(paths, names_of[order].tolist(), picked, strict=True):
            top = list(zip(names, ps, strict=True))
            rows.append({"path": path, "label": names[0], "confidence": ps[0], "top": top})
    return rows, failures


KAGGLE_NAME = re.compile(r"img_(\d+)(\.[^.]*)?")


def image_id(path: str) -> int:
    """Kaggle's ImageId: the number in ``img_N.jpg``."""
    name = os.path.basename(path)
    match = KAGGLE_NAME.fullmatch(name)
    if not match:
        raise DigitpipeError(f"--submission needs files named img_N.jpg (Kaggle's testSet); got {name}")
    return int(match.group(1))


def check_submission_names(files: list[str]) -> None:
    """Every file must give one ImageId (img_N.jpg), each N once."""
    seen: dict[int, str] = {}
    for path in files:
        n = image_id(path)
        if n in seen:
            raise DigitpipeError(f"--submission: ImageId {n} would come from both {seen[n]} and {path}")
        seen[n] = path


def write_submission(rows: list[dict], out: Path) -> None:
    """``ImageId,Label`` sorted by ImageId."""
    pairs = sorted((image_id(r["path"]), r["label"]) for r in rows)

    def write(f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ImageId", "Label"])
        writer.writerows(pairs)

    write_output(out, write)


def write_csv(rows: list[dict], out: Path, top_k: int) -> None:
    """Every prediction, one row per image: path (as :func:`shown`), label, confidence, the next best classes."""

    def write(f: TextIO) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "confidence", *[f"top{k}" for k in range(2, top_k + 1)]])
        for r in rows:
            writer.writerow([shown(r["path"]), r["label"], f"{r['confidence']:.6f}",
                             *[f"{c}:{p:.6f}" for c, p in r["top"][1:top_k]]])

    write_output(out, write)


def write_output(out: Path, write: Callable[[TextIO], None]) -> None:
    """Write an output file with ``write``. A regular file (or a new one) is written beside itself and renamed
    into place (:func:`digitpipe.files.atomic_path`), so a kill or a full disk leaves the old file or the whole
    new one, never part of one; a device or a pipe (``/dev/stdout``) cannot be replaced, so it is written
    directly. A failure either way is one line naming the file (exit 2), never a traceback."""
    try:
        if out.exists() and not out.is_file():
            with open(out, "w", newline="", encoding="utf-8") as f:
                write(f)
            return
        target = Path(os.path.realpath(out)) if out.is_file() else out  # through a link, not over it
        with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            write(f)
    except OSError as err:
        raise DigitpipeError(f"cannot write {shown(str(out))}: {err.strerror or err}") from None


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # what could end or garble a line of output
ESCAPES = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}


def shown(path: str) -> str:
    """A path as every output writes it (text, errors, CSV, JSON): UTF-8, each byte of the name that is not
    UTF-8 as ``\\xNN``, each control character as ``\\n``, ``\\t``, ``\\r``, ``\\xNN`` or ``\\uNNNN``. So every
    output stays valid UTF-8 whatever bytes the file system holds, and one file is always one line."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return CONTROL.sub(lambda m: escaped(m[0]), text)


def escaped(char: str) -> str:
    """A control character as Python writes it in a string literal."""
    return ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=program("digitpipe.predict"), description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("--model", type=Path, default=MODEL,
                        help=f"a .keras or .tflite model (default: {MODEL}, made by `dvc repro`)")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="show the K most likely classes")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="write every prediction to this CSV file")
    parser.add_argument("--submission", type=Path, metavar="OUT",
                        help="write a Kaggle submission (ImageId,Label from img_N.jpg, sorted by ImageId)")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="class names in label order (default: those the model was trained on, from its card)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    return args


def predict(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = parse_args(argv)
    quiet_decoder_warnings()  # each file's fate is its own line: pixels, or an error with its reason
    for out in (args.csv, args.submission):  # refused before any work, not after it
        if out is not None and not out.parent.is_dir():
            raise DigitpipeError(f"cannot write {out}: folder {out.parent} does not exist")
        if out is not None and out.is_dir():
            raise DigitpipeError(f"cannot write {out}: it is a folder; name a file in it")
    files, failures = find_images(args.paths)
    if args.submission:
        check_submission_names(files)
    predictor = Predictor.load(args.model)  # loaded once, before any decoding
    classes = args.classes or predictor.card.classes  # the classes the model was trained on, from its card
    if len(classes) != predictor.num_classes:
        raise DigitpipeError(f"the model has {predictor.num_classes} outputs but {len(classes)} class names "
                             "were given (--classes)")
    rows, bad = classify(files, predictor, classes, args.top_k)
    failures += bad
    report(rows, failures, args)
    return 1 if failures else 0


def report(rows: list[dict], failures: list[Failure], args: argparse.Namespace) -> None:
    """Failures on stderr, predictions to the files asked for and to stdout; every path as :func:`shown`."""
    for fail in failures:
        print(f"error: {shown(fail.path)}: {fail.reason}", file=sys.stderr)
    if args.submission:
        write_submission(rows, args.submission)
    if args.csv:
        write_csv(rows, args.csv, args.top_k)
    if args.json:
        doc = {"predictions": [{"path": shown(r["path"]), "label": r["label"], "confidence": round(r["confidence"], 6),
                                "top": [{"label": c, "probability": round(p, 6)} for c, p in r["top"][:args.top_k]]}
                               for r in rows],
               "errors": [{"path": shown(f.path), "reason": f.reason} for f in failures]}
        print(json.dumps(doc, indent=2))
    elif args.submission or args.csv:
        written = ", ".join(shown(str(p)) for p in (args.submission, args.csv) if p)
        print(f"predicted {len(rows)} image(s), {len(failures)} failed -> {written}")
    else:
        for r in rows:
            extra = "  ".join(f"{c} {percent(p)}" for c, p in r["top"][1:args.top_k])
            then = f"   then {extra}" if extra else ""
            print(f"{shown(r['path'])}: {r['label']} ({percent(r['confidence'])}){then}")


def main() -> None:
    code = predict()
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_main(main)
