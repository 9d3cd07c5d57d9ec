"""SIGTERM (`timeout`, `docker stop`, a cancelled CI job) ends a command as terminated, exit 143, even where a
library caught the exception it raised and went on."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from digitpipe.errors import Terminated, run_main
from tests.helpers import ENV, ROOT, sigterm_self, sigterm_taken, swallow_a_sigterm


def test_a_sigterm_something_swallowed_still_ends_the_command_as_terminated(capsys):
    done = []

    def main():
        swallow_a_sigterm()
        done.append(True)  # the command went on, as it did, to its end

    with sigterm_taken(), pytest.raises(SystemExit) as stop:
        run_main(main)
    assert done == [True]
    assert stop.value.code == 143
    assert capsys.readouterr().err == "terminated\n"


def test_without_a_sigterm_a_command_ends_as_it_did(capsys):
    with sigterm_taken():
        run_main(lambda: print("done"))
    assert capsys.readouterr() == ("done\n", "")


def test_every_command_takes_sigterm_as_ctrl_c_and_leaves_no_temporary_file(tmp_path):
    """run_main takes SIGTERM for every command, not only train, export and predict: an atomic write under way
    removes its hidden temporary file, and the command ends with `terminated` (143), not killed outright with
    the file left beside its place."""
    script = (
        "import sys, time\n"
        "from digitpipe.errors import run_main\n"
        "from digitpipe.files import atomic_path\n"
        "def main():\n"
        "    with atomic_path(sys.argv[1]) as tmp:\n"
        "        tmp.write_bytes(b'half')\n"
        "        print('writing', flush=True)\n"
        "        time.sleep(60)\n"
        "run_main(main)\n")
    out = tmp_path / "index.csv"
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)], cwd=ROOT, env={**ENV, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        assert len(list(tmp_path.iterdir())) == 1  # the temporary file, beside its place
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, stderr) == (143, "terminated\n")
    assert list(tmp_path.iterdir()) == []


def test_a_sigterm_a_library_turned_into_an_error_of_its_own_still_ends_the_command_as_terminated(capsys):
    """NumPy, converting a TensorFlow shape within TensorFlow's tracing, caught the signal's exception and raised a
    TypeError of its own, which TensorFlow wrapped again: a worker of a multi-worker run stopped by SIGTERM printed
    that traceback. After a SIGTERM, whatever error ends the command is the signal's."""
    def main():
        try:
            sigterm_self()
        except Terminated as err:  # what the library did with it
            raise TypeError("int() argument must be a string, a bytes-like object or a real number") from err

    with sigterm_taken(), pytest.raises(SystemExit) as stop:
        run_main(main)
    assert stop.value.code == 143
    assert capsys.readouterr().err == "terminated\n"


def test_without_a_sigterm_an_error_of_a_library_is_raised_as_it_is():
    def main():
        raise TypeError("a bug")

    with sigterm_taken(), pytest.raises(TypeError, match="a bug"):
        run_main(main)
