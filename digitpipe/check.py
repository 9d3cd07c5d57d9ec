"""Check params.yaml and the data folder before a run, in words DVC cannot give.

    digitpipe check                          (or: python -m digitpipe.check)
    digitpipe check -S data.dir=scans        as `dvc exp run -S data.dir=scans` would run

Every stage checks the params it reads before it does any work, but some values break the pipeline
file itself before any stage runs: with an empty ``data.dir``, every `dvc` command stops with
``ERROR: unexpected error`` and nothing more. This runs the same checks as the stages, on the whole
file, and looks at the data folder; it exits 0 when a run can start and 2, naming the key, when not.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from digitpipe.errors import DigitpipeError, program, remade_hint, run_main, stage_outputs
from digitpipe.files import content_hash
from digitpipe.output import counted, first_of, shown
from digitpipe.params import RULES, data_dir_problem, load_params


def check(params_path: Path = Path("params.yaml"), settings: list[str] | None = None) -> str:
    """One line saying what a run will use, with ``settings`` (``KEY=VALUE``, as ``dvc exp run -S`` takes them)
    applied to the params file; raises :class:`DigitpipeError` naming what is wrong."""
    params = load_params(list(RULES), params_path, settings)
    source = f"{params_path} with {' '.join(map(shown, settings))}" if settings else str(params_path)
    root, classes = Path(params["data"]["dir"]), params["data"]["classes"]
    made_by = stage_outputs().get(root.as_posix())
    if made_by and not root.is_dir():  # a fresh clone's data/sample: checked once the stage has made it
        where = f"made by the `{made_by[0]}` stage, which has not run yet"
    elif problem := data_dir_problem(params["data"]["dir"]):
        raise DigitpipeError(f"{source}: {problem}")
    else:
        from digitpipe.ingest import check_links, other_folders, scan  # as ingest will find them
        from digitpipe.split import check_dealable, falling_short, unread_in

        again = remade_hint(root)  # a stage's output that was emptied or edited: DVC brings it back
        try:
            found = scan(root, classes)
        except DigitpipeError as err:  # the words ingest would stop with
            raise DigitpipeError(f"{source}: data.dir = {str(root)!r}: {err}{again}") from None
        folders, files = found.folders, found.files
        counts, unread = distinct_counts(root, files, classes)
        try:
            check_links(root, sorted(folders.values()))
        except DigitpipeError as err:  # the words DVC's hashing would stop with
            raise DigitpipeError(f"{source}: data.dir = {str(root)!r}: {err}") from None
        try:  # the split stage counts the usable ones among these, never more
            check_dealable(counts, params["split"])
        except DigitpipeError as err:  # the split stage's words, and the files ingest would not read
            short = [label for group in falling_short(counts, params["split"]) for label in group]
            raise DigitpipeError(f"{source}: data.dir = {str(root)!r}: {err}"
                                 f"{unread_in(found.nested, folders, short)}{again}") from None
        others = other_folders(root, folders)
        distinct = sum(counts.values())
        copies = len(files) - len(unread) - distinct
        parts = (["duplicates and files under two classes (by their bytes)"] if copies else []) + (
            [f"{counted(len(unread), 'file')} ingest refuses unread"] if unread else [])
        left_out = f", {distinct:,} once {' and '.join(parts)} are left out" if parts else ""
        refused = f"; refused unread: {first_of([f'{shown(r)} ({why})' for r, why in unread])}" if unread else ""
        nested = [f"{shown(path)} ({counted(held, 'file')})" for path, _, held in found.nested]
        where = (f"{len(folders)} of {len(classes)} class folders present, {len(files):,} files{left_out}"
                 f" ({min(counts.values()):,} to {max(counts.values()):,} a class)") + refused + (
            f"; {len(others)} other folder(s), not classes, skipped: {', '.join(shown(o) for o in others[:5])}"
            f"{', ...' if len(others) > 5 else ''}" if others else "") + (
            f"; {len(nested)} folder(s) inside class folders, whose files are not read: {first_of(nested)}"
            if nested else "") + (
            f"; {len(found.unlisted)} folder(s) inside class folders not looked into, whose files are not read: "
            f"{first_of([f'{shown(path)} ({why})' for path, _, why in found.unlisted])}"
            if found.unlisted else "")
    return (f"{source}: valid; data.dir {shown(str(root))}: {where}; "
            f"data.normalize={params['data']['normalize']}, model.arch={params['model']['arch']}")


def distinct_counts(root: Path, files: list[tuple[str, str]],
                    classes: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The files of each class as ingest will keep them, at most, by their bytes alone (decoding them is ingest's
    work): ingest's own :func:`~digitpipe.ingest.resolve_duplicates` on the digests of their bytes, after the
    files it refuses before reading (empty, oversized, unreadable); and those files, each with why. Ingest also
    leaves out the copies of one picture in other bytes, and files it cannot decode, so it can keep fewer, never
    more."""
    from digitpipe.ingest import PICTURE, read_bytes, resolve_duplicates

    rows, unread = [], []
    for rel, label in files:
        try:
            data = read_bytes(root / rel)
        except OverflowError as err:
            unread.append((rel, f"too large: {err}"))
            continue
        except OSError as err:
            unread.append((rel, f"cannot read: {err.strerror or err}"))
            continue
        if not data:
            unread.append((rel, "empty file"))
            continue
        digest = content_hash(data)
        rows.append({"path": rel, "label": label, "hash": digest, PICTURE: digest})
    tally = Counter(row["label"] for row in resolve_duplicates(rows)[0])
    return {label: tally[label] for label in classes}, unread


def main() -> None:
    parser = argparse.ArgumentParser(prog=program("digitpipe.check"), description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the params file (default: %(default)s)")
    parser.add_argument("-S", "--set-param", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="check with this value set, as `dvc exp run -S KEY=VALUE` would run "
                             "(such as data.dir=scans); repeat it for more")
    args = parser.parse_args()
    print(check(args.params, args.settings))


if __name__ == "__main__":
    run_main(main)
