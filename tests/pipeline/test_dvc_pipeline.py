"""The pipeline driven by the real `dvc` binary in a throw-away git repo with a tiny config."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml

from digitpipe.sample import encode_jpeg
from tests.helpers import ENV, ROOT, run, set_params, write_digits

pytestmark = pytest.mark.pipeline


def stages_run(output: str) -> list[str]:
    """Names of the stages `dvc repro` ran, in order."""
    return re.findall(r"Running stage '([\w-]+)'", output)


def declared_outputs() -> list[str]:
    """Every out, metric and plot file the stages of dvc.yaml declare."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    paths = []
    for stage in spec["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def test_repro_from_scratch_writes_every_declared_output(tiny_project):
    for rel in declared_outputs():
        assert (tiny_project / rel).exists(), f"{rel} missing after dvc repro"
    report = json.loads((tiny_project / "metrics/eval.json").read_text())
    assert report["images"] == 10  # 6 per class -> 1 test image per class
    assert 0.0 <= report["accuracy"] <= 1.0
    status = run(["dvc", "status", "--json"], tiny_project).stdout
    assert json.loads(status) == {}


AFTER_SPLIT = ["prepare", "train", "evaluate", "export", "plot"]


def test_changing_lr_reruns_only_the_stages_after_train(project):
    set_params(project, **{"train.lr": 0.01, "train.class_weight": "balanced"})
    proc = run(["dvc", "repro"], project)
    ran = stages_run(proc.stdout)
    assert ran[:2] == ["params", "train"]  # params: the whole file checked, in a second
    assert sorted(ran) == ["evaluate", "export", "params", "plot", "train"]
    # what a person reads: no TensorFlow log lines ("E0000 00:00:... node_def_util.cc:...") among the stages' own
    tf_log = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\]", re.MULTILINE)
    assert tf_log.findall(proc.stdout + proc.stderr) == []
    # the test's 1-epoch run is shorter than the shipped 2-epoch warm-up: said, not refused
    assert "train: note: train.warmup_epochs (2) is not below train.epochs (1): the whole run warms up" in proc.stdout
    assert "up to 1 epoch; classes weighed as balanced; distribute none" in proc.stdout  # the start line says so
    # what the temperature rests on: the validation images, the ones misread, and, this few, that the fit is rough
    val = len((project / "data/splits/val.csv").read_text().splitlines()) - 1
    kept = json.loads((project / "metrics/train.json").read_text())["kept_val_accuracy"]
    misread = round((1 - kept) * val)
    assert f"(fitted on {val} validation images, {misread or 'none'} misread" in proc.stdout, proc.stdout
    assert (f"train: note: the temperature was fitted on {val} validation images, fewer than 100: a rough fit"
            in proc.stdout)
    # evaluate's line gives the split's accuracy with Wilson's interval, from the counts it wrote
    from digitpipe.stats import wilson

    counts = json.loads((project / "metrics/details/eval.json").read_text())["counts"]
    low, high = wilson(counts["test_images"] - counts["errors"], counts["test_images"])
    assert low <= 1 - counts["errors"] / counts["test_images"] <= high and high - low > 0.01  # a tiny test split
    assert (f"({counts['errors']} errors in {counts['test_images']}; 95% interval {low:.4f} to {high:.4f})"
            in proc.stdout), proc.stdout


@pytest.mark.parametrize("typo", ["+trian.lr=0.01", "+data.normalise=none", "train.epochs=0"])
def test_a_key_no_stage_reads_is_refused_not_recorded_as_an_experiment(project, typo):
    """DVC runs a stage only when a key it declares changes; a misspelled section or key changes none of
    theirs, so without the params stage the experiment would run nothing and be recorded as if it had. A bad
    value is refused by the same stage, before train removes the model. The README's way back restores the
    file even where DVC leaves git believing it unchanged (a value rewritten at the same size)."""
    before = (project / "params.yaml").read_text()
    lock = (project / "dvc.lock").read_text()
    changed = re.sub(r"md5: [0-9a-f]", "md5: z", lock, count=1)  # a change that keeps the length, as a rerun's
    (project / "dvc.lock").write_text(changed)
    os.utime(project / "dvc.lock", (time.time() - 10, time.time() - 10))  # older than the index DVC writes
    proc = subprocess.run(["dvc", "exp", "run", "-S", typo], cwd=project, env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0
    assert stages_run(proc.stdout) == ["params"]
    assert {"+trian.lr=0.01": "unknown section 'trian'; did you mean 'train'?",
            "+data.normalise=none": "unknown key data.normalise; did you mean 'data.normalize'? allowed keys: "
                                    "data.dir, data.classes, data.normalize",
            "train.epochs=0": "train.epochs = 0 is invalid: must be an integer >= 1"}[typo] in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert run(["dvc", "exp", "list", "--name-only"], project).stdout.strip() == ""  # no experiment recorded
    assert (project / "params.yaml").read_text() != before  # the value stays, as the README says
    shown = run(["sh", "-c", "git read-tree HEAD && git checkout -- params.yaml && git status --short"],
                project).stdout  # the README's way back
    assert (project / "params.yaml").read_text() == before
    assert " M dvc.lock" in shown.splitlines()  # git sees the other change again
    (project / "dvc.lock").write_text(lock)
    assert "dvc.lock" not in run(["git", "status", "--short"], project).stdout
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}


def test_a_junk_or_unreadable_file_reruns_ingest_and_nothing_after_it(project, mnist):
    (project / "tinydata/3/notes.jpg").write_text("not an image")
    from digitpipe.sample import encode_jpeg

    whole = encode_jpeg(mnist[0][4000])
    (project / "tinydata/5/broken.jpg").write_bytes(whole[:len(whole) // 2])  # a JPEG cut short
    out = run(["dvc", "repro"], project).stdout
    assert stages_run(out) == ["ingest"]
    rejects = (project / "data/index/rejects.csv").read_text()
    assert "3/notes.jpg,not_image" in rejects and "5/broken.jpg,corrupt" in rejects
    assert stages_run(run(["dvc", "repro"], project).stdout) == []


def test_editing_an_indexed_image_in_place_reruns_everything_downstream(project, mnist):
    from digitpipe.sample import encode_jpeg

    index = (project / "data/index/index.csv").read_text().splitlines()
    edited = index[1].split(",")[0]  # the first indexed image, rewritten with its digit moved
    digit = mnist[0][int(edited.split("_")[1].split(".")[0])]
    (project / "tinydata" / edited).write_bytes(encode_jpeg(np.roll(digit, 2, axis=1)))
    out = run(["dvc", "repro"], project).stdout
    ran = stages_run(out)
    assert ran[:3] == ["ingest", "split", "prepare"]
    assert sorted(ran) == sorted(["ingest", "split", *AFTER_SPLIT])


def test_the_stages_after_prepare_never_open_the_image_folder(project):
    (project / "tinydata").rename(project / "elsewhere")
    set_params(project, **{"train.lr": 0.02})
    out = run(["dvc", "repro", "--single-item", "train", "evaluate", "export", "plot"], project).stdout
    assert sorted(stages_run(out)) == ["evaluate", "export", "plot", "train"]


def test_adding_an_image_reruns_ingest_and_then_nothing(project, mnist):
    """...and the split stays put: no earlier test image becomes a training image, and each class moves at most
    three of its earlier images, each into a neighbouring split."""
    def dealt() -> dict[str, str]:
        return {path: name for name in ("train", "val", "test")
                for path in pd.read_csv(project / f"data/splits/{name}.csv", dtype=str)["path"]}

    before = dealt()
    write_digits(project / "tinydata", mnist, per_class=1, start=50)  # one new image per class
    out = run(["dvc", "repro"], project).stdout
    assert stages_run(out)[0] == "ingest"
    assert "sample" not in stages_run(out)
    index = (project / "data/index/index.csv").read_text().splitlines()
    assert len(index) == 1 + 70
    after = dealt()
    moved = [(path, before[path], after[path]) for path in before if before[path] != after[path]]
    assert not [m for m in moved if {m[1], m[2]} == {"test", "train"}], moved
    assert max(Counter(path.split("/")[0] for path, _, _ in moved).values(), default=0) <= 3, moved
    again = run(["dvc", "repro"], project).stdout
    assert stages_run(again) == []


def test_exp_run_is_listed_by_exp_show_with_its_accuracy(project):
    run(["dvc", "exp", "run", "-S", "train.lr=0.001", "-n", "lr-1e-3"], project)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("name") == "lr-1e-3" and "data" in str(node):
                found["exp"] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(shown)
    assert "exp" in found, shown
    text = json.dumps(found["exp"])
    assert '"accuracy"' in text and '"lr": 0.001' in text
    # `digitpipe compare` finds the experiment by that name and pairs its test predictions with main's
    main_errors = json.loads(run(["git", "show", "main:metrics/eval.json"], project).stdout)["errors"]
    exp_errors = json.loads((project / "metrics/eval.json").read_text())["errors"]  # the run leaves its results
    test_images = json.loads((project / "metrics/eval.json").read_text())["images"]
    here = {**ENV, "PYTHONPATH": str(project)}  # the script on the PATH, with the project's code, as the stages run
    out = run(["digitpipe", "compare", "main", "lr-1e-3"], project, env=here).stdout
    assert out.startswith(f"main against lr-1e-3, on the same {test_images} test images:\n"), out
    assert re.search(rf"^  main +{main_errors} errors ", out, re.M), out
    assert re.search(rf"^  lr-1e-3 +{exp_errors} errors ", out, re.M), out
    # the workspace holds the experiment's results: the same pairs, named `workspace` (the columns aligned anew)
    same = run(["digitpipe", "compare", "main"], project, env=here).stdout
    assert re.sub(" +", " ", same) == re.sub(" +", " ", out.replace("lr-1e-3", "workspace"))


def test_metrics_diff_against_main_reports_the_accuracy_change(project):
    before = json.loads((project / "metrics/eval.json").read_text())
    run(["git", "checkout", "-qb", "more-epochs"], project)
    set_params(project, **{"train.epochs": 3, "train.lr": 0.01})
    run(["dvc", "repro"], project)
    run(["git", "commit", "-qam", "three epochs"], project)
    after = json.loads((project / "metrics/eval.json").read_text())
    diff = json.loads(run(["dvc", "metrics", "diff", "main", "--all", "--json"], project).stdout)
    acc = diff["metrics/eval.json"]["accuracy"]
    assert acc["old"] == before["accuracy"] and acc["new"] == after["accuracy"]
    loss = diff["metrics/eval.json"]["loss"]
    assert loss["old"] != loss["new"]
    assert "train.epochs" in json.dumps(json.loads(run(["dvc", "params", "diff", "main", "--json"], project).stdout))
    # the full report is not a DVC metric, and `dvc metrics diff` still compares it when named (as CI does)
    full = json.loads(run(["dvc", "metrics", "diff", "main", "--all", "--json", "--targets",
                           "metrics/details/eval.json", "metrics/train.json"], project).stdout)
    assert {"per_class.0.f1", "weighted.f1", "counts.errors"} <= set(full["metrics/details/eval.json"])
    assert full["metrics/train.json"]["epochs_run"] == {"old": 1, "new": 3, "diff": 2}


HEADLINE = ["accuracy", "ece", "ece_raw", "errors", "f1", "images", "kb", "loss", "top2", "train_s"]


def test_metrics_show_on_the_committed_results_fits_a_terminal(tmp_path):
    """The Quick start ends with `dvc metrics show`: on the default pipeline's committed results, one row per
    metrics file and one column per headline number, narrower than a 120-column terminal."""
    for rel in ("dvc.yaml", "params.yaml", *(f"metrics/{p.name}" for p in (ROOT / "metrics").glob("*.json"))):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    run(["git", "init", "-q"], tmp_path)
    run(["dvc", "init", "-q"], tmp_path)
    out = run(["dvc", "metrics", "show"], tmp_path).stdout
    assert max(len(line) for line in out.splitlines()) <= 120, out
    table = [line.split() for line in out.splitlines()]
    assert table[0] == ["Path", *HEADLINE]
    rows = {row[0]: dict(zip(table[0][1:], row[1:], strict=True)) for row in table[1:]}
    assert sorted(rows) == ["metrics/data.json", "metrics/eval.json", "metrics/export.json", "metrics/time.json"]
    evaluation = json.loads((tmp_path / "metrics/eval.json").read_text())
    assert rows["metrics/eval.json"]["accuracy"] == str(evaluation["accuracy"])
    assert rows["metrics/eval.json"]["ece_raw"] == str(evaluation["ece_raw"])


def test_a_run_stopped_by_a_bad_param_says_how_to_get_the_model_back(project):
    """DVC removes a stage's outputs before running it; a train run refused on `train.lr: .nan` says so, and
    the commands it names bring back the last good model and logs without retraining."""
    set_params(project, **{"train.lr": float("nan")})
    model = (project / "models/model.keras").read_bytes()
    proc = run(["dvc", "repro"], project, check=False)  # the params stage runs first and refuses: nothing removed
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert "error: params.yaml: train.lr = .nan is invalid: must be a number (not NaN or infinite)" in proc.stderr
    assert "note:" not in proc.stderr and (project / "models/model.keras").read_bytes() == model
    proc = run(["dvc", "repro", "train"], project, check=False)  # train alone: dvc removes its outputs first
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "error: params.yaml: train.lr = .nan is invalid: must be a number (not NaN or infinite)" in out
    assert ("note: dvc removed this stage's outputs before running it; the last committed ones come back with "
            "`dvc checkout train` (models/model.keras) and `git checkout -- dvclive metrics/platform.json "
            "metrics/train.json metrics/time.json`") in out
    assert not (project / "models/model.keras").exists()
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "checkout", "train"], project)
    run(["git", "checkout", "--", "dvclive", "metrics/platform.json", "metrics/train.json", "metrics/time.json"],
        project)
    assert (project / "models/model.keras").is_file()
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}


def test_the_note_after_a_stopped_run_names_the_log_it_had_begun_to_write_again(project, monkeypatch):
    """A train run stopped mid-fit under `dvc repro` has written part of a new DVCLive log where the committed
    one was: the note named only what was missing, and `dvc status` still showed dvclive changed after it."""
    from digitpipe.errors import removed_outputs

    monkeypatch.setenv("DVC_STAGE", "train")
    monkeypatch.setenv("DVC_ROOT", str(project))
    assert removed_outputs() == ([], [])
    (project / "models/model.keras").unlink()
    (project / "dvclive/metrics.json").write_text('{"step": 0}')
    assert removed_outputs() == (["models/model.keras"], ["dvclive"])


def killed_mid_training(cmd: list[str], project, sig: int = signal.SIGKILL) -> tuple[int, str]:
    """Start ``cmd``, wait until training has written a best model so far (keep: best, after its first epoch), then
    send ``sig``: SIGKILL to it all, another signal to the process alone (as `timeout` and `docker stop` do).
    Returns its exit code and what it wrote on stderr."""
    partial = project / "models/.model.partial.keras"
    partial.unlink(missing_ok=True)  # what a kill before this one left (hidden, ignored, replaced by the next run)
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=project, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            deadline = time.monotonic() + 300
            while not partial.exists():
                assert proc.poll() is None, "training ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.05)
            if sig != signal.SIGKILL:
                proc.send_signal(sig)
                proc.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):  # a process that stopped on its own leaves no group
                os.killpg(proc.pid, signal.SIGKILL)  # all of it, whatever is left
            proc.wait()
        err.seek(0)
        return proc.returncode, err.read()


def test_a_killed_training_run_never_leaves_a_partial_model(project, mnist):
    """SIGKILL mid-fit: run directly, the last model is untouched; under `dvc repro` (which removed it first)
    there is no model at all, never a truncated one, and predict says how to bring the last one back."""
    model = project / "models/model.keras"
    before = model.read_bytes()
    # keep: best writes the best model so far after every epoch: the case where a file is being written mid-fit
    set_params(project, **{"train.epochs": 500, "train.keep": "best"})
    killed_mid_training([sys.executable, "-m", "stages.train"], project)
    assert model.read_bytes() == before
    killed_mid_training(["dvc", "repro", "train"], project)
    assert not model.exists()
    (project / "a.jpg").write_bytes(encode_jpeg(mnist[0][0]))
    proc = run([sys.executable, "-m", "digitpipe.predict", "a.jpg"], project, check=False)
    assert proc.returncode == 2
    assert proc.stderr == ("error: model models/model.keras not found: run `dvc repro` to make it, or "
                           "`dvc checkout train` to bring back the last one (a run removes it until it finishes, "
                           "and a run that stopped leaves none)\n")
    run(["git", "checkout", "params.yaml"], project)
    run(["dvc", "checkout", "train"], project)
    assert model.read_bytes() == before
    assert run([sys.executable, "-m", "digitpipe.predict", "a.jpg"], project).stdout.startswith("a.jpg: ")


def test_a_terminated_training_run_removes_its_partial_model_and_says_so(project):
    """SIGTERM (`timeout`, `docker stop`, a cancelled CI job) mid-fit stops the run as Ctrl-C does: its partial model
    file is removed, not left as 7 MB of a hidden half-trained model, and the last model is untouched."""
    model = project / "models/model.keras"
    before = model.read_bytes()
    set_params(project, **{"train.epochs": 500, "train.keep": "best"})
    code, stderr = killed_mid_training([sys.executable, "-m", "stages.train"], project, signal.SIGTERM)
    assert (code, stderr.splitlines()[-1:]) == (143, ["terminated"]), stderr[-2000:]
    assert "Traceback" not in stderr
    assert not (project / "models/.model.partial.keras").exists()
    assert model.read_bytes() == before


def test_a_training_run_that_learned_nothing_says_so_and_what_usually_mends_it(project):
    """At a learning rate far too high the model collapses to one answer: the run still ends and writes its
    outputs (the metrics show what happened), and says in words that it learned nothing."""
    set_params(project, **{"train.lr": 1.0, "train.warmup_epochs": 0})
    proc = run([sys.executable, "-m", "stages.train"], project)
    summary = json.loads((project / "metrics/train.json").read_text())
    warning = [line for line in proc.stderr.splitlines() if line.startswith("train: warning: ")]
    assert len(warning) == 1, (summary, proc.stdout[-800:])
    assert warning[0].startswith((f"train: warning: val accuracy {summary['kept_val_accuracy']:.4f} is no better "
                                  "than always answering class ",
                                  f"train: warning: val loss {summary['kept_val_loss']:.4g} is no better than a "
                                  "uniform guess's (2.3026)"))
    assert warning[0].endswith("training learned nothing; a lower train.lr (this run's: 1.0), a warm-up "
                               "(train.warmup_epochs) or more epochs usually mends it")
    assert (project / "models/model.keras").is_file()  # the run still ends with its model, for a look at it
    run(["git", "checkout", "params.yaml"], project)


def test_an_empty_data_dir_that_stops_dvc_itself_is_named_by_digitpipe_check(project):
    """DVC cannot read a pipeline whose folder dependency is empty and says only "unexpected error";
    `digitpipe check` says which key and why, and passes once it is fixed."""
    check = [sys.executable, "-m", "digitpipe.check"]
    assert run(check, project).stdout.startswith("params.yaml: valid; data.dir tinydata: 10 of 10 class folders")
    set_params(project, **{"data.dir": ""})
    proc = run(["dvc", "status"], project, check=False)
    assert proc.returncode != 0 and "unexpected error" in proc.stderr
    proc = run(check, project, check=False)
    assert (proc.returncode, proc.stderr) == (2, "error: params.yaml: data.dir = '' is invalid: must be a "
                                                 "non-empty string\n")
    set_params(project, **{"data.dir": "elsewhere"})
    assert "data.dir = 'elsewhere': no such folder" in run(check, project, check=False).stderr
    proc = run(["dvc", "repro"], project, check=False)  # the params stage names the key before DVC reaches ingest
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert ("error: params.yaml: data.dir = 'elsewhere': no such folder (a path from the project root, holding one "
            "folder of images per class)") in proc.stderr
    # '~' is a shell's, not DVC's: DVC looks for a folder named '~' in the project, and says only that it is missing
    set_params(project, **{"data.dir": "~/tinydata"})
    proc = run(["dvc", "repro", "ingest"], project, check=False)
    assert proc.returncode != 0 and "No such file or directory" in proc.stderr
    tilde = f"starts with '~', which DVC does not expand: write the path in full ({os.path.expanduser('~/tinydata')})"
    assert tilde in run(check, project, check=False).stderr
    assert tilde in run(["dvc", "repro"], project, check=False).stderr  # the whole pipeline: the params stage says it


def test_a_fifo_or_a_linked_class_folder_is_refused_before_dvc_hashes_the_data(project, tmp_path):
    """DVC hashing a data folder waits for ever on a fifo, and does not look inside a class folder that is a link
    (so `dvc status` would call a changed folder up to date): the params stage names each first."""
    index = (project / "data/index/index.csv").read_bytes()
    outside = tmp_path / "outside"
    shutil.copytree(project / "tinydata", outside)
    os.mkfifo(outside / "3" / "pipe.jpg")
    set_params(project, **{"data.dir": str(outside)})
    proc = run(["dvc", "repro"], project, check=False, timeout=120)
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert (f"error: params.yaml: data.dir = '{outside}': 1 special file(s) (a fifo, socket or device), on which DVC "
            "hangs or stops while hashing the folder: 3/pipe.jpg; remove them (.dvcignore applies only inside the "
            "project)") in proc.stderr
    (outside / "3" / "pipe.jpg").unlink()
    shutil.move(outside / "4", tmp_path / "four")
    (outside / "4").symlink_to(tmp_path / "four")
    proc = run(["dvc", "repro"], project, check=False, timeout=120)
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert ("1 class folder(s) that are links to a folder, inside which DVC does not look, so a change there would "
            "never re-run the pipeline: 4; put the folder itself in place of the link") in proc.stderr
    assert (project / "data/index/index.csv").read_bytes() == index

def test_a_data_folder_ingest_or_dvc_would_stop_on_is_refused_before_ingests_outputs_go(project, tmp_path):
    """A class without a folder, or a link DVC cannot hash, stops the run in the params stage, naming the key and
    the fix: DVC removes a stage's outputs before running it, so stopping in ingest would lose the last index."""
    index = (project / "data/index/index.csv").read_bytes()
    classes = yaml.safe_load((project / "params.yaml").read_text())["data"]["classes"]
    set_params(project, **{"data.classes": [*classes, "ten"]})
    proc = run(["dvc", "repro"], project, check=False)
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert ("error: params.yaml: data.dir = 'tinydata': data dir tinydata has no folder for class(es) ten (add them, "
            "or drop them from data.classes)") in proc.stderr
    assert (project / "data/index/index.csv").read_bytes() == index
    outside = tmp_path / "outside"  # data outside the project, where .dvcignore cannot reach
    shutil.copytree(project / "tinydata", outside)
    (outside / "3" / "gone.jpg").symlink_to(outside / "nowhere.jpg")
    set_params(project, **{"data.classes": classes, "data.dir": str(outside)})
    proc = run(["dvc", "repro"], project, check=False)
    assert proc.returncode != 0 and stages_run(proc.stdout) == ["params"]
    assert (f"error: params.yaml: data.dir = '{outside}': 1 broken or looping symlink(s), on which DVC stops while "
            "hashing the folder: 3/gone.jpg; remove them (.dvcignore applies only inside the project)") in proc.stderr
    assert (project / "data/index/index.csv").read_bytes() == index
    (outside / "3" / "gone.jpg").unlink()
    assert run([sys.executable, "-m", "digitpipe.check"], project).returncode == 0
    # inside the project a link that .dvcignore lists is no obstacle: DVC does not hash it, ingest skips it
    set_params(project, **{"data.dir": "tinydata"})
    (project / "tinydata" / "3" / "gone.jpg").symlink_to(project / "nowhere.jpg")
    proc = run([sys.executable, "-m", "digitpipe.check"], project, check=False)
    assert proc.returncode == 2 and "3/gone.jpg; remove them or list them in .dvcignore" in proc.stderr
    with open(project / ".dvcignore", "a") as ignore:
        ignore.write("tinydata/3/gone.jpg\n")
    assert run([sys.executable, "-m", "digitpipe.check"], project).returncode == 0
    assert stages_run(run(["dvc", "repro"], project).stdout) == []  # params as committed; the data DVC sees too


def draw_mark(kind: str, rng: np.random.Generator) -> bytes:
    """A dark mark (circle, cross or bar) on white paper, 48x40, at a random place and size: data of other
    classes than digits, of another size than 28x28, used as decoded."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (48, 40), 255)
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(9, 15))
    cx, cy = int(rng.integers(r + 2, 46 - r)), int(rng.integers(r + 2, 38 - r))
    width = int(rng.integers(2, 5))
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=int(rng.integers(0, 60)), width=width)
    elif kind == "cross":
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=int(rng.integers(0, 60)), width=width)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=int(rng.integers(0, 60)), width=width)
    else:
        draw.line((cx - r, cy, cx + r, cy), fill=int(rng.integers(0, 60)), width=width)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_own_data_of_other_classes_runs_end_to_end(project):
    """The README's own-data path with the real `dvc`: a folder of other classes (named marks, not digits, 48x40
    PNGs used as decoded) through every stage, then `digitpipe predict` answers with the class names. Two names
    read as a number and a boolean by a CSV reader that guesses (the plot stage died on `01`, the report showed
    `1` and `True`) stay as written."""
    rng = np.random.default_rng(0)
    shapes = {"circle": "circle", "01": "cross", "true": "bar"}  # class name: the mark drawn
    classes = list(shapes)
    for name, kind in shapes.items():
        (project / "marks" / name).mkdir(parents=True)
        for i in range(14):
            (project / "marks" / name / f"{kind}_{i}.png").write_bytes(draw_mark(kind, rng))
    set_params(project, **{"data.dir": "marks", "data.classes": classes, "data.normalize": "none",
                           "train.epochs": 8})
    proc = run(["dvc", "repro"], project)
    assert stages_run(proc.stdout) == ["params", "ingest", "split", "prepare", "train", "evaluate", "export", "plot"]
    details = json.loads((project / "metrics/details/eval.json").read_text())
    assert list(details["per_class"]) == classes and details["counts"]["test_images"] == 6
    assert "data.normalize=none: used as decoded" in proc.stdout
    report = run([sys.executable, "-m", "digitpipe.cli", "report"], project).stdout
    assert "| actual \\ predicted | circle | 01 | true |" in report
    new = project / "new_cross.png"
    new.write_bytes(draw_mark("cross", np.random.default_rng(99)))
    for model in ("models/model.keras", "models/model_int8.tflite"):
        cmd = [sys.executable, "-m", "digitpipe.cli", "predict", str(new), "--model", model, "--json"]
        out = run(cmd, project).stdout
        assert json.loads(out)["predictions"][0]["label"] in classes, out
    assert json.loads(run(["dvc", "status", "--json"], project).stdout) == {}
