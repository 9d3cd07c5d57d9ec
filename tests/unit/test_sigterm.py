"""SIGTERM (`timeout`, `docker stop`, a cancelled CI job) ends a command as terminated, exit 143, even where a
library caught the exception it raised and went on."""

from __future__ import annotations

import pytest

from digitpipe.errors import run_main
from tests.helpers import sigterm_taken, swallow_a_sigterm


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
