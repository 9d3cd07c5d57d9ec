"""A watchdog in its own process, that ends a distributed training run which stopped making progress.

TensorFlow waits without end for a multi-worker peer that never joins or stops answering, holds
Python's global lock while it waits (so no thread of the training process can act), and ignores SIGTERM
once a multi-worker strategy exists. So the watching is done by a small separate process: the training
process reports progress through a pipe (:meth:`Watchdog.progress`); when ``timeout`` seconds pass
without a report, or a local worker it was told about has died, the watcher prints one line naming the
cause and the unreachable peers, and ends the training process and its local workers with SIGKILL
(exit status 137 in a shell). When the training process ends, the pipe closes and the watcher goes too.

    python -m digitpipe.watchdog PID TIMEOUT NAME PEER... [-- CHILD_PID...]

(``NAME``: this task, e.g. "worker 0"; ``PEER``: "worker 1=127.0.0.1:2222"). Only the standard library
is used here, so the watcher starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

ENV = "DIGITPIPE_PEER_TIMEOUT"  # the timeout, in seconds (see digitpipe.distribute.peer_timeout)


def reachable(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def ended(pid: int) -> int | None:
    """``None`` while process ``pid`` runs; once it has ended, its wait status (0: success), as far as
    ``/proc`` still shows it (a zombie its parent has not reaped yet), else -1."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return -1
    if fields[0] not in ("Z", "X"):
        return None
    return int(fields[49]) if len(fields) > 49 else -1  # field 52 of proc(5): the exit status


class Watchdog:
    """Start the watcher for this process; call :meth:`progress` often and :meth:`stop` at the end."""

    def __init__(self, timeout: float, name: str, peers: Sequence[tuple[str, str]], children: Sequence[int] = ()):
        self.timeout = timeout
        self.began = False  # set once training has begun (its first epoch), for the words of a failure
        args = [str(os.getpid()), f"{timeout:g}", name, *(f"{n}={a}" for n, a in peers), "--", *map(str, children)]
        self.proc = subprocess.Popen([sys.executable, "-m", "digitpipe.watchdog", *args], stdin=subprocess.PIPE,
                                     start_new_session=True)

    def progress(self, doing: str) -> None:
        """Report that the run is alive and what it is doing now (named in the message if it stalls)."""
        try:
            self.proc.stdin.write(doing.replace("\n", " ").encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def watch(pid: int, timeout: float, name: str, peers: list[tuple[str, str]], children: list[int]) -> int:
    """The watcher's loop (in its own process). Returns its exit code."""
    doing, last, pending = "starting", time.monotonic(), b""
    fd = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:  # the training process closed the pipe or ended
                return 0
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:
                doing, last = lines[-1].decode(errors="replace"), time.monotonic()
        if ended(pid) is not None:
            return 0
        children = [c for c in children if ended(c) != 0]  # one that finished well needs no more watching
        gone_child = next((c for c in children if ended(c) is not None), None)
        if gone_child is not None:
            reason = (f"a local worker (pid {gone_child}) ended before training finished (its own message, if any, "
                      "is above)")
        elif time.monotonic() - last > timeout:
            unreachable = [f"{n} ({a})" for n, a in peers if not reachable(a)]
            who = f"{', '.join(unreachable)} cannot be reached" if unreachable else "a peer stopped answering"
            reason = (f"no progress for {timeout:g} s while {doing}: {who}; train must run on every machine of the "
                      "cluster, with the same commit, params.yaml and TF_CONFIG cluster (one that refused says why in "
                      f"its own error; the wait is {ENV}, in seconds)")
        else:
            continue
        print(f"error: {name}: {reason}; stopping it", file=sys.stderr, flush=True)
        for victim in [*children, pid]:
            with contextlib.suppress(OSError):
                os.kill(victim, signal.SIGKILL)
        return 2


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    pid, timeout, name, *peer_args = argv[:cut]
    peers = [(n, a) for n, _, a in (p.partition("=") for p in peer_args)]
    return watch(int(pid), float(timeout), name, peers, [int(c) for c in argv[cut + 1:]])


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the training process; the pipe tells us
    sys.exit(main(sys.argv[1:]))
