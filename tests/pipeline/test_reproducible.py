"""Same data and params give the same bytes: two `dvc repro -f` runs, and the reproduce check."""

from __future__ import annotations

import hashlib
import sys

import pytest

from tests.conftest import ENV, ROOT, run, set_params

pytestmark = pytest.mark.pipeline

COMPARED = ["data/index/index.csv", "data/index/rejects.csv", "data/splits/train.csv", "data/splits/val.csv",
            "data/splits/test.csv", "metrics/data.json", "metrics/eval.json", "metrics/export.json",
            "models/model.keras", "plots/data/predictions.csv", "plots/data/calibration.csv",
            "dvclive/plots/metrics/eval/accuracy.tsv", "dvclive/plots/metrics/train/loss.tsv"]


def digests(project) -> dict[str, str]:
    return {p: hashlib.sha256((project / p).read_bytes()).hexdigest() for p in COMPARED}


def test_two_forced_runs_give_identical_outputs(project):
    first = digests(project)  # the fixture's run
    run(["dvc", "repro", "-f"], project)
    assert digests(project) == first


def reproduce(project, *args) -> tuple[int, str]:
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "digitpipe.reproduce", *args], cwd=project, capture_output=True,
                          text=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    return proc.returncode, proc.stdout + proc.stderr


def test_reproduce_check_passes_on_committed_results_and_fails_on_uncommitted_ones(project):
    run(["dvc", "repro", "-f"], project)
    code, out = reproduce(project)
    assert code == 0, out
    set_params(project, **{"train.lr": 0.01})  # a change whose results are not committed
    run(["dvc", "repro"], project)
    run(["git", "checkout", "params.yaml"], project)  # params look committed; results do not match
    code, out = reproduce(project)
    assert code == 1
    assert "metrics/eval.json: accuracy" in out or "metrics/eval.json: loss" in out
    assert "commit the results of `dvc repro`" in out
