"""Temperature scaling: one number, fitted on the validation split, that makes the model's confidences honest.

A model trained with label smoothing is right far more often than its softmax says (it learns to
keep about ``label_smoothing`` of the probability off the top class). Dividing its log-probabilities
by a temperature ``T`` and taking the softmax again rescales every confidence and never changes which
class is on top; ``T`` is the value that minimises the negative log-likelihood of the validation
labels (Guo et al., "On Calibration of Modern Neural Networks", 2017). The train stage fits it and
writes it into the model card (:mod:`digitpipe.card`); :class:`digitpipe.inference.Predictor`
applies it, so evaluate, ``predict``, the web page and every export show calibrated probabilities.
"""

from __future__ import annotations

import math

import numpy as np

from digitpipe.output import counted

BOUNDS = (0.05, 20.0)   # temperatures searched: far past anything a trained classifier needs
FLOOR = 1e-30           # probabilities are floored here before the log (float32 softmax can give 0)
STEADY = 100            # validation images below which a fit is called rough: on 20 and 40 (10 and 30 images a
                        # class) bench/calibration.py measured the percentages off by 5 and 2 points on average,
                        # on 150 by under 1


def log_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``log softmax(log(probs) / temperature)`` in float64, row by row."""
    z = np.log(np.clip(np.asarray(probs, np.float64), FLOOR, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities at ``temperature`` (1 gives ``probs`` back), float32 like the model's own."""
    if temperature == 1.0:
        return np.asarray(probs, np.float32)
    return np.exp(log_probs(probs, temperature)).astype(np.float32)


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels at ``temperature``."""
    return float(-log_probs(probs, temperature)[np.arange(len(labels)), labels].mean())


def mean_confidence(probs: np.ndarray, temperature: float) -> float:
    """The mean top-class probability at ``temperature``; it falls as the temperature rises."""
    return float(np.exp(log_probs(probs, temperature).max(axis=1)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray, steps: int = 80) -> float:
    """The temperature that minimises :func:`nll` on ``(probs, labels)`` (a golden-section search over
    log T, which the NLL is convex in), rounded to 4 significant digits so that it prints and stores
    the same everywhere. 1.0 when there is nothing to fit on.

    When the model gets every one of the n validation images right, the NLL keeps falling as T falls to
    zero: no temperature is best, and the search would end at the lowest it tries, claiming certainty for
    every image, mistakes included. Then T is instead the one whose mean confidence on them is (n + 1) /
    (n + 2), Laplace's estimate of the accuracy after n successes in n trials (:func:`succession_temperature`).
    """
    if len(labels) == 0:
        return 1.0
    if (np.asarray(probs).argmax(axis=1) == labels).all():
        return succession_temperature(probs, len(labels), steps)
    lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(probs, labels, math.exp(a)), nll(probs, labels, math.exp(b))
    for _ in range(steps):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(probs, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(probs, labels, math.exp(b))
    return float(f"{math.exp((lo + hi) / 2):.4g}")


def succession_temperature(probs: np.ndarray, n: int, steps: int = 80) -> float:
    """The temperature at which the mean confidence on ``probs`` is (n + 1) / (n + 2), by bisection over
    log T within :data:`BOUNDS` (its nearest end when none gives it), rounded as :func:`fit_temperature`."""
    target = (n + 1) / (n + 2)
    lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_confidence(probs, math.exp(mid)) > target else (lo, mid)
    return float(f"{math.exp((lo + hi) / 2):.4g}")


def fit_words(images: int, misread: int) -> str:
    """What the temperature was fitted on, as the train stage says it: the validation images and how many of
    them the model got wrong (none: the fit fell back on Laplace's rule, :func:`fit_temperature`)."""
    return (f"fitted on {counted(images, 'validation image')}, "
            + (f"{misread:,} misread" if misread else "none misread, so by Laplace's rule"))


def rough_fit(images: int) -> str | None:
    """The train stage's note when the temperature was fitted on fewer than :data:`STEADY` validation images."""
    if images >= STEADY:
        return None
    return (f"the temperature was fitted on {counted(images, 'validation image')}, fewer than "
            f"{STEADY}: a rough fit, so the percentages shown may be off by a few points (README, What the "
            "percentage means; more images, or a larger split.val, give it more to go on)")
