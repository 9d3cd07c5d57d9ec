"""Load a trained model once and classify images fast: Keras (.keras) or TensorFlow Lite (.tflite)."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from digitpipe.calibration import scaled
from digitpipe.card import Card, read_card
from digitpipe.errors import DigitpipeError, missing_output_hint
from digitpipe.limits import SIDE, as_batch
from digitpipe.runtime import load_keras, stderr_silenced

BATCH = 1024  # images per call for folders: big enough to amortise the call, small enough for any memory
LOAD_TRIES = 3  # loads of a model that changes under them before giving up (see Predictor.load)


def model_signature(path: Path) -> tuple | None:
    """What changes when the model at ``path`` is replaced or rewritten, from ``os.stat`` alone (a few
    microseconds, so requests may look at it on the event loop): ``(name, (inode, size, modification time))``
    of the file, or of each file of a SavedModel folder (``saved_model.pb``, its card and its ``variables/``;
    any other folder only by itself); None when there is no model there (yet, or while a retrain has removed it)."""
    def facts(st: os.stat_result) -> tuple[int, int, int]:
        return st.st_ino, st.st_size, st.st_mtime_ns

    try:
        st = os.stat(path)
        if not (stat.S_ISDIR(st.st_mode) and (path / "saved_model.pb").is_file()):  # a file, or no model's folder:
            return ((path.name, facts(st)),)                                   # never walked (`--model .`)
        return tuple((rel, facts(os.stat(path / rel))) for rel in folder_files(path))
    except OSError:  # gone, or a file of the folder went between the listing and its stat
        return None


def not_there(path: Path) -> DigitpipeError:
    """The error for a model path that :func:`model_signature` finds nothing at: missing, or one the file system
    refuses to look at (a folder on the way this user may not enter, a name too long), which is no missing file."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):
            return load_failure(path, f"cannot read: {err.strerror or err}")
    return DigitpipeError(f"model {path} not found: {missing_output_hint(path)}")


def load_failure(path: Path, reason: object) -> DigitpipeError:
    """The one-line error for a model that is there but cannot be used: the first line of ``reason``."""
    return DigitpipeError(f"model {path} could not be loaded: {reason}".splitlines()[0])


def refuse_special(path: Path) -> None:
    """Refuse a model path that is a pipe, socket or device before reading it: reading a pipe waits for ever, and
    ``/dev/zero`` never ends."""
    kind = os.stat(path).st_mode
    if not (stat.S_ISREG(kind) or stat.S_ISDIR(kind)):
        raise load_failure(path, "it is not a regular file (a pipe, socket or device); give the model file")


def not_a_model(path: Path) -> DigitpipeError:
    """The error for a path that is no kind of model digitpipe runs."""
    return DigitpipeError(f"model {path}: expected a .keras file, a .tflite file or a SavedModel folder")


def misnamed(path: Path) -> str | None:
    """Why a ``.keras`` or ``.tflite`` file cannot be the model its name says, from its first bytes: empty, or
    the other kind (a ``.keras`` file is a zip archive; a TFLite file says ``TFL3`` at byte 4). ``None`` when
    it may be; its loader has the last word."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "the file is empty (0 bytes)"
    if path.suffix.lower() == ".keras" and head[4:8] == b"TFL3":
        return "it is a TFLite model, named .keras: name it .tflite"
    if path.suffix.lower() == ".tflite" and head.startswith(b"PK\x03\x04"):
        return "it is a zip archive, as a Keras model is, named .tflite: if it is one, name it .keras"
    return None


def folder_files(folder: Path) -> list[str]:
    """The files of a SavedModel folder, as paths relative to it, in sorted order."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def tensorflow():
    """TensorFlow, imported quietly (see :mod:`digitpipe.runtime`)."""
    load_keras()
    import tensorflow as tf

    return tf


class Predictor:
    """Classifies model inputs (see :func:`digitpipe.images.model_pixels`) into class probabilities."""

    @staticmethod
    def load(path: str | Path) -> Predictor:
        """The right predictor for a ``.keras`` or ``.tflite`` file or a SavedModel folder; a clear error when it
        is missing or bad.

        A run of the pipeline in the same project may replace or remove the model while it loads (the train
        stage removes ``models/model.keras`` until it ends, then puts the new one in place): the file is looked
        at before and after, so the weights and the card always come from one and the same file, and a model
        that vanished mid-load is reported as missing, not as damaged."""
        path = Path(path)
        for _ in range(LOAD_TRIES):
            before = model_signature(path)
            if before is None:
                raise not_there(path)
            try:
                predictor = Predictor._open(path)
            except Exception as err:  # noqa: BLE001 - a file cut short mid-write: TensorFlow raises many kinds
                if model_signature(path) != before:
                    continue  # removed or replaced while it loaded: look again
                if isinstance(err, DigitpipeError):
                    raise
                raise load_failure(path, f"{type(err).__name__}: {err}") from None
            if model_signature(path) == before:
                return predictor
        raise DigitpipeError(f"model {path} changed each time it was loaded (something is writing it, such as a "
                             "`dvc repro` in this project): try again once that has finished")

    @staticmethod
    def _open(path: Path) -> Predictor:
        refuse_special(path)
        kind = path.suffix.lower()  # M.TFLITE, as some systems name files
        if kind in (".tflite", ".keras") and path.is_file() and (problem := misnamed(path)):
            raise load_failure(path, problem)
        if kind == ".keras" and path.suffix != ".keras":
            raise load_failure(path, f"Keras loads a model only from a name that ends in .keras, in lower case: "
                                     f"name it {path.stem}.keras")
        if kind == ".tflite":
            kind_of: type[Predictor] = TFLitePredictor
        elif path.is_dir() and (path / "saved_model.pb").is_file():
            kind_of = SavedModelPredictor
        elif path.suffix == ".keras":
            kind_of = KerasPredictor
        else:
            raise not_a_model(path)
        card = read_card(path)  # first: a damaged card is refused before TensorFlow spends seconds loading
        predictor = kind_of(path)
        predictor.path, predictor.card = path, card
        return predictor

    def class_names(self, given: list[str] | None, flag: str = "") -> list[str]:
        """The names of the outputs: ``given`` ones (``flag``: where from) or else the card's; a clear error when
        their number does not fit the model's outputs, so no image is answered with the wrong names."""
        names = given or self.card.classes
        if len(names) != self.num_classes:
            many = len(names) != 1
            verb = ("were" if many else "was") if given else ("are" if many else "is")
            source = f"{verb} given{flag}" if given else f"{verb} in its model card"
            commas = " (names are separated by spaces, not commas)" if given and any("," in n for n in given) else ""
            raise DigitpipeError(f"the model has {self.num_classes} outputs but {len(names)} class "
                                 f"name{'s' if many else ''} {source}{commas}")
        return names

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities, shape (N, classes): the model's own at the card's temperature (1 for a
        float export, whose graph applies it itself)."""
        return scaled(self.raw_probabilities(x), self.card.temperature)

    def raw_probabilities(self, x: np.ndarray) -> np.ndarray:
        """The model's own output: the softmax before calibration for a ``.keras`` model (for measuring what
        calibration changed) and the int8 export; calibrated already for the float exports."""
        batch = as_batch(x)
        if len(batch) == 0:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        return np.concatenate([self._run(batch[i:i + BATCH]) for i in range(0, len(batch), BATCH)])

    num_classes: int = 10
    path: Path
    card: Card  # classes and preprocessing policy (see digitpipe.card)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasPredictor(Predictor):
    """A ``.keras`` model, loaded in safe mode, called through one traced graph function."""

    def __init__(self, path: Path):
        tf = tensorflow()
        import keras

        from digitpipe.models import inference_model

        if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a file that is there
            raise load_failure(path, "not a Keras archive (a .keras file is a zip archive; this one is damaged, cut "
                               "short or another kind of file)")
        try:
            self.model = inference_model(keras.models.load_model(path, safe_mode=True, compile=False))
        except Exception as err:  # a damaged or foreign file: Keras raises many kinds
            raise load_failure(path, err) from None
        self.num_classes = int(self.model.output_shape[-1])
        spec = tf.TensorSpec([None, SIDE, SIDE, 1], tf.float32)
        # the traced graph itself: calling it skips tf.function's argument matching (0.2-0.3 ms a call)
        self._call = tf.function(self._forward, input_signature=[spec], autograph=False).get_concrete_function()
        self._tensor = tf.convert_to_tensor

    def _forward(self, x):
        return self.model(x, training=False)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._call(self._tensor(batch)).numpy()


class SavedModelPredictor(Predictor):
    """A TensorFlow SavedModel folder (as written by the export stage), called through its ``serve`` signature."""

    def __init__(self, path: Path):
        tf = tensorflow()
        try:
            self.loaded = tf.saved_model.load(str(path))
            self._serve = self.loaded.serve
            self.num_classes = int(self._serve(np.zeros((1, SIDE, SIDE, 1), np.float32)).shape[-1])
        except Exception as err:  # a damaged or foreign folder: TensorFlow raises many kinds (DataLossError...)
            raise load_failure(path, err) from None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._serve(batch).numpy()


class TFLitePredictor(Predictor):
    """A ``.tflite`` model (float or int8-quantised) run by LiteRT, the standalone TensorFlow Lite
    runtime: it imports in a fraction of a second and never loads TensorFlow itself."""

    def __init__(self, path: Path, content: bytes | None = None):
        """``content``: the file's bytes when already read (worker processes get them from the process that
        loaded the model, so every process runs the same model even if the file has changed since)."""
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        try:
            self.content = path.read_bytes() if content is None else content
        except OSError as err:
            raise DigitpipeError(f"model {path} could not be read: {err.strerror or err}") from None
        try:
            self.interpreter = self._interpreter(Interpreter)
        except (ValueError, RuntimeError) as err:
            if "XNNPACK" not in str(err):
                raise load_failure(path, err) from None
            # XNNPACK, the fast CPU kernels, refuses some int8 models that TFLite's own kernels run: those of a
            # training run that collapsed (units that barely ever fire get an output scale a million times
            # finer than their weights'). Such a model still deserves its accuracy measured, not a failed export.
            from ai_edge_litert.interpreter import OpResolverType

            try:
                self.interpreter = self._interpreter(
                    Interpreter, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            except (ValueError, RuntimeError) as again:
                raise load_failure(path, again) from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.num_classes = int(self.output["shape"][-1])
        self.size = 0

    def _interpreter(self, interpreter: type, **options):
        """A LiteRT interpreter of the model, its tensors allocated."""
        with stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            # one thread: folders are classified by one worker process per core
            made = interpreter(model_content=self.content, num_threads=1, **options)
            made.allocate_tensors()
        return made

    def _resize(self, n: int) -> None:
        if n != self.size:
            with stderr_silenced():
                self.interpreter.resize_tensor_input(self.input["index"], [n, SIDE, SIDE, 1])
                self.interpreter.allocate_tensors()
            self.size = n

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self._resize(len(batch))
        x = batch
        scale, zero = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            x = np.clip(np.round(batch / scale + zero), -128, 127).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if self.output["dtype"] != np.float32:
            out = (out.astype(np.float32) - zero) * scale
        return out
