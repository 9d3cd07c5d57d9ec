"""Work spread over the cores this process may use, in order, with a progress bar on long runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def map_chunks(work: Callable[[list[T]], R], items: Sequence[T], chunk: int, parallel_from: int,
               desc: str, progress: bool = True, initializer: Callable[..., None] | None = None,
               initargs: tuple = ()) -> Iterator[tuple[list[T], R]]:
    """``(chunk, work(chunk))`` for consecutive chunks of ``items``, in order.

    Below ``parallel_from`` items (or on one core) the work runs here, which is faster than starting
    worker processes; above it, one worker process per core. A progress bar on stderr counts items
    when stderr is a terminal (never in logs or pipes).
    """
    chunks = [list(items[i:i + chunk]) for i in range(0, len(items), chunk)]
    workers = worker_count()
    if len(items) < parallel_from or workers == 1:
        if initializer:
            initializer(*initargs)
        for part in chunks:
            yield part, work(part)
        return
    from tqdm import tqdm

    bar = tqdm(total=len(items), unit="img", desc=desc, file=sys.stderr, disable=None if progress else True,
               mininterval=0.5, leave=False)
    with ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs) as pool, bar:
        for part, result in zip(chunks, pool.map(work, chunks), strict=True):
            bar.update(len(part))
            yield part, result
