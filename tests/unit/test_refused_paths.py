"""A path the file system refuses (a name too long, a folder this user may not enter, a fifo where a file was) is
one line naming it, with the file system's reason, from every command that takes one: never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from digitpipe.errors import run_main
from tests.helpers import ENV, ROOT

LONG = "a" * 300  # over the 255 bytes a file name may have


def command(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "digitpipe", *args], cwd=cwd, capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, timeout=300)


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.splitlines()
    return line


@pytest.mark.parametrize(("args", "code", "said"), [
    (["predict", "x.png", "--csv", f"/tmp/{LONG}.csv"], 2, f"error: cannot write /tmp/{LONG}.csv: File name too long"),
    (["predict", "x.png", "--model", f"/tmp/{LONG}.keras"], 2,
     f"error: model /tmp/{LONG}.keras could not be loaded: cannot read: File name too long"),
    (["check", "-S", f"data.dir=/tmp/{LONG}"], 2,
     f"error: params.yaml with data.dir=/tmp/{LONG}: data.dir = '/tmp/{LONG}': cannot be read: File name too long"),
    (["check", "--params", f"/tmp/{LONG}.yaml"], 2, f"error: cannot read /tmp/{LONG}.yaml: File name too long"),
])
def test_a_name_too_long_is_one_line_from_every_command(args, code, said):
    """Path.is_dir() and exists() raise on any error but a missing file: these ended in `OSError: [Errno 36]`."""
    proc = command(*args)
    assert (proc.returncode, one_line(proc)) == (code, said)


def test_predict_takes_an_image_name_too_long_as_a_failure_of_that_file_alone(tmp_path):
    from digitpipe.targets import Failure, find_images

    (tmp_path / "img_1.jpg").write_bytes(b"x")
    files, failures = find_images([f"/tmp/{LONG}.png", str(tmp_path / "img_1.jpg")])
    assert files == [str(tmp_path / "img_1.jpg")]
    assert failures == [Failure(f"/tmp/{LONG}.png", "cannot read: File name too long")]


def test_a_fifo_or_device_given_as_the_params_file_is_named_so_not_missing(tmp_path):
    os.mkfifo(tmp_path / "params.yaml")
    for path in (tmp_path / "params.yaml", "/dev/zero"):
        proc = command("check", "--params", str(path))
        assert (proc.returncode, one_line(proc)) == (
            2, f"error: {path} is not a regular file (a fifo, a device or a socket), not a params file")


def test_a_setting_holding_a_newline_is_shown_escaped_on_one_line():
    """`check -S "data.dir=$(printf 'x\\ny')"` printed its setting as given, over two lines, and advised quoting."""
    proc = command("check", "-S", "data.dir=x\ny")
    assert (proc.returncode, one_line(proc)) == (
        2, "error: params.yaml with data.dir=x\\ny: DVC cannot read 'data.dir=x\\ny': it holds a control or invisible "
           "formatting character (\\n), which no param may hold")


def test_a_refusal_no_check_caught_is_still_one_line_naming_the_path(capsys):
    """The last guard: an OSError naming a path, from anywhere in a command, is that path and the reason, exit 2."""
    def main():
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/scans\n7")

    with pytest.raises(SystemExit) as stop:
        run_main(main)
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: /srv/scans\\n7: Permission denied\n"

    def bug():
        raise OSError(errno.EINVAL, "Invalid argument")  # no path: a program error, raised as it is

    with pytest.raises(OSError):
        run_main(bug)


def test_prepare_refuses_a_fifo_put_in_place_of_an_indexed_file_instead_of_waiting_for_ever(tmp_path):
    from digitpipe.prepare import ChangedSinceIngest, read_checked

    os.mkfifo(tmp_path / "img_0.jpg")
    with pytest.raises(ChangedSinceIngest, match=r"^changed since ingest \(now not a regular file: a fifo\)$"):
        read_checked(str(tmp_path / "img_0.jpg"), "0" * 64)


def test_ingest_and_check_refuse_a_fifo_put_in_place_of_a_listed_file_instead_of_waiting_for_ever(tmp_path):
    """The listing saw a file; by the time it is read, a fifo stands there. Ingest rejects it and ``check``
    names it, each in a second, where a plain open would wait for a writer for ever."""
    from digitpipe.check import distinct_counts
    from digitpipe.ingest import Policy, inspect_file

    (tmp_path / "7").mkdir()
    os.mkfifo(tmp_path / "7" / "img_0.jpg")
    assert inspect_file(("7/img_0.jpg", "7"), tmp_path, Policy()) == {
        "path": "7/img_0.jpg", "reason": "unreadable", "message": "not a regular file: a fifo"}
    counts, unread = distinct_counts(tmp_path, [("7/img_0.jpg", "7")], ["7"])
    assert unread == [("7/img_0.jpg", "cannot read: not a regular file: a fifo")]
    assert counts == {"7": 0}


def test_a_class_folder_that_can_be_listed_but_not_entered_is_named_as_dvc_cannot_hash_it(tmp_path):
    """`chmod 400 data/7`: its names are listed, but nothing in it can be looked at; `check` ended in a traceback
    (and DVC, hashing the folder, in `unexpected error`)."""
    if os.geteuid() == 0 and not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("root reads any folder, and setpriv (util-linux) is not here to drop that")
    root = tmp_path / "data"
    for label in ("0", "1"):
        (root / label).mkdir(parents=True)
        for n in range(3):
            (root / label / f"img_{n}.jpg").write_bytes(b"x")
    (root / "1").chmod(0o400)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--inh-caps",
            "-dac_override,-dac_read_search,-fowner"] if os.geteuid() == 0 else []
    probe = ("from pathlib import Path; from digitpipe.ingest import untrackable; "
             f"print(untrackable(Path({str(root)!r}), ['0', '1']))")
    try:
        proc = subprocess.run([*drop, sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                              env={**ENV, "PYTHONPATH": str(ROOT)})
    finally:
        (root / "1").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'unreachable': ['1/img_0.jpg', '1/img_1.jpg', '1/img_2.jpg']}"
