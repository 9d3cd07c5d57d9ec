"""Benchmark: the draw-a-digit server under drawings, alone and beside a burst of 25-megapixel uploads.

    python bench/web.py                          # 300 drawings + 30 uploads (about a minute on 2 cores)
    python bench/web.py --small 600 --rate 50 --model models/model_int8.tflite

Starts the real server (`python -m digitpipe.web`, uvicorn) on 127.0.0.1 and sends it, in one run:

  baseline  N drawings alone: 280x280 PNGs of real digits, dark ink on white, as the page sends
            them from its board, at a steady RATE per second from 12 client threads;
  mixed     the same N drawings at the same rate, while M uploads of a 25-megapixel PNG that
            compresses to about 100 KB (a white 5000x5000 page with a thick dark 7) are sent all at
            once by M clients. A client refused with 503 waits as its Retry-After says and sends
            again, as a well-behaved client would, so every upload is classified in the end.

For each, requests per second (answered / seconds from the first request to the last answer) and
the median and 99th-percentile time from sending a request to its answer; for the uploads, the time
until each was answered (its waits and retries included), how many 503 answers they received and
how quickly those came back.
All traffic stays on 127.0.0.1; the counts are fixed and every request has a 60 s timeout.

The model is models/model.keras when `dvc repro` has made it (or --model); otherwise a stand-in
with the same architecture is trained first on 2,000 of the packaged digits (about half a minute).
The figures hardly depend on it: one 28x28 model call takes under a millisecond, while decoding
and preprocessing take a few milliseconds for a drawing and a few tenths of a second for an upload.

Target: the drawings' p99 beside the uploads <= 300 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import above_zero, at_least  # noqa: E402
from digitpipe.sample import load_mnist_sample  # noqa: E402

CLIENTS = 12       # client threads sending drawings
TIMEOUT = 60.0     # seconds, for every request
MAX_TRIES = 30     # an upload refused this many times counts as failed
DEFAULT_MODEL = ROOT / "models/model.keras"


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def drawings(n: int) -> list[bytes]:
    """Real digits as the page's 280x280 board sends them: dark ink on white, as PNG."""
    images, _ = load_mnist_sample()
    return [png(Image.fromarray(255 - images[i % len(images)]).resize((280, 280), Image.Resampling.BILINEAR))
            for i in range(n)]


def huge_page() -> bytes:
    """A 25-megapixel PNG that compresses small: a white 5000x5000 page with a thick dark 7 on it."""
    page = Image.new("RGB", (5000, 5000), "white")
    ImageDraw.Draw(page).line([(1500, 1000), (3500, 1000), (2200, 4000)], fill=(30, 30, 40), width=400,
                              joint="curve")
    return png(page)


def crafted_tiff(entries: int = 65_000) -> bytes:
    """A TIFF of 64x64 pixels whose first directory holds ``entries`` entries (a real one holds a dozen or two):
    about 780 KB that Pillow reads entry by entry, in Python, before it knows the image's size. Its pixels are
    where they should be are the header's own bytes: the server reads the directory twice (for the lane, then to
    classify) and answers whatever those pixels give."""
    import struct

    tags = [(256, 3, 1, 64), (257, 3, 1, 64), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 0),
            (277, 3, 1, 1), (278, 3, 1, 64), (279, 4, 1, 4096)]
    tags += [(65_000, 3, 1, i % 65_536) for i in range(entries - len(tags))]  # one private tag, over and over
    body = b"".join(struct.pack("<HHII", tag, kind, count, value) for tag, kind, count, value in tags)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + body + struct.pack("<I", 0)


def stand_in_model(folder: Path) -> Path:
    """A digitnet trained briefly on 2,000 packaged digits, for when the pipeline has not made its model."""
    from digitpipe import training
    from digitpipe.models import Augment
    from digitpipe.runtime import load_keras
    from tests.helpers import SMALL_RECIPE, small_model_split

    load_keras()
    images, labels = load_mnist_sample()
    x = images[..., None].astype(np.float32) / 255.0
    train, val, _ = small_model_split(labels)
    path = folder / "stand-in.keras"
    training.train_model("digitnet", (x[train], labels[train]), (x[val], labels[val]), num_classes=10,
                         augment=Augment(rotation=10, translation=0.1, zoom=0.1),
                         recipe=training.Recipe.from_params(SMALL_RECIPE), seed=0, model_path=path, quiet=True)
    return path


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    """`python -m digitpipe.web` on a port the system picks; its URL is read from its banner."""
    proc = subprocess.Popen([sys.executable, "-m", "digitpipe.web", "--port", "0", "--model", str(model)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(120, proc.kill)  # a server that never starts ends the run, not hangs it
    timer.start()
    banner = proc.stdout.readline()
    timer.cancel()
    if "http://127.0.0.1:" not in banner:
        proc.kill()
        sys.exit(f"the server did not start: {proc.stderr.read().strip()}")
    return proc, banner.split("at ", 1)[1].split()[0]


class Clients:
    """A pool of httpx clients, made before the clock starts (making one loads a CA bundle: tens of ms).
    Each request borrows one, so each keeps its connection open, as a browser would. Like browsers, they
    send without Nagle's delay: httpx writes a request's headers and body separately, and with the delay
    on, back-to-back requests would wait ~40 ms for the server's delayed ACK, which is no server's time."""

    def __init__(self, url: str, n: int):
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self.all = [httpx.Client(base_url=url, timeout=TIMEOUT, transport=httpx.HTTPTransport(socket_options=nodelay))
                    for _ in range(n)]
        self.free: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
        for client in self.all:
            self.free.put(client)

    def post(self, data: bytes) -> httpx.Response:
        client = self.free.get()
        try:
            return client.post("/api/predict", content=data, headers={"content-type": "image/png"})
        finally:
            self.free.put(client)

    def close(self) -> None:
        for client in self.all:
            client.close()


def timed(client: Clients, data: bytes) -> tuple[int, float, float, float]:
    """Status, seconds to the answer, and when it was sent and answered (perf_counter)."""
    sent = time.perf_counter()
    status = client.post(data).status_code
    done = time.perf_counter()
    return status, done - sent, sent, done


def upload(client: Clients, data: bytes) -> tuple[int, float, float, float, list[float]]:
    """Send until answered, waiting as each 503's Retry-After says: status, seconds, sent, answered, and
    the seconds each 503 took to come back."""
    sent, refusals = time.perf_counter(), []
    for _ in range(MAX_TRIES):
        tried = time.perf_counter()
        response = client.post(data)
        if response.status_code != 503:
            break
        refusals.append(time.perf_counter() - tried)
        time.sleep(float(response.headers.get("retry-after", "1")))
    done = time.perf_counter()
    return response.status_code, done - sent, sent, done, refusals


def paced(pool: ThreadPoolExecutor, client: Clients, bodies: list[bytes], rate: float) -> list:
    """Submit one drawing every 1/rate seconds (an open load: a slow answer does not slow the senders)."""
    start, futures = time.perf_counter(), []
    for i, body in enumerate(bodies):
        time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        futures.append(pool.submit(timed, client, body))
    return futures


def summary(results: list[tuple]) -> tuple[int, float, float, float]:
    """Answered (200), requests per second, p50 and p99 in ms."""
    ok = [r for r in results if r[0] == 200]
    span = max(r[3] for r in results) - min(r[2] for r in results)
    cuts = statistics.quantiles([r[1] * 1000 for r in results], n=100)
    return len(ok), len(ok) / span, cuts[49], cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=at_least(1), default=300, help="drawings per phase (default 300)")
    parser.add_argument("--large", type=at_least(0), default=30, help="25-megapixel uploads beside them (default 30)")
    parser.add_argument("--rate", type=above_zero, default=25.0, help="drawings sent per second (default 25)")
    parser.add_argument("--model", type=Path, help="default: models/model.keras, else a stand-in trained first")
    parser.add_argument("--uploads", choices=("page", "tiff"), default="page",
                        help="page: a 25-megapixel PNG (default); tiff: a crafted TIFF whose directory holds 65,000 "
                             "entries, which the server reads entry by entry")
    args = parser.parse_args()
    if args.model and not args.model.exists():
        sys.exit(f"model {args.model} not found: run `dvc repro` first")

    small, big = drawings(args.small), huge_page() if args.uploads == "page" else crafted_tiff()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or (DEFAULT_MODEL if DEFAULT_MODEL.exists() else stand_in_model(Path(tmp)))
        model_name = model.name if model.parent != Path(tmp) else "stand-in digitnet (no models/model.keras)"
        proc, url = start_server(model)
        client = Clients(url, CLIENTS + args.large)
        try:
            for body in small[:20]:  # a warm model and open connections, as on a page in use
                client.post(body)
            with ThreadPoolExecutor(CLIENTS) as pool:
                baseline = [f.result() for f in paced(pool, client, small, args.rate)]
            with ThreadPoolExecutor(CLIENTS) as pool, ThreadPoolExecutor(args.large) as uploaders:
                uploads = [uploaders.submit(upload, client, big) for _ in range(args.large)]
                beside = [f.result() for f in paced(pool, client, small, args.rate)]
                uploads = [f.result() for f in uploads]
        finally:
            client.close()
            proc.terminate()
            proc.wait(10)

    extra = (f" --model {args.model}" if args.model else "") + (" --uploads tiff" if args.uploads == "tiff" else "")
    print(f"\ncommand: python bench/web.py --small {args.small} --large {args.large} --rate {args.rate:g}{extra}"
          f"   ({os.cpu_count()} cores; model: {model_name})")
    print(f"{'':<44}{'sent':>6}{'answered':>10}{'503s':>6}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}")
    size = f"{len(big) / 1000:.0f} KB"
    rows = [("drawings alone (baseline)", baseline, sum(r[0] == 503 for r in baseline)),
            (f"drawings beside {args.large} uploads", beside, sum(r[0] == 503 for r in beside)),
            (f"uploads, 25 megapixels ({size} PNG)" if args.uploads == "page" else
             f"uploads, crafted TIFF ({size})", uploads, sum(len(r[4]) for r in uploads))]
    for name, results, refusals in rows:
        answered, rate, p50, p99 = summary(results if "TIFF" not in name else  # answered: 200 or 400 alike
                                           [(200, *r[1:]) for r in results if r[0] != 503])
        print(f"{name:<44}{len(results):>6}{answered:>10}{refusals:>6}{rate:>8.1f}{p50:>9,.0f}{p99:>9,.0f}")
    refused = sorted(t * 1000 for r in uploads for t in r[4])
    if refused:
        print(f"\nuploads: time until answered, waits after a 503 included; the {len(refused)} 503 answers came "
              f"back in {statistics.median(refused):,.0f} ms (median), {refused[-1]:,.0f} ms at most")
    print("target: drawings' p99 beside the uploads <= 300 ms")


if __name__ == "__main__":
    main()
