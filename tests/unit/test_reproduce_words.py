"""The reproduce check's last line: how many differences, and the changes that caused them first."""

from digitpipe.reproduce import causes


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
