"""Helpers the test suites (and some benchmarks) share; the fixtures built from them are in ``conftest.py``.

- running commands and editing throw-away copies of the project: :func:`run`, :func:`copy_worktree`,
  :func:`set_params`, :func:`write_digits`;
- test images and the small model's recipe: :func:`photographed`, :data:`SMALL_RECIPE`, :func:`small_model_split`;
- hostile image files for the fuzz test and ``bench/fuzz.py``, and the readers that must survive them (below).

Every hostile file starts as a valid digit image in a format the pipeline reads (JPEG, PNG, GIF, BMP, TIFF, WebP)
and is then damaged the way real folders and uploads damage files: cut short, bits flipped, a header that claims
a huge size (with a correct checksum, so only the size check can refuse it), the wrong magic number, nothing at
all, or random bytes after a real magic number. The same seed gives the same files.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from digitpipe.batch import decode_chunk, read
from digitpipe.ingest import Policy, inspect_file
from digitpipe.limits import as_batch
from digitpipe.web import upload_gray

ROOT = Path(__file__).resolve().parents[1]

# git and dvc inside the throw-away projects: no global config, no analytics, no prompts
ENV = {  # without PYTHONUNBUFFERED, which some machines set: commands write to pipes as on most machines
    **{name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"},
    "GIT_AUTHOR_NAME": "digitpipe tests", "GIT_AUTHOR_EMAIL": "tests@digitpipe.invalid",
    "GIT_COMMITTER_NAME": "digitpipe tests", "GIT_COMMITTER_EMAIL": "tests@digitpipe.invalid",
    "DVC_NO_ANALYTICS": "1", "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1",
}


COMMAND_TIMEOUT = 600  # seconds; the slowest command of the suite takes about a tenth of that on 2 cores


def run(cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a command; on failure show its output in the test report.

    The output goes through files, not pipes, so the call returns when the command itself exits: a process it
    leaves behind with its output still open (DVC's experiment-queue workers outlive ``dvc exp run --run-all``)
    cannot hold it. A command still running after ``timeout`` seconds is killed with its process group, and
    the test fails with what it had printed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=ENV if env is None else env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        timed_out = False
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
    if timed_out:
        raise AssertionError(f"{' '.join(cmd)} still running after {timeout:.0f} s: killed\n{texts[0]}\n{texts[1]}")
    done = subprocess.CompletedProcess(cmd, code, *texts)
    if check and code != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {code}\n{done.stdout}\n{done.stderr}")
    return done

@contextmanager
def sigterm_taken() -> Iterator[None]:
    """SIGTERM handled in this process as the commands handle it (:func:`digitpipe.errors.stop_cleanly_on_sigterm`),
    and put back as it was afterwards, its note that one came cleared."""
    from digitpipe import errors

    before = signal.signal(signal.SIGTERM, errors.raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
        errors.TERMINATED.clear()


def sigterm_self() -> None:
    """Send this process SIGTERM and wait for its handler, which raises in the main thread within milliseconds."""
    import time

    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)


def swallow_a_sigterm() -> None:
    """Send this process SIGTERM inside a bare ``except:``, as a library may catch it (Keras' model saving does)."""
    try:  # noqa: SIM105 -- a bare except, as the libraries write it
        sigterm_self()
    except:  # noqa: E722 -- what this imitates
        pass


def write_digits(root: Path, mnist, per_class: int, start: int = 0) -> None:
    """Write ``per_class`` real digits per class as JPGs into ``root/<label>/``."""
    from digitpipe.sample import encode_jpeg

    images, labels = mnist
    for label in range(10):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        idx = np.flatnonzero(labels == label)[start:start + per_class]
        for i in idx:
            (root / str(label) / f"img_{i}.jpg").write_bytes(encode_jpeg(images[i]))


def photographed(img: Image.Image, light: str) -> Image.Image:
    """A phone photo of the digit drawn in dark ink on a page: 20x larger, off-centre, lit as ``light`` says, noisy."""
    side, rng = 800, np.random.default_rng(int(np.asarray(img).sum()))
    ink = np.zeros((side, side), dtype=np.float32)
    ink[40:600, 200:760] = np.asarray(img.resize((560, 560), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    y, x = np.mgrid[0:side, 0:side] / side
    paper = {"flat": np.full((side, side), 215.0),                            # even light
             "side": 130 + 110 * x,                                           # a lamp on the right
             "shadow": 225 - 100 * np.clip((x + y - 1.0) * 3, 0, 1),         # the phone's shadow over a corner
             "corners": 230 - 220 * ((x - 0.5) ** 2 + (y - 0.5) ** 2)}[light]  # lens vignetting
    gray = paper * (1 - 0.75 * ink) + rng.normal(0, 6, (side, side))
    return Image.fromarray(np.clip(np.stack([gray, gray * 0.97, gray * 0.9], axis=-1), 0, 255).astype(np.uint8))


def set_params(project: Path, **changes) -> None:
    """Set dotted keys in the project's params.yaml (``set_params(p, **{"train.lr": 0.01})``)."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


SOURCES = ("digitpipe", "stages")  # where a new module may not be committed yet but a pipeline run needs it


def copy_worktree(dest: Path, root: Path = ROOT) -> None:
    """Copy what a clone of this tree would hold: the tracked files, as they are in the work tree, and new
    (untracked, not ignored) files under :data:`SOURCES` only. Nothing else that lies around in the work
    tree (a virtual environment, scratch data) is copied into the throw-away projects."""
    def listed(*args: str) -> list[str]:
        out = subprocess.run(["git", "ls-files", "-z", *args], cwd=root, capture_output=True, check=True).stdout
        return [rel for rel in out.decode().split("\0") if rel]

    for rel in sorted({*listed("--cached"), *listed("--others", "--exclude-standard", "--", *SOURCES)}):
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)

SMALL_RECIPE = {"epochs": 6, "batch_size": 64, "lr": 0.003, "schedule": "cosine", "warmup_epochs": 1,
                "label_smoothing": 0.1, "weight_decay": 0.0001, "class_weight": "none", "keep": "last",
                "patience": 6, "lr_patience": 3, "lr_factor": 0.5}


def small_model_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices the small model trains on (200 per class), selects on (50) and never sees (250)."""
    parts = [np.flatnonzero(labels == c) for c in range(10)]
    return tuple(np.sort(np.concatenate([p[a:b] for p in parts])) for a, b in ((0, 200), (200, 250), (250, None)))


# hostile image files

MAGIC = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF89a", "bmp": b"BM",
         "tif": b"II*\x00", "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 "}
HUGE = (50_000, 65_535, 2**31 - 1, 2**32 - 1, 1 << 20)  # sides a header may claim


def rewrite_zip_entry(path: Path, name: str, data: bytes) -> None:
    """Give the zip entry ``name`` other bytes: in a ``.keras`` archive, or in the zip a carded ``.tflite``
    flatbuffer ends with (the flatbuffer before it kept as it is)."""
    raw = path.read_bytes()
    if path.suffix == ".tflite":
        head, entries = raw[:raw.rfind(b"PK\x03\x04")], {name: data}  # the card zip holds one entry
    else:
        with zipfile.ZipFile(path) as archive:
            head, entries = b"", {info.filename: archive.read(info) for info in archive.infolist()}
        entries[name] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for entry, content in entries.items():
            archive.writestr(entry, content)
    path.write_bytes(head + buf.getvalue())


def save(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def valid_files(digits: np.ndarray) -> list[tuple[str, bytes]]:
    """``(extension, bytes)`` of intact files: each digit in every format and several flavours of each."""
    out = []
    for d in digits:
        gray = Image.fromarray(d)
        paper = Image.fromarray(255 - d)
        exif = Image.Exif()
        exif[0x0112] = 6  # a phone photo taken sideways
        out += [("jpg", save(gray, "JPEG", quality=90)), ("jpg", save(paper.convert("RGB"), "JPEG", progressive=True)),
                ("jpg", save(gray.resize((64, 64)), "JPEG", exif=exif)),
                ("png", save(gray, "PNG")), ("png", save(paper.convert("RGBA"), "PNG")),
                ("png", save(gray.convert("P"), "PNG")),
                ("png", save(Image.fromarray(d.astype(np.uint16) * 257), "PNG")),
                ("gif", save(gray, "GIF")), ("gif", save(gray, "GIF", save_all=True, append_images=[paper])),
                ("bmp", save(gray, "BMP")), ("bmp", save(paper.convert("RGB"), "BMP")),
                ("tif", save(gray, "TIFF")), ("tif", save(gray, "TIFF", compression="tiff_lzw")),
                ("tif", save(paper.convert("RGB"), "TIFF", compression="tiff_adobe_deflate")),
                ("webp", save(gray.convert("RGB"), "WEBP", quality=80)), ("webp", save(gray, "WEBP", lossless=True))]
    out.append(("png", save(Image.new("L", (28, 28), 255), "PNG")))  # blank
    return out


def truncated(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    return data[:int(rng.integers(1, len(data)))]


def bit_flipped(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    out = bytearray(data)
    span = min(len(out), 64) if rng.random() < 0.5 else len(out)  # half in the header, where it hurts most
    for _ in range(int(rng.integers(1, 9))):
        out[int(rng.integers(span))] ^= 1 << int(rng.integers(8))
    return bytes(out)


def forged_size(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    """The header claims a huge width and/or height; checksums are made right again where there are any."""
    w, h = (int(rng.choice(HUGE)) if rng.random() < 0.8 else int(rng.integers(1, 100)) for _ in range(2))
    out = bytearray(data)
    if ext == "png":
        out[16:24] = struct.pack(">II", w, h)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif ext == "gif":
        out[6:10] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)  # the logical screen
        at = out.find(b",", 13)  # the first image descriptor
        if at > 0 and rng.random() < 0.5:
            out[at + 5:at + 9] = struct.pack("<HH", w & 0xFFFF, h & 0xFFFF)
    elif ext == "bmp":
        out[18:26] = struct.pack("<ii", w & 0x7FFFFFFF, -(h & 0x7FFFFFFF) if rng.random() < 0.3 else h & 0x7FFFFFFF)
    elif ext == "jpg":
        at = max(out.find(b"\xff\xc0"), out.find(b"\xff\xc2"))  # start of frame: baseline or progressive
        if at > 0:
            out[at + 5:at + 9] = struct.pack(">HH", h & 0xFFFF, w & 0xFFFF)
    elif ext == "tif":
        forge_tiff(out, w, h)
    elif ext == "webp":
        forge_webp(out, w, h)
    return bytes(out)


def forge_tiff(out: bytearray, w: int, h: int) -> None:
    """Set ImageWidth and ImageLength of the first IFD (a little-endian TIFF, as Pillow writes it)."""
    ifd = struct.unpack_from("<I", out, 4)[0]
    for k in range(struct.unpack_from("<H", out, ifd)[0]):
        entry = ifd + 2 + 12 * k
        tag = struct.unpack_from("<H", out, entry)[0]
        if tag in (256, 257):
            struct.pack_into("<HHII", out, entry, tag, 4, 1, w if tag == 256 else h)  # as a LONG


def forge_webp(out: bytearray, w: int, h: int) -> None:
    """Set the canvas size of a lossy (VP8) or lossless (VP8L) WebP."""
    chunk = bytes(out[12:16])
    if chunk == b"VP8 ":
        out[26:30] = struct.pack("<HH", w & 0x3FFF, h & 0x3FFF)
    elif chunk == b"VP8L":
        bits = struct.unpack_from("<I", out, 21)[0] & ~0xFFFFFFF
        struct.pack_into("<I", out, 21, bits | ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14))


def wrong_magic(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    other = MAGIC[str(rng.choice([e for e in MAGIC if e != ext]))] if rng.random() < 0.5 else rng.bytes(8)
    return other + data[len(other):]


def empty(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    return b""


def random_after_magic(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    return MAGIC[ext] + rng.bytes(int(rng.integers(0, 4_000)))


def intact(rng: np.random.Generator, ext: str, data: bytes) -> bytes:
    return data


MUTATIONS: dict[str, Callable[[np.random.Generator, str, bytes], bytes]] = {
    "truncated": truncated, "bit_flipped": bit_flipped, "forged_size": forged_size, "wrong_magic": wrong_magic,
    "empty": empty, "random_after_magic": random_after_magic, "intact": intact}
WEIGHTS = np.array([6, 6, 4, 2, 0.3, 2, 1.0])


def hostile_files(seed: int, n: int, digits: np.ndarray) -> list[tuple[str, bytes]]:
    """``n`` hostile files as ``(name, bytes)``, the same for the same seed and digits; the name says how the file
    was made, and its extension is now and then another format's."""
    rng = np.random.default_rng(seed)
    bases = valid_files(digits)
    kinds = list(MUTATIONS)
    files = []
    for i in range(n):
        ext, data = bases[int(rng.integers(len(bases)))]
        kind = kinds[int(rng.choice(len(kinds), p=WEIGHTS / WEIGHTS.sum()))]
        shown = ext if rng.random() < 0.9 else str(rng.choice(list(MAGIC)))
        files.append((f"{i:05d}_{kind}_{ext}.{shown}", MUTATIONS[kind](rng, ext, data)))
    return files


@dataclass
class Verdict:
    """What each reader made of one file: ``ingest`` is "indexed" or a reject reason, ``predict`` and ``web``
    are "pixels" or the reason given; ``problems`` lists every broken promise."""

    ingest: str
    predict: str
    web: str
    problems: list[str]


INGEST_REASONS = {"empty", "not_image", "unsupported_format", "corrupt", "too_large", "too_small", "multi_frame",
                  "blank", "unreadable", "wrong_size"}


# ingest's reasons that predict's and the web page's decoder gives too, in the same words
DECODER_REASONS = {"not_image", "corrupt", "unreadable", "too_large", "too_small", "multi_frame"}


def one_line(text: object) -> bool:
    return isinstance(text, str) and bool(text) and "\n" not in text and "\r" not in text


def pixels(x: object) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2 and x.size > 0


def judge(root: Path, name: str, data: bytes) -> Verdict:
    """Feed one file (written at ``root/0/name``) to ingest's inspector, predict's reader and the web page's
    decoder, and check that each gives pixels or a one-line reason, and that they agree."""
    problems = []
    try:
        row = inspect_file((f"0/{name}", "0"), root, Policy())
        ingest = row.get("reason", "indexed")
        if ingest != "indexed" and (ingest not in INGEST_REASONS or not one_line(row["message"])):
            problems.append(f"ingest: reason {ingest!r}, message {row['message']!r}")
    except Exception as err:  # noqa: BLE001 - the escape is what is recorded
        ingest, problems = "escaped", [*problems, f"ingest: {type(err).__name__}: {err} escaped"]
    try:
        got = read(str(root / "0" / name))
        predict = "pixels" if pixels(got) else got
        if predict != "pixels" and not one_line(got):
            problems.append(f"predict: {got!r} is neither pixels nor a one-line reason")
    except Exception as err:  # noqa: BLE001
        got, predict = None, "escaped"
        problems.append(f"predict: {type(err).__name__}: {err} escaped")
    try:
        gray = upload_gray(data)  # the page's own decoder
        web = "pixels" if pixels(gray) else "no pixels"
    except ValueError as err:  # the page's answer: a 400 with these words
        gray, web = None, str(err)
    except Exception as err:  # noqa: BLE001 - an escape would be the server's 500
        gray, web = None, f"escaped {type(err).__name__}: {err}"
    if web.startswith("escaped") or web == "no pixels" or not one_line(web):
        problems.append(f"web: {web}")
    if ingest == "indexed" and predict != "pixels":
        problems.append(f"ingest indexed it, predict refused it: {predict}")
    if ingest in DECODER_REASONS and predict != "pixels" and "ingest." not in row["message"] and (
            row["message"] != predict or predict.lower() not in web.lower()):
        problems.append(f"refused in other words: ingest {row['message']!r}, predict {predict!r}, web {web!r}")
    if pixels(got) and gray is not None and not np.array_equal(got, gray):
        problems.append("predict and the web page decoded different pixels")
    return Verdict(ingest, predict, web, problems)


def judge_chunk(paths: list[str]) -> list[str]:
    """Predict's chunk decoder on many files at once: each file gives an input or a reason, none is lost."""
    inputs, failed = decode_chunk(paths, "mnist")
    problems = [f"decode_chunk: {paths[i]}: {reason!r}" for i, reason in failed if not one_line(reason)]
    if len(inputs) + len(failed) != len(paths) or inputs.shape[1:] != (28, 28) or inputs.dtype != np.uint8:
        problems.append(f"decode_chunk: {len(inputs)} inputs + {len(failed)} failures for {len(paths)} files")
    return problems


def eps_bytes(img: Image.Image) -> bytes:
    """An image saved as EPS (PostScript): Pillow can open it, but only by running Ghostscript on it."""
    buf = io.BytesIO()
    img.convert("L").save(buf, format="EPS")
    return buf.getvalue()


def mpo_bytes(img: Image.Image) -> bytes:
    """An image saved as MPO, as phones save photos: a JPEG with a second picture after it."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="MPO", save_all=True, append_images=[img.convert("RGB")])
    return buf.getvalue()


def own_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """What another program gets from an export, with no digitpipe code and no card: the SavedModel's ``serve``
    signature, or a TFLite interpreter (int8 in and out quantised by the scales the file records)."""
    batch = as_batch(x)
    if path.is_dir():
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        return loaded.serve(batch).numpy()
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(given["index"], list(batch.shape))
    interpreter.allocate_tensors()
    if given["dtype"] != np.float32:
        scale, zero = given["quantization"]
        batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(given["dtype"])
    interpreter.set_tensor(given["index"], batch)
    interpreter.invoke()
    out = interpreter.get_tensor(taken["index"])
    if taken["dtype"] != np.float32:
        scale, zero = taken["quantization"]
        out = (out.astype(np.float32) - zero) * scale
    return out


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that are still its children (read from /proc: Linux)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def running(pid: int) -> bool:
    """Whether process ``pid`` still runs: a zombie (ended, not yet reaped by whoever adopted it) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
