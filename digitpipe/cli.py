"""digitpipe: one command for everything around the pipeline (the pipeline itself runs with `dvc repro`).

    digitpipe predict IMAGE_OR_FOLDER ...   classify image files and folders with the trained model
    digitpipe serve                         the draw-a-digit web page
    digitpipe reproduce                     check that the workspace reproduces a committed revision
    digitpipe report                        the key plots as Markdown tables
    digitpipe check [-S KEY=VALUE]          check params.yaml (with values set as -S sets them) and the data folder
    digitpipe compare [A_REV [B_REV]]       two runs' test predictions side by side: a real difference, or chance?

`digitpipe COMMAND --help` tells more. Each command also runs as `python -m digitpipe.<module>`
(`serve` is `digitpipe.web`).
"""

from __future__ import annotations

import importlib
import sys

from digitpipe.errors import run_main

COMMANDS = {"predict": "digitpipe.predict", "serve": "digitpipe.web", "reproduce": "digitpipe.reproduce",
            "report": "digitpipe.report", "check": "digitpipe.check", "compare": "digitpipe.compare"}


def main(argv: list[str] | None = None) -> None:
    """Run ``digitpipe COMMAND ARGS...`` as the command's own module would."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        run_main(lambda: print(__doc__.strip()))  # `digitpipe --help | head -3` exits quietly too
        return
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command '{name}'; commands: {', '.join(COMMANDS)} (digitpipe --help)", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(COMMANDS[name])
    sys.argv = [f"digitpipe {name}", *rest]
    run_main(module.main)


if __name__ == "__main__":
    main()
