"""User-facing errors and the one place that turns them into a clean exit."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

MESSAGE_CHARS = 200  # another program's words are cut here, so one problem stays one line of output


def one_line(text: object) -> str:
    """Another program's message (a decoder's, a parser's) on one line and at most MESSAGE_CHARS long: such
    messages can hold newlines and raw bytes."""
    words = " ".join(str(text).split())
    return words if len(words) <= MESSAGE_CHARS else words[:MESSAGE_CHARS - 3] + "..."


class DigitpipeError(Exception):
    """A problem the user can fix (bad param, missing data...). Printed as one line, no traceback."""


def stage_outputs(root: Path = Path(".")) -> dict[str, tuple[str, bool]]:
    """Every output ``dvc.yaml`` declares: ``{path: (stage, cached)}`` (``cached`` is false for outputs kept in
    git, ``cache: false``); empty when there is no readable ``dvc.yaml``."""
    try:
        import yaml

        stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
        out = {}
        for stage, spec in stages.items():
            for kind in ("outs", "metrics", "plots"):
                for entry in spec.get(kind, []):
                    path, options = (next(iter(entry.items())) if isinstance(entry, dict) else (entry, {}))
                    out[str(path)] = (stage, (options or {}).get("cache") is not False)
        return out
    except (OSError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def remade_hint(folder: Path) -> str:
    """For a data folder that a stage writes (``data/sample``: the ``sample`` stage) and that is no longer as
    ``dvc.lock`` records it (emptied, a class folder deleted), how to get it back, after ``; ``. Empty for a
    folder of the user's, and for one as the stage wrote it: then the params are what is wrong."""
    made_by = stage_outputs().get(folder.as_posix())
    if not made_by:
        return ""
    recorded = locked_output(folder.as_posix(), made_by[0])
    if recorded is not None:
        files = [p for p in folder.rglob("*") if p.is_file()]
        if (len(files), sum(p.stat().st_size for p in files)) == (recorded.get("nfiles"), recorded.get("size")):
            return ""
    return (f"; {folder.as_posix()} is what the `{made_by[0]}` stage writes: `dvc checkout {folder.as_posix()}` brings "
            "it back, or `dvc repro` writes it again")


def missing_output_hint(path: str | Path) -> str:
    """What to do about a missing file: for an output of the pipeline, how to make it again or bring back the
    last one DVC cached (`dvc repro` removes a stage's outputs before it runs, so a run that stopped leaves
    none); for any other path, to check it."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(Path.cwd()).as_posix()
    except ValueError:  # outside the project
        return "check the path"
    owner = stage_outputs().get(rel)
    if owner is None and Path(path).is_absolute():  # given in full: nothing to say about where it starts
        return "check the path"
    if owner is None and not Path("dvc.yaml").exists():  # `predict` run outside the project, with its default model
        return ("check the path: it starts from this folder, which holds no dvc.yaml; run the command in the "
                "project's folder, or give the model's full path")
    if owner is None:
        return "check the path"
    stage, cached = owner
    if cached and not in_cache(rel, stage):  # a fresh clone: nothing made here yet, so nothing to check out
        return "run `dvc repro` to make it"
    back = f"`dvc checkout {stage}`" if cached else f"`git checkout -- {rel}`"
    return (f"run `dvc repro` to make it, or {back} to bring back the last one (a run removes it until it "
            "finishes, and a run that stopped leaves none)")


def in_cache(rel: str, stage: str, root: Path = Path(".")) -> bool:
    """Whether this clone's DVC cache holds the copy of output ``rel`` that ``dvc.lock`` records for ``stage``,
    so that `dvc checkout` can bring it back (a fresh clone's cache is empty until `dvc repro` fills it)."""
    recorded = locked_output(rel, stage, root)
    return recorded is not None and "md5" in recorded and cached_file(recorded["md5"], root).exists()


def locked_output(rel: str, stage: str, root: Path = Path(".")) -> dict | None:
    """What ``dvc.lock`` records of output ``rel`` of ``stage`` (its ``md5``, and for a folder ``size`` and
    ``nfiles``), or ``None``."""
    try:
        import yaml

        outs = yaml.safe_load((root / "dvc.lock").read_text())["stages"][stage].get("outs", [])
        return next(o for o in outs if o["path"] == rel)
    except (OSError, KeyError, TypeError, ValueError, AttributeError, StopIteration):
        return None


def cached_file(md5: str, root: Path = Path(".")) -> Path:
    """Where this clone's DVC cache (the default one, ``.dvc/cache``) keeps the file of this md5."""
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def removed_outputs() -> tuple[list[str], list[str]]:
    """Under `dvc repro`, the outputs of this stage that are gone from disk: DVC removes them before it runs
    a stage, so a stage that stops has lost them. ``(cached ones, committed ones)``: `dvc checkout` brings
    back the first, `git checkout` the second (``cache: false`` outputs live in git); a committed one that the
    stage began to write again before it stopped (DVCLive's log, epoch by epoch) is as good as gone."""
    stage, root = os.environ.get("DVC_STAGE"), Path(os.environ.get("DVC_ROOT", "."))
    if not stage:
        return [], []
    ours = {path: cached_output for path, (owner, cached_output) in stage_outputs(root).items() if owner == stage}
    rewritten = changed_in_git([path for path, cached_output in ours.items() if not cached_output], root)
    cached, committed = [], []
    for path, cached_output in ours.items():
        if not cached_output:
            if path in rewritten or not (root / path).exists():
                committed.append(path)
        elif not (root / path).exists() and in_cache(path, stage, root):  # else never made here: none to bring back
            cached.append(path)
    return cached, committed


def changed_in_git(paths: list[str], root: Path) -> set[str]:
    """Those of ``paths`` (files or folders) that git has and that differ from the last commit."""
    if not paths:
        return set()
    try:
        out = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=no", "--", *paths], cwd=root,
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    changed = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
    return {p for p in paths if any(c == p or c.startswith(p.rstrip("/") + "/") for c in changed)}


def restore_hint() -> str | None:
    """One line telling how to get back what `dvc repro` removed before this stage failed, or ``None``."""
    cached, committed = removed_outputs()
    steps = [f"`dvc checkout {os.environ['DVC_STAGE']}` ({', '.join(cached)})"] if cached else []
    steps += [f"`git checkout -- {' '.join(committed)}`"] if committed else []
    if not steps:
        return None
    return "note: dvc removed this stage's outputs before running it; the last committed ones come back with " + \
        " and ".join(steps)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt`` (:func:`stop_cleanly_on_sigterm`)."""


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM (``kill``, ``timeout``, ``docker stop``, a cancelled CI job) stop this process as Ctrl-C does:
    as an exception, so that the cleanup it runs runs too (training's partial model file removed, an atomic
    write's temporary file, the worker processes of a pool) and :func:`run_main`, which calls this for every
    command, exits 143 saying ``terminated``. Only where nothing else has taken SIGTERM; worker processes of
    :func:`digitpipe.parallel.process_pool` do not inherit it, and the web server's uvicorn takes it while it
    serves (a graceful shutdown) and raises it again after."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_terminated)


def take_back_sigterm() -> None:
    """Where :func:`stop_cleanly_on_sigterm` took SIGTERM, take it back from a library that replaced the handler
    beneath Python: TensorFlow's multi-worker strategy installs one that only takes note, and the run went on
    to its end (writing the model after ``timeout`` or DVC had given up on it)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is raise_terminated:
        signal.signal(signal.SIGTERM, raise_terminated)


TERMINATED = threading.Event()  # set by SIGTERM where stop_cleanly_on_sigterm took it, and never cleared


def raise_terminated(signum: int, frame: object) -> None:
    TERMINATED.set()
    raise Terminated


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` again if SIGTERM came and its exception went missing. A library's bare
    ``except:`` catches it too: Keras, saving a model, falls back to another way on any error at all, so a
    SIGTERM that arrived there was swallowed and the run went on to its end (its exit 0 said nothing of it).
    Long work calls this between its steps (training, after every epoch), and :func:`run_main` at the end."""
    if TERMINATED.is_set():
        raise Terminated


# what the file system says of a path a person gave: no permission, a name too long, a link loop, not a folder
NAMED_REFUSALS = frozenset({errno.EACCES, errno.EPERM, errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.ENOENT,
                            errno.EISDIR, errno.EROFS})


def run_main(main: Callable[[], None]) -> None:
    """Run a command's ``main()``; report a :class:`DigitpipeError` on stderr and exit 2, stop quietly
    when interrupted (130; 143 for SIGTERM, see :func:`stop_cleanly_on_sigterm`) or when the output's
    reader has gone (141, as for SIGPIPE)."""
    stop_cleanly_on_sigterm()
    try:
        try:
            main()
            raise_if_terminated()  # a SIGTERM that something swallowed still ends the command as terminated
        except Exception as err:
            if TERMINATED.is_set():  # the SIGTERM's exception, which a library it passed through turned into an
                raise Terminated from err  # error of its own (NumPy, within TensorFlow's tracing): no traceback
            raise
        finally:  # flushed here, not at exit (argparse's --help exits too), so a reader gone is caught below
            if sys.stdout is not None:  # None when the command was started with its output closed (>&-)
                sys.stdout.flush()
    except DigitpipeError as err:
        print(f"error: {err}", file=sys.stderr)
        hint = restore_hint()
        if hint:
            print(hint, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        sys.exit(143 if terminated else 130)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as other commands do
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):  # the pipe may be either (`2>&1 | head`): exiting must not flush
            if stream is not None:               # into it again (exit 120)
                os.dup2(null, stream.fileno())
        sys.exit(141)
    except OSError as err:
        if err.filename is not None and err.errno in NAMED_REFUSALS:  # a path the file system refused, which no
            # check before it caught: still one line naming it, never a traceback
            name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(err.filename))  # one line
            print(f"error: {name}: {err.strerror or err}", file=sys.stderr)
            sys.exit(2)
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EBADF):  # not the output's: a program error
            raise
        # the output cannot be written (`> /dev/full`, a full disk): one line, and no second try at exit
        if sys.stdout is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: cannot write the output: {err.strerror or err}", file=sys.stderr)
        sys.exit(2)


def program(module: str) -> str:
    """The name a command was started by, for its usage line: `digitpipe predict` or `python -m digitpipe.predict`."""
    return sys.argv[0] if sys.argv and sys.argv[0].startswith("digitpipe ") else f"python -m {module}"
