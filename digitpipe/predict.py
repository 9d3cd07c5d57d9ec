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
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from digitpipe.errors import DigitpipeError, run_main
from digitpipe.images import ImageTooLarge, load_input
from digitpipe.inference import BATCH

DEFAULT_MODEL = Path("models/model.keras")
DEFAULT_CLASSES = [str(i) for i in range(10)]
PARALLEL_FROM = 2_000  # below this many files, decoding in this process is faster than a pool
SKIP = {".ds_store", "thumbs.db", "desktop.ini"}


@dataclass
class Failure:
    path: str
    reason: str


def find_images(targets: list[str]) -> tuple[list[Path], list[Failure]]:
    """Files named directly plus every non-hidden file under the folders named (sorted); missing paths fail."""
    files: list[Path] = []
    failures = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]  # hidden folders are skipped
                found += [(root, name) for name in names if not name.startswith(".") and name.lower() not in SKIP]
            files.extend(Path(root, name) for root, name in sorted(found, key=natural_key))
        elif path.is_file():
            files.append(path)
        else:
            failures.append(Failure(target, "no such file or folder"))
    return files, failures


DIGITS = re.compile(r"(\d+)")


def natural_key(entry: tuple[str, str]) -> tuple:
    """Sort ``(folder, name)`` pairs by folder, then by name with numbers compared as numbers (img_2 < img_10)."""
    folder, name = entry
    return (folder, *[(0, int(t), "") if t.isdigit() else (1, 0, t) for t in DIGITS.split(name)])


def decode(path: Path) -> np.ndarray | str:
    """The model input for one file, or the reason it cannot be read."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        return load_input(path)
    except UnidentifiedImageError:
        return "not an image"
    except ImageTooLarge as err:
        return str(err)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        return f"cannot decode: {err}"


def decoded(files: list[Path]) -> Iterator[np.ndarray | str]:
    """Each file's model input (or failure reason), in order; big folders are decoded by worker
    processes while the caller classifies what has already arrived."""
    if len(files) < PARALLEL_FROM:
        yield from map(decode, files)
        return
    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(decode, files, chunksize=256)


def classify(files: list[Path], predictor, classes: list[str], top_k: int) -> tuple[list[dict], list[Failure]]:
    """Rows of predictions for the readable files, and the failures; inference runs batch by batch."""
    rows, failures, batch, paths = [], [], [], []

    def flush() -> None:
        probs = predictor.probabilities(np.stack(batch))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        picked = np.take_along_axis(probs, order, axis=1).tolist()
        for path, idx, ps in zip(paths, order.tolist(), picked, strict=True):
            top = [(classes[i], p) for i, p in zip(idx, ps, strict=True)]
            rows.append({"path": str(path), "label": top[0][0], "confidence": top[0][1], "top": top})
        batch.clear()
        paths.clear()

    for path, x in zip(files, decoded(files), strict=True):
        if isinstance(x, str):
            failures.append(Failure(str(path), x))
            continue
        batch.append(x)
        paths.append(path)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return rows, failures


def image_id(path: Path) -> int:
    """Kaggle's ImageId: the number in ``img_N.jpg``."""
    match = re.fullmatch(r"img_(\d+)", path.stem)
    if not match:
        raise DigitpipeError(f"--submission needs files named img_N.jpg (Kaggle's testSet); got {path.name}")
    return int(match.group(1))


def write_submission(rows: list[dict], out: Path) -> None:
    """``ImageId,Label`` sorted by ImageId."""
    pairs = sorted((image_id(Path(r["path"])), r["label"]) for r in rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["ImageId", "Label"])
        writer.writerows(pairs)


def write_csv(rows: list[dict], out: Path, top_k: int) -> None:
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "label", "confidence", *[f"top{k}" for k in range(2, top_k + 1)]])
        for r in rows:
            writer.writerow([r["path"], r["label"], f"{r['confidence']:.6f}",
                             *[f"{c}:{p:.6f}" for c, p in r["top"][1:top_k]]])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m digitpipe.predict", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help=f"a .keras or .tflite model (default: {DEFAULT_MODEL}, made by `dvc repro`)")
    parser.add_argument("--top-k", type=int, default=1, metavar="K", help="show the K most likely classes")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--csv", type=Path, metavar="OUT", help="write every prediction to this CSV file")
    parser.add_argument("--submission", type=Path, metavar="OUT",
                        help="write a Kaggle submission (ImageId,Label from img_N.jpg, sorted by ImageId)")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="class names in label order (default: data.classes of params.yaml, else 0-9)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    return args


def class_names(given: list[str] | None) -> list[str]:
    if given:
        return given
    try:
        from digitpipe.params import load_params

        return load_params(["data"])["data"]["classes"]
    except DigitpipeError:
        return DEFAULT_CLASSES


def predict(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = parse_args(argv)
    from digitpipe.inference import Predictor

    files, failures = find_images(args.paths)
    predictor = Predictor.load(args.model)  # loaded once, before any decoding
    classes = class_names(args.classes)
    if len(classes) != predictor.num_classes:
        raise DigitpipeError(f"the model has {predictor.num_classes} outputs but {len(classes)} class names "
                             "were given (--classes)")
    rows, bad = classify(files, predictor, classes, args.top_k)
    report(rows, failures + bad, args)
    return 1 if failures else 0


def report(rows: list[dict], failures: list[Failure], args: argparse.Namespace) -> None:
    for fail in failures:
        print(f"error: {fail.path}: {fail.reason}", file=sys.stderr)
    if args.submission:
        write_submission(rows, args.submission)
    if args.csv:
        write_csv(rows, args.csv, args.top_k)
    if args.json:
        doc = {"predictions": [{"path": r["path"], "label": r["label"], "confidence": round(r["confidence"], 6),
                                "top": [{"label": c, "probability": round(p, 6)} for c, p in r["top"][:args.top_k]]}
                               for r in rows],
               "errors": [{"path": f.path, "reason": f.reason} for f in failures]}
        print(json.dumps(doc, indent=2))
    elif args.submission or args.csv:
        written = ", ".join(str(p) for p in (args.submission, args.csv) if p)
        print(f"predicted {len(rows)} image(s), {len(failures)} failed -> {written}")
    else:
        for r in rows:
            extra = "  ".join(f"{c} {p:.1%}" for c, p in r["top"][1:args.top_k])
            print(f"{r['path']}: {r['label']} ({r['confidence']:.1%})" + (f"   then {extra}" if extra else ""))


def main() -> None:
    code = predict()
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_main(main)
