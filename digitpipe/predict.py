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
import json
import sys
from pathlib import Path

from digitpipe.batch import classify
from digitpipe.decode import quiet_decoder_warnings
from digitpipe.errors import DigitpipeError, program, run_main
from digitpipe.inference import Predictor
from digitpipe.limits import MODEL
from digitpipe.output import check_submission_names, percent, shown, write_csv, write_submission
from digitpipe.targets import Failure, find_images


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
