"""User-facing errors and the one place that turns them into a clean exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class DigitpipeError(Exception):
    """A problem the user can fix (bad param, missing data...). Printed as one line, no traceback."""


def run_main(main: Callable[[], None]) -> None:
    """Run a command's ``main()``; report a :class:`DigitpipeError` on stderr and exit 2, stop quietly
    when interrupted (130) or when the output's reader has gone (141, as for SIGPIPE)."""
    try:
        main()
    except DigitpipeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other commands do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exiting does not flush into it again
        sys.exit(141)
