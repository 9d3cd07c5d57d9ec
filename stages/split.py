"""Stage `split`: stratified, seeded train/val/test manifests from the index."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import read_csv, write_csv
from digitpipe.output import names_of
from digitpipe.params import load_params
from digitpipe.split import SPLITS, distinct_groups, falling_short, group_sizes, stratified_split, unread_in

INDEX = Path("data/index/index.csv")
REJECTS = Path("data/index/rejects.csv")
OUT = Path("data/splits")


def main() -> None:
    params = load_params(["seed", "data.classes", "split"])
    index = read_csv(INDEX, "index")
    classes = params["data"]["classes"]
    missing = [c for c in classes if not (index["label"] == c).any()]
    if missing:
        raise DigitpipeError(f"no usable images for class(es) {', '.join(names_of(missing))} in the index; "
                             f"{REJECTS} lists each file ingest refused (and folders it did not read), and why")
    try:
        parts = stratified_split(index, classes, params["split"], params["seed"])
    except DigitpipeError as err:  # a class may be short because its images sit in folders ingest does not read
        counts = group_sizes(distinct_groups(index, classes))  # the counts the split refused
        short = [unicodedata.normalize("NFC", label) for group in falling_short(counts, params["split"])
                 for label in group]
        raise DigitpipeError(f"{err}{unread_in(*nested_in_rejects(), short)}") from None
    for name in SPLITS:
        write_csv(parts[name], OUT / f"{name}.csv")
    sizes = "  ".join(f"{name}: {len(parts[name])}" for name in SPLITS)
    print(f"split: {sizes}  (seed {params['seed']}) -> {OUT}/{{train,val,test}}.csv")


def nested_in_rejects() -> tuple[list[tuple[str, str, int]], dict[str, str]]:
    """The folders inside class folders that ingest did not read, from its ``nested_folder`` rejects: each one's
    path, class and file count (:func:`~digitpipe.ingest.nested_reject` words it ``holding N files``), and the
    folder of each class that holds one, for :func:`~digitpipe.split.unread_in`."""
    if not REJECTS.exists():
        return [], {}
    rejects = read_csv(REJECTS, "rejects")
    nested, folders = [], {}
    for path, reason, message in zip(rejects["path"], rejects["reason"], rejects["message"], strict=True):
        held = re.search(r"holding ([\d,]+) files?\b", str(message))
        if reason == "nested_folder" and held:
            folder = str(path).partition("/")[0]
            label = unicodedata.normalize("NFC", folder)  # ingest matches a class's folder by its name as text
            nested.append((str(path), label, int(held.group(1).replace(",", ""))))
            folders[label] = folder
    return nested, folders


if __name__ == "__main__":
    run_main(main)
