"""``python -m digitpipe COMMAND ...``: the ``digitpipe`` command, where the install has not put it on the path."""

from digitpipe.cli import main

if __name__ == "__main__":
    main()
