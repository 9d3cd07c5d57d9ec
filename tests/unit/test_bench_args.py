"""The benchmarks refuse a count that cannot be one before any work."""

import argparse
import subprocess
import sys

import pytest

from bench.args import above_zero, at_least
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


def test_a_rate_that_is_not_a_finite_number_above_zero_is_refused():
    assert above_zero("25") == 25.0 and above_zero("0.5") == 0.5
    for text, words in [("0", "0 is not a finite number above 0"), ("-1", "-1 is not a finite number above 0"),
                        ("inf", "inf is not a finite number above 0"), ("nan", "nan is not a finite number above 0"),
                        ("x", "'x' is not a number")]:
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            above_zero(text)


@pytest.mark.parametrize("script, args, words", [
    ("bench/fuzz.py", ["-n", "0"], "argument -n: 0 is below 1"),
    ("bench/distribute.py", ["--repeat", "0"], "argument --repeat: 0 is below 1"),
    ("bench/distribute.py", ["--epochs", "-1"], "argument --epochs: -1 is below 1"),
    ("bench/web.py", ["--rate", "0"], "argument --rate: 0 is not a finite number above 0"),
])
def test_every_benchmark_refuses_a_count_or_rate_that_cannot_be_one(script, args, words):
    """`bench/fuzz.py -n 0` reported on no files and exited 0; `bench/distribute.py --repeat 0` and
    `bench/web.py --rate 0` each ran, then ended in a traceback (a median of nothing, a division by zero)."""
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"error: {words}"), proc.stderr


LOADED = """import runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    print(stop.code, "tensorflow" in sys.modules, "keras" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize("script, args, code", [
    ("bench/models.py", ["--help"], 0), ("bench/models.py", ["--splits", "0"], 2),
    ("bench/models.py", ["--normalize", "none"], 2), ("bench/errors.py", ["--help"], 0),
    ("bench/curve.py", ["--help"], 0), ("bench/curve.py", ["--target", "2"], 2), ("bench/predict.py", ["--help"], 0),
    ("bench/variation.py", ["--help"], 0), ("bench/variation.py", ["--seeds", "1"], 2),
    ("bench/calibration.py", ["--help"], 0), ("bench/calibration.py", ["--per-class", "1"], 2),
])
def test_help_and_a_refused_option_answer_before_keras_loads(script, args, code):
    """`--help` took about 9 s: these benchmarks loaded TensorFlow before reading their command line."""
    proc = subprocess.run([sys.executable, "-c", LOADED, script, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.stderr.splitlines()[-1] == f"{code} False False", proc.stderr
    assert ("usage: " in proc.stdout) == (code == 0)
