"""The statistics behind a test accuracy: Wilson's interval for one run, McNemar's exact test for two runs
paired on the same test images. Pure arithmetic, shared by the evaluate stage, ``digitpipe compare`` and the
benchmarks."""

from __future__ import annotations

import math

ALPHA = 0.05
Z95 = 1.959964  # the standard normal's 97.5% point: a two-sided 95% interval


def mcnemar_p(fixed: int, broken: int) -> float:
    """McNemar's exact two-sided p-value: of the ``fixed + broken`` images two models disagree on (one right,
    the other wrong), how likely a split at least this uneven is if each image were a fair coin toss."""
    n, k = fixed + broken, min(fixed, broken)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def most_even_significant(disagreements: int, alpha: float = ALPHA) -> int | None:
    """The largest smaller side ``k`` for which a split of ``k`` to ``disagreements - k`` has p < ``alpha``;
    None when no split of so few disagreements would (five or fewer, at 0.05)."""
    best = None
    for k in range(disagreements // 2 + 1):
        if mcnemar_p(k, disagreements - k) < alpha:
            best = k
    return best


def wilson(right: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's 95% interval for an accuracy of ``right`` in ``total``: unlike the normal one it stays
    inside [0, 1] and is honest near 100%, where test accuracies live."""
    if total == 0:
        return 0.0, 1.0
    p = right / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)
