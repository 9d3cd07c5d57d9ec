"""The prepare stage's library: each split's images decoded once, checked against the index, as the model sees them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from digitpipe.errors import DigitpipeError
from digitpipe.files import content_hash
from digitpipe.images import model_pixels
from digitpipe.prepare import prepare_images
from digitpipe.prepared import Prepared, load_prepared, save_prepared
from digitpipe.sample import encode_jpeg
from tests.unit.test_images import filled_shapes


def png(gray: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG")
    return buf.getvalue()


def write(root, files: dict[str, bytes]) -> tuple[list[str], list[str]]:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return list(files), [content_hash(d) for d in files.values()]


@pytest.mark.parametrize("many", [False, True])
def test_policy_none_gives_the_decoded_pixels_byte_for_byte(tmp_path, many):
    """Filled shapes touching the edges, on any background: exactly as decoded (lossless PNGs), in manifest order,
    in one process and (above the parallel threshold) in worker processes alike."""
    shapes = filled_shapes(np.random.default_rng(7), 2_100 if many else 40)
    paths, hashes = write(tmp_path, {f"{i % 3}/shape_{i}.png": png(s) for i, s in enumerate(shapes)})
    pixels, changed = prepare_images(tmp_path, paths, hashes, "none", progress=False)
    assert pixels.dtype == np.uint8
    assert np.array_equal(pixels, np.stack(shapes))
    assert changed == 0


def test_policy_mnist_gives_what_predict_gives(tmp_path, mnist):
    images = mnist[0][:30]
    files = {f"1/img_{i}.jpg": encode_jpeg(255 - img if i % 2 else img) for i, img in enumerate(images)}
    paths, hashes = write(tmp_path, files)
    pixels, changed = prepare_images(tmp_path, paths, hashes, "mnist", progress=False)
    decoded = [np.asarray(Image.open(io.BytesIO(d))) for d in files.values()]
    assert np.array_equal(pixels, model_pixels(decoded, "mnist"))
    assert changed >= 15  # the inverted ones at least


def test_a_file_changed_since_ingest_stops_it_naming_the_file(tmp_path, mnist):
    paths, hashes = write(tmp_path, {f"0/img_{i}.jpg": encode_jpeg(mnist[0][i]) for i in range(5)})
    (tmp_path / paths[2]).write_bytes(encode_jpeg(mnist[0][9]))
    (tmp_path / paths[4]).unlink()
    with pytest.raises(DigitpipeError, match=r"2 indexed file\(s\) .* 0/img_2.jpg: changed since ingest .*; "
                                             r"0/img_4.jpg: cannot read: No such file or directory; run `dvc repro`"):
        prepare_images(tmp_path, paths, hashes, "mnist", progress=False)


def test_saved_arrays_round_trip_with_identical_bytes(tmp_path):
    rng = np.random.default_rng(0)
    prepared = Prepared(x=rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), y=np.arange(7, dtype=np.int32) % 3,
                        paths=[f"a/{i}.png" for i in range(7)], classes=["a", "b", "c"], normalize="none")
    save_prepared(prepared, tmp_path / "one.npz")
    save_prepared(prepared, tmp_path / "two.npz")
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    back = load_prepared(tmp_path / "one.npz")
    assert np.array_equal(back.x, prepared.x) and np.array_equal(back.y, prepared.y)
    assert (back.paths, back.classes, back.normalize) == (prepared.paths, prepared.classes, "none")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz", "two.npz"]  # no temporary file left behind


def test_a_missing_split_says_to_run_the_pipeline(tmp_path):
    with pytest.raises(DigitpipeError, match="not found: run `dvc repro` first"):
        load_prepared(tmp_path / "train.npz")
