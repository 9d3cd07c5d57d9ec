"""Worker pools end with the command that started them: on Ctrl-C, on SIGTERM, and when it is killed outright."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ENV, ROOT, children_of, running

COMMAND = """
import sys
from functools import partial
from digitpipe.errors import run_main, stop_cleanly_on_sigterm
from digitpipe.parallel import process_pool
from tests.unit.test_parallel import slow

def main():
    stop_cleanly_on_sigterm()
    with process_pool(2) as pool:
        for n in pool.map(partial(slow, seconds=float(sys.argv[1])), range(200)):
            print(n, flush=True)

run_main(main)
"""


def slow(n: int, seconds: float) -> int:
    time.sleep(seconds if n else 0)
    return n


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize(("how", "seconds", "code", "said"), [
    ("ctrl-c", 0.1, 130, "interrupted"), ("sigterm", 0.1, 143, "terminated"), ("sigkill", 60, -9, "")])
def test_the_workers_go_with_the_command_and_print_nothing(how, seconds, code, said):
    """Ctrl-C reaches every process of the command (the terminal sends it to the whole group): the workers once
    printed a traceback each, and the command could hang. Stopped, it cancels the work not started and waits
    for what is under way (a tenth of a second here). Killed outright, it once left its workers at their work
    (a minute here, a whole folder in `predict`), holding the command's output open."""
    proc = subprocess.Popen([sys.executable, "-c", COMMAND, str(seconds)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "0"  # the pool is at work
        workers = children_of(proc.pid)
        assert len(workers) == 2
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code
        assert err.strip() == said
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(running(pid) for pid in workers)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the command and any worker left of it
            os.killpg(proc.pid, signal.SIGKILL)
