"""The README's experiment-sweep and remote recipes, run as written on the tiny configuration."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import run
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


def test_queued_sweep_then_apply_and_branch_the_best(project):
    run(["dvc", "exp", "run", "--queue", "-S", "train.lr=0.0005,0.001,0.01"], project)
    run(["dvc", "queue", "start", "-j", "2"], project)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Failed" not in status, status
    found = experiments(project)
    assert sorted(e["lr"] for e in found.values()) == [0.0005, 0.001, 0.01], found
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
