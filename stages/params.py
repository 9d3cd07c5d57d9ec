"""Stage `params`: check the whole of params.yaml whenever any value in it changes.

Every other stage checks the whole file too, but DVC runs a stage only when a key it declares changes. A
section or key that no stage reads (``dvc exp run -S +trian.lr=0.01``, ``-S +data.normalise=none``) changes
none of theirs: without this stage the run would skip every stage and record an experiment that changed
nothing. This one declares the whole file, so any change runs it, and it refuses such a key with the
nearest valid name; a ``data.dir`` that names no folder it refuses too, before DVC reaches ``ingest``. It
writes nothing and takes about a second.
"""

from __future__ import annotations

from digitpipe.errors import DigitpipeError, run_main
from digitpipe.params import data_dir_problem, load_params


def main() -> None:
    data_dir = load_params(["data.dir"])["data"]["dir"]  # checks every section, key and value of the file
    problem = data_dir_problem(data_dir)  # in these words, not DVC's "No such file or directory" at ingest
    if problem:
        raise DigitpipeError(f"params.yaml: {problem}")
    print("params: params.yaml is valid")


if __name__ == "__main__":
    run_main(main)
