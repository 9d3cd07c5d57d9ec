"""``bench/exports.py`` answers ``--help`` and reads the project's files from whatever folder it runs in."""

import subprocess
import sys

import pytest

import bench.exports as be
from digitpipe.errors import DigitpipeError
from tests.helpers import ROOT


def test_help_prints_usage_and_runs_nothing(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "exports.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: exports.py") and "command:" not in done.stdout


def test_the_prepared_data_is_looked_for_in_the_project_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(be, "ROOT", tmp_path / "project")  # a project without `dvc repro`: no prepared data
    monkeypatch.setattr(sys, "argv", ["exports.py"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DigitpipeError, match="project/data/prepared/test.npz not found: run `dvc repro` first"):
        be.main()
