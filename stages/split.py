"""Stage `split`: stratified, seeded train/val/test manifests from the index."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import read_csv, write_csv
from digitpipe.output import counted, first_of
from digitpipe.params import load_params
from digitpipe.split import SPLITS, falling_short, stratified_split

INDEX = Path("data/index/index.csv")
REJECTS = Path("data/index/rejects.csv")
OUT = Path("data/splits")


def main() -> None:
    params = load_params(["seed", "data.classes", "split"])
    index = read_csv(INDEX, "index")
    classes = params["data"]["classes"]
    missing = [c for c in classes if not (index["label"] == c).any()]
    if missing:
        raise DigitpipeError(f"no usable images for class(es) {', '.join(missing)} in the index; "
                             f"{REJECTS} lists each file ingest refused (and folders it did not read), and why")
    try:
        parts = stratified_split(index, classes, params["split"], params["seed"])
    except DigitpipeError as err:  # a class may be short because its images sit in folders ingest does not read
        counts = {c: int(index.loc[index["label"] == c, "hash"].nunique()) for c in classes}
        short = [label for group in falling_short(counts, params["split"]) for label in group]
        raise DigitpipeError(f"{err}{unread_in(short)}") from None
    for name in SPLITS:
        write_csv(parts[name], OUT / f"{name}.csv")
    sizes = "  ".join(f"{name}: {len(parts[name])}" for name in SPLITS)
    print(f"split: {sizes}  (seed {params['seed']}) -> {OUT}/{{train,val,test}}.csv")


def unread_in(classes: list[str]) -> str:
    """``; the folder of class 'c' holds N files in nested folders, ...`` for each of ``classes`` whose folder
    holds folders that ingest did not read (its ``nested_folder`` rejects), as `digitpipe check` words it; or
    nothing."""
    if not REJECTS.exists():
        return ""
    rejects = read_csv(REJECTS, "rejects")
    nested = rejects[rejects["reason"] == "nested_folder"]
    parts = []
    for label in classes:
        rows = [(path, message) for path, message in zip(nested["path"], nested["message"], strict=True)
                if unicodedata.normalize("NFC", str(path).partition("/")[0]) == unicodedata.normalize("NFC", label)]
        if rows:
            held = sum(int(m.group(1).replace(",", "")) for _, message in rows
                       if (m := re.search(r"holding ([\d,]+) file", str(message))))
            folder = str(rows[0][0]).partition("/")[0]
            parts.append(f"; the folder of class '{label}' holds {counted(held, 'file')} in nested folders, which are "
                         f"not read ({first_of([str(path) for path, _ in rows])}): move them up into {folder}")
    return "".join(parts)


if __name__ == "__main__":
    run_main(main)
