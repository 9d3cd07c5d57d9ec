"""Work spread over the cores this process may use, in order, with a progress bar on long runs."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@contextmanager
def process_pool(workers: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes that go when this process stops, however it stops.

    Ctrl-C (which the terminal sends to every process of the command) and SIGTERM stop only this process,
    which cancels the chunks not yet started, waits for those under way and goes on stopping: the workers
    ignore Ctrl-C rather than each printing a traceback, and die by SIGTERM as a pool ends them. A worker
    whose parent was killed outright (SIGKILL, or SIGTERM where nothing took it) ends itself within two
    seconds instead of working on for ever with the command's output still open.
    """
    pool = ProcessPoolExecutor(workers, initializer=_worker_started, initargs=(os.getpid(), initializer, initargs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _worker_started(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, which a fork copies
    threading.Thread(target=_end_with, args=(parent,), name="digitpipe-parent-watch", daemon=True).start()
    if initializer:
        initializer(*initargs)


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


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
    with process_pool(workers, initializer, initargs) as pool, bar:
        for part, result in zip(chunks, pool.map(work, chunks), strict=True):
            bar.update(len(part))
            yield part, result
