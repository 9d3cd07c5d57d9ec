"""Stage `params`: check the whole of params.yaml whenever any value in it changes.

Every other stage checks the whole file too, but DVC runs a stage only when a key it declares changes. A
section or key that no stage reads (``dvc exp run -S +trian.lr=0.01``, ``-S +data.normalise=none``) changes
none of theirs: without this stage the run would skip every stage and record an experiment that changed
nothing. This one declares the whole file, so any change runs it, and it refuses such a key with the
nearest valid name. A ``data.dir`` that names no folder, lacks a class's folder (or has one too small to
split even if every file in it is a usable image) or holds a link DVC cannot hash it refuses too, before
DVC reaches ``ingest`` (which would first remove its outputs, then stop, or run in vain). It
writes nothing and takes about a second.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from digitpipe.errors import DigitpipeError, remade_hint, run_main, stage_outputs
from digitpipe.ingest import check_links, scan
from digitpipe.params import data_dir_problem, load_params
from digitpipe.split import check_dealable, falling_short, unread_in


def main() -> None:
    params = load_params(["data.dir", "data.classes", "split"])  # checks every section, key and value of the file
    data = params["data"]
    problem = data_dir_problem(data["dir"])  # in these words, not DVC's "No such file or directory" at ingest
    if problem:
        raise DigitpipeError(f"params.yaml: {problem}")
    root = Path(data["dir"])
    # a folder of the user's, or one a stage makes (data/sample) once it is there: in a fresh clone the stage that
    # makes it may run after this one, and is checked by ingest
    if root.as_posix() not in stage_outputs() or root.is_dir():
        try:
            found = scan(root, data["classes"])  # in ingest's words, as `digitpipe check` says them
            check_links(root, sorted(found.folders.values()))
            # a class whose files, all of them usable, could not give each split one: split would stop after ingest
            tally = Counter(label for _, label in found.files)
            counts = {label: tally[label] for label in data["classes"]}
            try:
                check_dealable(counts, params["split"])
            except DigitpipeError as err:
                short = [label for group in falling_short(counts, params["split"]) for label in group]
                raise DigitpipeError(f"{err} (counting every file in the class folders)"
                                     f"{unread_in(found.nested, found.folders, short)}") from None
        except DigitpipeError as err:
            raise DigitpipeError(f"params.yaml: data.dir = {data['dir']!r}: {err}{remade_hint(root)}") from None
    print("params: params.yaml is valid")


if __name__ == "__main__":
    run_main(main)
