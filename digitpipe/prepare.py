"""Decoding once: the images the split manifests name, as the model will see them.

The prepare stage is the only stage after ingest that opens image files. It reads the files the
manifests name, checks each against the content hash ingest recorded (so the arrays are exactly the
indexed content), decodes it (:mod:`digitpipe.decode`) and applies the data's preprocessing policy
(:mod:`digitpipe.images`); :mod:`digitpipe.prepared` writes the result.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from digitpipe.decode import NotAFile, failure_reason, gray_from_bytes, read_at_most
from digitpipe.errors import DigitpipeError
from digitpipe.files import content_hash
from digitpipe.images import model_pixels_changed
from digitpipe.limits import MAX_FILE_BYTES, MAX_PIXELS, SIDE
from digitpipe.parallel import map_chunks

CHUNK = 1_024          # files per unit of work: decoded together, then preprocessed together
PARALLEL_FROM = 2_000  # below this many files one process is faster than a pool


class ChangedSinceIngest(Exception):
    """The file's bytes are not those ingest indexed."""


def read_checked(path: str, expected_hash: str) -> bytes:
    """A file's bytes, refused when they are not what ingest indexed (a fifo put in its place, which reading would
    wait on for ever, included: :func:`~digitpipe.decode.open_regular`)."""
    try:
        data = read_at_most(path, MAX_FILE_BYTES)
    except NotAFile as err:
        raise ChangedSinceIngest(f"changed since ingest (now not a regular file: {err.kind})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ChangedSinceIngest("changed since ingest (now too large)")
    if content_hash(data) != expected_hash:
        raise ChangedSinceIngest("changed since ingest (its content hash differs from the index)")
    return data


def prepare_chunk(items: list[tuple[str, str]], root: Path, normalize: str
                  ) -> tuple[np.ndarray, int, list[tuple[str, str]]]:
    """Decode and preprocess ``(path, hash)`` items: ``(uint8 inputs, how many the policy changed,
    [(path, reason)] for files that failed)``; the inputs hold only the files that did not fail."""
    grays, failed = [], []
    for rel, expected in items:
        try:
            grays.append(gray_from_bytes(read_checked(os.path.join(root, rel), expected), MAX_PIXELS))
        except ChangedSinceIngest as err:
            failed.append((rel, str(err)))
        except Exception as err:  # noqa: BLE001 - every file gets its reason; the stage reports them all
            failed.append((rel, failure_reason(err) or f"{type(err).__name__}: {err}"))
    if failed:
        return np.zeros((0, SIDE, SIDE), np.uint8), 0, failed
    pixels, changed = model_pixels_changed(grays, normalize)
    return pixels, int(changed.sum()), []


def prepare_images(root: Path, paths: list[str], hashes: list[str], normalize: str,
                   progress: bool = True) -> tuple[np.ndarray, int]:
    """The uint8 model inputs (N, 28, 28) of every file, in order, and how many the policy changed.

    Runs on all cores for big sets. A file that cannot be read, has changed since ingest or cannot
    be decoded stops it: the manifests promise that every file is there as indexed.
    """
    items = list(zip(paths, hashes, strict=True))
    work = partial(prepare_chunk, root=root, normalize=normalize)
    parts, changed, failed = [], 0, []
    for _, (pixels, n_changed, bad) in map_chunks(work, items, CHUNK, PARALLEL_FROM, "prepare", progress):
        parts.append(pixels)
        changed += n_changed
        failed += bad
    if failed:
        shown = "; ".join(f"{p}: {r}" for p, r in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        raise DigitpipeError(f"{len(failed)} indexed file(s) in {root} cannot be prepared: {shown}{more}; "
                             "run `dvc repro` so ingest indexes the folder as it is now")
    return (np.concatenate(parts) if parts else np.zeros((0, SIDE, SIDE), np.uint8)), changed
