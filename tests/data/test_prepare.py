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


def run_stages(project, data_dir, *stages: str):
    """Run the stage scripts in ``project`` (a folder with the shipped params.yaml pointing at ``data_dir``)."""
    import subprocess
    import sys

    from tests.helpers import ENV, ROOT

    project.mkdir(exist_ok=True)
    params = (ROOT / "params.yaml").read_text().replace("dir: data/sample", f"dir: {data_dir}")
    (project / "params.yaml").write_text(params)
    env = {**ENV, "PYTHONPATH": str(ROOT)}
    return [subprocess.run([sys.executable, "-m", f"stages.{s}"], cwd=project, env=env, capture_output=True, text=True)
            for s in stages]


def test_images_showing_nothing_to_the_policy_are_left_out_of_training_and_testing_and_listed(tmp_path, mnist):
    """A faint smudge on a grey page, a speck on white paper and a digit lost in a long strip pass ingest (they
    are not uniform), but MNIST preprocessing finds nothing digit-sized in them, so predict refuses them: they
    must not be trained on under their folder's label or counted in the test score."""
    import pandas as pd

    from tests.helpers import write_digits

    data = tmp_path / "data"
    write_digits(data, mnist, per_class=8)
    faint = np.full((100, 100), 200, np.uint8)
    faint[40:60, 45:55] = 195
    speck = np.full((200, 200), 255, np.uint8)
    speck[100:103, 100:103] = 0
    strip = np.full((10, 5000), 255, np.uint8)
    strip[:, 2500:2510] = 0
    for name, gray in (("faint.png", faint), ("speck.png", speck), ("strip.png", strip)):
        (data / "3" / name).write_bytes(png(gray))
    ingest, split, prepare = run_stages(tmp_path / "project", data, "ingest", "split", "prepare")
    assert ingest.returncode == 0 and split.returncode == 0, ingest.stderr + split.stderr
    assert prepare.returncode == 0, prepare.stderr
    left = pd.read_csv(tmp_path / "project/data/prepared/left_out.csv", dtype=str)
    assert sorted(left["path"]) == ["3/faint.png", "3/speck.png", "3/strip.png"]
    assert set(left["label"]) == {"3"} and set(left["split"]) <= {"train", "val", "test"}
    assert set(left["message"]) == {"nothing to classify: nothing the size of a digit stands out from the background"}
    kept = {s: load_prepared(tmp_path / f"project/data/prepared/{s}.npz") for s in ("train", "val", "test")}
    assert sum(len(p.paths) for p in kept.values()) == 80
    assert all(p.x.reshape(len(p.x), -1).any(axis=1).all() for p in kept.values())  # no input of pure background
    assert "prepare: 3 image(s) left out, in which data.normalize=mnist finds nothing the size of a digit" \
        in prepare.stdout
    assert "prepare: 80 images (train " in prepare.stdout
    assert "data.normalize=mnist: of the 83 decoded, " in prepare.stdout
    for name in ("faint.png", "speck.png", "strip.png"):  # gone from the data: the list of the last run goes too
        (data / "3" / name).unlink()
    *_, prepare = run_stages(tmp_path / "project", data, "ingest", "split", "prepare")
    assert prepare.returncode == 0 and "left out" not in prepare.stdout
    assert not (tmp_path / "project/data/prepared/left_out.csv").exists()


def test_a_class_left_without_images_in_a_split_stops_prepare_naming_it(tmp_path, mnist):
    """If leaving out such images empties a class in a split, nothing could be trained or measured on it:
    prepare stops with the files and the way out, and writes no arrays."""
    from tests.helpers import write_digits

    data = tmp_path / "data"
    write_digits(data, mnist, per_class=4)
    for f in (data / "3").iterdir():
        f.unlink()
    for shade in range(4):  # four faint smudges, distinct files
        faint = np.full((100, 100), 200, np.uint8)
        faint[40:60, 45:55] = 195 - shade
        (data / "3" / f"faint_{shade}.png").write_bytes(png(faint))
    *_, prepare = run_stages(tmp_path / "project", data, "ingest", "split", "prepare")
    assert prepare.returncode != 0 and "Traceback" not in prepare.stderr
    assert "once the 4 image(s) in which data.normalize=mnist finds nothing the size of a digit are left out " \
           "(3/faint_" in prepare.stderr
    assert "class '3' has no train image, class '3' has no val image, class '3' has no test image; replace those " \
           "files with clearer ones, add images, or set data.normalize=none" in prepare.stderr
    assert not (tmp_path / "project/data/prepared/train.npz").exists()
