"""The README's experiment-sweep and remote recipes, run as written on the tiny configuration."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.helpers import ENV, copy_worktree, run
from tests.pipeline.test_dvc_pipeline import stages_run

pytestmark = pytest.mark.pipeline


def experiments(project) -> dict[str, dict]:
    """name -> {"lr": ..., "accuracy": ...} for every experiment `dvc exp show --json` lists."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            name = node.get("name")
            data = node.get("data") if isinstance(node.get("data"), dict) else None
            if name and data and name != "main" and node.get("rev") != "workspace":  # experiments, not the baseline
                params = data.get("params", {}).get("params.yaml", {}).get("data", {})
                metrics = data.get("metrics", {}).get("metrics/eval.json", {}).get("data", {})
                if "train" in params and "accuracy" in metrics:
                    found[name] = {"lr": params["train"]["lr"], "accuracy": metrics["accuracy"]}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(run(["dvc", "exp", "show", "--json"], project).stdout))
    return found


# The README's comparison table: the headline metrics, each experiment's state (a failed one shows its baseline's
# metrics), and the params that differ between the rows; no dates, executors or columns with a / in their name
# (dependencies' hashes, and the metrics two files share)
COMPARE = ["dvc", "exp", "show", "--only-changed", "--drop", "Created|Executor|.*/",
           "--keep", "^(accuracy|loss|f1|ece|top2|train_s)$"]


def stop_queue_workers(project) -> None:
    """End the experiment queue's workers. Each one leaves on its own once it has found the queue empty for
    ten seconds, but its stop is sent once, and one sent before a slow-starting worker listens is lost."""
    for pidfile in (project / ".dvc/tmp/exps/celery").glob("*.pid"):
        pid = int(pidfile.read_text())
        try:
            if b"queue-worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError):
            pass  # already gone


def test_queued_sweep_then_compare_apply_and_branch_the_best(project):
    """`dvc exp run --queue -S 'train.lr=choice(...)'` queues one experiment per value, `dvc exp run --run-all`
    runs them (each in a temporary copy) and returns when all are done, and the README's table compares them
    in a terminal's width."""
    run(["dvc", "exp", "run", "--queue", "-S", "train.lr=choice(0.001,0.01)"], project)
    try:
        run(["dvc", "exp", "run", "--run-all", "-j", "2"], project)
    finally:
        stop_queue_workers(project)
    assert "Failed" not in run(["dvc", "queue", "status"], project).stdout
    found = experiments(project)
    assert sorted(e["lr"] for e in found.values()) == [0.001, 0.01], found

    proc = run([*COMPARE, "--no-pager"], project, env={**ENV, "COLUMNS": "1000"})  # wide enough that nothing is cut
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120, proc.stdout
    assert lines[1].split() == ["Experiment", "State", "train_s", "accuracy", "ece", "ece_raw", "f1", "loss", "top2",
                                "train.lr"]
    rows = list(csv.DictReader(io.StringIO(run([*COMPARE, "--csv"], project).stdout)))
    shown = {r["Experiment"]: r for r in rows if r["Experiment"]}
    assert set(shown) == set(found)
    for name, exp in found.items():
        assert float(shown[name]["train.lr"]) == exp["lr"] and float(shown[name]["accuracy"]) == exp["accuracy"]

    best = max(found, key=lambda name: found[name]["accuracy"])
    run(["dvc", "exp", "apply", best], project)
    applied = json.loads((project / "metrics/eval.json").read_text())
    assert applied["accuracy"] == found[best]["accuracy"]
    run(["dvc", "exp", "branch", best, "best-lr"], project)
    assert "best-lr" in run(["git", "branch"], project).stdout


def test_push_then_pull_in_a_fresh_clone_needs_no_retraining(project, tmp_path):
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], project)
    run(["git", "commit", "-qam", "local DVC remote"], project)
    run(["dvc", "push", "--run-cache"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    run(["dvc", "pull", "--run-cache"], clone)
    assert (clone / "models/model.keras").is_file() and (clone / "data/splits/train.csv").is_file()
    out = run(["dvc", "repro"], clone).stdout
    assert stages_run(out) == [], out
    assert json.loads(run(["dvc", "status", "--json"], clone).stdout) == {}


def test_a_venv_inside_the_project_as_the_readme_sets_it_up_is_left_out_of_git_dvc_and_experiments(project):
    """The Quick start's `python -m venv .venv && . .venv/bin/activate` in the project, with a library as big as
    TensorFlow's in it: git and DVC ignore it and `dvc exp run` works from inside it, snapshotting none of it."""
    run([sys.executable, "-m", "venv", ".venv"], project)
    venv = project / ".venv"
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "installed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # what pip install would put there
    with open(site / "libtensorflow_cc.so.2", "wb") as big:  # sparse: 600 MiB, more than git's 512 MiB object limit
        big.truncate(600 * 2**20)
    assert run(["git", "status", "--porcelain"], project).stdout == ""
    assert ".venv" not in run(["dvc", "status"], project).stdout
    activated = {**ENV, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{ENV['PATH']}"}
    run([str(venv / "bin/python"), "-m", "dvc", "exp", "run", "-S", "train.lr=0.002"], project, env=activated)
    found = experiments(project)
    assert [e["lr"] for e in found.values()] == [0.002]
    refs = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], project).stdout.split()
    ref = [r for r in refs if not r.startswith("refs/exps/exec/")]  # DVC's own bookkeeping refs
    assert len(ref) == 1
    assert ".venv" not in run(["git", "ls-tree", "-r", "--name-only", ref[0]], project).stdout


def test_the_throw_away_projects_hold_what_a_clone_holds_and_new_sources_only(tmp_path):
    """A venv or scratch files in the work tree never reach the tests' copies of the project."""
    root, dest = tmp_path / "tree", tmp_path / "copy"
    (root / "digitpipe").mkdir(parents=True)
    for rel, text in {"dvc.yaml": "stages: {}\n", "digitpipe/old.py": "", ".gitignore": "/ignored/\n"}.items():
        (root / rel).write_text(text)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    for rel in ("digitpipe/new.py", "scratch/notes.txt", "myenv/lib/big.so", "ignored/x", "stages/new_stage.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / "dvc.yaml").write_text("stages: {edited: true}\n")
    copy_worktree(dest, root)
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == [".gitignore", "digitpipe/new.py", "digitpipe/old.py", "dvc.yaml", "stages/new_stage.py"]
    assert (dest / "dvc.yaml").read_text() == "stages: {edited: true}\n"  # the work tree's content, not the commit's


def test_run_returns_when_the_command_exits_though_a_child_keeps_its_output_open(tmp_path):
    """What lets the sweep above return: DVC's queue workers outlive `dvc exp run --run-all` with its output
    open, and a test that read it through a pipe would wait for them, forever if one never stops."""
    start = time.monotonic()
    proc = run(["bash", "-c", "sleep 60 & echo started"], tmp_path)
    assert proc.stdout == "started\n" and time.monotonic() - start < 15
    with pytest.raises(AssertionError, match=r"still running after 1 s: killed\nbefore"):
        run(["bash", "-c", "echo before; sleep 60"], tmp_path, timeout=1)
    assert time.monotonic() - start < 45
