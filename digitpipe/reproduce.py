"""Check that the workspace reproduces a committed revision's pipeline results.

    dvc repro && python -m digitpipe.reproduce                 # against HEAD, exact
    python -m digitpipe.reproduce --rev main --tolerance 0.005

Compared, after a `dvc repro` of the workspace:

- the `dvc.lock` entries (every dependency and output hash) of the data stages `sample`,
  `ingest` and `split`, which must match exactly: the data and manifests are byte-identical;
- every number in `metrics/*.json` except wall-clock timings, within ``--tolerance``
  (absolute; 0 = exact);
- the model file and the plot data files, byte for byte, unless a tolerance is given (a
  tolerance admits a platform that computes floating point slightly differently).

Exit 0 when everything matches, 1 with one line per difference otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from digitpipe.errors import DigitpipeError, run_main

DATA_STAGES = ("sample", "ingest", "split", "prepare")
TIMING_KEYS = {"train_seconds", "seconds_per_epoch"}
MODEL_FILES = ("models/model.keras",)
PLOT_DATA = ("plots/data/predictions.csv", "plots/data/calibration.csv", "plots/data/per_class.csv")


def at_revision(rev: str, path: str) -> str | None:
    """A file's text at a git revision, or None if it is not there."""
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def flatten(data, prefix: str = "") -> dict:
    """Nested JSON as ``{"a.b.c": value}``."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def lock_hashes(lock: dict, stage: str) -> dict:
    """``{path: md5}`` of a stage's deps and outs in a parsed dvc.lock."""
    entry = lock.get("stages", {}).get(stage, {})
    return {item["path"]: item.get("md5") for kind in ("deps", "outs") for item in entry.get(kind, [])}


def compare_lock(rev: str) -> list[str]:
    old_text = at_revision(rev, "dvc.lock")
    if old_text is None:
        raise DigitpipeError(f"dvc.lock is not committed at {rev}")
    old, new = yaml.safe_load(old_text), yaml.safe_load(Path("dvc.lock").read_text())
    problems = []
    for stage in DATA_STAGES:
        before, after = lock_hashes(old, stage), lock_hashes(new, stage)
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                problems.append(f"dvc.lock: stage {stage}, {path}: {before.get(path)} at {rev}, now {after.get(path)}")
    return problems


def compare_metrics(rev: str, tolerance: float) -> list[str]:
    problems = []
    for path in sorted(Path("metrics").glob("*.json")):
        old_text = at_revision(rev, path.as_posix())
        if old_text is None:
            problems.append(f"{path}: not committed at {rev}")
            continue
        old, new = flatten(json.loads(old_text)), flatten(json.loads(path.read_text()))
        for key in sorted(set(old) | set(new)):
            if key.split(".")[-1] in TIMING_KEYS:
                continue
            a, b = old.get(key), new.get(key)
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
            if (numbers and abs(a - b) > tolerance) or (not numbers and a != b):
                problems.append(f"{path}: {key} = {a} at {rev}, now {b}")
    return problems


def compare_files(rev: str, paths: tuple[str, ...]) -> list[str]:
    problems = []
    for path in paths:
        proc = subprocess.run(["git", "diff", "--quiet", rev, "--", path])
        if proc.returncode != 0:
            problems.append(f"{path}: differs from {rev}")
    return problems


def model_hash_problems(rev: str) -> list[str]:
    old_text = at_revision(rev, "dvc.lock")
    old, new = yaml.safe_load(old_text or "{}"), yaml.safe_load(Path("dvc.lock").read_text())
    before = {p: h for p, h in lock_hashes(old, "train").items() if p in MODEL_FILES}
    after = {p: h for p, h in lock_hashes(new, "train").items() if p in MODEL_FILES}
    return [f"dvc.lock: {p}: {before.get(p)} at {rev}, now {after.get(p)} (different weights)"
            for p in MODEL_FILES if before.get(p) != after.get(p)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m digitpipe.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest absolute difference allowed in a metric (default 0: exact); a non-zero "
                             "tolerance also skips the byte comparison of the model and the plot data")
    args = parser.parse_args()
    problems = compare_lock(args.rev) + compare_metrics(args.rev, args.tolerance)
    if args.tolerance == 0:
        problems += model_hash_problems(args.rev) + compare_files(args.rev, PLOT_DATA)
    for line in problems:
        print(f"differs: {line}", file=sys.stderr)
    if problems:
        print(f"reproduce: {len(problems)} difference(s) from {args.rev}: commit the results of `dvc repro` "
              "(dvc.lock, metrics/, plots/, dvclive/) with the change that caused them", file=sys.stderr)
        sys.exit(1)
    exact = "exactly" if args.tolerance == 0 else f"within {args.tolerance}"
    print(f"reproduce: data stages, metrics, model and plot data match {args.rev} {exact}"
          if args.tolerance == 0 else f"reproduce: data stages match {args.rev}; metrics match {exact}")


if __name__ == "__main__":
    run_main(main)
