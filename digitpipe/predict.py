"""Classify images and folders of images with a trained model.

    python -m digitpipe.predict my_digit.png                      # one image
    python -m digitpipe.predict photos/ scan.jpg --top-k 3        # folders and files
    python -m digitpipe.predict testSet/testSet --submission submission.csv
    python -m digitpipe.predict img.png --json                    # machine-readable
    python -m digitpipe.predict img.png --model models/model_int8.tflite
    python -m digitpipe.predict scans/ --min-confidence 0.99      # mark the answers below 99% unsure

Every image goes through the same preprocessing as training (:mod:`digitpipe.images`). A file
that cannot be read is reported on stderr and the others are still classified; the exit code is
0 when all went well, 1 when some file failed, 2 for a usage or model problem.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from digitpipe.batch import classify
from digitpipe.decode import quiet_decoder_warnings
from digitpipe.errors import DigitpipeError, program, run_main
from digitpipe.inference import Predictor
from digitpipe.limits import MODEL
from digitpipe.output import (
    below_level,
    check_submission_names,
    confidence_level,
    decimals_of,
    incomplete,
    is_stdout,
    level_text,
    missing_ids,
    percent,
    shown,
    shown_path,
    write_csv,
    write_submission,
)
from digitpipe.params import hidden_characters
from digitpipe.targets import Failure, find_images


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=program("digitpipe.predict"), description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    parser.add_argument("--model", type=given_path, default=MODEL,
                        help=f"a .keras or .tflite model, or a SavedModel folder (default: {MODEL}, made by "
                        "`dvc repro`)")
    parser.add_argument("--top-k", type=int, default=1, metavar="K",
                        help="show the K most likely classes (at most as many as the model has)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--csv", type=given_path, metavar="OUT", help="write every prediction to this CSV file")
    parser.add_argument("--submission", type=given_path, metavar="OUT",
                        help="write a Kaggle submission (ImageId,Label from img_N.jpg, sorted by ImageId)")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="class names in label order (default: those the model was trained on, from its card); "
                        "it takes every word after it, so put the images first or end the names with --")
    parser.add_argument("--min-confidence", type=confidence_level, default=None, metavar="P",
                        help="mark each answer whose confidence is below P (0.99 or 99%%) unsure, for a person to "
                        "check; the confidences are calibrated, so the others are right about that often or more")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    for name in args.classes or []:  # each one becomes a column of the CSV, a line of the output
        if hidden := hidden_characters(name) or ("" if name.strip() else "nothing to read"):
            parser.error(f"--classes name '{shown(name)}' holds {hidden}: give each class a name that can be read")
    twice = [name for name in dict.fromkeys(args.classes or []) if args.classes.count(name) > 1]
    if twice:
        parser.error(f"--classes names {', '.join(map(repr, twice))} more than once: each class needs a name of "
                     "its own")
    return args


def given_path(text: str) -> Path:
    """A path named on the command line; an empty one is refused (``Path("")`` would be this folder)."""
    if not text:
        raise argparse.ArgumentTypeError("the path is empty")
    return Path(text)


def check_writable(out: Path) -> None:
    """:func:`writable_or_why`, a file system's refusal on the way (a name too long, a folder this user may not
    enter) in one line too."""
    try:
        writable_or_why(out)
    except OSError as err:
        raise DigitpipeError(f"cannot write {shown(str(out))}: {err.strerror or err}") from None


def writable_or_why(out: Path) -> None:
    """Refuse an output file that could not be written, before any image is classified: a missing folder, a
    folder named as the file, a folder that this user or a read-only disk cannot write to, a name too long for the
    file beside it that the atomic write makes, and a file that this user may not replace. A link is checked where
    it leads, since that file is the one written (:func:`digitpipe.output.write_output`)."""
    if is_stdout(out):
        return  # /dev/stdout, whatever the shell sent it to, is written as it is
    if out.is_dir():
        raise DigitpipeError(f"cannot write {shown(str(out))}: it is a folder; name a file in it")
    if out.exists() and not out.is_file():
        return  # a device or a pipe is written as it is
    target = Path(os.path.realpath(out)) if out.is_file() else out  # as write_output: a link's file
    if out.is_file() and target.suffix.lower() != ".csv":  # `--csv a.png b.png` meant two images, not a.png replaced
        through = f", a link to {shown(str(target))}," if target.name != out.name else ""
        raise DigitpipeError(f"cannot write {shown(str(out))}{through}: it is a file, not a .csv one, and would be "
                             "replaced; name a new file or a .csv one (the option takes the word after it)")
    folder = target.parent
    if not folder.is_dir():
        raise DigitpipeError(f"cannot write {shown(str(out))}: folder {shown(str(folder))} does not exist")
    try:  # what the atomic write will need: a new file of its name beside the output
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".tmp"):
            pass
    except OSError as err:
        raise DigitpipeError(f"cannot write {shown(str(out))}: {err.strerror or err}") from None
    if target.is_file() and not may_replace(target):
        raise DigitpipeError(f"cannot write {shown(str(out))}: it belongs to another user, in a folder where only a "
                             "file's owner may replace it (a shared folder such as /tmp); name a new file")


def may_replace(path: Path) -> bool:
    """Whether this process may rename a new file over ``path``: in a sticky folder (``/tmp``) only the owner of
    the file or of the folder may, or a process with CAP_FOWNER (root, usually)."""
    folder = path.parent.stat()
    if not folder.st_mode & stat.S_ISVTX or os.geteuid() in (path.stat().st_uid, folder.st_uid):
        return True
    try:
        with open("/proc/self/status") as f:
            caps = next(line.split()[1] for line in f if line.startswith("CapEff:"))
        return bool(int(caps, 16) & 1 << 3)  # CAP_FOWNER
    except (OSError, StopIteration, ValueError):
        return os.geteuid() == 0


def unsure(row: dict, level: float | None) -> bool:
    """Whether ``--min-confidence`` marks this prediction unsure."""
    return level is not None and row["confidence"] < level


def predict(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = parse_args(argv)
    quiet_decoder_warnings()  # each file's fate is its own line: pixels, or an error with its reason
    outputs = [out for out in (args.csv, args.submission) if out is not None]
    for out in outputs:  # refused before any work, not after it
        check_writable(out)
    if len(outputs) == 2 and (os.path.realpath(args.csv) == os.path.realpath(args.submission)
                              or is_stdout(args.csv) and is_stdout(args.submission)):
        raise DigitpipeError(f"--csv and --submission both name {shown(str(args.csv))}; give each its own file")
    if args.json and (out := next((o for o in outputs if is_stdout(o)), None)):
        flag = "--csv" if out is args.csv else "--submission"
        raise DigitpipeError(f"--json prints to standard output, which {flag} {shown(str(out))} names too; write "
                             f"one of them to a file")
    files, failures = find_images(args.paths)
    named = {os.path.realpath(path) for path in args.paths if path}
    for out in outputs:
        if os.path.realpath(out) in named:
            raise DigitpipeError(f"cannot write {shown(str(out))}: it is one of the images to classify")
    # the last run's --csv inside a folder it classifies (`predict photos --csv photos/p.csv`, run again): the file
    # about to be replaced, not an image to classify
    written = {os.path.realpath(out) for out in outputs}
    files = [f for f in files if os.path.realpath(f) not in written]
    if args.submission:
        check_submission_names(files)
    predictor = Predictor.load(args.model)  # loaded once, before any decoding
    if not predictor.card.known:
        print(f"note: {shown(str(args.model))} carries no model card: classes 0-9 unless --classes names them, "
              "the mnist preprocessing, and its probabilities as the model computes them (no temperature added; an "
              "export's graph holds the one it was exported with)", file=sys.stderr)
    try:  # by default the names of its card
        classes = predictor.class_names(args.classes, " (--classes)")
    except DigitpipeError as err:  # named as a damaged card is, so a script calling several models knows which
        raise DigitpipeError(f"{shown(str(args.model))}: {err}") from None
    args.top_k = min(args.top_k, len(classes))  # no class past the last: text, JSON and the CSV's columns agree
    rows, bad = classify(files, predictor, classes, args.top_k)
    report(rows, failures + bad, args, {path: i for i, path in enumerate(files)})
    return 1 if failures or bad else 0


def report(rows: list[dict], failures: list[Failure], args: argparse.Namespace, order: dict[str, int]) -> None:
    """Predictions to the files asked for and to stdout, failures on stderr; every path as :func:`shown`. The CSV
    lists both, each file in its place (``order``). The files are written before any failure's line: a reader of
    stderr that goes away after a few of many failures (``2>&1 | head``) stops the command, and must not cost the
    predictions."""
    level = args.min_confidence
    asked = [p for p in (args.submission, args.csv) if p] if rows else []  # a typo in the folder's name must not
    try:                                                                     # replace yesterday's predictions
        if args.submission in asked:
            write_submission(rows, args.submission)
        if args.csv in asked:
            write_csv(rows, args.csv, args.top_k, level, failures, order)
    finally:  # a file that could not be written is the last line, after the images that failed
        for fail in failures:
            print(f"error: {shown_path(fail.path)}: {fail.reason}", file=sys.stderr)
    if not rows and (kept := [p for p in (args.submission, args.csv) if p]):
        print(f"note: no image was predicted, so nothing was written to {', '.join(shown(str(p)) for p in kept)} "
              "(what was there is left as it was)", file=sys.stderr)
    gaps = missing_ids([f.path for f in failures]) if args.submission in asked and failures else None
    if gaps:  # every image that failed is an ImageId the file lacks: Kaggle would refuse it
        print(f"warning: {incomplete(args.submission, *gaps)}", file=sys.stderr)
    if args.json:
        doc = {"predictions": [{"path": shown(r["path"]), "label": r["label"], "confidence": round(r["confidence"], 6),
                                **({"unsure": unsure(r, level)} if level is not None else {}),
                                "top": [{"label": c, "probability": round(p, 6)} for c, p in r["top"][:args.top_k]]}
                               for r in rows],
               "errors": [{"path": shown(f.path), "reason": f.reason} for f in failures]}
        print(json.dumps(doc, indent=2))
    elif asked:  # on stderr when a file asked for is stdout itself, where the line would join the CSV
        print(summary(len(rows), len(failures), asked, gaps),
              file=sys.stderr if any(is_stdout(Path(p)) for p in asked) else sys.stdout)
    else:
        digits = decimals_of(level) if level is not None else 1  # enough to tell an answer from the level
        for r in rows:
            extra = ", ".join(f"{c} {percent(p)}" for c, p in r["top"][1:args.top_k])  # names may hold spaces
            then = f"   then {extra}" if extra else ""
            confidence, mark = r["confidence"], ""
            if unsure(r, level):
                confidence, mark = below_level(confidence, level, digits), f"   unsure: below {level_text(level)}%"
            print(f"{shown(r['path'])}: {r['label']} ({percent(confidence, digits)}){mark}{then}")
    if level is not None:
        count = sum(unsure(r, level) for r in rows)
        print(f"note: {count} of {len(rows)} prediction(s) below {level_text(level)}% confidence, marked unsure: "
              "check them by hand" if count else
              f"note: none of {len(rows)} prediction(s) below {level_text(level)}% confidence", file=sys.stderr)


def summary(predicted: int, failed: int, written: list[Path], gaps: tuple[list[int], list[str]] | None) -> str:
    """The line that ends a run writing output files, saying so when the submission lacks ImageIds."""
    gap = "" if not gaps else f" (incomplete: {len(gaps[0])} ImageId(s) missing)" if gaps[0] else " (may be incomplete)"
    return f"predicted {predicted} image(s), {failed} failed -> {', '.join(shown(str(p)) for p in written)}{gap}"


def main() -> None:
    code = predict()
    if code:
        sys.exit(code)


if __name__ == "__main__":
    run_main(main)
