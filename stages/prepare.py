"""Stage `prepare`: decode every image the split manifests name, once, into the arrays the model trains on."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from digitpipe.errors import run_main
from digitpipe.files import read_csv
from digitpipe.params import load_params
from digitpipe.prepare import prepare_images
from digitpipe.prepared import Prepared, save_prepared
from digitpipe.split import SPLITS

MANIFESTS = Path("data/splits")
OUT = Path("data/prepared")


def main() -> None:
    params = load_params(["data.dir", "data.classes", "data.normalize"])
    root, classes, normalize = Path(params["data"]["dir"]), params["data"]["classes"], params["data"]["normalize"]
    manifests = {name: read_csv(MANIFESTS / f"{name}.csv") for name in SPLITS}
    start = time.perf_counter()
    paths = [p for m in manifests.values() for p in m["path"]]
    hashes = [h for m in manifests.values() for h in m["hash"]]
    pixels, changed = prepare_images(root, paths, hashes, normalize)
    seconds = time.perf_counter() - start
    lookup = {c: i for i, c in enumerate(classes)}
    offset = 0
    for name, manifest in manifests.items():
        n = len(manifest)
        save_prepared(Prepared(x=pixels[offset:offset + n], y=manifest["label"].map(lookup).to_numpy(np.int32),
                               paths=manifest["path"].tolist(), classes=classes, normalize=normalize),
                      OUT / f"{name}.npz")
        offset += n
    sizes = " / ".join(f"{name} {len(m):,}" for name, m in manifests.items())
    what = {"mnist": f"{len(paths) - changed:,} already in MNIST form, {changed:,} brought to it (inverted or "
                     "normalised)", "none": "used as decoded"}[normalize]
    print(f"prepare: {len(paths):,} images ({sizes}) from {root} in {seconds:.1f} s "
          f"({len(paths) / max(seconds, 1e-9):,.0f} images/s); data.normalize={normalize}: {what} -> {OUT}/")


if __name__ == "__main__":
    run_main(main)
