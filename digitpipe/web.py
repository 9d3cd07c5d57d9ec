"""Draw-a-digit web page: a canvas, the prediction, a bar per class and the 28x28 image the model saw.

    python -m digitpipe.web                    # http://127.0.0.1:8000, the pipeline's model
    python -m digitpipe.web --port 9000 --model models/model_int8.tflite
    python -m digitpipe.web --host 0.0.0.0     # reachable from other machines (e.g. your phone)
    python -m digitpipe.web --min-confidence 0.99   # mark the answers below 99% "not sure" (default 90%)

A small ASGI app (FastAPI, served by uvicorn): one self-contained HTML page (no script, font or
style from the internet) and one JSON endpoint that takes image bytes. Drawn digits and uploaded
files go through the same preprocessing as training and ``predict``.

Classification never runs on the event loop: it runs in worker threads, in two lanes sized so that
a burst of huge uploads cannot hold up the drawings beside them (see :class:`Lane`). Every response
carries headers that keep the page from being framed, sniffed or made to load anything else.

The model file is watched (see :class:`ServedModel`): when ``dvc repro`` or ``dvc exp run`` replaces it,
the new model is loaded beside the old one and then answers in its place, so a page kept open while
iterating always gets the current model's answers, each naming the model that gave it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import errno
import hashlib
import io
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitpipe.card import Card
from digitpipe.decode import blank, gray_from_bytes, no_digit, open_file, quiet_decoder_warnings, refusal
from digitpipe.errors import DigitpipeError, missing_output_hint, program, run_main
from digitpipe.images import to_model_input
from digitpipe.inference import folder_files, load_failure, model_signature, not_a_model, refuse_special
from digitpipe.limits import MODEL
from digitpipe.output import confidence_level

MAX_BODY = 5 * 2**20       # bytes: a drawing is ~10 KB, a phone photo a few MB
MAX_PIXELS = 25_000_000    # width x height, checked from the header before decoding
LARGE_PIXELS = 2_000_000   # images above this (about 1600x1200) are classified in the large lane
LARGE_BYTES = 2**18        # and uploads above this (256 KB): a drawing is ~10 KB, a phone photo a few MB
ACCEPTED_TYPES = "image/* or application/octet-stream"
DIGITS = [str(i) for i in range(10)]  # the classes the page is worded for (web.html's DIGITS)
REQUEST_SECONDS = 30.0    # a request's headers and body must arrive within this (--request-timeout)
MAX_CONNECTIONS = 1000    # open connections at most (fewer where the process may open few files)
ACCEPT_BURST = 32         # connections asyncio accepts in one go (the backlog the server is given)
SHOWN_PATH = 200          # characters of a request's path an error repeats
SWITCH_SECONDS = 0.0005   # how long a thread holds the GIL while another waits for it (Python's default: 5 ms)
UNLOGGED = ("Invalid HTTP request received.", "Unsupported upgrade request.", "No supported WebSocket library")
READABLE = "PNG, JPG, GIF, BMP, TIFF or WebP"  # what the server decodes (as ingest and predict do)
MIN_CONFIDENCE = 0.9       # answers below this calibrated confidence are marked "not sure": wrong 1 in 10 or more
CHECK_EVERY = 1.0          # seconds: requests look whether the model file changed at most this often
ID_DIGITS = 12             # hex digits of the model file's SHA-256 that name the loaded model
UNSEEN = object()          # the signature of a file not looked at yet, unequal to any (None included: no file)


def input_png(x: np.ndarray) -> str:
    """The 28x28 uint8 model input as a base64 PNG (as the model sees it)."""
    buf = io.BytesIO()
    Image.fromarray(x, mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def upload_gray(data: bytes) -> np.ndarray:
    """An upload's gray pixels, decoded as ``predict`` decodes a file; raises ``ValueError`` with the page's words
    for one that gives none. Whatever a decoder raises on a bad file is the file's fault, never the server's
    (a 500), and is told in predict's and ingest's words (:func:`digitpipe.decode.refusal`)."""
    if not data:
        raise ValueError("The upload is empty.")
    try:
        return gray_from_bytes(data, max_pixels=MAX_PIXELS)
    except Exception as err:  # noqa: BLE001 - any decoder error: Pillow's plugins raise almost anything
        why = refusal(err)
    if why.reason in ("not_image", "unsupported_format"):
        raise ValueError(f"That file is not an image the page can read (use {READABLE}).")
    if why.reason == "too_large":
        raise ValueError(f"{why.message[0].upper()}{why.message[1:]}; the page takes up to "
                         f"{MAX_PIXELS // 10**6} megapixels.")
    if why.reason in ("too_small", "multi_frame"):
        raise ValueError(f"That image cannot be classified: {why.message}.")
    raise ValueError(f"That image is damaged: {why.message}.")


def classify(data: bytes, predictor, classes: list[str], level: float = MIN_CONFIDENCE) -> dict:
    """Decode, preprocess and classify image bytes; raises ``ValueError`` with a user-facing message. An answer
    whose confidence is below ``level`` is ``unsure``, as ``predict --min-confidence`` marks it."""
    gray = upload_gray(data)
    x = to_model_input(gray, predictor.card.normalize)  # what the model's training data went through
    refused = blank(gray) or no_digit(x)  # in predict's words
    if refused:
        return {"empty": True, "message": refused.message, "input": input_png(x)}
    probs = predictor.probabilities(x)[0]
    best = int(probs.argmax())
    return {"empty": False, "label": classes[best], "confidence": float(probs[best]),
            "unsure": bool(probs[best] < level),
            "probabilities": [{"label": c, "p": float(p)} for c, p in zip(classes, probs, strict=True)],
            "input": input_png(x)}


def png_pixels(data: bytes) -> int | None:
    """Width x height of a PNG from its IHDR chunk, which the format puts first, at a fixed place; None for any
    other bytes. Microseconds, whatever else the file holds, so it runs on the event loop: Pillow, opening a PNG,
    reads every chunk up to the pixels and inflates each text chunk (a crafted 5 MB file: a fifth of a second)."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return width * height
    return None


def image_pixels(data: bytes) -> int:
    """Width x height from the image's header alone (no decoding); 0 when the header cannot be read, since
    :func:`classify` then fails fast anyway. Most headers take well under a millisecond, but Pillow reads some
    whole (a TIFF directory of 65,000 entries: a third of a second), so the app asks it off the event loop."""
    try:
        with open_file(io.BytesIO(data)) as img:  # only the formats classify() reads
            return img.width * img.height
    except Exception:  # any malformed header: classify() reports it with its own message
        return 0


class SerialPredictor:
    """A predictor called by one thread at a time. A TFLite interpreter is not thread-safe, and a 28x28
    model call takes well under a millisecond, so serialising it costs nothing while the slow part
    (decoding and preprocessing) still runs in parallel. Other attributes pass through."""

    def __init__(self, predictor):
        self._predictor = predictor
        self._lock = threading.Lock()

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._predictor.probabilities(x)

    def __getattr__(self, name: str):
        return getattr(self._predictor, name)


def written_lately(signature: tuple, seconds: float) -> bool:
    """Whether a file of the signature was modified less than ``seconds`` ago: it may still be being written."""
    return any(time.time_ns() - mtime < seconds * 1e9 for _, (_, _, mtime) in signature)


def model_digest(path: Path) -> str:
    """The first :data:`ID_DIGITS` hex digits of the SHA-256 of the model file, or of a SavedModel folder's
    files (each one's path and bytes) in sorted order: the model's id, another for any other model. A
    ``.keras`` or ``.tflite`` file, or a SavedModel folder the export stage wrote, holding the same model has
    the same bytes wherever and whenever it was saved (training and export write equal weights as equal
    bytes: :func:`digitpipe.export.stable_export`), so the same id. A folder that is no SavedModel is refused
    unread (a whole data folder given as ``--model`` would take minutes)."""
    refuse_special(path)
    digest = hashlib.sha256()
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise not_a_model(path)
        for rel in folder_files(path):
            digest.update(rel.encode() + b"\0" + (path / rel).read_bytes() + b"\0")
    else:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()[:ID_DIGITS]


def card_facts(card: Card) -> dict | None:
    """What a model's card says that a person recognises it by (None for a model without a card)."""
    if not card.known:
        return None
    params = card.params
    return {"arch": params.get("model", {}).get("arch"), "epochs": params.get("train", {}).get("epochs"),
            "seed": params.get("seed"), "normalize": card.normalize, "classes": len(card.classes)}


@dataclass(frozen=True)
class Loaded:
    """A loaded model with the names the API gives it. Swapped in whole, so that a request never pairs one
    model's predictor with another's class names or id."""

    predictor: SerialPredictor
    classes: list[str]
    id: str             # see model_digest
    card: dict | None   # see card_facts
    saved: str          # the file's modification time, UTC

    def described(self) -> str:
        """``3f2a9c1b7d0e: digitnet, 10 classes, saved 2025-06-01 12:00:00 UTC``, for the terminal."""
        arch = f"{self.card['arch']}, " if self.card and self.card.get("arch") else ""
        return f"{self.id}: {arch}{len(self.classes)} classes, saved {self.saved}"


class ServedModel:
    """The model the server answers with, and the file it comes from, watched for a new one.

    Training replaces the model file while the server runs (``dvc repro`` and ``dvc exp run`` remove it when
    the train stage starts and write the new one when it ends). So requests (status and predict alike) look
    at the file's :func:`model_signature`, at most once every ``interval`` seconds; when it changed, a worker
    thread reads and loads the new file (never the event loop: loading takes seconds) and then swaps it in.
    Until then, and whenever the new file cannot be used (damaged, other classes than those given) or is not
    there, the model loaded before keeps answering, and :meth:`snapshot` says what is wrong with the file. A
    file written lately is loaded once a look finds it unchanged, and one that changed while it was being read
    is read again at the next look, so a half-written file is never judged. ``log`` hears one line when another
    model is loaded and one when a changed file cannot be used; :attr:`first_problem` is what was wrong when
    the server started, in full.
    """

    def __init__(self, path: Path, classes: list[str] | None, log: Callable[[str], None] | None = None,
                 interval: float = CHECK_EVERY):
        self.path, self.given, self.interval = path, classes, interval
        # the model as the page and the API name it: a path from the project as given, an absolute one by its
        # name alone, so that a page served to the network does not show where the server's files are
        self.named = path.name if path.is_absolute() else str(path)
        self.log = log or (lambda line: None)
        self.lock = threading.Lock()  # guards the fields below: the loader thread sets them, requests read them
        self.loaded: Loaded | None = None
        self.problem: str | None = None  # what is wrong with the file, in the page's words
        self.seen: object = UNSEEN       # the signature of the file last looked at
        self.pending: tuple | None = None  # a new signature of a file written lately, loaded if the next look finds it
        self.loading = False
        self.checked = time.monotonic()
        self.first_problem = self.refresh(model_signature(path), settled=False)

    def snapshot(self) -> tuple[Loaded | None, str | None]:
        """The model answering now (None: none) and what is wrong with the file, as one consistent pair."""
        with self.lock:
            return self.loaded, self.problem

    def check(self) -> None:
        """Called by every request: at most once an interval, a stat of the file, and when it changed, a loader
        thread (one at a time). A file written in the last interval is loaded only if the next look finds it
        the same, so that one still being written (a copy, an export into a folder) is not loaded half-way."""
        with self.lock:  # requests come from the event loop and from worker threads: one of them looks
            now = time.monotonic()
            if now - self.checked < self.interval:
                return
            self.checked = now
        seen = model_signature(self.path)
        with self.lock:
            if self.loading or seen == self.seen:
                return
            if self.loaded is None and seen is not None:
                self.problem = f"model {self.named} is being loaded; try again in a moment"
            if seen is not None and seen != self.pending and written_lately(seen, self.interval):
                self.pending = seen
                return
            self.pending, self.loading = None, True
        threading.Thread(target=self.refresh, args=(seen,), name="digitpipe-model-loader", daemon=True).start()

    def refresh(self, seen: tuple | None, settled: bool = True) -> str | None:
        """Look at the file whose signature was ``seen``: load it if it is another model and swap it in, or say
        what is wrong. With ``settled``, a file that changed meanwhile is left for the next look. Returns the
        problem in full (the path as given), for the terminal; None when the model answers."""
        current = self.loaded
        loaded = full = None
        if seen is None:
            full = f"model {self.path} not found: {missing_output_hint(self.path)}"
        else:
            try:
                digest = model_digest(self.path)
                loaded = current if current and current.id == digest else self.load(digest)
            except DigitpipeError as err:
                full = str(err)
            except OSError as err:  # removed or replaced while being read (then it is looked at again), or unreadable
                full = f"model {self.path} could not be read: {(err.strerror or str(err)).lower()}"
            except Exception as err:  # noqa: BLE001 - whatever else a loader raises on a file it cannot use: the
                #                       model before keeps answering, and a loader thread never dies unheard
                full = str(load_failure(self.path, f"{type(err).__name__}: {err}"))
        with self.lock:
            self.loading = False
            changed = model_signature(self.path) != seen
            if settled and changed:
                self.seen = UNSEEN  # changed while it was read: looked at again next time, judged on what it becomes
                return None
            # at the start, what was loaded answers even so (the id may be its forerunner's), and the next look
            # loads the file again and names it
            self.seen = UNSEEN if changed else seen
            if loaded is not None:
                self.loaded, self.problem = loaded, None
            else:
                self.problem = self.in_words(full, seen is None)
        if settled and loaded is not None and loaded is not current:
            self.log(f"digitpipe: now answering with {self.named} ({loaded.described()})")
        elif settled and loaded is None and seen is not None:
            self.log(f"warning: {self.problem}")
        return full

    def in_words(self, full: str, missing: bool) -> str:
        """``full`` for the page: the model by the name it is shown by, and what the server does next."""
        said = full.replace(str(self.path), self.named)
        if self.loaded is not None:
            before = f"the model loaded before ({self.loaded.id}) answers until a new one is there"
            if missing:
                return f"model {self.named} is gone (a retrain removes it until it saves the next one); {before}"
            return f"{said}; {before}"
        return f"{said}; the server loads it {'once it is there' if missing else 'again when the file changes'}"

    def load(self, digest: str) -> Loaded:
        """The model in the file, ready to answer; a :class:`DigitpipeError` when it cannot be used."""
        from digitpipe.inference import Predictor

        predictor = SerialPredictor(Predictor.load(self.path))
        try:  # names that do not fit the model are the page's problem, as predict refuses them before any image
            classes = predictor.class_names(self.given)
        except DigitpipeError as err:
            raise DigitpipeError(f"model {self.path}: {err}") from None
        pb = self.path / "saved_model.pb" if self.path.is_dir() else self.path
        saved = datetime.fromtimestamp(pb.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return Loaded(predictor, classes, digest, card_facts(predictor.card), saved)


class Lane:
    """Runs blocking work in worker threads: at most ``workers`` at once and ``waiting`` more queued.

    The app has two lanes, chosen from the image's header (:func:`png_pixels`, :func:`image_pixels`) and its
    bytes (above :data:`LARGE_BYTES`, the large lane whatever its pixels: such a file is crafted). Drawings and small
    photos take a few milliseconds each; the *small* lane runs two at once (one per core of a small
    machine) and queues up to 32 (a tenth of a second of work). Images above :data:`LARGE_PIXELS`
    take up to about 0.3 s each (a 25-megapixel PNG on one core); the *large* lane runs one at a time,
    so however many arrive, a core stays free for the event loop and the drawings, and queues up to 8
    (a few seconds of work). Work beyond that is refused at once with 503 and a ``Retry-After``
    (about the time the lane needs to make room) rather than queued without bound: the client gets an
    answer it can act on, and the server's memory and latency stay bounded.
    """

    def __init__(self, name: str, workers: int, waiting: int, retry_after: int):
        self.name, self.retry_after = name, retry_after
        self.capacity = workers + waiting
        self.pending = 0  # running + queued; only touched on the event loop, so a plain int is safe
        self.limiter = anyio.CapacityLimiter(workers)

    def full(self) -> bool:
        return self.pending >= self.capacity

    async def run(self, work: Callable, *args):
        """``work(*args)`` in a worker thread; waits for it even if the request is cancelled, so
        :attr:`pending` always counts the threads really in use."""
        self.pending += 1
        try:
            return await anyio.to_thread.run_sync(work, *args, limiter=self.limiter)
        finally:
            self.pending -= 1


def inline_hashes(page: str, tag: str) -> str:
    """CSP sources allowing exactly the page's inline ``<script>`` or ``<style>`` blocks, by their SHA-256."""
    blocks = re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", page, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def security_headers(page: str) -> list[tuple[bytes, bytes]]:
    """Headers for every response. The policy lets the page run its own inline script and style (by hash,
    so an injected script would not run), show ``data:`` and ``blob:`` images (the 28x28 preview and an
    uploaded file on the board) and talk to this server only; nothing else loads, and no site may
    frame it. ``nosniff`` keeps browsers from reading a JSON answer or an upload as HTML."""
    policy = (f"default-src 'none'; script-src {inline_hashes(page, 'script')}; "
              f"style-src {inline_hashes(page, 'style')}; img-src data: blob:; connect-src 'self'; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": policy,
               "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to every HTTP response."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]):
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for key, value in self.headers:
                    headers[key.decode()] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_headers)


class App(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything, so that even the bare 500 answer of an
    unexpected error carries the headers (middleware added the usual way sits inside the error handler)."""

    def __init__(self, security: list[tuple[bytes, bytes]], **kwargs):
        self.security = security
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack(), self.security)


def accepted(content_type: str | None) -> bool:
    """The upload is declared as an image (``image/png``, ``image/jpeg``...) or as plain bytes; the bytes
    themselves decide the format. Anything else (a form, JSON, text, no type at all) is a client mistake."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/octet-stream" or (media.startswith("image/") and len(media) > len("image/"))


def refuse(status: int, message: str, **headers: str) -> JSONResponse:
    """A one-line JSON error."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(model_path: Path = MODEL, classes: list[str] | None = None, min_confidence: float = MIN_CONFIDENCE,
               log: Callable[[str], None] | None = None, check_every: float = CHECK_EVERY):
    """The ASGI app. A missing or broken model is reported by the page and the API, not by a crash, and a new
    model file is picked up while the app runs (see :class:`ServedModel`; ``log`` hears when); answers below
    ``min_confidence`` are marked unsure."""
    page = resources.files("digitpipe").joinpath("web.html").read_text(encoding="utf-8")
    app = App(security_headers(page), title="digitpipe", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.headers = security_headers(page)  # for the answers the server gives before the app sees a request
    model = ServedModel(model_path, classes, log, check_every)
    app.state.model = model
    app.state.problem = model.first_problem  # for the terminal, in full
    loaded, _ = model.snapshot()
    app.state.classes = loaded.classes if loaded else classes or DIGITS
    reading_headers = anyio.Lock()
    small = Lane("small", workers=2, waiting=32, retry_after=1)
    large = Lane("large", workers=1, waiting=8, retry_after=2)
    app.state.lanes = {"small": small, "large": large}

    async def lane_of(data: bytes) -> Lane:
        """The lane of an upload of at most :data:`LARGE_BYTES` (a bigger one is the large lane's, whatever its
        pixels: a photo, or a file crafted to be slow to read), by its pixels. A drawing is a PNG, whose size is
        read at once; other headers are read in a thread, one at a time, so that none holds up the event loop."""
        pixels = png_pixels(data)
        if pixels is None:
            async with reading_headers:
                pixels = await anyio.to_thread.run_sync(image_pixels, data)
        return large if LARGE_PIXELS < pixels <= MAX_PIXELS else small

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        """404, 405 and the like in the API's one-line form, not the framework's ``{"detail": ...}``."""
        path = request.url.path
        path = path if len(path) <= SHOWN_PATH else path[:SHOWN_PATH - 3] + "..."  # a 64 KB URL is no message
        return refuse(err.status_code, f"{err.detail}: {request.method} {path}", **(err.headers or {}))

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.api_route("/api/status", methods=["GET", "HEAD"])  # HEAD: what uptime checks and load balancers send
    def status() -> dict:
        model.check()
        loaded, problem = model.snapshot()
        # ready with a problem: the file is gone or cannot be used, and the model loaded before answers
        return {"ready": loaded is not None, "problem": problem, "model": model.named,
                "model_id": loaded.id if loaded else None, "model_card": loaded.card if loaded else None,
                "model_saved": loaded.saved if loaded else None,
                "classes": loaded.classes if loaded else classes or DIGITS, "min_confidence": min_confidence,
                "max_upload_bytes": MAX_BODY}

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type")
        if not accepted(content_type):
            got = f"got {content_type}" if content_type else "none was given"
            return refuse(415, f"Send the image as Content-Type {ACCEPTED_TYPES} ({got}).")
        model.check()
        loaded, problem = model.snapshot()
        if loaded is None:
            return refuse(503, problem)
        too_big = (f"The upload is larger than {MAX_BODY // 2**20} MB: save the picture smaller (a lower resolution) "
                   "and upload that.")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            return refuse(413, too_big)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return refuse(413, too_big)
        except ClientDisconnect:  # the tab closed mid-upload: nobody to answer, and nothing went wrong here
            return refuse(400, "The upload was cut off.")
        data = bytes(body)
        lane = large if len(data) > LARGE_BYTES else await lane_of(data)
        if lane.full():
            return refuse(503, f"The server is busy with other {lane.name} images; try again in a moment.",
                          **{"Retry-After": str(lane.retry_after)})
        try:
            answer = await lane.run(classify, data, loaded.predictor, loaded.classes, min_confidence)
        except ValueError as err:
            return refuse(400, str(err))
        answer["model_id"] = loaded.id  # the model that answered: the page reads the status again when it changes
        return JSONResponse(answer)

    return app


def raw_answer(status: int, reason: str, message: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 answer, a one-line JSON error with the security headers, that closes the connection:
    for what the server refuses before any request reaches the app."""
    body = json.dumps({"error": message}).encode()
    lines = [f"HTTP/1.1 {status} {reason}".encode(), b"content-type: application/json",
             f"content-length: {len(body)}".encode(), b"connection: close",
             *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def connection_limit() -> int:
    """How many connections the server holds open at most (:data:`MAX_CONNECTIONS`, fewer where the process may
    open few files): the files it may still open, less what accepting can take before the connections over the
    limit are closed (asyncio accepts up to :data:`ACCEPT_BURST` connections a round, and a connection it has
    accepted is seen and closed a few rounds later), so that accepting never fails for want of a file
    descriptor, which asyncio logs with a traceback each time."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    try:
        open_now = len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))
    except OSError:
        open_now = soft // 4
    return max(1, min(MAX_CONNECTIONS, soft - open_now - 4 * ACCEPT_BURST - 16))


def guarded_protocol(headers: list[tuple[bytes, bytes]], request_seconds: float, limit: int):
    """uvicorn's HTTP/1.1 protocol, with what it lacks for a server that anyone on the network may reach:

    - a request's headers and body must arrive within ``request_seconds`` of its first chance to (the
      connection opening, or the last answer on a kept-alive one); else the answer is 408, and the connection
      closes. Without it, a client that sends half a request and then nothing holds its connection for ever,
      and enough of them leave no file descriptor for anyone else.
    - at most ``limit`` connections: the next one closes the oldest that is still waiting for its request
      (answered or not), or is itself closed when none is, so a flood of idle connections cannot lock out a
      person who draws.
    - the answer to a request that is not HTTP at all is a JSON error with the security headers, like every
      other answer, where uvicorn's is plain text without them.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Guarded(H11Protocol):
        waiting_since: float | None = None
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self.wait_for_request()
            if len(self.connections) > limit:  # close the connection that has waited longest (this one at worst)
                waiting = [c for c in self.connections if getattr(c, "waiting_since", None) is not None]
                any(c.expire(quietly=True) for c in sorted(waiting, key=lambda c: c.waiting_since))

        def wait_for_request(self) -> None:
            self.stop_waiting()
            self.waiting_since = self.loop.time()
            self.deadline = self.loop.call_later(request_seconds, self.expire)

        def stop_waiting(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            self.deadline, self.waiting_since = None, None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.received()

        def received(self) -> None:
            if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
                self.stop_waiting()  # the whole request is here: the answer takes what it takes

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self.wait_for_request()  # the next request on this connection, if any, gets its own time
                self.received()

        def connection_lost(self, exc: Exception | None) -> None:
            self.stop_waiting()
            super().connection_lost(exc)

        def expire(self, quietly: bool = False) -> bool:
            """Give up on a request that has not arrived and close the connection: 408 first, unless the
            connection sent no byte of it, was answered already (an early answer, such as 415, before the body
            came in full), or makes room for a new one; an app still reading the body hears that the client
            left. Returns whether it closed the connection: not when it is closing already, or when an answer
            is on its way (that answer ends the wait)."""
            self.stop_waiting()
            ours = self.conn.our_state
            if self.transport.is_closing() or ours is h11.SEND_BODY:
                return False
            answering = ours is h11.SEND_RESPONSE  # the request's headers are in, and the app reads its body
            answered = ours in (h11.DONE, h11.MUST_CLOSE)
            if answering and self.cycle is not None:
                self.cycle.disconnected = True
                self.cycle.message_event.set()
            started = answering or (not answered and (self.conn.their_state is not h11.IDLE
                                                      or bool(self.conn.trailing_data[0])))
            if started and not quietly:
                self.transport.write(raw_answer(408, "Request Timeout", f"The request did not arrive within "
                                                f"{request_seconds:g} seconds.", headers))
            self.transport.close()
            return True

        def send_400_response(self, msg: str) -> None:
            self.stop_waiting()
            self.transport.write(raw_answer(400, "Bad Request", "Not an HTTP request this server understands.",
                                            headers))
            self.transport.close()

    return Guarded


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=program("digitpipe.web"), description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8000,
                        help="port to listen on, 0 to 65535 (default 8000; 0: any free port)")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"a .keras or .tflite model, or a SavedModel folder "
                        f"(default: {MODEL})")
    parser.add_argument("--min-confidence", type=confidence_level, default=MIN_CONFIDENCE, metavar="P",
                        help="mark each answer whose confidence is below P (0.99 or 99%%) 'not sure' and name the "
                        f"runner-up (default {MIN_CONFIDENCE:g}); the confidences are calibrated")
    parser.add_argument("--request-timeout", type=seconds, default=REQUEST_SECONDS, metavar="SECONDS",
                        help="answer 408 and close a connection whose request (headers and body) has not arrived "
                        f"within this many seconds (default {REQUEST_SECONDS:g})")
    return parser.parse_args(argv)


def seconds(text: str) -> float:
    """A positive, finite number of seconds, as given on the command line."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds: give one above 0 and below 86400")
    return value


def port_number(text: str) -> int:
    """A TCP port as given on the command line: 0 (any free one) to 65535; past that, binding would raise
    OverflowError, so it is a usage error here."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: give one from 0 to 65535")
    return value


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, made before the model loads and the banner prints,
    so that a taken port fails at once with one line instead of after a banner that claims success."""
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's delay off only on sockets that say TCP, and with
    # it on, an answer written in two parts waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once after a stop
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:  # taken, not allowed (port < 1024), no such address or host name
        sock.close()
        hint = " (try --port)" if err.errno in (errno.EADDRINUSE, errno.EACCES) else ""
        raise DigitpipeError(f"cannot listen on {host}:{port}: {(err.strerror or str(err)).lower()}{hint}") from None
    return sock


def addresses(host: str, port: int, network: list[str] | None = None) -> str:
    """Where to open the page. A host that is every address (``0.0.0.0``, ``::``) is none to browse to: then
    this machine's own URL, and one for each address ``network`` (default: :func:`network_addresses`) that
    another device, such as a phone, can open."""
    if host not in ("0.0.0.0", "::"):
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    others = network_addresses() if network is None else network
    here = f"http://{'[::1]' if host == '::' else '127.0.0.1'}:{port}/"
    if not others:
        return f"{here} (from another device: this machine's network address, port {port})"
    return f"{here}, from another device {' or '.join(f'http://{a}:{port}/' for a in others)}"


def network_addresses() -> list[str]:
    """The IPv4 address this machine reaches other machines from, as the kernel picks it for a route out; no
    packet is sent (connecting a UDP socket only picks the route). Empty without a network."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never a real host
            address = probe.getsockname()[0]
    except OSError:
        return []
    return [] if address.startswith("127.") or address == "0.0.0.0" else [address]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sock = listen(args.host, args.port)
    import uvicorn

    from digitpipe.runtime import load_keras

    # every model call is one 28x28 image: on two threads TensorFlow's hand-over costs more than the second core
    # saves (1.2 ms a call against 0.7 ms on one), and that core is better left to decoding the next upload
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    quiet_decoder_warnings()  # a damaged upload gets its answer; Pillow's warnings about it are only noise here
    load_keras()
    app = create_app(args.model, min_confidence=args.min_confidence,
                     log=lambda line: print(line, file=sys.stderr if line.startswith("warning") else sys.stdout,
                                            flush=True))
    if app.state.problem:  # missing, damaged, or not the classes given: the page says so too
        print(f"warning: {app.state.problem}; the page will say so too", file=sys.stderr)
    what = "draw a digit" if app.state.classes == DIGITS else "draw and classify"  # the page's own words
    print(f"digitpipe: {what} at {addresses(args.host, sock.getsockname()[1])}  (Ctrl+C to stop)", flush=True)
    sys.setswitchinterval(SWITCH_SECONDS)
    protocol = guarded_protocol(app.state.headers, args.request_timeout, connection_limit())
    # backlog: how many waiting connections asyncio accepts in one go, as connection_limit() counts them
    config = uvicorn.Config(app, log_level="warning", http=protocol, backlog=ACCEPT_BURST)  # sets up its logging
    # bytes that are not HTTP get their 400 answer (Guarded.send_400_response), and a request asking to upgrade the
    # connection (to WebSocket or HTTP/2: `curl --http2`) is answered as plain HTTP; a line in this terminal for each
    # would let anyone who reaches the port flood it (and uvicorn's advice to install a WebSocket library misleads)
    logging.getLogger("uvicorn.error").addFilter(lambda record: not record.getMessage().startswith(UNLOGGED))
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    run_main(main)
