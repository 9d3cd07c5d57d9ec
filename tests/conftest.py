"""Shared fixtures: small real images and throw-away copies of the project with the real `dvc`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# git and dvc inside the throw-away projects: no global config, no analytics, no prompts
ENV = {
    **os.environ,
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


@pytest.fixture(scope="session")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 packaged MNIST digits (uint8 28x28) and labels."""
    from digitpipe.sample import load_mnist_sample

    return load_mnist_sample()


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


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from the system package, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


SMALL_RECIPE = {"epochs": 6, "batch_size": 64, "lr": 0.003, "schedule": "cosine", "warmup_epochs": 1,
                "label_smoothing": 0.1, "weight_decay": 0.0001, "keep": "last",
                "patience": 6, "lr_patience": 3, "lr_factor": 0.5}


def small_model_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices the small model trains on (200 per class), selects on (50) and never sees (250)."""
    parts = [np.flatnonzero(labels == c) for c in range(10)]
    return tuple(np.sort(np.concatenate([p[a:b] for p in parts])) for a, b in ((0, 200), (200, 250), (250, None)))


@pytest.fixture(scope="session")
def small_model(tmp_path_factory, mnist) -> Path:
    """A digitnet trained for a few epochs on 2,000 real digits (about 20 s): good enough to test behaviour."""
    from digitpipe.runtime import load_keras

    load_keras()
    from digitpipe import training
    from digitpipe.card import Card

    images, labels = mnist
    x = images[..., None].astype(np.float32) / 255.0
    train, val, _ = small_model_split(labels)
    path = tmp_path_factory.mktemp("model") / "small.keras"
    card = Card(classes=[str(i) for i in range(10)], normalize="mnist", params={"train": SMALL_RECIPE})
    training.train_model("digitnet", (x[train], labels[train]), (x[val], labels[val]), num_classes=10,
                         augment={"rotation": 10, "translation": 0.1, "zoom": 0.1},
                         recipe=training.Recipe.from_params(SMALL_RECIPE), seed=0, model_path=path, quiet=True,
                         card=card)
    return path


@pytest.fixture(scope="session")
def small_exports(small_model, mnist) -> dict[str, Path]:
    """The small model exported like the pipeline's export stage: SavedModel, float and int8 TFLite."""
    from digitpipe.export import calibration_images, export_saved_model, to_tflite
    from digitpipe.inference import Predictor

    images, labels = mnist
    train = small_model_split(labels)[0]
    out = small_model.parent
    keras_model = Predictor.load(small_model)
    saved = export_saved_model(keras_model.model, out / "saved", keras_model.card)
    (out / "small.tflite").write_bytes(to_tflite(saved, keras_model.card))
    calibration = calibration_images(images[train])
    (out / "small_int8.tflite").write_bytes(to_tflite(saved, keras_model.card, calibration=calibration))
    return {"saved": saved, "float": out / "small.tflite", "int8": out / "small_int8.tflite"}
