"""Stage `prepare`: decode every image the split manifests name, once, into the arrays the model trains on.

An image in which the preprocessing policy finds nothing the size of a digit (a faint smudge on a page, a
speck, a digit lost in a long strip) becomes an input of pure background, which `predict` refuses to
classify; training on it under its folder's label, or testing on it, would teach and measure nothing. Such
images are left out of the arrays and listed, with their split and why, in ``data/prepared/left_out.csv``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from digitpipe.decode import no_digit
from digitpipe.errors import DigitpipeError, run_main
from digitpipe.files import read_csv, write_csv
from digitpipe.limits import SIDE
from digitpipe.output import first_of, shown
from digitpipe.params import load_params
from digitpipe.prepare import prepare_images
from digitpipe.prepared import Prepared, save_prepared
from digitpipe.split import SPLITS

MANIFESTS = Path("data/splits")
OUT = Path("data/prepared")
NOTHING = no_digit(np.zeros((SIDE, SIDE), np.uint8)).message  # predict's words for such an image


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
    nothing = ~pixels.reshape(len(pixels), -1).any(axis=1)  # all background: decode.no_digit's case
    left_out, offset, kept = [], 0, {}
    for name, manifest in manifests.items():
        keep = ~nothing[offset:offset + len(manifest)]
        left_out += [{"path": p, "split": name, "label": label, "message": NOTHING}
                     for p, label in zip(manifest["path"][~keep], manifest["label"][~keep], strict=True)]
        kept[name] = (manifest[keep], pixels[offset:offset + len(manifest)][keep])
        offset += len(manifest)
    named = first_of([shown(row["path"]) for row in left_out])
    short = [f"class {c!r} has no {name} image" for name, (m, _) in kept.items() for c in classes
             if not (m["label"] == c).any()]
    if short:
        raise DigitpipeError(
            f"once the {len(left_out)} image(s) in which data.normalize={normalize} finds nothing the size of a "
            f"digit are left out ({named}), {first_of(short)}; replace those files with clearer ones, add images, "
            "or set data.normalize=none")
    for name, (manifest, x) in kept.items():
        save_prepared(Prepared(x=x, y=manifest["label"].map(lookup).to_numpy(np.int32),
                               paths=manifest["path"].tolist(), classes=classes, normalize=normalize),
                      OUT / f"{name}.npz")
    (OUT / "left_out.csv").unlink(missing_ok=True)  # a list from an earlier run (outside dvc repro) goes
    if left_out:
        write_csv(pd.DataFrame(left_out), OUT / "left_out.csv")
        print(f"prepare: {len(left_out)} image(s) left out, in which data.normalize={normalize} finds nothing "
              f"the size of a digit (predict refuses such images too): {named} "
              f"(all in {OUT / 'left_out.csv'})")
    sizes = " / ".join(f"{name} {len(m):,}" for name, (m, _) in kept.items())
    what = {"mnist": f"{len(paths) - changed:,} already in MNIST form, {changed:,} brought to it (inverted or "
                     "normalised)", "none": "used as decoded"}[normalize]
    if left_out:
        what = f"of the {len(paths):,} decoded, {what}"
    print(f"prepare: {len(paths) - len(left_out):,} images ({sizes}) from {root} in {seconds:.1f} s "
          f"({len(paths) / max(seconds, 1e-9):,.0f} images/s); data.normalize={normalize}: {what} -> {OUT}/")


if __name__ == "__main__":
    run_main(main)
