"""Many image files read, preprocessed and classified in chunks, over one worker process per core when
there are enough of them; each file that gives no digit comes back with its reason instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from digitpipe.card import Card
from digitpipe.decode import blank, no_digit, read_gray, refusal
from digitpipe.images import model_pixels
from digitpipe.inference import Predictor, TFLitePredictor
from digitpipe.limits import SIDE
from digitpipe.parallel import process_pool, worker_count
from digitpipe.targets import Failure

PARALLEL_FROM = 2_000  # below this many files, decoding in this process is faster than a pool
CHUNK = 1_024         # files per unit of work: decoded together, then classified together


def read(path: str) -> np.ndarray | str:
    """One file's gray pixels, or the reason it gives none: not a regular file (a fifo, a device: opening it could
    wait for ever), empty, unreadable, not an image, damaged, too large, or blank (no digit to classify), in the
    words ingest and the web page use (:func:`digitpipe.decode.refusal`)."""
    try:
        gray = read_gray(path)
    except Exception as err:  # noqa: BLE001 - any decoder error is this file's problem, never the run's
        return refusal(err).message
    empty = blank(gray)
    return empty.message if empty else gray


def decode_chunk(files: list[str], normalize: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The uint8 model inputs of the readable files under the model's preprocessing policy, stacked, and
    ``(position, reason)`` for the others."""
    grays, kept, failed = [], [], []
    for i, path in enumerate(files):
        gray = read(path)
        if isinstance(gray, str):
            failed.append((i, gray))
        else:
            grays.append(gray)
            kept.append(i)
    try:
        inputs = model_pixels(grays, normalize)
    except Exception:  # noqa: BLE001 - one image the preprocessing trips on must not cost the others
        parts, done = [np.zeros((0, SIDE, SIDE), np.uint8)], []
        for i, gray in zip(kept, grays, strict=True):
            try:
                parts.append(model_pixels([gray], normalize))
                done.append(i)
            except Exception as err:  # noqa: BLE001
                failed.append((i, f"cannot preprocess: {type(err).__name__}: {err}"))
        inputs, kept = np.concatenate(parts), done
    empty = [k for k, x in enumerate(inputs) if no_digit(x)]  # the policy found nothing to classify
    if empty:
        failed += [(kept[k], no_digit(inputs[k]).message) for k in empty]
        inputs = np.delete(inputs, empty, axis=0)
    return inputs, sorted(failed)


def predicted(files: list[str], predictor: Predictor) -> Iterator[tuple[list[str], np.ndarray, list[tuple[int, str]]]]:
    """``(files, probabilities, failures)`` chunk by chunk, in order.

    Big folders use one worker process per core. A TFLite model is small and has no threads, so each
    worker loads its own copy and classifies what it decoded: every core does both jobs and only
    probabilities come back. TensorFlow's runtime does not survive being forked, so for a Keras model
    the workers only decode and the model, here, uses every core on the chunks as they arrive.
    """
    chunks = [files[i:i + CHUNK] for i in range(0, len(files), CHUNK)]
    workers = worker_count()
    if len(files) < PARALLEL_FROM or workers == 1:
        for chunk in chunks:
            yield chunk, *classify_chunk(chunk, predictor)
        return
    if isinstance(predictor, TFLitePredictor):
        with process_pool(workers, load_worker_model, (predictor.path, predictor.content, predictor.card)) as pool:
            for chunk, (probs, failed) in zip(chunks, pool.map(classify_chunk, chunks), strict=True):
                yield chunk, probs, failed
        return
    with process_pool(workers) as pool:
        decode = partial(decode_chunk, normalize=predictor.card.normalize)
        for chunk, (inputs, failed) in zip(chunks, pool.map(decode, chunks), strict=True):
            yield chunk, predictor.probabilities(inputs), failed


_worker_model: Predictor | None = None


def load_worker_model(path: Path, content: bytes, card: Card) -> None:
    """The worker's own copy of the TFLite model the main process loaded, made from its bytes and card, not
    read again from ``path``: the file may have been replaced or removed since."""
    global _worker_model
    _worker_model = TFLitePredictor(path, content)
    _worker_model.path, _worker_model.card = path, card


def classify_chunk(files: list[str], predictor: Predictor | None = None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode a chunk and classify it; in a worker process, with the worker's own copy of the model."""
    predictor = predictor or _worker_model
    inputs, failed = decode_chunk(files, predictor.card.normalize)
    return predictor.probabilities(inputs), failed


def classify(files: list[str], predictor: Predictor, classes: list[str],
             top_k: int) -> tuple[list[dict], list[Failure]]:
    """Rows of predictions for the readable files, and the failures."""
    rows, failures = [], []
    names_of = np.array(classes, dtype=object)
    for chunk, probs, failed in predicted(files, predictor):
        failures += [Failure(chunk[i], reason) for i, reason in failed]
        bad = {i for i, _ in failed}
        paths = [path for i, path in enumerate(chunk) if i not in bad]
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        picked = np.take_along_axis(probs, order, axis=1).tolist()
        for path, names, ps in zip(paths, names_of[order].tolist(), picked, strict=True):
            top = list(zip(names, ps, strict=True))
            rows.append({"path": path, "label": names[0], "confidence": ps[0], "top": top})
    return rows, failures
