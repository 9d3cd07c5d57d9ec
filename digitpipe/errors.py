"""User-facing errors and the one place that turns them into a clean exit."""

from __future__ import annotations

import sys
from collections.abc import Callable


class DigitpipeError(Exception):
    """A problem the user can fix (bad param, missing data...). Printed as one line, no traceback."""


def run_main(main: Callable[[], None]) -> None:
    """Run a command's ``main()``; report a :class:`DigitpipeError` on stderr and exit 2."""
    try:
        main()
    except DigitpipeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
