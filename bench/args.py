"""What the benchmarks' command lines share: counts and rates refused before any work when they cannot be ones."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from digitpipe.params import NORMALIZE


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least`` (``-n 0`` would build a data set of nothing, then
    fail in a throw-away project after minutes; ``--repeat 0`` would take the median of no runs)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}")
        return value

    return whole


def above_zero(text: str) -> float:
    """An argparse type: a finite number above 0 (``--rate 0`` would space the requests infinitely far apart)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


def add_data_options(parser: argparse.ArgumentParser, data_help: str) -> None:
    """``--data DIR`` (another folder-per-class data set) and ``--normalize`` (its ``data.normalize``), as the
    benchmarks that train on the sample take them; :func:`refuse_normalize_alone` checks the pair."""
    parser.add_argument("--data", type=Path, metavar="DIR", help=data_help)
    parser.add_argument("--normalize", choices=NORMALIZE, help="data.normalize for --data (default: params.yaml's)")


def refuse_normalize_alone(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--normalize`` without ``--data`` would be silently ignored: it is refused, as argparse refuses."""
    if args.normalize and not args.data:
        parser.error("--normalize goes with --data (the pipeline's data is prepared under params.yaml's)")
