"""digitpipe.runtime: what it does to the process around TensorFlow."""

from __future__ import annotations

import os
import threading

from digitpipe.runtime import stderr_silenced


def where_fd2_points() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def test_overlapping_silenced_blocks_of_two_threads_leave_stderr_where_it_was():
    """Two threads' blocks that overlap and end in either order (the web server loads a new TFLite model while a
    request runs the old one): fd 2 points at /dev/null while any block is open, and back where it was after."""
    before = where_fd2_points()
    null = os.stat(os.devnull)
    for first_out in ("a", "b"):
        a_in, b_in, a_out, b_out = (threading.Event() for _ in range(4))
        seen = {}

        def block(name: str, entered: threading.Event, other: threading.Event, leave: threading.Event,
                  seen: dict = seen) -> None:
            with stderr_silenced():
                entered.set()
                other.wait(5)
                seen[name] = where_fd2_points()
                leave.wait(5)

        a = threading.Thread(target=block, args=("a", a_in, b_in, a_out))
        b = threading.Thread(target=block, args=("b", b_in, a_in, b_out))
        a.start()
        a_in.wait(5)
        b.start()
        b_in.wait(5)
        (a_out if first_out == "a" else b_out).set()
        (a if first_out == "a" else b).join(5)
        assert where_fd2_points() == (null.st_dev, null.st_ino)  # the other block is still open
        (b_out if first_out == "a" else a_out).set()
        a.join(5)
        b.join(5)
        assert seen == {"a": (null.st_dev, null.st_ino), "b": (null.st_dev, null.st_ino)}
        assert where_fd2_points() == before
