"""The prepared arrays: each split's images decoded once, exactly as the model sees them.

The prepare stage (:mod:`digitpipe.prepare`) writes one file per split (``data/prepared/<split>.npz``):

- ``x``: uint8 (N, 28, 28), the model inputs in manifest order;
- ``y``: int32 (N,), the class index of each (into ``classes``);
- ``paths``: the manifest paths, relative to ``data.dir``;
- ``classes``, ``normalize``: the class names in label order and the policy applied.

Train, evaluate, export and plot read these arrays and never the image folder. The files are plain
NumPy ``.npz`` archives written with fixed zip dates and no compression, so the same images give
the same bytes on any machine.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitpipe.card import zip_entry
from digitpipe.errors import DigitpipeError
from digitpipe.files import atomic_path


@dataclass
class Prepared:
    """One split's model inputs and labels (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray
    paths: list[str]
    classes: list[str]
    normalize: str


def save_prepared(prepared: Prepared, path: str | Path) -> None:
    """Write ``path`` atomically; byte-identical for identical content (fixed dates, stored entries)."""
    arrays = {"x": prepared.x.astype(np.uint8), "y": prepared.y.astype(np.int32),
              "paths": np.array(prepared.paths, dtype=str), "classes": np.array(prepared.classes, dtype=str),
              "normalize": np.array(prepared.normalize)}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, array, allow_pickle=False)
            archive.writestr(zip_entry(f"{name}.npy"), buf.getvalue())


def load_prepared(path: str | Path) -> Prepared:
    """Read a split written by :func:`save_prepared`; a missing file says to run the pipeline."""
    path = Path(path)
    if not path.is_file():
        raise DigitpipeError(f"prepared data {path} not found: run `dvc repro` first")
    with np.load(path, allow_pickle=False) as data:
        return Prepared(x=data["x"], y=data["y"], paths=data["paths"].tolist(), classes=data["classes"].tolist(),
                        normalize=str(data["normalize"]))
