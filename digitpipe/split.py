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
        need = " / ".join(f"{k}={v}" for k, v in fractions.items())
        raise DigitpipeError(
            f"class '{label}' has only {len(hashes)} distinct image(s): too few for the split "
            f"{need} (each split needs at least one image per class); add images or drop the class "
            "from data.classes"
        )
    order = rng.permutation(len(hashes))
    names = ["test"] * sizes["test"] + ["val"] * sizes["val"] + ["train"] * sizes["train"]
    return {hashes[i]: name for i, name in zip(order, names, strict=True)}


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
