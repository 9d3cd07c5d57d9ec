"""The model card: what a trained model needs to be used the way it was trained.

A card holds the class names (in output order), the preprocessing policy its training data went
through (``data.normalize``, see :mod:`digitpipe.images`), the temperature that calibrates its
probabilities (:mod:`digitpipe.calibration`: the temperature a reader applies; 1 where the model's graph
applies it itself, as the float exports' do, marked ``calibrated``) and the params it was trained with. It
travels inside every model file, so ``predict`` and the web page apply exactly what training
applied, with no flag for the user to remember:

- ``.keras``: an entry ``digitpipe.json`` in the archive (Keras ignores entries it does not know);
- ``.tflite``: a small zip holding ``digitpipe.json`` appended to the flatbuffer (as TensorFlow
  Lite's own metadata tools pack associated files; interpreters read only the flatbuffer);
- SavedModel folder: ``digitpipe.json`` beside ``saved_model.pb``.

A model without a card (made elsewhere, or by an older digitpipe) is used with the defaults:
classes 0-9, the ``mnist`` policy and temperature 1 (its probabilities as they come).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitpipe.errors import DigitpipeError
from digitpipe.params import NORMALIZE, hidden_characters

CARD_NAME = "digitpipe.json"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # zip entries carry no save time, so equal cards give equal bytes


@dataclass(frozen=True)
class Card:
    """The facts of a trained model; ``params`` are the training params, as the train stage read them."""

    classes: list[str] = field(default_factory=lambda: [str(i) for i in range(10)])
    normalize: str = "mnist"
    params: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0  # what a reader divides the model's log-probabilities by (digitpipe.calibration)
    calibrated: bool = False  # True: the model's graph applies ``graph_temperature`` itself (the float exports);
    graph_temperature: float = 1.0  # the card's temperature is then 1, so that any reader, an older one too,
    #                                 applies nothing again
    known: bool = True  # False when the model carried no card and these are the defaults

    def to_bytes(self) -> bytes:
        doc = {"classes": self.classes, "normalize": self.normalize, "params": self.params,
               "temperature": self.temperature, "calibrated": self.calibrated,
               "graph_temperature": self.graph_temperature}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @staticmethod
    def from_bytes(data: bytes, where: str) -> Card:
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError(f"a JSON {type(doc).__name__}, not an object")
            temperature, graph_temperature = number(doc, "temperature"), number(doc, "graph_temperature")
            calibrated = doc.get("calibrated", False)
            if not isinstance(calibrated, bool):
                raise ValueError(f"calibrated {calibrated!r} is not true or false")
            if calibrated and temperature != 1:  # the graph applies graph_temperature: a reader must add nothing
                raise ValueError(f"calibrated is true, so the model applies its temperature itself, but temperature "
                                 f"is {temperature:g}, which a reader would apply a second time")
            classes = doc["classes"]
            if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
                raise ValueError(f"classes {classes!r} is not a list of names (text)")
            if len(set(classes)) != len(classes):
                raise ValueError(f"classes {classes!r} is not a list of distinct names")
            if any(not c.strip() for c in classes):
                raise ValueError("a class name is blank, which every output would show as no answer")
            if hidden := next((h for h in map(hidden_characters, map(str, classes)) if h), ""):
                raise ValueError(f"a class name holds {hidden}, which every output would show escaped")
            if doc["normalize"] not in NORMALIZE:
                raise ValueError(f"normalize {doc['normalize']!r} is not one of {', '.join(NORMALIZE)}")
            return Card(classes=list(classes), normalize=doc["normalize"],
                        params=dict(doc.get("params", {})), temperature=temperature, calibrated=calibrated,
                        graph_temperature=graph_temperature)
        except (ValueError, KeyError, TypeError) as err:
            reason = f"no {err}" if isinstance(err, KeyError) else str(err)
            raise DigitpipeError(f"{where}: the model card {CARD_NAME} is damaged ({reason})") from None


def number(doc: dict, key: str) -> float:
    """``doc[key]`` (1 where it is absent) as a positive finite number: JSON's true or "0.5" are not one."""
    value = doc.get(key, 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ValueError(f"{key} {value!r} is not a positive number")
    return float(value)


def zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    return info


def card_zip(card: Card) -> bytes:
    """A zip archive holding only the card."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zip_entry(CARD_NAME), card.to_bytes())
    return buf.getvalue()


def with_card(tflite: bytes, card: Card) -> bytes:
    """A ``.tflite`` flatbuffer with the card appended."""
    return tflite + card_zip(card)


def write_saved_model_card(folder: Path, card: Card) -> None:
    (folder / CARD_NAME).write_bytes(card.to_bytes())


def params_differences(card: Card, params: dict[str, Any]) -> list[str]:
    """The params (``section.key``) whose value in ``params`` is not the one the model was trained with."""
    def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    trained, given = flat(card.params), flat(params)
    return [f"{k} = {given.get(k)!r} (the model was trained with {trained.get(k)!r})"
            for k in sorted(set(trained) | set(given)) if trained.get(k) != given.get(k)]


def read_card(path: str | Path) -> Card:
    """The card a model file carries, or :class:`Card` defaults (``known=False``) when it has none."""
    path = Path(path)
    if path.is_dir():
        file = path / CARD_NAME
        return Card.from_bytes(file.read_bytes(), str(path)) if file.is_file() else Card(known=False)
    try:
        with zipfile.ZipFile(path) as archive:  # .keras is a zip; a carded .tflite ends in one
            if CARD_NAME in archive.namelist():
                return Card.from_bytes(archive.read(CARD_NAME), str(path))
    except (zipfile.BadZipFile, OSError):
        pass
    return Card(known=False)
