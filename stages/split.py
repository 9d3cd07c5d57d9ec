"""Stage `split`: stratified, seeded train/val/test manifests from the index."""

from __future__ import annotations

from pathlib import Path

from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import read_csv, write_csv
from digitpipe.params import load_params
from digitpipe.split import SPLITS, stratified_split

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
    parts = stratified_split(index, classes, params["split"], params["seed"])
    for name in SPLITS:
        write_csv(parts[name], OUT / f"{name}.csv")
    sizes = "  ".join(f"{name}: {len(parts[name])}" for name in SPLITS)
    print(f"split: {sizes}  (seed {params['seed']}) -> {OUT}/{{train,val,test}}.csv")


if __name__ == "__main__":
    run_main(main)
