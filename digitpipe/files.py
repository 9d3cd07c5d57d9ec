"""Reading and writing the pipeline's files the same way every time (stable bytes, clear errors)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitpipe.errors import DigitpipeError, one_line

if TYPE_CHECKING:  # pandas costs 0.15 s to import: `predict` and the web page write files without it
    import pandas as pd


def content_hash(data: bytes) -> str:
    """A short, stable digest of a file's bytes (identical files share it); the index records it."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` only when the block ends
    without an error, so a kill, a full disk or a crash never leaves a partial file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, mode_for(path))  # not mkstemp's 0600, which would make outputs private to their writer
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mode_for(path: Path) -> int:
    """The permissions a file written to ``path`` gets: those of the file it replaces, else what the umask allows
    a new file, as ``open()`` would give it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def write_bytes(data: bytes, path: str | Path) -> None:
    """Write a whole file atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV with ``\\n`` line ends and no index, atomically, creating the folder.

    A field holding a newline, a comma or a quote is quoted, but the CSV writer does not quote one holding
    only a carriage return (not part of a ``\\n`` line end), which a reader then takes for a line end: a file
    named ``scan\\r2.jpg`` would come back as two rows. A frame holding one is written with every field
    quoted, which reads back the same; every other frame is written as before, byte for byte."""
    import csv

    import pandas as pd

    has_cr = any(frame[c].map(lambda v: isinstance(v, str) and "\r" in v).any()
                 for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]))
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", quoting=csv.QUOTE_ALL if has_cr else csv.QUOTE_MINIMAL)


TEXT_COLUMNS = ("path", "hash", "label", "actual", "predicted", "class")


def read_csv(path: str | Path, what: str = "manifest") -> pd.DataFrame:
    """Read a manifest written by :func:`write_csv`; paths, hashes and every column that holds a class name
    (``label``, ``actual``, ``predicted``, ``class``) stay strings as written, so that classes named ``01``,
    ``+1`` or ``true`` are not read as numbers or booleans. One that is not a file, or not a CSV file, is refused
    in one line."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise DigitpipeError(f"{what} {path} is not a file: remove it, then run `dvc repro`")
    if not path.is_file():
        raise DigitpipeError(f"{what} {path} not found: run `dvc repro` first")
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str), keep_default_na=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:  # EmptyDataError is a ValueError
        raise damaged(path, what, err) from None


def damaged(path: Path, what: str, err: BaseException | str) -> DigitpipeError:
    """The one-line error for a file of the pipeline's that cannot be what it should: how to get it back."""
    detail = one_line(err) or type(err).__name__
    return DigitpipeError(f"{what} {path} is damaged ({detail}): `dvc repro` makes it again, or `git checkout -- "
                          f"{path.as_posix()}` brings back the committed one")


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON with a fixed layout (indent 2, key order as given, trailing newline)."""
    write_bytes((json.dumps(data, indent=2) + "\n").encode("utf-8"), path)


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    path = Path(path)
    if not path.is_file():
        raise DigitpipeError(f"{path} not found: run `dvc repro` first")
    return json.loads(path.read_text(encoding="utf-8"))


def read_training_log(logs: str | Path) -> pd.DataFrame:
    """DVCLive's per-epoch TSVs as one frame: epoch (1-based), accuracy, val_accuracy, loss, val_loss."""
    import pandas as pd

    frame = pd.DataFrame()
    for split, prefix in (("train", ""), ("eval", "val_")):
        for key in ("accuracy", "loss"):
            path = Path(logs) / split / f"{key}.tsv"
            if not path.is_file():
                raise DigitpipeError(f"training log {path} not found: run `dvc repro` first")
            try:
                tsv = pd.read_csv(path, sep="\t")
                frame[f"{prefix}{key}"] = pd.to_numeric(tsv[key], errors="raise").to_numpy()
                frame["epoch"] = pd.to_numeric(tsv["step"], errors="raise").to_numpy() + 1
            except (KeyError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
                raise damaged(path, "training log", f"no column {err}" if isinstance(err, KeyError) else err) from None
    return frame
