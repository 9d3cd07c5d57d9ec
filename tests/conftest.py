"""Shared fixtures: small real images and throw-away copies of the project with the real `dvc`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SMALL_RECIPE, copy_worktree, run, set_params, small_model_split, write_digits


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures a test draws (and inspects) are closed after it, so a worker does not pile them up."""
    yield
    if (plt := sys.modules.get("matplotlib.pyplot")) is not None:
        plt.close("all")


@pytest.fixture(scope="session")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 packaged MNIST digits (uint8 28x28) and labels."""
    from digitpipe.sample import load_mnist_sample

    return load_mnist_sample()


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory, mnist) -> Path:
    """A git repo holding this project with a tiny config (60 images, 1 epoch), reproduced once."""
    project = tmp_path_factory.mktemp("tiny") / "project"
    project.mkdir()
    copy_worktree(project)
    write_digits(project / "tinydata", mnist, per_class=6)
    set_params(project, **{"data.dir": "tinydata", "train.epochs": 1, "train.batch_size": 16})
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "tiny configuration"], project)
    run(["dvc", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "reproduced"], project)
    return project


@pytest.fixture
def project(tiny_project, tmp_path) -> Path:
    """A private copy of the reproduced tiny project (git history and DVC cache included)."""
    dest = tmp_path / "project"
    shutil.copytree(tiny_project, dest, symlinks=True)
    return dest


def find_chromium() -> Path | None:
    """The browser the tests drive: ``DIGITPIPE_CHROMIUM`` when set, else Debian's ``/usr/bin/chromium``, else a
    Chromium or Chrome on the PATH (other systems name and place it otherwise)."""
    if os.environ.get("DIGITPIPE_CHROMIUM"):
        return Path(os.environ["DIGITPIPE_CHROMIUM"])
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return Path(found)
    return None


CHROMIUM = find_chromium()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from the system package, driven by Playwright (never a downloaded browser)."""
    if CHROMIUM is None or not CHROMIUM.exists():
        pytest.skip("no Chromium found (apt-get install chromium, or DIGITPIPE_CHROMIUM=/path/to/chrome); "
                    ".ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, mnist) -> Path:
    """A digitnet trained for a few epochs on 2,000 real digits (about 20 s): good enough to test behaviour."""
    from digitpipe.runtime import load_keras

    load_keras()
    from digitpipe import training
    from digitpipe.card import Card
    from digitpipe.models import Augment

    images, labels = mnist
    x = images[..., None].astype(np.float32) / 255.0
    train, val, _ = small_model_split(labels)
    path = tmp_path_factory.mktemp("model") / "small.keras"
    card = Card(classes=[str(i) for i in range(10)], normalize="mnist", params={"train": SMALL_RECIPE})
    training.train_model("digitnet", (x[train], labels[train]), (x[val], labels[val]), num_classes=10,
                         augment=Augment(rotation=10, translation=0.1, zoom=0.1),
                         recipe=training.Recipe.from_params(SMALL_RECIPE), seed=0, model_path=path, quiet=True,
                         card=card)
    return path


@pytest.fixture(scope="session")
def small_exports(small_model, mnist) -> dict[str, Path]:
    """The small model exported like the pipeline's export stage: SavedModel, float and int8 TFLite."""
    from digitpipe.export import calibration_images, export_saved_model, int8_tflite, to_tflite
    from digitpipe.inference import Predictor

    images, labels = mnist
    train = small_model_split(labels)[0]
    out = small_model.parent
    keras_model = Predictor.load(small_model)
    saved = export_saved_model(keras_model.model, out / "saved", keras_model.card)
    (out / "small.tflite").write_bytes(to_tflite(saved))
    calibration = calibration_images(images[train])
    (out / "small_int8.tflite").write_bytes(int8_tflite(keras_model.model, keras_model.card, calibration))
    return {"saved": saved, "float": out / "small.tflite", "int8": out / "small_int8.tflite"}


@pytest.fixture
def fake_ghostscript(tmp_path, monkeypatch) -> Path:
    """A ``gs`` first on PATH that only leaves a marker file: the path of that marker, which must never appear.
    Pillow's EPS plugin runs ``gs`` (and asks ``gs --version`` first) on any EPS file it is allowed to decode."""
    from PIL import EpsImagePlugin

    bin_dir, marker = tmp_path / "fake-bin", tmp_path / "gs-was-run"
    bin_dir.mkdir()
    (bin_dir / "gs").write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    (bin_dir / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # looked up again, on this PATH
    return marker
