"""Index a folder-per-class image tree: every usable image once, every unusable file with a reason."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from digitpipe.errors import DigitpipeError
from digitpipe.images import SIDE

INDEX_COLUMNS = ["path", "label", "hash", "width", "height", "mode", "format"]
REJECT_COLUMNS = ["path", "reason", "message"]


@dataclass
class IngestResult:
    """Rows of the index and of the rejects file, plus what was skipped."""

    index: pd.DataFrame
    rejects: pd.DataFrame
    skipped: Counter = field(default_factory=Counter)


def find_files(root: Path, classes: list[str]) -> list[tuple[str, str]]:
    """Sorted ``(relative path, label)`` of every file in the class folders of ``root``."""
    if not root.is_dir():
        raise DigitpipeError(f"data dir {root} does not exist (set data.dir in params.yaml)")
    present = [c for c in classes if (root / c).is_dir()]
    if not present:
        raise DigitpipeError(
            f"no class folders found in {root}: expected sub-folders named " + ", ".join(classes)
        )
    files = []
    for label in present:
        for path in sorted((root / label).iterdir()):
            if path.is_file():
                files.append((path.relative_to(root).as_posix(), label))
    if not files:
        raise DigitpipeError(f"data dir {root} holds no files in its class folders")
    return files


def content_hash(data: bytes) -> str:
    """A short, stable digest of a file's bytes (identical files share it)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def inspect_file(root: Path, rel: str, label: str, size_policy: str) -> dict:
    """Decode one file and return its index row, or a reject row (with ``reason``)."""
    data = (root / rel).read_bytes()
    if not data:
        return {"path": rel, "reason": "empty", "message": "file is 0 bytes"}
    try:
        with Image.open(root / rel) as img:
            img.load()
            width, height, mode, fmt = img.width, img.height, img.mode, img.format
    except UnidentifiedImageError:
        return {"path": rel, "reason": "not_image", "message": "not a recognised image format"}
    except (OSError, SyntaxError, ValueError) as err:
        return {"path": rel, "reason": "corrupt", "message": f"cannot decode: {err}"}
    if size_policy == "reject" and (width, height) != (SIDE, SIDE):
        return {"path": rel, "reason": "wrong_size", "message": f"{width}x{height}, not {SIDE}x{SIDE}"}
    return {"path": rel, "label": label, "hash": content_hash(data), "width": width,
            "height": height, "mode": mode, "format": fmt}


def ingest(root: Path, classes: list[str], size_policy: str = "resize") -> IngestResult:
    """Inspect every file under ``root``'s class folders."""
    rows, rejects = [], []
    for rel, label in find_files(root, classes):
        row = inspect_file(root, rel, label, size_policy)
        (rejects if "reason" in row else rows).append(row)
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return IngestResult(index=index, rejects=pd.DataFrame(rejects, columns=REJECT_COLUMNS))


def summarize(result: IngestResult, classes: list[str]) -> dict:
    """Counts for ``metrics/data.json``: indexed per class, rejected per reason."""
    per_class = result.index["label"].value_counts()
    reasons = result.rejects["reason"].value_counts()
    return {
        "indexed": int(len(result.index)),
        "rejected": int(len(result.rejects)),
        "images_per_class": {c: int(per_class.get(c, 0)) for c in classes},
        "rejected_by_reason": {r: int(reasons[r]) for r in sorted(reasons.index)},
    }
