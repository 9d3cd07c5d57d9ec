"""Stratified, seeded, leak-free train/val/test split of the index."""

from __future__ import annotations

import numpy as np
import pandas as pd

from digitpipe.errors import DigitpipeError

SPLITS = ("train", "val", "test")


def split_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` groups go to each split: val and test rounded, train takes the rest."""
    val = int(n * fractions["val"] + 0.5)
    test = int(n * fractions["test"] + 0.5)
    return {"train": n - val - test, "val": val, "test": test}


def assign_groups(hashes: list[str], fractions: dict[str, float], rng: np.random.Generator,
                  label: str) -> dict[str, str]:
    """Shuffle one class's distinct contents and deal them out to the splits."""
    sizes = split_sizes(len(hashes), fractions)
    if min(sizes.values()) < 1:
        raise DigitpipeError(too_few(label, len(hashes), fractions, sizes))
    order = rng.permutation(len(hashes))
    names = ["test"] * sizes["test"] + ["val"] * sizes["val"] + ["train"] * sizes["train"]
    return {hashes[i]: name for i, name in zip(order, names, strict=True)}


def too_few(label: str, n: int, fractions: dict[str, float], sizes: dict[str, int]) -> str:
    """Why a class cannot be split: which split gets none of its ``n`` images, and the fraction that would give
    it one; or, under one image per split, that the class itself is too small."""
    if n < len(SPLITS):
        return (f"class '{label}' has only {n} distinct image(s): too few for {len(SPLITS)} splits (each needs at "
                "least one image of every class); add images or drop the class from data.classes")
    fixes = " and ".join(f"split.{name} >= {enough_fraction(name, n)}" for name in SPLITS if sizes[name] < 1)
    given = ", ".join(f"split.{name}={fractions[name]}" for name in SPLITS)
    dealt = ", ".join(f"{name} {sizes[name]}" for name in SPLITS)
    return (f"class '{label}' has {n} distinct images: {given} deal them out as {dealt}, but every split needs at "
            f"least one image of each class; set {fixes} (keeping the sum at 1), or add images")


def enough_fraction(name: str, n: int) -> float:
    """The smallest round fraction that gives split ``name`` at least one of ``n`` images whatever the other
    fractions are: val and test round ``n * fraction``, so they need half an image's worth; train takes what
    the two rounded shares leave, so it needs two images' worth."""
    need = (2.0 if name == "train" else 0.5) / n
    digits = max(2, 1 - int(np.floor(np.log10(need))))  # two significant figures, rounded up
    return float(np.ceil(need * 10**digits - 1e-9) / 10**digits)
def stratified_split(index: pd.DataFrame, classes: list[str], fractions: dict[str, float],
                     seed: int) -> dict[str, pd.DataFrame]:
    """Split per class; identical files (same hash) always land in the same split.

    The result depends only on the index content, the classes and the seed; each
    manifest is sorted by path so it is byte-identical from run to run.
    """
    rng = np.random.default_rng(seed)
    where: dict[str, str] = {}
    for label in classes:
        hashes = sorted(set(index.loc[index["label"] == label, "hash"]) - set(where))
        if hashes or (index["label"] == label).any():
            where.update(assign_groups(hashes, fractions, rng, label))
    split_of = index["hash"].map(where)
    return {
        name: index[split_of == name].sort_values("path", kind="stable").reset_index(drop=True)
        for name in SPLITS
    }
