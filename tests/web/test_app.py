"""The web app's API without a browser: predictions, limits, bad uploads, content types and headers."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

from digitpipe import web
from tests.helpers import ENV, ROOT, eps_bytes, small_model_split
from tests.web.serving import assert_secure

PNG = {"content-type": "image/png"}


@pytest.fixture(scope="module")
def client(small_model):
    from fastapi.testclient import TestClient

    return TestClient(web.create_app(small_model))


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_page_is_self_contained(client):
    page = client.get("/").text
    assert "<canvas" in page and "api/predict" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from the internet


def test_predicts_an_uploaded_photo_of_ink_on_paper(client, mnist):
    images, labels = mnist
    i = small_model_split(labels)[2][0]
    photo = Image.fromarray(255 - images[i]).resize((300, 300)).convert("RGB")
    answer = client.post("/api/predict", content=png(photo), headers={"content-type": "image/png"}).json()
    assert answer["label"] == str(labels[i])
    assert len(answer["probabilities"]) == 10
    assert abs(sum(p["p"] for p in answer["probabilities"]) - 1) < 1e-4
    seen = np.asarray(Image.open(io.BytesIO(__import__("base64").b64decode(answer["input"]))))
    assert seen.shape == (28, 28)


def test_blank_canvas_is_not_a_digit(client):
    answer = client.post("/api/predict", content=png(Image.new("L", (280, 280), 255)), headers=PNG).json()
    assert answer["empty"] is True


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"", 400, "empty"),
    (b"definitely not an image", 400, "not an image"),
    (png(Image.new("L", (280, 280), 255))[:60], 400, "damaged"),
    (png(Image.new("1", (6000, 6000))), 400, "too large"),
    (png(Image.new("1", (20000, 20000))), 400, "too large"),  # past Pillow's own decompression-bomb limit
], ids=["empty", "text", "truncated", "huge", "bomb"])
def test_bad_uploads_get_a_clear_message(client, body, status, message):
    response = client.post("/api/predict", content=body, headers=PNG)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.get("/api/status").json()["ready"] is True  # still serving


def test_an_eps_upload_is_not_an_image_the_page_reads_and_ghostscript_never_runs(client, mnist, fake_ghostscript):
    data = eps_bytes(Image.fromarray(mnist[0][0]))
    response = client.post("/api/predict", content=data, headers={"content-type": "application/postscript"})
    assert response.status_code == 415  # not an image type: refused before its bytes are looked at
    response = client.post("/api/predict", content=data, headers={"content-type": "application/octet-stream"})
    assert (response.status_code, response.json()) == (400, {"error": "That file is not an image the page can read "
                                                                      f"(use {web.READABLE})."})
    assert web.image_pixels(data) == 0
    assert not fake_ghostscript.exists()


def missing_dimensions_tiff() -> bytes:
    """A TIFF whose damaged header makes Pillow raise a TypeError ("Missing dimensions") while counting its
    frames: no OSError, so a page that caught only those answered 500."""
    out = io.BytesIO()
    Image.new("L", (100, 100), 128).save(out, format="TIFF")
    data = bytearray(out.getvalue())
    data[118] = 100  # one byte of the first directory entry's value
    return bytes(data)


def test_a_damaged_file_that_raises_an_unusual_error_is_a_400_in_predicts_words(client, tmp_path):
    from digitpipe.batch import read
    from digitpipe.decode import gray_from_bytes

    data = missing_dimensions_tiff()
    with pytest.raises(TypeError, match="Missing dimensions"):  # what Pillow raises on it
        gray_from_bytes(data)
    response = client.post("/api/predict", content=data, headers={"content-type": "image/tiff"})
    assert (response.status_code, response.json()) == (400, {"error": "That image is damaged: cannot decode: "
                                                                      "Missing dimensions."})
    (tmp_path / "bad.tif").write_bytes(data)
    assert read(str(tmp_path / "bad.tif")) == "cannot decode: Missing dimensions"  # predict's words, the same
    huge = client.post("/api/predict", content=png(Image.new("1", (6000, 6000))), headers=PNG).json()["error"]
    assert huge == "6000x6000 pixels is too large to classify; the page takes up to 25 megapixels."


def test_request_bodies_are_limited(client):
    response = client.post("/api/predict", content=b"x" * (web.MAX_BODY + 1), headers=PNG)
    assert response.status_code == 413


def test_no_endpoint_reads_files(client):
    for path in ("/params.yaml", "/../params.yaml", "/static/../../params.yaml", "/models/model.keras",
                 "/docs", "/openapi.json"):
        assert client.get(path).status_code == 404
    long = client.get("/" + "a" * 20_000)  # an error repeats a few hundred characters of the path, not all
    assert long.status_code == 404 and long.json()["error"] == f"Not Found: GET /{'a' * 196}..."


def test_missing_model_is_reported_not_a_crash(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    client = TestClient(web.create_app(Path("models/model.keras")))
    status = client.get("/api/status").json()
    assert status["ready"] is False
    assert status["problem"] == ("model models/model.keras not found: run `dvc repro` to make it; the server loads it "
                                 "once it is there")
    assert status["model_id"] is None
    response = client.post("/api/predict", content=png(Image.new("L", (28, 28))), headers=PNG)
    assert response.status_code == 503 and response.json()["error"] == status["problem"]  # the same advice
    other = TestClient(web.create_app(tmp_path / "nope.keras")).get("/api/status").json()
    assert other["problem"] == "model nope.keras not found: check the path; the server loads it once it is there"
    assert other["model"] == "nope.keras" and str(tmp_path) not in str(other)  # no server path on the network


def test_a_model_that_is_a_pipe_is_the_pages_problem_not_a_loader_waiting_for_ever(tmp_path):
    from fastapi.testclient import TestClient

    os.mkfifo(tmp_path / "model.keras")
    status = TestClient(web.create_app(tmp_path / "model.keras")).get("/api/status").json()
    assert not status["ready"]
    assert status["problem"] == ("model model.keras could not be loaded: it is not a regular file (a pipe, socket "
                                 "or device); give the model file; the server loads it again when the file changes")


def test_class_names_that_do_not_fit_the_model_are_the_pages_problem_not_each_drawings(small_model, mnist):
    from fastapi.testclient import TestClient

    client = TestClient(web.create_app(small_model, classes=["a", "b", "c"]))
    status = client.get("/api/status").json()
    assert not status["ready"]
    assert status["problem"] == (f"model {small_model.name}: the model has 10 outputs but 3 class names were given; "
                                 "the server loads it again when the file changes")
    reply = client.post("/api/predict", content=png(Image.fromarray(mnist[0][0])), headers=PNG)
    assert reply.status_code == 503 and reply.json()["error"] == status["problem"]


def test_answers_below_the_min_confidence_are_marked_unsure(small_model, mnist):
    """As ``predict --min-confidence`` marks them: below the level, not at it; the page reads the level from status."""
    from fastapi.testclient import TestClient

    images, labels = mnist
    default = TestClient(web.create_app(small_model))
    assert default.get("/api/status").json()["min_confidence"] == web.MIN_CONFIDENCE == 0.9
    bodies = [png(Image.fromarray(255 - images[i]).resize((280, 280))) for i in small_model_split(labels)[2][:30]]
    p, body = min((default.post("/api/predict", content=b, headers=PNG).json()["confidence"], b) for b in bodies)
    assert 0.01 < p < 0.99  # the least sure answer, so that a level either side of it is a valid one
    for level, unsure in [(p + 0.005, True), (p - 0.005, False), (float(np.float32(p)), False)]:
        client = TestClient(web.create_app(small_model, min_confidence=level))
        assert client.get("/api/status").json()["min_confidence"] == level
        answer = client.post("/api/predict", content=body, headers=PNG).json()
        assert answer["confidence"] == p and answer["unsure"] is unsure


@pytest.mark.parametrize("value", ["0", "1", "100%", "nan", "sure"])
def test_a_min_confidence_that_is_not_a_probability_is_refused(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        web.parse_args(["--min-confidence", value])
    assert exit_info.value.code == 2
    assert "is not a confidence level: give one above 0 and below 1" in capsys.readouterr().err
    assert web.parse_args(["--min-confidence", "99%"]).min_confidence == 0.99


@pytest.mark.parametrize("value", ["99999", "65536", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        web.parse_args(["--port", value])
    assert exit_info.value.code == 2
    assert f"argument --port: {value!r} is not a port number: give one from 0 to 65535" in capsys.readouterr().err
    assert [web.parse_args(["--port", p]).port for p in ("0", "65535")] == [0, 65535]


def test_a_port_out_of_range_is_one_usage_line_not_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "digitpipe.web", "--port", "99999"], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].endswith("error: argument --port: '99999' is not a port number: give one from "
                                                 "0 to 65535")
    assert "Traceback" not in proc.stderr


def test_binds_to_localhost_by_default():
    assert web.parse_args([]).host == "127.0.0.1"
    assert web.parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "IMAGE/PNG", "image/png; charset=binary",
                                          "application/octet-stream"])
def test_images_and_plain_bytes_are_accepted(client, content_type):
    blank = png(Image.new("L", (28, 28)))
    response = client.post("/api/predict", content=blank, headers={"content-type": content_type})
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "multipart/form-data; boundary=x",
                                          "application/x-www-form-urlencoded", "image/", None])
def test_other_content_types_are_refused(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/predict", content=png(Image.new("L", (28, 28))), headers=headers)
    assert response.status_code == 415
    message = response.json()["error"]
    assert "image/*" in message and "application/octet-stream" in message
    assert "\n" not in message


def test_every_answer_carries_the_security_headers(client):
    blank = png(Image.new("L", (28, 28)))
    answers = [client.get("/"), client.get("/api/status"),
               client.post("/api/predict", content=blank, headers=PNG),
               client.post("/api/predict", content=b"nope", headers=PNG),                     # 400
               client.get("/nothing-here"),                                                    # 404
               client.get("/api/predict"),                                                     # 405
               client.post("/api/predict", content=b"x" * (web.MAX_BODY + 1), headers=PNG),  # 413
               client.post("/api/predict", content=blank, headers={"content-type": "text/plain"})]  # 415
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 404, 405, 413, 415]
    for answer in answers:
        assert_secure(answer)


def test_an_unexpected_error_still_carries_the_security_headers(small_model, monkeypatch):
    from fastapi.testclient import TestClient

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web, "classify", broken)
    client = TestClient(web.create_app(small_model), raise_server_exceptions=False)
    response = client.post("/api/predict", content=png(Image.new("L", (28, 28))), headers=PNG)
    assert response.status_code == 500
    assert_secure(response)


def test_the_policy_allows_exactly_the_pages_own_script_and_style(client):
    import base64
    import hashlib
    import re

    page = client.get("/")
    policy = page.headers["content-security-policy"]
    for tag in ("script", "style"):
        (block,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page.text, flags=re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy


def test_a_header_is_read_off_the_event_loop_and_a_crafted_file_takes_the_large_lane(client, monkeypatch, mnist):
    """A crafted PNG (thousands of compressed text chunks) or TIFF (a directory of 65,000 entries) kept the event
    loop busy for a fifth to a third of a second while Pillow read its header, holding up every other request.
    A PNG's size is read from its fixed place, with no Pillow; other headers are read in a thread; and an upload
    far bigger than its pixels need goes to the large lane, where its slow decoding holds up no drawing."""
    import asyncio

    from PIL.PngImagePlugin import PngInfo

    read, lanes = [], []
    real_pixels, real_run = web.image_pixels, web.Lane.run

    def spy_pixels(data):
        try:
            asyncio.get_running_loop()
            read.append("on the loop")
        except RuntimeError:
            read.append("in a thread")
        return real_pixels(data)

    async def spy_run(self, work, *args):
        lanes.append(self.name)
        return await real_run(self, work, *args)

    monkeypatch.setattr(web, "image_pixels", spy_pixels)
    monkeypatch.setattr(web.Lane, "run", spy_run)
    digit = Image.fromarray(255 - mnist[0][0]).resize((280, 280))
    jpeg = io.BytesIO()
    digit.save(jpeg, format="JPEG")
    padded = io.BytesIO()
    info = PngInfo()
    info.add_text("padding", "x" * web.LARGE_BYTES)  # a drawing's pixels in a file the size of a photo
    digit.save(padded, format="PNG", pnginfo=info)
    for body, kind in ((png(digit), "image/png"), (jpeg.getvalue(), "image/jpeg"), (padded.getvalue(), "image/png")):
        response = client.post("/api/predict", content=body, headers={"content-type": kind})
        assert response.status_code == 200, response.text
        assert response.json()["label"] == str(mnist[1][0])
    assert read == ["in a thread"]  # the JPEG's header alone went to Pillow, and not on the loop
    assert lanes == ["small", "small", "large"]
    assert web.png_pixels(png(digit)) == 280 * 280 and web.png_pixels(jpeg.getvalue()) is None


def test_a_full_large_lane_answers_503_at_once(monkeypatch, tmp_path):
    """Large images wait in a bounded queue: once it is full, the next one is refused at once with a
    Retry-After, and those admitted are all answered when the work resumes."""
    from digitpipe.card import Card
    from digitpipe.inference import Predictor

    release = threading.Event()
    calls = []

    class Stuck(Predictor):
        """A model that holds every call until released, so the lane fills up deterministically."""

        num_classes = 10
        card = Card()

        def probabilities(self, x):
            calls.append(1)
            release.wait(30)
            return np.full((1, 10), 0.1, dtype=np.float32)

    monkeypatch.setattr(Predictor, "load", staticmethod(lambda path: Stuck()))
    (tmp_path / "stuck.keras").write_bytes(b"a stand-in: the app reads the file's bytes for the model's id")
    app = web.create_app(tmp_path / "stuck.keras")
    lane = app.state.lanes["large"]
    page = Image.new("L", (1500, 1500), 255)  # 2.25 megapixels: the large lane
    page.paste(0, (700, 300, 800, 1200))  # a dark stroke, a 1: a blank page would be answered before the model
    big = png(page)
    codes = []

    async def post(client: httpx.AsyncClient) -> None:
        codes.append((await client.post("/api/predict", content=big, headers=PNG)).status_code)

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://digitpipe", timeout=60) as client:
            async with anyio.create_task_group() as tasks:
                for _ in range(lane.capacity):
                    tasks.start_soon(post, client)
                with anyio.fail_after(30):
                    while lane.pending < lane.capacity:
                        await anyio.sleep(0.01)
                with anyio.fail_after(5):
                    refused = await client.post("/api/predict", content=big, headers=PNG)
                release.set()
            return refused

    try:
        refused = anyio.run(scenario)
    finally:
        release.set()
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    message = refused.json()["error"]
    assert "busy" in message and "\n" not in message
    assert_secure(refused)
    assert codes == [200] * lane.capacity
    assert len(calls) == lane.capacity, "every admitted image reached the model"


def test_unknown_paths_and_methods_get_the_one_line_error_and_head_works(client):
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found: GET /nowhere"})
    wrong = client.delete("/api/predict")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed: DELETE /api/predict"})
    assert wrong.headers["allow"] == "POST"
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""


# a model file replaced while the app serves: `dvc repro` and `dvc exp run` retrain in the same workspace

def renamed_model(small_model: Path, dest: Path, classes: list[str]) -> Path:
    """The small model with other class names in its card: another file (another id) whose answers say which
    model gave them, made in a moment."""
    from dataclasses import replace

    from digitpipe.card import read_card
    from digitpipe.training import stabilise_keras_file

    shutil.copy(small_model, dest)
    stabilise_keras_file(dest, replace(read_card(small_model), classes=classes))
    return dest


def put(path: Path, source: Path | bytes) -> None:
    """Replace ``path`` at once, as training saves a model (a new file renamed over the old one)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    tmp.replace(path)


def drawing(mnist, k: int = 0) -> bytes:
    images, labels = mnist
    return png(Image.fromarray(255 - images[small_model_split(labels)[2][k]]).resize((280, 280)))


def status_until(client, condition, timeout: float = 60) -> dict:
    """The status once ``condition(status)`` holds (the app looks at the file at most once a second and loads a
    new one in the background); fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/status").json()
        if condition(status):
            return status
        assert time.monotonic() < deadline, f"still {status} after {timeout} s"
        time.sleep(0.1)


def test_a_retrained_model_answers_once_its_file_is_replaced_with_no_error_in_between(small_model, tmp_path, mnist):
    from fastapi.testclient import TestClient

    path = tmp_path / "model.keras"
    shutil.copy(small_model, path)
    letters = [chr(ord("a") + i) for i in range(10)]
    new = renamed_model(small_model, tmp_path / "new.keras", letters)
    logs = []
    body = drawing(mnist)
    with TestClient(web.create_app(path, log=logs.append)) as client:
        before = client.get("/api/status").json()
        assert before["ready"] and before["problem"] is None and len(before["model_id"]) == 12
        # what its card says (the small model's card holds the train params alone: no arch, no seed)
        assert before["model_card"] == {"arch": None, "epochs": 6, "seed": None, "normalize": "mnist", "classes": 10}
        first = client.post("/api/predict", content=body, headers=PNG).json()
        assert first["model_id"] == before["model_id"] and first["label"] in web.DIGITS
        put(path, new)
        answers, deadline = [], time.monotonic() + 60
        while not answers or answers[-1].get("model_id") == before["model_id"]:  # drawing on while it loads
            assert time.monotonic() < deadline, answers[-1]
            reply = client.post("/api/predict", content=body, headers=PNG)
            answers.append({"code": reply.status_code, **reply.json()})
        after = client.get("/api/status").json()
    assert {a["code"] for a in answers} == {200}  # the old model answered until the new one took over
    assert answers[-1]["model_id"] == after["model_id"] != before["model_id"]
    assert answers[-1]["label"] == letters[int(first["label"])]  # the same weights under the new names
    assert [p["label"] for p in answers[-1]["probabilities"]] == letters == after["classes"]
    assert {a["label"] for a in answers[:-1]} <= set(web.DIGITS)
    assert after["ready"] and after["problem"] is None
    assert logs == [f"digitpipe: now answering with model.keras ({after['model_id']}: 10 classes, saved "
                    f"{after['model_saved']})"]


def test_while_the_file_is_gone_the_model_loaded_before_answers_and_the_status_says_so(small_model, tmp_path, mnist):
    from fastapi.testclient import TestClient

    path = tmp_path / "model.keras"
    shutil.copy(small_model, path)
    logs = []
    with TestClient(web.create_app(path, log=logs.append)) as client:
        loaded = client.get("/api/status").json()["model_id"]
        path.unlink()  # as `dvc repro` does when the train stage starts
        gone = status_until(client, lambda s: s["problem"] is not None)
        assert gone["ready"] and gone["model_id"] == loaded
        assert gone["problem"] == (f"model model.keras is gone (a retrain removes it until it saves the next one); "
                                   f"the model loaded before ({loaded}) answers until a new one is there")
        reply = client.post("/api/predict", content=drawing(mnist), headers=PNG)
        assert reply.status_code == 200 and reply.json()["model_id"] == loaded
        put(path, small_model)  # the same model again (training writes equal weights as equal bytes)
        back = status_until(client, lambda s: s["problem"] is None)
        assert back["model_id"] == loaded
    assert logs == []  # nothing new was loaded, and nothing failed


def test_a_damaged_new_file_leaves_the_model_before_answering_and_the_status_names_the_problem(small_model, tmp_path,
                                                                                               mnist):
    from fastapi.testclient import TestClient

    path = tmp_path / "model.keras"
    shutil.copy(small_model, path)
    logs = []
    with TestClient(web.create_app(path, log=logs.append)) as client:
        loaded = client.get("/api/status").json()["model_id"]
        put(path, small_model.read_bytes()[:5000])  # cut short
        status = status_until(client, lambda s: s["problem"] is not None)
        problem = ("model model.keras could not be loaded: not a Keras archive (a .keras file is a zip archive; this "
                   f"one is damaged, cut short or another kind of file); the model loaded before ({loaded}) answers "
                   "until a new one is there")
        assert status["ready"] and status["model_id"] == loaded and status["problem"] == problem
        for k in range(3):
            reply = client.post("/api/predict", content=drawing(mnist, k), headers=PNG)
            assert reply.status_code == 200 and reply.json()["model_id"] == loaded
        assert client.get("/api/status").json()["problem"] == problem
        assert logs == [f"warning: {problem}"]  # once, not at every look
        put(path, renamed_model(small_model, tmp_path / "fixed.keras", [f"c{i}" for i in range(10)]))
        fixed = status_until(client, lambda s: s["model_id"] != loaded)
    assert fixed["problem"] is None and fixed["classes"][0] == "c0" and len(logs) == 2


def test_a_server_started_before_its_model_exists_picks_it_up(small_model, tmp_path, mnist):
    from fastapi.testclient import TestClient

    path = tmp_path / "model.keras"
    logs = []
    with TestClient(web.create_app(path, log=logs.append)) as client:
        status = client.get("/api/status").json()
        assert not status["ready"] and status["model_id"] is None
        assert status["problem"] == "model model.keras not found: check the path; the server loads it once it is there"
        refused = client.post("/api/predict", content=drawing(mnist), headers=PNG)
        assert refused.status_code == 503 and "not found" in refused.json()["error"]
        put(path, small_model)
        status = status_until(client, lambda s: s["ready"])
        answer = client.post("/api/predict", content=drawing(mnist), headers=PNG).json()
    assert status["problem"] is None and answer["model_id"] == status["model_id"]
    assert answer["label"] in web.DIGITS
    assert len(logs) == 1 and logs[0].startswith(f"digitpipe: now answering with model.keras ({status['model_id']}: ")


def test_the_file_is_looked_at_at_most_once_a_second_and_loaded_off_the_event_loop(small_model, tmp_path,
                                                                                    monkeypatch):
    """Many requests a second cost one stat a second; a new file is loaded in a thread of its own, while requests
    are answered by the model before."""
    from fastapi.testclient import TestClient

    from digitpipe.inference import Predictor

    path = tmp_path / "model.keras"
    shutil.copy(small_model, path)
    app = web.create_app(path)
    looks, loading, release = [], threading.Event(), threading.Event()
    real_signature, real_load = web.model_signature, Predictor.load

    def counted(p):
        looks.append(time.monotonic())
        return real_signature(p)

    def slow_load(p):
        loading.set()
        release.wait(30)
        return real_load(p)

    monkeypatch.setattr(web, "model_signature", counted)
    monkeypatch.setattr(Predictor, "load", staticmethod(slow_load))
    with TestClient(app) as client:
        loaded = client.get("/api/status").json()["model_id"]
        looks.clear()  # the ones of the start, however long it took
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            client.get("/api/status")
        assert 2 <= len(looks) <= 3
        put(path, renamed_model(small_model, tmp_path / "new.keras", [f"n{i}" for i in range(10)]))
        deadline = time.monotonic() + 30
        while not loading.is_set():  # the next look finds the new file and starts loading it, held there...
            assert time.monotonic() < deadline
            client.get("/api/status")
            time.sleep(0.05)
        for _ in range(5):  # ...while the model before answers at once
            status = client.get("/api/status").json()
            assert status["model_id"] == loaded and status["problem"] is None
        release.set()
        assert status_until(client, lambda s: s["model_id"] != loaded)["classes"][0] == "n0"


def test_a_file_still_being_written_is_not_judged_half_way(small_model, tmp_path, mnist):
    """A model copied into place in pieces (a plain `cp`, an export writing into its folder) is loaded once it stops
    changing: no request sees a warning about the half-written file, and the model before answers meanwhile."""
    from fastapi.testclient import TestClient

    path = tmp_path / "model.keras"
    shutil.copy(small_model, path)
    new = renamed_model(small_model, tmp_path / "new.keras", [f"w{i}" for i in range(10)]).read_bytes()
    logs, problems = [], set()
    # looks 2 s apart, so a piece written 0.3 s after the last is judged half-way only if the machine stalls 1.7 s
    with TestClient(web.create_app(path, log=logs.append, check_every=2.0)) as client:
        loaded = client.get("/api/status").json()["model_id"]

        def write_slowly() -> None:
            with open(path, "wb") as file:  # in place, in ten pieces over three seconds
                for k in range(10):
                    file.write(new[k * len(new) // 10:(k + 1) * len(new) // 10])
                    file.flush()
                    time.sleep(0.3)

        writer = threading.Thread(target=write_slowly)
        writer.start()
        while writer.is_alive():
            status = client.get("/api/status").json()
            problems.add(status["problem"])
            reply = client.post("/api/predict", content=drawing(mnist), headers=PNG)
            assert reply.status_code == 200 and reply.json()["model_id"] == loaded
            time.sleep(0.1)
        writer.join()
        status = status_until(client, lambda s: s["model_id"] != loaded)
    assert problems == {None} and status["classes"][0] == "w0" and status["problem"] is None
    assert len(logs) == 1 and logs[0].startswith("digitpipe: now answering with model.keras")


def test_a_folder_that_is_no_model_is_refused_without_reading_it(tmp_path, monkeypatch):
    """`serve --model data` (a data folder, or `.`): refused at once, and its files are never listed, read or
    looked at once a second (a big data folder walked on every look would stall every request)."""
    from fastapi.testclient import TestClient

    from digitpipe import inference

    folder = tmp_path / "data"
    (folder / "7").mkdir(parents=True)
    (folder / "7" / "a.jpg").write_bytes(b"not a model")

    def never(path):
        raise AssertionError(f"walked {path}")

    monkeypatch.setattr(inference, "folder_files", never)
    monkeypatch.setattr(web, "folder_files", never)
    with TestClient(web.create_app(folder, check_every=0.01)) as client:
        for _ in range(3):
            status = client.get("/api/status").json()
            time.sleep(0.02)
    assert not status["ready"]
    assert status["problem"].startswith("model data: expected a .keras file, a .tflite file or a SavedModel folder")
