"""`python -m digitpipe.predict`: files and folders, output formats, and every kind of bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitpipe.errors import DigitpipeError
from digitpipe.output import level_text
from digitpipe.predict import predict
from digitpipe.sample import encode_jpeg
from tests.helpers import ENV, ROOT, eps_bytes, rewrite_zip_entry, small_model_split


@pytest.fixture
def folder(tmp_path, mnist):
    """Kaggle-style unlabelled test folder: img_N.jpg for unseen digits, N not in sorted-string order."""
    images, labels = mnist
    unseen = small_model_split(labels)[2][::100]  # 25 digits the model never trained on
    out = tmp_path / "testSet"
    out.mkdir()
    truth = {}
    for n, i in enumerate(unseen, start=1):
        (out / f"img_{n}.jpg").write_bytes(encode_jpeg(images[i]))
        truth[n] = str(labels[i])
    (out / ".DS_Store").write_bytes(b"\0")
    return out, truth


def test_submission_is_sorted_by_image_id_and_mostly_right(folder, small_model, tmp_path, capsys):
    path, truth = folder
    out = tmp_path / "submission.csv"
    assert predict([str(path), "--model", str(small_model), "--submission", str(out)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["ImageId", "Label"]
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == sorted(truth) == list(range(1, 26))
    right = sum(r[1] == truth[int(r[0])] for r in rows[1:])
    assert right >= 23
    assert "predicted 25 image(s), 0 failed" in capsys.readouterr().out


def test_a_submission_missing_images_says_it_is_incomplete_and_which_image_ids_it_lacks(folder, small_model,
                                                                                         tmp_path, capsys):
    path, _ = folder
    for n in (40, 30, 31, 32, 33, 34):
        (path / f"img_{n}.jpg").write_text("not an image")
    out = tmp_path / "submission.csv"
    assert predict([str(path), "--model", str(small_model), "--submission", str(out)]) == 1
    stdout, stderr = capsys.readouterr()
    assert stderr.splitlines()[-1] == (f"warning: {out} is incomplete, missing 6 ImageId(s): 30, 31, 32, 33, 34 and 1 "
                                       "more (their images failed); Kaggle rejects a submission without every ImageId")
    assert stdout == f"predicted 25 image(s), 6 failed -> {out} (incomplete: 6 ImageId(s) missing)\n"
    assert len(out.read_text().splitlines()) == 1 + 25
    assert predict([str(path / "img_1.jpg"), str(tmp_path / "more"), "--model", str(small_model),
                    "--submission", str(out)]) == 1
    stdout, stderr = capsys.readouterr()
    assert stderr.splitlines()[-1] == (f"warning: {out} may be incomplete: what {tmp_path / 'more'} held is missing; "
                                       "Kaggle rejects a submission without every ImageId")
    assert stdout.endswith(" (may be incomplete)\n")


def test_json_top_k_and_csv(folder, small_model, tmp_path, capsys):
    path, _ = folder
    target = path / "img_3.jpg"
    assert predict([str(target), "--model", str(small_model), "--json", "--top-k", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (pred,) = doc["predictions"]
    assert pred["path"] == str(target) and len(pred["top"]) == 3
    probs = [t["probability"] for t in pred["top"]]
    assert probs == sorted(probs, reverse=True) and pred["top"][0]["label"] == pred["label"]
    assert doc["errors"] == []
    out = tmp_path / "all.csv"
    assert predict([str(path), "--model", str(small_model), "--csv", str(out), "--top-k", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 25 and set(rows[0]) == {"path", "label", "confidence", "top2", "error"}


def test_the_csv_has_a_row_for_every_file_that_failed_in_its_place_with_the_reason(folder, small_model, tmp_path,
                                                                                   capsys):
    """A script that reads the CSV sees every file it was given: a failure is a row with its reason in ``error``
    and nothing else, in its file's place, and a path that gave no file at all comes last."""
    path, _ = folder
    (path / "img_8.jpg").write_bytes(b"not an image")
    (path / "img_20.jpg").write_bytes(b"")
    out = tmp_path / "all.csv"
    missing = tmp_path / "no-such-folder"
    assert predict([str(missing), str(path), "--model", str(small_model), "--csv", str(out), "--top-k", "2",
                    "--min-confidence", "0.9"]) == 1
    header, *rows = list(csv.reader(out.open()))
    assert header == ["path", "label", "confidence", "unsure", "top2", "error"]
    assert all(len(row) == len(header) for row in rows)
    assert [row[0] for row in rows] == [str(path / f"img_{n}.jpg") for n in range(1, 26)] + [str(missing)]
    failed = {row[0]: row for row in rows if row[-1]}
    assert failed == {str(path / "img_8.jpg"): [str(path / "img_8.jpg"), "", "", "", "", "not an image"],
                      str(path / "img_20.jpg"): [str(path / "img_20.jpg"), "", "", "", "", "empty file"],
                      str(missing): [str(missing), "", "", "", "", "no such file or folder"]}
    assert all(row[1] and float(row[2]) > 0 for row in rows if not row[-1])
    assert capsys.readouterr().out == f"predicted 23 image(s), 3 failed -> {out}\n"


def test_a_top_k_past_the_number_of_classes_gives_every_class_once_in_every_output(folder, small_model, tmp_path,
                                                                                     capsys):
    path, _ = folder
    out = tmp_path / "k.csv"
    args = [str(path / "img_1.jpg"), "--model", str(small_model), "--top-k", "12"]
    assert predict([*args, "--csv", str(out)]) == 0
    header, *rows = list(csv.reader(out.open()))
    assert header == ["path", "label", "confidence", *[f"top{k}" for k in range(2, 11)], "error"]
    assert [len(row) for row in rows] == [len(header)]
    capsys.readouterr()
    assert predict([*args, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"][0]["top"]) == 10
    assert predict(args) == 0
    assert len(capsys.readouterr().out.split("   then ")[1].split(", ")) == 9


def test_text_output_names_each_image(folder, small_model, capsys):
    path, truth = folder
    assert predict([str(path / "img_1.jpg"), "--model", str(small_model)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path / 'img_1.jpg'}: {truth[1]} (")


def test_text_output_keeps_the_runners_up_apart_when_class_names_hold_spaces(folder, small_model, capsys):
    path, _ = folder
    names = [f"class {c}" for c in "abcdefghij"]
    assert predict([str(path / "img_1.jpg"), "--model", str(small_model), "--top-k", "3", "--classes", *names]) == 0
    line = capsys.readouterr().out.strip()
    then = line.split("   then ")[1].split(", ")
    assert len(then) == 2 and all(t.startswith("class ") and t.endswith("%") for t in then)


def test_class_names_that_do_not_fit_the_model_are_refused_with_the_likely_slip(folder, small_model):
    path, _ = folder
    image = str(path / "img_1.jpg")
    with pytest.raises(DigitpipeError) as err:
        predict([image, "--model", str(small_model), "--classes", "a,b,c,d,e,f,g,h,i,j"])
    assert str(err.value) == (f"{small_model}: the model has 10 outputs but 1 class name was given (--classes) (names "
                              "are separated by spaces, not commas)")
    with pytest.raises(DigitpipeError) as err:
        predict([image, "--model", str(small_model), "--classes", "a", "b"])
    assert str(err.value) == f"{small_model}: the model has 10 outputs but 2 class names were given (--classes)"


def bad_files(root, mnist):
    good = encode_jpeg(mnist[0][0])
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("not an image")
    (root / "cut.jpg").write_bytes(good[:200])
    Image.new("1", (9000, 9000)).save(root / "huge.png")
    (root / "good.jpg").write_bytes(good)
    (root / "gone.jpg").symlink_to(root / "deleted.jpg")
    os.mkfifo(root / "pipe.jpg")  # opening it would wait for a writer for ever
    expected = {"empty.jpg": "empty file", "text.jpg": "not an image", "cut.jpg": "cannot decode",
                "huge.png": "too large", "missing.jpg": "no such file or folder",
                "gone.jpg": "cannot read: No such file or directory", "pipe.jpg": "not a regular file: a fifo"}
    if os.geteuid() != 0:  # root reads any file whatever its mode
        (root / "locked.jpg").write_bytes(good)
        (root / "locked.jpg").chmod(0)
        expected["locked.jpg"] = "cannot read: Permission denied"
    return expected


def test_bad_inputs_are_reported_and_the_rest_predicted(tmp_path, mnist, small_model):
    expected = bad_files(tmp_path, mnist)
    paths = [str(tmp_path / name) for name in sorted(expected)] + [str(tmp_path / "good.jpg")]
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", *paths, "--model", str(small_model)],
                          capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(expected)
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in errors), (name, proc.stderr)
    assert proc.stdout.startswith(f"{tmp_path / 'good.jpg'}: 0 (")


def test_an_eps_file_is_refused_unopened_and_ghostscript_never_runs(folder, small_model, mnist, fake_ghostscript):
    path, _ = folder
    (path / "img_26.eps").write_bytes(eps_bytes(Image.fromarray(mnist[0][0])))
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path / "img_26.eps"), str(path / "img_1.jpg"),
                           "--model", str(small_model)], capture_output=True, text=True,
                          env={**ENV, "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}, cwd=path)
    assert (proc.returncode, proc.stderr) == (1, f"error: {path / 'img_26.eps'}: EPS images are not supported; use "
                                                 "BMP, GIF, JPEG, PNG, PPM, TIFF, WEBP\n")
    assert proc.stdout.startswith(f"{path / 'img_1.jpg'}: ")
    assert not fake_ghostscript.exists()


def test_an_empty_path_is_no_such_file_not_this_folder(folder, small_model, capsys):
    path, _ = folder
    assert predict(["", str(path / "img_1.jpg"), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    assert err == 'error: "": no such file or folder (the path is empty)\n'
    assert out.startswith(f"{path / 'img_1.jpg'}: ") and len(out.splitlines()) == 1


@pytest.mark.parametrize(("options", "message"), [
    (["--model", ""], "argument --model: the path is empty"),
    (["--csv", ""], "argument --csv: the path is empty"),
    (["--submission", ""], "argument --submission: the path is empty"),
    (["--classes", *"abcdefghaj", "--"], "--classes names 'a' more than once: each class needs a name of its own"),
    (["--classes", *"abcdefgh", "i\rj", "k", "--"], "--classes name 'i\\rj' holds a control or invisible formatting "
     "character (\\r): give each class a name that can be read"),
    (["--classes", *"abcdefghi", " ", "--"], "--classes name ' ' holds nothing to read: give each class a name that "
     "can be read"),
])
def test_an_empty_output_or_model_path_and_a_class_named_twice_are_usage_errors(options, message, folder, capsys):
    """An empty path was read as this folder (`model .: expected a .keras file`), and two classes of one name
    gave answers no one could tell apart."""
    path, _ = folder
    with pytest.raises(SystemExit) as exit_info:
        predict([*options, str(path / "img_1.jpg")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message)


def test_outside_the_project_a_missing_default_model_says_where_the_path_starts(tmp_path, mnist):
    (tmp_path / "a.jpg").write_bytes(encode_jpeg(mnist[0][0]))
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", "a.jpg"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("error: model models/model.keras not found: check the path: it starts from this folder, "
                           "which holds no dvc.yaml; run the command in the project's folder, or give the model's "
                           "full path\n")
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", "a.jpg", "--model", str(tmp_path / "m.keras")],
                          capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.stderr == f"error: model {tmp_path / 'm.keras'} not found: check the path\n"  # it is the full path


def test_a_missing_pipeline_model_says_how_to_make_it_or_bring_it_back(tmp_path, mnist):
    (tmp_path / "a.jpg").write_bytes(encode_jpeg(mnist[0][0]))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")

    def predict(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "digitpipe.predict", *args, "a.jpg"], capture_output=True,
                              text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)

    proc = predict()
    assert proc.returncode == 2
    # no dvc.lock or DVC cache here, as in a fresh clone: nothing made yet, so nothing to check out
    assert proc.stderr == "error: model models/model.keras not found: run `dvc repro` to make it\n"
    assert "dvc checkout" not in predict("--model", "models/model_int8.tflite").stderr
    proc = predict("--model", "elsewhere/mine.keras")
    assert proc.stderr == "error: model elsewhere/mine.keras not found: check the path\n"


def test_tflite_exports_agree_with_keras(small_model, small_exports, mnist):
    from digitpipe.inference import Predictor

    images, labels = mnist
    unseen = small_model_split(labels)[2]
    x = images[unseen][:500, ..., None].astype(np.float32) / 255
    reference = Predictor.load(small_model).probabilities(x)
    for path in (small_exports["saved"], small_exports["float"]):
        assert np.allclose(Predictor.load(path).probabilities(x), reference, atol=1e-4)
    int8 = Predictor.load(small_exports["int8"]).probabilities(x)
    assert (int8.argmax(1) == reference.argmax(1)).mean() >= 0.98
    assert small_exports["int8"].stat().st_size < 0.4 * small_exports["float"].stat().st_size


def test_a_file_that_cannot_be_decoded_alone_makes_the_exit_code_1(folder, small_model, capsys):
    path, _ = folder
    (path / "img_26.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert predict([str(path), "--model", str(small_model), "--top-k", "2"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {path / 'img_26.jpg'}: cannot decode: ") and len(err.splitlines()) == 1
    assert len(out.splitlines()) == 25


@pytest.mark.parametrize("kind", ["keras", "int8"])
def test_worker_processes_give_the_same_answers_as_one_process(kind, folder, small_model, small_exports, tmp_path,
                                                               monkeypatch):
    """Big folders are decoded (and, for TFLite, classified) by worker processes, a chunk at a time;
    small chunks here put failures mid-chunk and make the last chunk short."""
    import digitpipe.batch as engine

    path, _ = folder
    (path / "img_8.jpg").write_bytes(b"not an image")
    (path / "img_13.jpg").write_bytes(b"")
    model = small_model if kind == "keras" else small_exports["int8"]
    outputs = {}
    for mode, parallel_from in (("one process", 10**9), ("workers", 1)):
        monkeypatch.setattr(engine, "PARALLEL_FROM", parallel_from)
        monkeypatch.setattr(engine, "CHUNK", 6)
        out = tmp_path / f"{mode}.csv"
        assert predict([str(path), "--model", str(model), "--csv", str(out), "--top-k", "3"]) == 1
        outputs[mode] = out.read_text()
    assert outputs["workers"] == outputs["one process"]
    assert len(outputs["workers"].splitlines()) == 1 + 25  # the two failures have their rows too


def test_tflite_models_are_run_without_loading_tensorflow(folder, small_exports, tmp_path):
    """LiteRT runs .tflite files on its own: `predict` starts in a fraction of the time TensorFlow takes (and
    without pandas, which the stages use and a prediction does not need: a sixth of a second more)."""
    path, truth = folder
    script = ("import sys; from digitpipe.predict import predict; "
              f"code = predict([{str(path / 'img_1.jpg')!r}, '--model', {str(small_exports['int8'])!r}]); "
              "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'pandas' in sys.modules); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    prediction, loaded = proc.stdout.splitlines()
    assert prediction.startswith(f"{path / 'img_1.jpg'}: {truth[1]} (")
    assert loaded == "False False False"
    assert proc.stderr == ""


def test_an_image_the_preprocessing_trips_on_costs_only_itself(folder, small_model, monkeypatch, capsys):
    import digitpipe.images

    path, truth = folder
    page = Image.new("L", (33, 40), 255)
    page.putpixel((16, 20), 0)  # a dot: not blank, so the preprocessing sees it
    page.save(path / "img_26.png")
    real = digitpipe.images.normalise

    def trips_on_33_wide(gray):
        if gray.width == 33:
            raise ValueError("an unforeseen shape")
        return real(gray)

    monkeypatch.setattr(digitpipe.images, "normalise", trips_on_33_wide)
    assert predict([str(path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    assert err == f"error: {path / 'img_26.png'}: cannot preprocess: ValueError: an unforeseen shape\n"
    assert [line.split(": ")[0] for line in out.splitlines()] == [str(path / f"img_{n}.jpg") for n in sorted(truth)]


def test_a_reader_that_stops_early_gets_a_quiet_exit(tmp_path, mnist, small_model):
    """`predict FOLDER --json | head`: the command stops when the reader goes, without a traceback."""
    for n in range(300):  # enough output to fill the pipe before the reader leaves
        (tmp_path / f"img_{n}.jpg").write_bytes(encode_jpeg(mnist[0][n]))
    proc = subprocess.Popen([sys.executable, "-m", "digitpipe.predict", str(tmp_path), "--model", str(small_model),
                             "--json", "--top-k", "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert proc.stdout.readline() == "{\n"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 141
    assert err == ""


@pytest.mark.parametrize("option", ["--submission", "--csv"])
def test_an_output_file_piped_to_a_reader_that_is_gone_gets_the_same_quiet_exit(folder, small_model, option):
    """`predict FOLDER --submission /dev/stdout | head -2`: the reader has gone (here: before the first byte), so
    the command stops as it does for text and --json, not with `cannot write /dev/stdout: Broken pipe`."""
    path, _ = folder
    proc = subprocess.Popen([sys.executable, "-m", "digitpipe.predict", str(path), "--model", str(small_model),
                             option, "/dev/stdout"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=path)
    proc.stdout.close()
    err = proc.stderr.read()
    assert (proc.wait(), err) == (141, "")


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """``command`` run by the shell, as a person types it (redirections included), with the project importable."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**ENV, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("option", ["--submission", "--csv"])
def test_an_output_sent_to_stdout_holds_only_the_csv_and_keeps_what_an_appended_file_held(folder, small_model,
                                                                                        tmp_path, option):
    """`--submission /dev/stdout | pandas` read the run's summary line as a last row, and with `>> log.csv` the file
    was renamed over, losing what it held; `> out.txt` was refused as a file that is not a .csv one."""
    path, truth = folder
    run = f"{sys.executable} -m digitpipe.predict {path} --model {small_model} {option} /dev/stdout"
    piped = shell(f"{run} | cat", tmp_path)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert len(lines) == 1 + len(truth) and lines[0].startswith(("ImageId,Label", "path,label,confidence,"))
    assert piped.stderr == f"predicted {len(truth)} image(s), 0 failed -> /dev/stdout\n"
    log = tmp_path / "log.csv"
    log.write_text("earlier,run\n1,2\n")
    appended = shell(f"{run} >> {log}", tmp_path)
    assert appended.returncode == 0, appended.stderr
    assert log.read_text() == "earlier,run\n1,2\n" + piped.stdout
    text = tmp_path / "out.txt"
    assert shell(f"{run} > {text}", tmp_path).returncode == 0 and text.read_text() == piped.stdout
    both = shell(f"{sys.executable} -m digitpipe.predict {path} --model {small_model} --csv {log} > {log}", tmp_path)
    assert both.returncode == 0 and log.read_text().splitlines()[0].startswith("path,label")  # the shell's file
    assert "predicted" in both.stderr


def test_json_and_an_output_file_on_stdout_are_refused_before_any_work(folder, tmp_path):
    path, _ = folder
    with pytest.raises(DigitpipeError) as err:
        shell_free = [str(path), "--json", "--csv", "/dev/stdout", "--model", str(tmp_path / "not-there.keras")]
        predict(shell_free)
    assert str(err.value) == ("--json prints to standard output, which --csv /dev/stdout names too; write one of "
                              "them to a file")


def test_the_output_file_is_written_though_the_reader_of_the_errors_has_gone(tmp_path, mnist, small_model):
    """`predict BAD_AND_GOOD --csv out.csv 2>&1 | head -2`: the failures' lines filled the pipe and the reader left,
    which stopped the command before it wrote the CSV: every image classified, nothing kept."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for n in range(2000):  # more error lines than a pipe holds
        (bad / f"bad_{n}.jpg").write_bytes(b"not a jpeg")
    good = tmp_path / "good"
    good.mkdir()
    for n in range(5):
        (good / f"img_{n}.jpg").write_bytes(encode_jpeg(mnist[0][n]))
    out = tmp_path / "out.csv"
    proc = shell(f"{sys.executable} -m digitpipe.predict {bad} {good} --model {small_model} --csv {out} 2>&1 "
                 "| head -2; exit ${PIPESTATUS[0]}", tmp_path)
    assert proc.returncode == 141
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + 2000 + 5 and sum(",,," not in row for row in rows[1:]) >= 5


@pytest.mark.parametrize(("more", "options", "message"), [
    ([], ["--csv", "{tmp}/no/such/out.csv"], "cannot write {tmp}/no/such/out.csv: folder {tmp}/no/such does not exist"),
    ([], ["--csv", "{tmp}"], "cannot write {tmp}: it is a folder; name a file in it"),
    (["photo.png"], ["--submission", "{tmp}/s.csv"],
     "--submission needs files named img_N.jpg (Kaggle's testSet); got photo.png"),
    (["img_3.png"], ["--submission", "{tmp}/s.csv"],
     "--submission: ImageId 3 would come from both {tmp}/testSet/img_3.jpg and {tmp}/img_3.png"),
    (["scan.png"], ["--csv", "{tmp}/scan.png"], "cannot write {tmp}/scan.png: it is a file, not a .csv one, and "
                                                "would be replaced; name a new file or a .csv one (the option takes "
                                                "the word after it)"),  # `--csv scan.png b.png`: two images meant
    (["scan.png"], ["--submission", "{tmp}/scan.png"], "cannot write {tmp}/scan.png: it is a file, not a .csv one, "
                                                       "and would be replaced; name a new file or a .csv one (the "
                                                       "option takes the word after it)"),
    (["out.csv"], ["--csv", "{tmp}/out.csv"], "cannot write {tmp}/out.csv: it is one of the images to classify"),
    ([], ["--csv", "{tmp}/s.csv", "--submission", "{tmp}/s.csv"],
     "--csv and --submission both name {tmp}/s.csv; give each its own file"),
])
def test_output_problems_are_refused_before_any_work(folder, tmp_path, mnist, more, options, message):
    path, _ = folder
    for name in more:
        Image.fromarray(mnist[0][0]).save(tmp_path / name, format="PNG")
    argv = [str(path), *[str(tmp_path / m) for m in more], *[o.format(tmp=tmp_path) for o in options],
            "--model", str(tmp_path / "not-there.keras")]
    with pytest.raises(DigitpipeError) as err:  # the model does not exist either: these checks come first
        predict(argv)
    assert str(err.value) == message.format(tmp=tmp_path)
    assert not (tmp_path / "s.csv").exists()
    assert all(Image.open(tmp_path / name).size == (28, 28) for name in more)  # an input is never overwritten


def test_a_csv_link_to_an_image_is_refused_and_the_image_kept(folder, tmp_path, mnist):
    """`--csv out.csv` where out.csv is a link to a photo: the write goes through the link, so the check of the
    name must too, or the photo is replaced by the predictions."""
    path, _ = folder
    Image.fromarray(mnist[0][0]).save(tmp_path / "photo.jpg")
    before = (tmp_path / "photo.jpg").read_bytes()
    (tmp_path / "out.csv").symlink_to("photo.jpg")
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--csv", str(tmp_path / "out.csv"), "--model", str(tmp_path / "not-there.keras")])
    assert str(err.value) == (f"cannot write {tmp_path / 'out.csv'}, a link to {tmp_path / 'photo.jpg'},: it is a "
                              "file, not a .csv one, and would be replaced; name a new file or a .csv one (the option "
                              "takes the word after it)")
    assert (tmp_path / "photo.jpg").read_bytes() == before


def test_an_output_name_too_long_for_the_atomic_write_is_refused_before_any_work(folder, tmp_path):
    """The file is written beside itself under a longer name and renamed: a name that fits the disk's limit but
    leaves no room for that was found only after every image had been classified."""
    path, _ = folder
    out = tmp_path / ("p" * (255 - len(".csv")) + ".csv")  # the longest name the disk takes
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--csv", str(out), "--model", str(tmp_path / "not-there.keras")])
    assert str(err.value) == f"cannot write {out}: File name too long"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root (to give the file to another user) and setpriv (to drop CAP_FOWNER)")
def test_a_file_of_another_user_in_a_shared_folder_is_refused_before_any_work(folder, tmp_path):
    """In a sticky folder such as /tmp only a file's owner may replace it: the rename that ends the atomic write
    failed after every image had been classified."""
    path, _ = folder
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "p.csv").write_text("old\n")
    os.chmod(shared, 0o1777)
    os.chmod(shared / "p.csv", 0o666)
    os.chown(shared, 65534, 65534)
    os.chown(shared / "p.csv", 65534, 65534)
    proc = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", sys.executable,
                           "-m", "digitpipe.predict", str(path), "--csv", str(shared / "p.csv"), "--model",
                           str(tmp_path / "not-there.keras")],
                          capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: cannot write {shared / 'p.csv'}: it belongs to another user, in a folder "
                                   "where only a file's owner may replace it (a shared folder such as /tmp); name a "
                                   "new file")
    assert (shared / "p.csv").read_text() == "old\n"


def test_the_csv_of_the_last_run_inside_the_folder_is_replaced_not_classified(folder, small_model):
    """`predict photos --csv photos/p.csv`, run twice: the second run found the first's CSV among the images and
    refused to write it as "one of the images to classify"."""
    path, truth = folder
    out = path / "p.csv"
    for _ in range(2):
        assert predict([str(path), "--csv", str(out), "--model", str(small_model)]) == 0
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == len(truth) and all(row["error"] == "" for row in rows)


def test_a_folder_that_cannot_take_the_output_is_refused_before_any_work(folder, tmp_path, monkeypatch):
    """A read-only disk (or a folder this user may not write to) is found before classifying, not after."""
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    path, _ = folder
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--csv", str(tmp_path / "out.csv"), "--model", str(tmp_path / "not-there.keras")])
    assert str(err.value) == f"cannot write {tmp_path / 'out.csv'}: Read-only file system"


def test_a_link_to_a_csv_in_a_folder_that_cannot_take_it_is_refused_before_any_work(folder, tmp_path, monkeypatch):
    """The output replaces the file a link names, in that file's folder: the check once looked at the link's."""
    import errno
    import tempfile

    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "out.csv").write_text("old\n")
    (tmp_path / "via.csv").symlink_to(tmp_path / "shared" / "out.csv")
    opened = tempfile.NamedTemporaryFile

    def read_only_there(*args, dir=None, **kwargs):  # noqa: A002 (tempfile's own name)
        if Path(dir) == tmp_path / "shared":
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return opened(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only_there)
    path, _ = folder
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--csv", str(tmp_path / "via.csv"), "--model", str(tmp_path / "not-there.keras")])
    assert str(err.value) == f"cannot write {tmp_path / 'via.csv'}: Permission denied"
    assert (tmp_path / "shared" / "out.csv").read_text() == "old\n"


@pytest.mark.parametrize(("card", "message"), [
    ("[]", "the model card digitpipe.json is damaged (a JSON list, not an object)"),
    ('{"classes": ["0", "1"], "normalize": "weird"}',
     "the model card digitpipe.json is damaged (normalize 'weird' is not one of mnist, none)"),
    ('{"normalize": "mnist"}', "the model card digitpipe.json is damaged (no 'classes')"),
    ('{"classes": ["0", "1", "2", "3", "4", "5", "6", "sev\\nen", "8", "9"], "normalize": "mnist"}',
     "the model card digitpipe.json is damaged (a class name holds a control or invisible formatting character "
     "(\\n), which every output would show escaped)"),
    ('{"classes": ["a", "b"], "normalize": "mnist"}',
     "the model has 10 outputs but 2 class names are in its model card"),
    # values that were read as something else: true as temperature 1 (uncalibrated, in silence), text as a number
    ('{"classes": ["0", "1"], "normalize": "mnist", "temperature": true}',
     "the model card digitpipe.json is damaged (temperature True is not a positive number)"),
    ('{"classes": ["0", "1"], "normalize": "mnist", "temperature": "0.45"}',
     "the model card digitpipe.json is damaged (temperature '0.45' is not a positive number)"),
    ('{"classes": ["0", "1"], "normalize": "mnist", "calibrated": true, "temperature": 0.45}',
     "the model card digitpipe.json is damaged (calibrated is true, so the model applies its temperature itself, "
     "but temperature is 0.45, which a reader would apply a second time)"),
    ('{"classes": ["0", null, "2", "3", "4", "5", "6", "7", "8", "9"], "normalize": "mnist"}',
     "the model card digitpipe.json is damaged (classes ['0', None, '2', '3', '4', '5', '6', '7', '8', '9'] is not a "
     "list of names (text))"),
    ('{"classes": ["0", "1", "2", "3", "4", "5", "6", " ", "8", "9"], "normalize": "mnist"}',
     "the model card digitpipe.json is damaged (a class name is blank, which every output would show as no answer)"),
])
def test_a_bad_model_card_is_one_error_before_any_image(card, message, small_exports, folder, tmp_path):
    model = tmp_path / "saved"
    shutil.copytree(small_exports["saved"], model)
    (model / "digitpipe.json").write_text(card)
    path, _ = folder
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path), "--model", str(model)],
                          capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {model}: {message}"]
    assert proc.stdout == ""


REFUSED_UNLOADED = """
import sys
from digitpipe.errors import DigitpipeError
from digitpipe.inference import Predictor
try:
    Predictor.load(sys.argv[1])
except DigitpipeError as err:
    print(err)
print(sorted(name for name in ("keras", "tensorflow", "ai_edge_litert") if name in sys.modules))
"""


@pytest.mark.parametrize("kind", ["saved", "keras", "float"])
def test_a_damaged_card_is_refused_before_the_model_is_loaded(kind, small_model, small_exports, tmp_path):
    """The card is read first: a damaged one is refused without importing TensorFlow or LiteRT, which takes
    seconds, and the same card in a sound file is read as the model's."""
    from digitpipe.card import CARD_NAME

    damaged = b'{"classes": ["0", "1"], "normalize": "weird"}'
    if kind == "saved":
        model = tmp_path / "saved"
        shutil.copytree(small_exports["saved"], model)
        (model / CARD_NAME).write_bytes(damaged)
    else:  # the card is a zip entry: inside the .keras archive, and appended to a .tflite file
        source = small_model if kind == "keras" else small_exports["float"]
        model = tmp_path / source.name
        shutil.copy(source, model)
        rewrite_zip_entry(model, CARD_NAME, damaged)
    proc = subprocess.run([sys.executable, "-c", REFUSED_UNLOADED, str(model)], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, check=True)
    assert proc.stdout.splitlines() == [
        f"{model}: the model card digitpipe.json is damaged (normalize 'weird' is not one of mnist, none)", "[]"]


def test_a_model_without_a_card_is_used_with_a_note_saying_what_that_means(small_exports, folder, tmp_path,
                                                                           capsys):
    model = tmp_path / "saved"
    shutil.copytree(small_exports["saved"], model)
    (model / "digitpipe.json").unlink()
    path, truth = folder
    assert predict([str(path / "img_1.jpg"), "--model", str(model)]) == 0
    out, err = capsys.readouterr()
    assert err == (f"note: {model} carries no model card: classes 0-9 unless --classes names them, the mnist "
                   "preprocessing, and its probabilities as the model computes them (no temperature added; an "
                   "export's graph holds the one it was exported with)\n")
    assert out.startswith(f"{path / 'img_1.jpg'}: ")


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("empty.tflite", None, "the file is empty (0 bytes)"),
    ("empty.keras", None, "the file is empty (0 bytes)"),
    ("model.keras", "int8", "it is a TFLite model, named .keras: name it .tflite"),
    ("model.tflite", "keras", "it is a zip archive, as a Keras model is, named .tflite: if it is one, name it .keras"),
])
def test_an_empty_or_misnamed_model_file_says_what_it_is(name, content, problem, small_model, small_exports, folder,
                                                         tmp_path):
    """An empty .tflite file said "`model_path` or `model_content` must be specified", a TFLite model named .keras
    "There is no item named 'config.json' in the archive"."""
    model = tmp_path / name
    sources = {"int8": small_exports["int8"], "keras": small_model}
    model.write_bytes(sources[content].read_bytes() if content else b"")
    path, _ = folder
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path), "--model", str(model)],
                          capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"error: model {model} could not be loaded: {problem}\n"


def test_a_model_name_in_capitals_is_run_or_told_how_to_name_it(small_model, small_exports, folder, tmp_path):
    """`--model M.TFLITE` was refused as no kind of model; Keras itself loads only a name ending in `.keras`."""
    path, _ = folder
    tflite, keras_file = tmp_path / "M.TFLITE", tmp_path / "M.KERAS"
    tflite.write_bytes(small_exports["float"].read_bytes())
    keras_file.write_bytes(small_model.read_bytes())
    ran = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path), "--model", str(tflite)],
                         capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    assert ran.returncode == 0 and len(ran.stdout.splitlines()) == 25, ran.stderr
    refused = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path), "--model", str(keras_file)],
                             capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)})
    assert (refused.returncode, refused.stderr) == (2, f"error: model {keras_file} could not be loaded: Keras loads a "
                                                       "model only from a name that ends in .keras, in lower case: "
                                                       "name it M.keras\n")


@pytest.mark.parametrize("name", ["pipe.tflite", "pipe.keras", "zero.keras"])
def test_a_model_that_is_a_pipe_or_a_device_is_refused_not_read_for_ever(name, folder, tmp_path):
    """A pipe as the model waited for ever; /dev/zero was read until memory ran out."""
    model = tmp_path / name
    os.symlink("/dev/zero", model) if name.startswith("zero") else os.mkfifo(model)
    path, _ = folder
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--model", str(model)])
    assert str(err.value) == (f"model {model} could not be loaded: it is not a regular file (a pipe, socket or "
                              "device); give the model file")


def test_a_damaged_keras_file_is_called_damaged_not_missing(small_model, folder, tmp_path):
    model = tmp_path / "cut.keras"
    model.write_bytes(small_model.read_bytes()[:5000])
    path, _ = folder
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--model", str(model)])
    assert str(err.value) == (f"model {model} could not be loaded: not a Keras archive (a .keras file is a zip "
                              "archive; this one is damaged, cut short or another kind of file)")


@pytest.mark.parametrize("damage", ["cut", "gone"])
def test_a_damaged_saved_model_folder_is_one_line_not_a_traceback(damage, small_exports, tmp_path):
    """TensorFlow raises its own errors (DataLossError and others) on a folder whose variables are cut short or
    missing, as an export being rewritten leaves it for a moment."""
    from digitpipe.inference import Predictor

    model = tmp_path / "saved"
    shutil.copytree(small_exports["saved"], model)
    index = model / "variables" / "variables.index"
    if damage == "cut":
        index.write_bytes(index.read_bytes()[:40])
    else:
        index.unlink()
    with pytest.raises(DigitpipeError) as err:
        Predictor.load(model)
    assert str(err.value).startswith(f"model {model} could not be loaded: ") and "\n" not in str(err.value)


def test_a_model_removed_while_it_loads_is_called_missing_not_damaged(small_model, tmp_path, monkeypatch):
    """A `dvc repro` in the same project removes models/model.keras when its train stage starts: a predict
    that was loading it at that moment must say the model is missing, not that it is damaged."""
    from digitpipe import inference

    model = tmp_path / "model.keras"
    shutil.copy(small_model, model)
    real = inference.KerasPredictor.__init__

    def removed_meanwhile(self, path, *args):
        model.unlink(missing_ok=True)
        real(self, path, *args)

    monkeypatch.setattr(inference.KerasPredictor, "__init__", removed_meanwhile)
    with pytest.raises(DigitpipeError) as err:
        inference.Predictor.load(model)
    assert str(err.value) == f"model {model} not found: check the path"


def test_a_model_replaced_while_it_loads_gives_the_weights_and_card_of_one_file(small_exports, mnist, tmp_path,
                                                                                monkeypatch):
    """Replaced mid-load (the export stage puts new files in place), a model is loaded again, so its weights
    and its card, which says which temperature to apply, never come from two different files."""
    from digitpipe import inference
    from digitpipe.card import read_card

    model, newer = tmp_path / "model.tflite", tmp_path / "newer.tflite"
    shutil.copy(small_exports["int8"], model)  # raw softmax: its card says which temperature to apply
    shutil.copy(small_exports["float"], newer)  # the temperature inside: its card says 1
    real, replaced = inference.TFLitePredictor.__init__, []

    def replaced_meanwhile(self, path, *args):
        real(self, path, *args)
        if not replaced:
            os.replace(newer, model)
            replaced.append(path)

    monkeypatch.setattr(inference.TFLitePredictor, "__init__", replaced_meanwhile)
    loaded = inference.Predictor.load(model)
    monkeypatch.undo()
    x = mnist[0][:50, :, :, None].astype(np.float32) / 255
    assert replaced and loaded.card == read_card(small_exports["float"])
    assert np.abs(loaded.probabilities(x) - inference.Predictor.load(small_exports["float"]).probabilities(x)).max() \
        < 1e-6


def test_worker_processes_run_the_model_the_run_loaded_though_its_file_is_gone(folder, small_exports, tmp_path,
                                                                              monkeypatch):
    """Worker processes get the TFLite model's bytes and card from the process that loaded it, never the file
    again: a run of the pipeline may have removed or replaced it by the time they start."""
    import digitpipe.batch as engine
    from digitpipe import inference

    path, _ = folder
    model = tmp_path / "model.tflite"
    monkeypatch.setattr(engine, "CHUNK", 6)
    monkeypatch.setattr(engine, "worker_count", lambda: 2)  # worker processes even on a machine with one core
    outputs = {}
    for mode, parallel_from in (("one process", 10**9), ("workers", 1)):
        shutil.copy(small_exports["int8"], model)
        monkeypatch.setattr(engine, "PARALLEL_FROM", parallel_from)
        real = inference.Predictor.load

        def gone_once_loaded(where, real=real):
            loaded = real(where)
            Path(where).unlink(missing_ok=True)
            return loaded

        monkeypatch.setattr(inference.Predictor, "load", staticmethod(gone_once_loaded))
        out = tmp_path / f"{mode}.csv"
        assert predict([str(path), "--model", str(model), "--csv", str(out)]) == 0
        monkeypatch.setattr(inference.Predictor, "load", staticmethod(real))
        outputs[mode] = out.read_text()
    assert not model.exists()
    assert outputs["workers"] == outputs["one process"] and len(outputs["workers"].splitlines()) == 1 + 25


def test_every_export_carries_the_models_card(small_model, small_exports):
    from digitpipe.card import read_card

    card = read_card(small_model)
    assert card.known and card.classes == [str(i) for i in range(10)] and card.normalize == "mnist"
    from digitpipe.export import calibrated_card

    for name, path in small_exports.items():  # the float exports' graphs apply the temperature, and say so
        assert read_card(path) == (card if name == "int8" else calibrated_card(card)), name


@pytest.mark.parametrize("kind", ["keras", "float"])
def test_predict_applies_the_policy_and_classes_the_model_was_trained_with(kind, small_model, small_exports,
                                                                           tmp_path, mnist, capsys):
    """A model whose card says `none` and names its classes: predict shows those names and feeds the model the
    image as decoded (a light-background image is not inverted), with no flag to remember."""
    import shutil

    from digitpipe import training
    from digitpipe.card import Card, read_card, write_saved_model_card
    from digitpipe.export import to_tflite
    from digitpipe.images import model_pixels
    from digitpipe.inference import Predictor

    card = Card(classes=list("abcdefghij"), normalize="none", params={})
    if kind == "keras":
        model = tmp_path / "letters.keras"
        shutil.copy(small_model, model)
        training.stabilise_keras_file(model, card)
    else:
        saved = tmp_path / "letters_saved"  # the export's graph with this card beside it
        shutil.copytree(small_exports["saved"], saved)
        write_saved_model_card(saved, card)
        model = tmp_path / "letters.tflite"
        model.write_bytes(to_tflite(saved))
    assert read_card(model) == card
    on_paper = 255 - mnist[0][3]  # dark ink on white: `mnist` would invert it, `none` must not
    Image.fromarray(on_paper).save(tmp_path / "paper.png")
    assert predict([str(tmp_path / "paper.png"), "--model", str(model), "--json", "--top-k", "10"]) == 0
    shown = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    probs = Predictor.load(model).probabilities(model_pixels([on_paper], "none"))[0]
    assert {t["label"]: t["probability"] for t in shown} == pytest.approx(
        {c: float(p) for c, p in zip("abcdefghij", probs, strict=True)}, abs=1e-6)
    inverted = Predictor.load(model).probabilities(model_pixels([on_paper], "mnist"))[0]
    assert not np.allclose(probs, inverted, atol=1e-3)  # the policy made a difference the test can see


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores raw byte names")
def test_a_file_name_that_is_not_utf8_is_shown_escaped_in_every_output(folder, small_model, tmp_path, mnist, capsys):
    """Bytes of a name that are not UTF-8 appear as \\xNN in text, CSV and JSON alike; every output stays UTF-8."""
    path, _ = folder
    raw = os.path.join(os.fsencode(path), b"img_\xff.jpg")
    with open(raw, "wb") as f:
        f.write(encode_jpeg(mnist[0][0]))
    shown = f"{path}/img_\\xff.jpg"
    out = tmp_path / "all.csv"
    assert predict([str(path), "--model", str(small_model), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 26 and all(r["label"] and r["confidence"] for r in rows)
    assert rows[-1]["path"] == shown
    capsys.readouterr()
    assert predict([os.fsdecode(raw), "--model", str(small_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"][0]["path"] == shown
    assert predict([os.fsdecode(raw), "--model", str(small_model)]) == 0
    assert capsys.readouterr().out.startswith(f"{shown}: 0 (")


def test_a_newline_or_tab_in_a_file_name_never_splits_a_line(tmp_path, mnist, small_model, capsys):
    names = ["two\nlines.jpg", "a\tb.jpg", "carriage\rreturn.jpg", "plain.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(encode_jpeg(mnist[0][0]))
    (tmp_path / "blank\n.png").write_bytes(b"")  # a failure line too
    shown = [str(tmp_path / n).replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") for n in names]
    assert predict([str(tmp_path / n) for n in [*names, "blank\n.png"]] + ["--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.splitlines()] == shown
    assert err == f"error: {tmp_path}/blank\\n.png: empty file\n"
    csv_out = tmp_path / "out.csv"
    assert predict([str(tmp_path / n) for n in names] + ["--model", str(small_model), "--csv", str(csv_out)]) == 0
    assert csv_out.read_text().count("\n") == 1 + len(names)
    assert [r["path"] for r in csv.DictReader(csv_out.open())] == shown


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that stores raw byte names")
def test_names_that_differ_are_never_shown_alike(tmp_path, mnist, small_model, capsys):
    """A backslash in a name is shown doubled, so a name holding the two characters backslash-n is not shown as
    the name holding a newline, nor the four characters backslash-x-f-f as the byte ff."""
    raws = [b"a\nb.jpg", b"a\\nb.jpg", b"img_\xff.jpg", b"img_\\xff.jpg"]
    for raw in raws:
        with open(os.path.join(os.fsencode(tmp_path), raw), "wb") as f:
            f.write(encode_jpeg(mnist[0][0]))
    assert predict([str(tmp_path), "--model", str(small_model), "--json"]) == 0
    paths = [p["path"].removeprefix(f"{tmp_path}/") for p in json.loads(capsys.readouterr().out)["predictions"]]
    assert sorted(paths) == sorted(["a\\nb.jpg", "a\\\\nb.jpg", "img_\\xff.jpg", "img_\\\\xff.jpg"])


@pytest.mark.parametrize("option", ["--submission", "--csv"])
def test_a_full_disk_is_one_line_and_exit_2(folder, small_model, option):
    path, _ = folder
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", str(path / "img_1.jpg"), "--model",
                           str(small_model), option, "/dev/full"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=path)
    assert proc.returncode == 2
    assert proc.stderr == "error: cannot write /dev/full: No space left on device\n"


@pytest.mark.parametrize("option", ["--submission", "--csv"])
def test_an_output_cut_short_leaves_the_old_file_whole(folder, small_model, tmp_path, monkeypatch, option):
    """The disk fills up after a few rows: the file keeps its old content, whole, and no temporary file is left."""
    import errno

    path, _ = folder
    out = tmp_path / "out" / "result.csv"
    out.parent.mkdir()
    out.write_text("the previous run's result\n")
    real_writer = csv.writer

    class FillsUp:
        def __init__(self, f, **kwargs):
            self.rows, self.writer = 0, real_writer(f, **kwargs)

        def writerow(self, row):
            self.rows += 1
            if self.rows > 5:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.writer.writerow(row)

        def writerows(self, rows):
            for row in rows:
                self.writerow(row)

    monkeypatch.setattr(csv, "writer", FillsUp)
    with pytest.raises(DigitpipeError) as err:
        predict([str(path), "--model", str(small_model), option, str(out)])
    assert str(err.value) == f"cannot write {out}: No space left on device"
    assert out.read_text() == "the previous run's result\n"
    assert os.listdir(out.parent) == ["result.csv"]


def test_a_folder_that_gives_no_file_is_an_error_not_silence(tmp_path, mnist, small_model):
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(loop)  # a folder that links to itself, and nothing else
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".DS_Store").write_bytes(b"\0")
    (hidden / "Thumbs.db").write_bytes(b"\0")
    selfloop = tmp_path / "selfloop"
    selfloop.mkdir()
    (selfloop / "x.jpg").symlink_to(selfloop / "x.jpg")  # a link that loops: not even a file
    proc = subprocess.run([sys.executable, "-m", "digitpipe.predict", "loop", "hidden", "selfloop", "--model",
                           str(small_model)], capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(ROOT)},
                          cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: loop: no image files found (1 linked folder(s), not followed)",
        "error: hidden: no image files found (2 hidden or system file(s))",
        "error: selfloop/x.jpg: cannot read: Too many levels of symbolic links",
    ]


def test_a_blank_image_is_no_digit_found_in_the_words_ingest_uses(folder, small_model, tmp_path, capsys):
    from digitpipe.ingest import Policy, inspect_file

    path, truth = folder
    Image.new("L", (28, 28), 255).save(path / "img_26.png")
    Image.new("RGB", (300, 200), (40, 40, 40)).save(path / "img_27.jpg")
    assert predict([str(path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"error: {path / name}: nothing to classify: every pixel has the gray value {value}"
                                for name, value in (("img_26.png", 255), ("img_27.jpg", 40))]
    assert len(out.splitlines()) == len(truth)
    ingested = inspect_file(("img_26.png", "0"), path, Policy())
    assert (ingested["reason"], ingested["message"]) == ("blank",
                                                         "nothing to classify: every pixel has the gray value 255")


def test_an_image_with_nothing_standing_out_is_no_digit_found_in_predict_and_on_the_web(folder, small_model, capsys):
    """Faint paper noise: not one value everywhere, but the MNIST policy finds no ink in it."""
    from fastapi.testclient import TestClient

    from digitpipe.web import create_app

    path, truth = folder
    noise = np.random.default_rng(0).integers(250, 256, (60, 60), dtype=np.uint8)
    Image.fromarray(noise).save(path / "img_28.png")
    assert predict([str(path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    words = "nothing to classify: nothing the size of a digit stands out from the background"
    assert err.splitlines() == [f"error: {path / 'img_28.png'}: {words}"]
    assert len(out.splitlines()) == len(truth)
    with TestClient(create_app(small_model)) as client:
        answer = client.post("/api/predict", content=(path / "img_28.png").read_bytes(),
                             headers={"Content-Type": "image/png"}).json()
        blank = client.post("/api/predict", content=png_of(np.full((28, 28), 255, np.uint8)),
                            headers={"Content-Type": "image/png"}).json()
    assert (answer["empty"], answer["message"]) == (True, words)
    assert (blank["empty"], blank["message"]) == (True, "nothing to classify: every pixel has the gray value 255")


def test_images_ingest_refuses_as_too_small_or_animated_are_refused_by_predict_and_the_page_in_its_words(
        tmp_path, small_model, capsys, mnist):
    """A 5x5 icon came back `3 (73%)` and an animated GIF was read by its first frame, where ingest refuses both:
    now every reader refuses them, in the same words. A phone's MPO photo (two frames) is still read."""
    from fastapi.testclient import TestClient

    from digitpipe.ingest import Policy, inspect_file
    from digitpipe.web import create_app
    from tests.helpers import mpo_bytes

    digit = Image.fromarray(mnist[0][1])
    Image.new("L", (5, 5), 0).save(tmp_path / "icon.png")
    digit.resize((40, 7)).save(tmp_path / "strip.png")
    digit.save(tmp_path / "anim.gif", save_all=True, append_images=[digit.rotate(90)])
    (tmp_path / "phone.jpg").write_bytes(mpo_bytes(digit.resize((56, 56))))
    words = {"icon.png": ("too_small", "5x5: a side under 8 px is too small to classify"),
             "strip.png": ("too_small", "40x7: a side under 8 px is too small to classify"),
             "anim.gif": ("multi_frame", "2 frames (animation or multi-page); save one frame")}
    assert predict([str(tmp_path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"error: {tmp_path / name}: {words[name][1]}" for name in sorted(words)]
    assert out.startswith(f"{tmp_path / 'phone.jpg'}: ") and len(out.splitlines()) == 1
    with TestClient(create_app(small_model)) as client:
        for name, (reason, message) in words.items():
            row = inspect_file((name, "0"), tmp_path, Policy())
            assert (row["reason"], row["message"]) == (reason, message)  # ingest's reason and words
            answer = client.post("/api/predict", content=(tmp_path / name).read_bytes(),
                                 headers={"Content-Type": "image/png"})
            assert (answer.status_code, answer.json()["error"]) == (400, f"That image cannot be classified: {message}.")


@pytest.mark.parametrize(("side", "paper"), [(1, 0), (2, 0), (1, 255)])
def test_a_28x28_speck_is_no_digit_though_it_looks_like_mnist_form(tmp_path, small_model, capsys, side, paper, mnist):
    """A dot on a 28x28 image is small and centred, as an MNIST digit is, so it used to go to the model as it was
    (and came back a 1 at 74%); it is refused as the same dot on a big page is, and a real 28x28 digit is not."""
    from fastapi.testclient import TestClient

    from digitpipe.web import create_app

    dot = np.full((28, 28), paper, np.uint8)
    dot[13:13 + side, 14:14 + side] = 255 - paper
    Image.fromarray(dot).save(tmp_path / "dot.png")
    Image.fromarray(mnist[0][1]).save(tmp_path / "digit.png")
    assert predict([str(tmp_path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    words = "nothing to classify: nothing the size of a digit stands out from the background"
    assert err.splitlines() == [f"error: {tmp_path / 'dot.png'}: {words}"]
    assert out.startswith(f"{tmp_path / 'digit.png'}: {mnist[1][1]} (")
    with TestClient(create_app(small_model)) as client:
        answer = client.post("/api/predict", content=(tmp_path / "dot.png").read_bytes(),
                             headers={"Content-Type": "image/png"}).json()
    assert (answer["empty"], answer["message"]) == (True, words)


@pytest.mark.parametrize("side", [1, 4, 8, 27])
def test_a_speck_is_no_digit_and_a_small_digit_is_read(folder, small_model, capsys, side):
    """A dot scaled up to the 20x20 box would be a solid blob, read as a confident class; a digit drawn small
    (a tenth of the page and more) is still a digit."""
    from fastapi.testclient import TestClient

    from digitpipe.web import create_app

    path, truth = folder
    page = np.full((280, 280), 255, np.uint8)
    page[100:100 + side, 150:150 + side] = 0
    Image.fromarray(page).save(path / "img_29.png")
    small = Image.new("L", (280, 280), 0)
    small.paste(Image.open(path / "img_1.jpg").resize((56, 56)), (30, 200))  # ink 40 px tall, off the middle
    small.save(path / "img_30.png")
    assert predict([str(path), "--model", str(small_model)]) == 1
    out, err = capsys.readouterr()
    words = "nothing to classify: nothing the size of a digit stands out from the background"
    assert err.splitlines() == [f"error: {path / 'img_29.png'}: {words}"]
    assert len(out.splitlines()) == len(truth) + 1 and f"{path / 'img_30.png'}: {truth[1]} (" in out
    with TestClient(create_app(small_model)) as client:
        answer = client.post("/api/predict", content=(path / "img_29.png").read_bytes(),
                             headers={"Content-Type": "image/png"}).json()
    assert (answer["empty"], answer["message"]) == (True, words)


def png_of(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_a_folder_that_cannot_be_listed_is_reported_not_passed_over(tmp_path, mnist, monkeypatch):
    """No permission on a folder (simulated: the tests may run as root, who may read anything)."""
    from digitpipe.targets import find_images

    (tmp_path / "top" / "locked").mkdir(parents=True)
    (tmp_path / "top" / "img_1.jpg").write_bytes(encode_jpeg(mnist[0][0]))
    (tmp_path / "alone").mkdir()
    real_scandir = os.scandir

    def refusing(path="."):
        if os.path.basename(path) in ("locked", "alone"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    files, failures = find_images([str(tmp_path / "top"), str(tmp_path / "alone")])
    assert files == [str(tmp_path / "top" / "img_1.jpg")]
    denied = "cannot read: Permission denied"
    assert [(f.path, f.reason) for f in failures] == [(str(tmp_path / "top" / "locked"), denied),
                                                      (str(tmp_path / "alone"), denied)]


def test_a_percentage_is_never_rounded_to_a_certainty_it_is_not():
    from digitpipe.output import percent

    assert [percent(p) for p in (0.99996, 0.9995, 0.9994, 0.5, 0.00049, 0.0005, 0.0)] == [
        ">99.9%", ">99.9%", "99.9%", "50.0%", "<0.1%", "0.1%", "<0.1%"]


def test_min_confidence_marks_the_answers_below_it_unsure_in_every_output(folder, small_model, tmp_path, capsys):
    path, _ = folder
    model = ["--model", str(small_model)]
    assert predict([str(path), *model, "--json"]) == 0
    confidence = {p["path"]: p["confidence"] for p in json.loads(capsys.readouterr().out)["predictions"]}
    ranked = sorted(set(confidence.values()))
    level = (ranked[len(ranked) // 2 - 1] + ranked[len(ranked) // 2]) / 2  # about half fall below it, none on it
    below = {p for p, c in confidence.items() if c < level}
    assert 0 < len(below) < len(confidence)
    assert predict([str(path), *model, "--json", "--min-confidence", str(level)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {p["path"] for p in doc["predictions"] if p["unsure"]} == below
    lowest = min(confidence.values())
    assert predict([str(path), *model, "--json", "--min-confidence", str(lowest / 2)]) == 0
    note = f"note: none of {len(confidence)} prediction(s) below {level_text(lowest / 2)}% confidence\n"
    assert capsys.readouterr().err == note  # not "0 of 20 ..., marked unsure: check them by hand"
    out = tmp_path / "all.csv"
    assert predict([str(path), *model, "--csv", str(out), "--min-confidence", f"{level * 100}%"]) == 0
    assert {r["path"] for r in csv.DictReader(out.open()) if r["unsure"] == "1"} == below
    assert predict([str(path), *model, "--min-confidence", str(level)]) == 0
    text = capsys.readouterr()
    marked = {line.split(": ")[0] for line in text.out.splitlines() if "unsure: below" in line}
    assert marked == below
    assert f"note: {len(below)} of 25 prediction(s) below" in text.err
    for line in text.out.splitlines():  # an unsure answer never shows a confidence at or above the level
        if "unsure" in line:
            shown = line.split("(")[1].split("%")[0].lstrip("<>")
            assert float(shown) < level * 100


def test_a_level_just_under_one_is_never_shown_as_100_percent(folder, small_model, capsys):
    path, _ = folder
    assert predict([str(path), "--model", str(small_model), "--min-confidence", "0.99999999"]) == 0
    text = capsys.readouterr()
    assert "unsure: below 99.999999%" in text.out
    assert "prediction(s) below 99.999999% confidence" in text.err
    assert "100%" not in text.out + text.err
    assert [level_text(v) for v in (0.99, 0.999, 0.5, 0.0523412345, 0.99999999999)] == [
        "99", "99.9", "50", "5.234123", "99.999999"]


@pytest.mark.parametrize("value", ["0", "1", "100%", "1.5", "-0.2", "nan", "sure"])
def test_a_min_confidence_that_is_not_a_probability_is_refused_before_any_work(value, folder, capsys):
    path, _ = folder
    with pytest.raises(SystemExit) as exit_info:
        predict([str(path), "--min-confidence", value, "--model", "no/such/model.keras"])
    assert exit_info.value.code == 2  # a usage error, found before the model is even looked for
    assert "is not a confidence level: give one above 0 and below 1" in capsys.readouterr().err


def test_a_run_that_predicts_nothing_leaves_the_output_files_as_they_were(tmp_path, small_model, capsys):
    """A typo in the folder's name predicts nothing: yesterday's predictions are not replaced by a header."""
    out, submission = tmp_path / "predictions.csv", tmp_path / "submission.csv"
    out.write_text("path,label\nold.jpg,7\n")
    submission.write_text("ImageId,Label\n1,7\n")
    code = predict([str(tmp_path / "photoz"), "--model", str(small_model), "--csv", str(out),
                    "--submission", str(submission)])
    assert code == 1
    assert out.read_text() == "path,label\nold.jpg,7\n" and submission.read_text() == "ImageId,Label\n1,7\n"
    assert capsys.readouterr().err.splitlines() == [
        f"error: {tmp_path / 'photoz'}: no such file or folder",
        f"note: no image was predicted, so nothing was written to {submission}, {out} (what was there is left as it "
        "was)"]


def test_names_are_one_file_where_their_folders_are_one_folder(folder, small_model, tmp_path, capsys):
    """`lnk/../x.jpg` is the x.jpg beside the folder lnk leads to, not the one beside lnk: it was dropped as a
    repeat of the other. A folder reached through a link is the folder; a missing path named twice is one error."""
    path, truth = folder
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deep").mkdir(parents=True)
    shutil.copy(path / "img_1.jpg", tmp_path / "a" / "x.jpg")
    shutil.copy(path / "img_2.jpg", tmp_path / "b" / "x.jpg")
    (tmp_path / "a" / "lnk").symlink_to(tmp_path / "b" / "deep")
    (tmp_path / "via").symlink_to(tmp_path / "a")
    names = [tmp_path / "a" / "x.jpg", tmp_path / "a" / "lnk" / ".." / "x.jpg", tmp_path / "via" / "x.jpg"]
    assert predict([*map(str, names), "nosuch", "./nosuch", "--model", str(small_model)]) == 1
    out = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.out.splitlines()] == [str(names[0]), str(names[1])]
    assert out.err.splitlines()[0] == "error: nosuch: no such file or folder" and "./nosuch" not in out.err


def test_a_file_named_twice_is_answered_once(folder, small_model, capsys):
    """A folder and a file in it, or one file under two spellings: one answer each, where first named."""
    path, _ = folder
    first = str(path / "img_1.jpg")
    assert predict([str(path), first, str(path / "." / "img_1.jpg"), "--model", str(small_model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len([p for p in path.iterdir() if not p.name.startswith(".")])
    assert sum(line.startswith(f"{first}:") for line in lines) == 1
