"""`digitpipe COMMAND`: one installed command whose subcommands are the project's commands."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from digitpipe.cli import COMMANDS
from tests.helpers import ENV, ROOT


def digitpipe(*args: str) -> subprocess.CompletedProcess:
    """The installed `digitpipe` script when there is one (the README's install puts it there), else the module."""
    script = shutil.which("digitpipe")
    cmd = [script] if script else [sys.executable, "-m", "digitpipe.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)},
                          cwd=ROOT)


def test_help_lists_every_subcommand():
    proc = digitpipe("--help")
    assert proc.returncode == 0
    for name in ("predict", "serve", "reproduce", "report", "check", "compare"):
        assert f"digitpipe {name}" in proc.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_has_its_own_help(name):
    proc = digitpipe(name, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: digitpipe {name} ")


def test_an_unknown_subcommand_is_one_line_and_exit_2():
    proc = digitpipe("train")
    assert proc.returncode == 2
    assert proc.stderr == ("error: unknown command 'train'; commands: predict, serve, reproduce, report, check, "
                           "compare (digitpipe --help)\n")


def test_the_module_forms_keep_working():
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", "--help"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m digitpipe.predict ")


def test_the_package_runs_as_the_command():
    """`python -m digitpipe predict ...` where the install put no `digitpipe` on the path (a bare venv, a CI step)."""
    proc = subprocess.run([sys.executable, "-m", "digitpipe", "predict", "--help"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: digitpipe predict ")
    proc = subprocess.run([sys.executable, "-m", "digitpipe"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert proc.returncode == 0 and "digitpipe predict IMAGE_OR_FOLDER" in proc.stdout


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["--help"], [], ["check", "--help"]])
def test_help_into_a_reader_that_is_gone_is_a_quiet_exit(args, unbuffered):
    """`digitpipe --help | head -3`: the reader may be gone before the help is printed; no traceback then.
    Buffered, as Python writes to a pipe unless PYTHONUNBUFFERED is set, the help is written only as the
    command ends; unbuffered, at once."""
    proc = subprocess.Popen([sys.executable, "-m", "digitpipe.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**ENV, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": unbuffered})
    proc.stdout.close()  # before the interpreter has even started: its first write meets a closed pipe
    err = proc.stderr.read()
    assert proc.wait() in (0, 141)
    assert err == ""
