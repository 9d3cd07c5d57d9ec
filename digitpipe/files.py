"""Reading and writing the pipeline's files the same way every time (stable bytes, clear errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from digitpipe.errors import DigitpipeError


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV with ``\\n`` line ends and no index, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")


def read_csv(path: str | Path, what: str = "manifest") -> pd.DataFrame:
    """Read a manifest written by :func:`write_csv`; labels and hashes stay strings."""
    path = Path(path)
    if not path.is_file():
        raise DigitpipeError(f"{what} {path} not found: run `dvc repro` first")
    return pd.read_csv(path, dtype={"label": str, "hash": str, "path": str}, keep_default_na=False)


def write_json(data: Any, path: str | Path) -> None:
    """Write JSON with a fixed layout (indent 2, key order as given, trailing newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    path = Path(path)
    if not path.is_file():
        raise DigitpipeError(f"{path} not found: run `dvc repro` first")
    return json.loads(path.read_text(encoding="utf-8"))


def read_training_log(logs: str | Path) -> pd.DataFrame:
    """DVCLive's per-epoch TSVs as one frame: epoch (1-based), accuracy, val_accuracy, loss, val_loss."""
    frame = pd.DataFrame()
    for split, prefix in (("train", ""), ("eval", "val_")):
        for key in ("accuracy", "loss"):
            path = Path(logs) / split / f"{key}.tsv"
            if not path.is_file():
                raise DigitpipeError(f"training log {path} not found: run `dvc repro` first")
            tsv = pd.read_csv(path, sep="\t")
            frame[f"{prefix}{key}"] = tsv[key].to_numpy()
            frame["epoch"] = tsv["step"].to_numpy() + 1
    return frame
