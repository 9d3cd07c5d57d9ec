"""The reproduce check's words: its last line, and one line for a bad revision, tolerance or file."""

import re

from digitpipe.reproduce import advice, causes


def test_the_last_line_names_the_changed_params_and_code_before_what_followed():
    problems = [
        "dvc.lock: stage ingest, data/index/index.csv: 1a at HEAD, now 2b",
        "dvc.lock: stage split, data/splits/train.csv: 3c at HEAD, now 4d",
        *(f"dvc.lock: stage {stage}, param data.dir: data/sample at HEAD, now scans" for stage in ("ingest", "params")),
        *(f"dvc.lock: stage params, param data.classes.{i}: {i} at HEAD, now None" for i in range(6)),
        "dvc.lock: stage train, code digitpipe/models.py differs from HEAD",
        *(f"metrics/details/eval.json: per_class.{i}.f1 = 0.99 at HEAD, now None" for i in range(10)),
        "dvc.lock: models/model.keras: 5e at HEAD, now 6f (different weights)",
        "dvc.lock: models/model.tflite: 7a at HEAD, now 8b (an export of a different model file)",
        "dvc.lock: models/saved_model: 9c.dir at HEAD, now 0d.dir (an export of a different model file)",
        "plots/data/predictions.csv: differs from HEAD",
        "no metrics/platform.json at HEAD",
    ]
    assert causes(problems) == ("params data.classes, data.dir; code digitpipe/models.py; the data of ingest, split; "
                                "10 metric(s); the model; the exports; plot data; 1 other(s)")
    many = [f"dvc.lock: stage train, param train.{k}: 1 at HEAD, now 2" for k in "abcdef"]
    assert causes(many) == "params train.a, train.b, train.c, train.d and 2 more"
    assert causes(["metrics/eval.json: accuracy = 0.99 at HEAD, now 0.98"]) == "1 metric(s)"
    int8 = "dvc.lock: models/model_int8.tflite: 1e at HEAD, now 2f (a different export of the same model)"
    assert causes([int8]) == "the exports"


def test_the_advice_against_another_revision_is_to_check_it_out_not_to_commit():
    """Against HEAD, results that differ were made by an uncommitted change: commit them with it. Against another
    revision (`--rev main` on a branch), committing would not make them main's: check main out to reproduce it."""
    moved = ["metrics/eval.json: accuracy = 0.99 at main, now 0.98"]
    caused = ["dvc.lock: stage train, param train.lr: 0.003 at HEAD, now 0.01", *moved]
    assert advice(caused, "HEAD", True).startswith("commit the results of `dvc repro`")
    other = advice(moved, "main", False)
    assert other.startswith("this workspace's results are not main's; to reproduce main, `git checkout main`")
    stale = ["workspace: stage train is not what dvc.lock records (params train modified)", *moved]
    assert advice(stale, "main", False) == advice(stale, "HEAD", True) == "run `dvc repro`, then this check again"


def test_results_that_nothing_committed_explains_are_made_again_not_committed():
    """A model or metric replaced and then `dvc commit`-ed, with the params, code and data HEAD's, was told to
    commit the results with the change that caused them: there was no change. A lock that records params the
    model was not trained with, and a DVC command still running, get their own advice."""
    edited = ["metrics/eval.json: accuracy = 0.99 at HEAD, now 0.5",
              "dvc.lock: models/model.keras: 5e at HEAD, now 6f (different weights)"]
    assert advice(edited, "HEAD", True).startswith("the params, code and data are HEAD's but the results are not")
    assert advice(edited, "HEAD", True).endswith("run `dvc repro --force` to make them again from the committed "
                                                 "params, code and data (a plain `dvc repro` finds nothing to do), "
                                                 "then this check again")
    lying = ["dvc.lock: stage train, param train.lr: 0.003 at HEAD, now 0.01",
             "models/model.keras vs dvc.lock: train.lr = 0.01 (the model was trained with 0.003)"]
    assert advice(lying, "HEAD", True).startswith("dvc.lock records params the model was not trained with: run "
                                                  "`dvc repro --force`")
    busy = ["workspace: another DVC command is running in this project (PID 5: dvc repro), so whether it was "
            "reproduced is unknown: run this check again once it has finished", *edited]
    assert advice(busy, "HEAD", True) == "wait until the other DVC command has finished, then run this check again"


def test_a_revision_git_does_not_know_is_named_as_such(tmp_path, monkeypatch):
    """An experiment's name (or a typo) is not a git revision: say so and how to get one, rather than that
    dvc.lock is not committed there; a commit that has no dvc.lock still says that."""
    import subprocess

    import pytest

    from digitpipe.errors import DigitpipeError
    from digitpipe.reproduce import locks
    from tests.helpers import ENV

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True, env=ENV)
    (tmp_path / "README").write_text("x")
    subprocess.run(["git", "add", "README"], check=True, env=ENV)
    subprocess.run(["git", "commit", "-qm", "one"], check=True, env=ENV)
    with pytest.raises(DigitpipeError, match="'piney-doek' is not a git revision here .*dvc exp branch"):
        locks("piney-doek")
    with pytest.raises(DigitpipeError, match="^dvc.lock is not committed at HEAD$"):
        locks("HEAD")


def test_a_dvc_command_running_in_the_project_is_named_not_its_lock_file():
    """`dvc status` refused while a `dvc repro` runs ends with advice to remove DVC's lock file, which would let
    two commands write the same outputs: the check names the running command instead (DVC 3.67's words)."""
    from digitpipe.reproduce import status_failure

    pid_line = "  (PID 5512): /root/.venv/bin/dvc repro\n"
    refused = ("ERROR: '/p/metrics/time.json' is busy, it is being blocked by:\n" + pid_line * 5 +
               "\nIf there are no processes with such PIDs, you can manually remove '/p/.dvc/tmp/rwlock' and try "
               "again.\n")
    assert status_failure(refused) == ("workspace: another DVC command is running in this project (PID 5512: dvc "
                                       "repro), so whether it was reproduced is unknown: run this check again "
                                       "once it has finished")
    assert status_failure("some noise\nERROR: unexpected error - boom\nhint\n") == (
        "workspace: `dvc status` failed, so whether it was reproduced is unknown: unexpected error - boom")
    assert status_failure("") == "workspace: `dvc status` failed, so whether it was reproduced is unknown: no output"


def committed_repo(tmp_path, files: dict[str, str]) -> None:
    """A git repository in ``tmp_path`` (the working folder) whose one commit holds ``files``."""
    import subprocess

    from tests.helpers import ENV

    subprocess.run(["git", "init", "-q"], check=True, env=ENV, cwd=tmp_path)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "add", "-A"], check=True, env=ENV, cwd=tmp_path)
    subprocess.run(["git", "commit", "-qm", "one"], check=True, env=ENV, cwd=tmp_path)


def test_a_revision_is_refused_before_git_could_read_it_as_an_option(tmp_path, monkeypatch):
    """`--rev=--output=params.yaml` went to `git show` as an option, which emptied params.yaml."""
    import pytest

    from digitpipe.errors import DigitpipeError
    from digitpipe.reproduce import checked_revision

    monkeypatch.chdir(tmp_path)
    committed_repo(tmp_path, {"params.yaml": "seed: 1\n"})
    for rev in ("--output=params.yaml", "", "HEAD^{tree}", "-h"):
        with pytest.raises(DigitpipeError, match=f"^{re.escape(repr(rev))} is not a git revision here"):
            checked_revision(rev)
    assert (tmp_path / "params.yaml").read_text() == "seed: 1\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        ".git", "params.yaml"]
    assert checked_revision("HEAD") == "HEAD"


def test_a_metric_that_became_nan_differs_at_any_tolerance_and_damaged_json_is_one_line(tmp_path, monkeypatch):
    import pytest

    from digitpipe.errors import DigitpipeError
    from digitpipe.reproduce import compare_metrics

    monkeypatch.chdir(tmp_path)
    committed_repo(tmp_path, {"metrics/eval.json": '{"accuracy": 0.9973, "ece": NaN}\n'})
    (tmp_path / "metrics/eval.json").write_text('{"accuracy": NaN, "ece": NaN}\n')
    for tolerance in (0.0, 0.5):  # NaN is within no distance of a number; NaN and NaN are the same result
        assert compare_metrics("HEAD", tolerance, None) == [
            "metrics/eval.json: accuracy = 0.9973 at HEAD, now nan" + (" (allowed ±0.5)" if tolerance else "")]
    (tmp_path / "metrics/eval.json").write_text('{"accuracy": 0.99')
    with pytest.raises(DigitpipeError, match=r"^metrics/eval.json is not valid JSON \(Expecting .*\): `git checkout "
                                             r"-- metrics/eval.json` brings back the committed one, or `dvc repro` "
                                             "makes it again$"):
        compare_metrics("HEAD", 0.0, None)
    (tmp_path / "metrics/eval.json").write_text("[1]")
    with pytest.raises(DigitpipeError, match=r"not valid JSON \(a list where a mapping belongs\)"):
        compare_metrics("HEAD", 0.0, None)


def test_a_tolerance_that_is_not_a_finite_distance_and_a_folder_that_is_not_the_projects_are_refused(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ENV, ROOT

    def reproduce(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "digitpipe.reproduce", *args], capture_output=True, text=True,
                              env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)

    for value in ("nan", "inf", "-1", "1e400"):  # nan and inf passed every metric; -1 failed every one
        proc = reproduce("--tolerance", value)
        assert proc.returncode == 2
        refusal = f"'{value}' is not a tolerance: give a number of 0 (exact) or more"
        assert proc.stderr.splitlines()[-1].endswith(refusal)
    proc = reproduce()  # a sub-folder of the project, or no project: not "dvc.lock not found: run dvc repro"
    assert (proc.returncode, proc.stderr) == (2, "error: no dvc.yaml here: run this in the project's root folder\n")
