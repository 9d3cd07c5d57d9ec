"""Temperature scaling: fitted on validation, it lowers NLL and ECE, never changes the class, and survives export."""

from __future__ import annotations

import numpy as np
import pytest

from digitpipe.calibration import BOUNDS, STEADY, fit_temperature, fit_words, nll, rough_fit, scaled
from digitpipe.card import Card, read_card
from digitpipe.errors import DigitpipeError
from digitpipe.metrics import calibration_bins, expected_calibration_error
from tests.helpers import own_outputs, small_model_split


def ece(probs: np.ndarray, y: np.ndarray) -> float:
    predicted = probs.argmax(1)
    return expected_calibration_error(calibration_bins(probs.max(1), predicted == y), len(y))


def underconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits), and what a model too unsure by a factor of 3 says: softmax(logits / 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 10)) * 4
    truth = np.exp(logits - logits.max(1, keepdims=True))
    truth /= truth.sum(1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in truth])
    p = np.exp(logits / 3)
    return (p / p.sum(1, keepdims=True)).astype(np.float32), y


def test_the_fitted_temperature_lowers_nll_and_ece_and_keeps_every_class():
    probs, y = underconfident()
    t = fit_temperature(probs, y)
    assert 0.28 < t < 0.4  # about 1/3: it sharpens what was too unsure
    calibrated = scaled(probs, t)
    assert nll(probs, y, t) < nll(probs, y) - 0.1
    assert ece(calibrated, y) < 0.02 < ece(probs, y)
    assert (calibrated.argmax(1) == probs.argmax(1)).all()
    assert np.allclose(calibrated.sum(1), 1, atol=1e-6)
    for other in (t * 0.8, t * 1.25):  # the fit is the minimum
        assert nll(probs, y, t) <= nll(probs, y, other)


def test_an_overconfident_model_is_softened_and_temperature_1_changes_nothing():
    probs, y = underconfident(seed=1)
    sharp = scaled(probs, 0.2)  # far too sure
    assert fit_temperature(sharp, y) > 1
    assert np.array_equal(scaled(probs, 1.0), probs)
    assert fit_temperature(probs[:0], y[:0]) == 1.0


@pytest.mark.parametrize("n", [50, 270, 750])
def test_a_validation_split_without_a_mistake_does_not_make_the_model_certain(n):
    """With every validation image right the likelihood has no best temperature: it rises as T falls to 0,
    where every answer, a mistake too, would be shown as certain. The fit then aims at Laplace's
    (n + 1) / (n + 2) mean confidence, as it would with one more image, wrongly classified."""
    rng = np.random.default_rng(n)
    y = rng.integers(0, 10, size=4 * n)
    logits = rng.normal(size=(4 * n, 10))
    logits[np.arange(4 * n), y] += rng.uniform(5, 12, size=4 * n)  # a trained model: right, by far
    p = np.exp(logits / 3)  # and unsure of it, as label smoothing leaves it
    probs = (p / p.sum(1, keepdims=True)).astype(np.float32)
    right = np.flatnonzero(probs.argmax(1) == y)[:n]
    probs, y = probs[right], y[right]
    assert len(y) == n
    t = fit_temperature(probs, y)
    assert BOUNDS[0] < t < 1
    assert scaled(probs, t).max(1).mean() == pytest.approx((n + 1) / (n + 2), abs=2e-4)
    # one error among them: the likelihood's own best temperature, which the search finds inside the bounds
    wrong = probs.argmax(1) != np.roll(y, 1)
    assert wrong.any()
    y[np.flatnonzero(wrong)[0]] = np.roll(y, 1)[np.flatnonzero(wrong)[0]]
    t_err = fit_temperature(probs, y)
    for other in (t_err * 0.8, t_err * 1.25):
        assert nll(probs, y, t_err) <= nll(probs, y, other)



def test_the_train_stage_says_what_the_temperature_rests_on_and_when_that_is_too_little():
    assert fit_words(750, 3) == "fitted on 750 validation images, 3 misread"
    assert fit_words(1, 0) == "fitted on 1 validation image, none misread, so by Laplace's rule"
    assert rough_fit(STEADY) is None and rough_fit(750) is None
    note = rough_fit(STEADY - 1)
    assert note.startswith(f"the temperature was fitted on {STEADY - 1} validation images, fewer than {STEADY}: a "
                           "rough fit, so the percentages shown may be off by a few points")
    assert "(README, What the percentage means" in note

def test_the_card_carries_the_temperature_and_refuses_a_bad_one():
    card = Card(classes=["a", "b"], temperature=0.5432)
    assert Card.from_bytes(card.to_bytes(), "m").temperature == 0.5432
    assert Card.from_bytes(card.to_bytes(), "m").calibrated is False
    exported = Card.from_bytes(Card(calibrated=True, graph_temperature=0.5).to_bytes(), "m")
    assert (exported.calibrated, exported.graph_temperature) == (True, 0.5)
    older = Card.from_bytes(b'{"classes": ["a"], "normalize": "none"}', "m")
    assert (older.temperature, older.calibrated) == (1.0, False)
    with pytest.raises(DigitpipeError, match="damaged"):
        Card.from_bytes(b'{"classes": ["a"], "normalize": "none", "temperature": -1}', "m")
    with pytest.raises(DigitpipeError, match="calibrated 'yes' is not true or false"):
        Card.from_bytes(b'{"classes": ["a"], "normalize": "none", "calibrated": "yes"}', "m")


def test_training_fits_the_temperature_on_validation_and_predictors_apply_it(small_model, mnist):
    from digitpipe.inference import Predictor

    images, labels = mnist
    _, val, unseen = small_model_split(labels)
    predictor = Predictor.load(small_model)
    t = predictor.card.temperature
    assert t != 1.0
    raw_val = predictor.raw_probabilities(images[val])
    assert nll(raw_val, labels[val], t) < nll(raw_val, labels[val])
    assert ece(scaled(raw_val, t), labels[val]) < ece(raw_val, labels[val])
    raw, calibrated = predictor.raw_probabilities(images[unseen]), predictor.probabilities(images[unseen])
    assert np.array_equal(calibrated, scaled(raw, t))
    assert (calibrated.argmax(1) == raw.argmax(1)).all()
    assert ece(calibrated, labels[unseen]) < ece(raw, labels[unseen])


INT8_BOUND = 0.05  # the int8 model's calibrated probabilities stay within this of the Keras model's


def test_the_temperature_survives_export(small_model, small_exports, mnist):
    from digitpipe.inference import Predictor

    images, labels = mnist
    x = images[small_model_split(labels)[2][:500]]
    keras = Predictor.load(small_model)
    reference = keras.probabilities(x)
    assert np.abs(reference - keras.raw_probabilities(x)).max() > 0.05  # the temperature moves them
    for path in (small_exports["saved"], small_exports["float"]):  # the temperature inside: the card's is 1
        assert (read_card(path).temperature, read_card(path).graph_temperature) == (1.0, keras.card.temperature)
        assert np.abs(Predictor.load(path).probabilities(x) - reference).max() < 1e-5
    int8 = Predictor.load(small_exports["int8"])
    assert int8.card.temperature == keras.card.temperature
    assert np.abs(int8.probabilities(x) - reference).max() < INT8_BOUND


def test_the_float_exports_give_calibrated_probabilities_to_any_runtime(small_model, small_exports, mnist):
    """The temperature is inside the SavedModel's and the float TFLite model's graphs: TF Serving or an app's
    interpreter, which never read the card, get the probabilities digitpipe shows, not the raw softmax."""
    from digitpipe.inference import Predictor

    images, labels = mnist
    x = images[small_model_split(labels)[2][:500]]
    keras = Predictor.load(small_model)
    reference, raw = keras.probabilities(x), keras.raw_probabilities(x)
    for name in ("saved", "float"):
        assert read_card(small_exports[name]).calibrated, name
        own = own_outputs(small_exports[name], x)
        assert np.abs(own - reference).max() < 1e-5, name
        assert np.abs(own - raw).max() > 0.05, name  # not the raw softmax
        assert (own.argmax(1) == raw.argmax(1)).all(), name


def test_the_int8_export_leaves_the_temperature_to_its_reader_so_confidence_is_not_capped(small_model, small_exports,
                                                                                          mnist):
    """An int8 output moves in steps of 1/256: a calibrated one could never pass 99.6%, and every answer would
    fall below --min-confidence 0.999. So the int8 model outputs the raw softmax and its card keeps the
    temperature, which digitpipe applies: its answers reach what the Keras model's do."""
    from digitpipe.inference import Predictor

    images, labels = mnist
    x = images[small_model_split(labels)[2][:500]]
    keras = Predictor.load(small_model)
    card = read_card(small_exports["int8"])
    assert (card.calibrated, card.temperature) == (False, keras.card.temperature)
    assert np.abs(own_outputs(small_exports["int8"], x) - keras.raw_probabilities(x)).max() < INT8_BOUND
    int8 = Predictor.load(small_exports["int8"]).probabilities(x).max(1)
    assert (int8 > 255 / 256).sum() >= 0.9 * (keras.probabilities(x).max(1) > 0.999).sum() > 0


def test_an_older_export_without_the_temperature_inside_is_still_calibrated(small_model, tmp_path, mnist):
    """An export made before the temperature went into the graph (raw softmax out, the temperature in its card,
    no ``calibrated``): digitpipe applies the card's temperature to it, as ever."""
    import json

    from digitpipe.card import CARD_NAME
    from digitpipe.export import export_saved_model
    from digitpipe.inference import Predictor

    images, labels = mnist
    x = images[small_model_split(labels)[2][:200]]
    keras = Predictor.load(small_model)
    old = export_saved_model(keras.model, tmp_path / "old", keras.card, calibrated=False)
    doc = json.loads((old / CARD_NAME).read_text())
    for key in ("calibrated", "graph_temperature"):
        doc.pop(key)
    (old / CARD_NAME).write_text(json.dumps(doc))
    assert np.abs(Predictor.load(old).probabilities(x) - keras.probabilities(x)).max() < 1e-5


def test_an_export_is_never_calibrated_twice(small_exports, tmp_path):
    """Exporting an export (its card says the graph applies a temperature) would apply it a second time."""
    from digitpipe.export import export_saved_model, to_tflite
    from digitpipe.inference import Predictor

    saved = Predictor.load(small_exports["saved"])
    with pytest.raises(DigitpipeError, match="applies a temperature already"):
        export_saved_model(None, tmp_path / "again", saved.card)
    with pytest.raises(ValueError, match="could not say more than 99.6%"):  # an int8 model of that graph
        to_tflite(small_exports["saved"], calibration=np.zeros((1, 28, 28, 1), np.float32))


def test_an_export_needs_the_softmax_layer_the_temperature_goes_into():
    import keras

    from digitpipe.export import calibrated_model

    inputs = keras.Input((28, 28, 1))
    plain = keras.Model(inputs, keras.layers.Dense(3, activation="relu", name="probs")(keras.layers.Flatten()(inputs)))
    with pytest.raises(DigitpipeError, match="not the softmax layer 'probs'"):
        calibrated_model(plain, 0.5)


def test_the_same_model_exports_to_the_same_bytes_in_every_process(small_model, small_exports, tmp_path, mnist):
    """The export stage's SavedModel is the same files in every run, as the stage runs it (a fresh process): the
    variables' order, a dropout layer's random seed and the fingerprint's identifier would vary unless pinned.
    (TensorFlow numbers the traced functions by how many the process traced before, so a process that did other
    work first, such as this one, names them otherwise.)"""
    import subprocess
    import sys

    from digitpipe.inference import Predictor, folder_files
    from tests.helpers import ENV, ROOT

    script = ("import sys; from pathlib import Path; from digitpipe.runtime import load_keras; load_keras(); "
              "from digitpipe.export import export_saved_model; from digitpipe.inference import Predictor; "
              "p = Predictor.load(sys.argv[1]); export_saved_model(p.model, Path(sys.argv[2]), p.card)")
    runs = [tmp_path / "first", tmp_path / "second"]
    for out in runs:
        subprocess.run([sys.executable, "-c", script, str(small_model), str(out)],
                       env={**ENV, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True, timeout=300)

    def files(folder):
        return {name: (folder / name).read_bytes() for name in folder_files(folder)}

    first, second = (files(out) for out in runs)
    assert {"saved_model.pb", "fingerprint.pb", "variables/variables.index"} <= set(first)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
    assert b"seed_generator" not in first["saved_model.pb"]  # the dropout layer, identity outside training, left out
    images, labels = mnist
    x = images[small_model_split(labels)[2][:200]]
    assert np.abs(Predictor.load(runs[0]).probabilities(x) - Predictor.load(small_model).probabilities(x)).max() < 1e-5
