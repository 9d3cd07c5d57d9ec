"""Start N training workers on this machine, each with its own ``TF_CONFIG``, on free ports.

Their ``TF_CONFIG`` names 127.0.0.1, but TensorFlow's gRPC server listens on that port on every address of the
machine, whatever ``TF_CONFIG`` says, unauthenticated, for as long as training runs.

    python -m digitpipe.launch --workers 2 -- python -m stages.train

Every worker runs the same command; worker 0 is the chief (the one that writes the outputs). When one
worker fails, the others are stopped and the launcher exits with the failed worker's code. The train
stage uses :class:`LocalWorkers` itself when ``train.distribute`` is ``multi_worker`` and no ``TF_CONFIG``
is set, so ``dvc repro`` can train with several local processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack

from digitpipe.distribute import Cluster, parse_tf_config, tf_config
from digitpipe.errors import DigitpipeError, run_main

MAX_WORKERS = 64
# what DVC tells the command of a stage, which a worker other than the chief is not (the chief writes the outputs)
DVC_STAGE_ENV = ("DVC_STAGE", "DVC_ROOT")
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL (a worker still waiting for its peers takes SIGTERM late)


def free_ports(count: int, host: str = "") -> list[int]:
    """``count`` distinct TCP ports that are free right now on ``host`` (by default every address, which is
    where TensorFlow's gRPC server binds them: a port free on 127.0.0.1 alone may be taken on another)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


class LocalWorkers:
    """Workers ``first..count-1`` of a ``count``-worker cluster on 127.0.0.1, each running ``cmd``; the caller
    is worker ``0`` to ``first`` - 1 (``first=1``: the calling process is the chief)."""

    def __init__(self, count: int, cmd: Sequence[str], first: int = 1):
        self.addresses = [f"127.0.0.1:{port}" for port in free_ports(count)]
        self.procs: dict[int, subprocess.Popen] = {}
        self.culprit: int | None = None  # the first worker seen to fail
        self.stopped: list[int] = []  # the workers :meth:`stop` ended (the others had exited by themselves)
        for index in range(first, count):
            env = {**{k: v for k, v in os.environ.items() if index == 0 or k not in DVC_STAGE_ENV},
                   "TF_CONFIG": tf_config(self.addresses, index)}
            self.procs[index] = subprocess.Popen(list(cmd), env=env)

    def pids(self) -> list[int]:
        """The process ids of the workers this started."""
        return [p.pid for p in self.procs.values()]

    def config(self, index: int = 0) -> str:
        return tf_config(self.addresses, index)

    def cluster(self, index: int = 0) -> Cluster:
        return parse_tf_config(self.config(index))

    def failed(self) -> str | None:
        """Why the cluster cannot go on (a worker exited with an error), or ``None``."""
        for index, proc in self.procs.items():
            code = proc.poll()
            if code not in (None, 0):
                self.culprit = index if self.culprit is None else self.culprit
                return f"worker {index} (127.0.0.1, local) exited with code {code}; see its message above"
        return None

    def wait(self) -> dict[int, int]:
        """Wait for every worker; stop the others as soon as one fails. ``{index: exit code}``."""
        while any(p.poll() is None for p in self.procs.values()):
            if self.failed():
                self.stop()
                break
            time.sleep(0.2)
        return {i: p.wait() for i, p in self.procs.items()}

    def stop(self) -> None:
        """End every worker still running: SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds."""
        running = [p for p in self.procs.values() if p.poll() is None]
        self.stopped += [i for i, p in self.procs.items() if p in running]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m digitpipe.launch",
        description="Run a command as N training workers on this machine (127.0.0.1, free ports); "
                    "each gets its TF_CONFIG, worker 0 is the chief.")
    parser.add_argument("--workers", type=int, default=2, help="how many workers (default 2)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command every worker runs")
    args = parser.parse_args(argv)
    if args.cmd[:1] == ["--"]:
        args.cmd = args.cmd[1:]
    if not args.cmd:
        raise DigitpipeError("launch: no command; usage: python -m digitpipe.launch --workers 2 -- "
                             "python -m stages.train")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise DigitpipeError(f"launch: --workers {args.workers} is invalid: must be 1..{MAX_WORKERS}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workers = LocalWorkers(args.workers, args.cmd, first=0)
    print(f"launch: {args.workers} workers at {', '.join(workers.addresses)} (worker 0 is the chief): "
          f"{' '.join(args.cmd)}", flush=True)
    try:
        codes = workers.wait()
    except KeyboardInterrupt:
        workers.stop()
        raise
    if workers.culprit is not None or any(codes.values()):
        first = workers.culprit if workers.culprit is not None else min(i for i, c in codes.items() if c)
        stopped = [str(i) for i in workers.stopped if i != first]
        others = (f" (worker {stopped[0]} was stopped)" if len(stopped) == 1 else
                  f" (workers {', '.join(stopped)} were stopped)" if stopped else "")
        print(f"launch: worker {first} exited with code {codes[first]}{others}", file=sys.stderr)
        sys.exit(codes[first] if 0 < codes[first] < 256 else 1)


if __name__ == "__main__":
    run_main(main)
