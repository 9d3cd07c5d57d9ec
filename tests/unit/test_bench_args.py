"""The benchmarks refuse a count that cannot be one before any work."""

import argparse
import subprocess
import sys

import pytest

from bench.args import at_least
from tests.helpers import ENV, ROOT


def test_a_count_below_its_least_or_not_a_number_is_refused():
    assert at_least(1)("3") == 3 and at_least(0)("0") == 0
    for text, words in [("0", "0 is below 1"), ("-2", "-2 is below 1"), ("x", "'x' is not a whole number"),
                        ("1.5", "'1.5' is not a whole number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            at_least(1)(text)


def test_ingest_with_no_images_is_refused_before_it_builds_a_project():
    """`-n 0` built a folder of nothing, ran `dvc repro` on it and failed there, in a throw-away project."""
    proc = subprocess.run([sys.executable, "bench/ingest.py", "-n", "0"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("error: argument -n: 0 is below 1")
