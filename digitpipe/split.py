"""Stratified, seeded, leak-free train/val/test split of the index."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from digitpipe.errors import DigitpipeError
from digitpipe.output import counted, first_of, shown

SPLITS = ("train", "val", "test")


def split_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` groups go to each split: val and test rounded, train takes the rest."""
    val = int(n * fractions["val"] + 0.5)
    test = int(n * fractions["test"] + 0.5)
    return {"train": n - val - test, "val": val, "test": test}


def deal_order(hashes: list[str], seed: int) -> list[str]:
    """One class's distinct contents in the order the seed deals them: by a hash of each content keyed
    with the seed. An image's place depends on its own content and the seed alone, so adding or removing
    images leaves every other image in the same order (the split stays put as the data grows), and another
    seed gives another order."""
    key = str(seed).encode()
    return sorted(hashes, key=lambda h: hashlib.blake2b(h.encode(), key=key, digest_size=16).digest())


def assign_groups(hashes: list[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Deal one class's distinct contents out to the splits in :func:`deal_order`: test first, then val, then
    train (:func:`check_dealable` first). One image added to or removed from a class moves at most three of
    its others, each into a neighbouring split: no test image becomes a training image, nor the reverse."""
    sizes = split_sizes(len(hashes), fractions)
    names = ["test"] * sizes["test"] + ["val"] * sizes["val"] + ["train"] * sizes["train"]
    return dict(zip(deal_order(hashes, seed), names, strict=True))


def check_dealable(counts: dict[str, int], fractions: dict[str, float]) -> None:
    """Refuse, before any dealing, every class that cannot give each split an image, in one message: the
    classes too small for any fractions, and the smallest other class whose share of some split rounds to
    none (the fraction that fills its split fills every larger class's too)."""
    tiny, short = falling_short(counts, fractions)
    problems = []
    if len(tiny) == 1:
        (label, n), = tiny.items()
        problems.append(too_few(label, n, fractions, split_sizes(n, fractions)))
    elif tiny:
        listed = ", ".join(f"'{label}' ({n})" for label, n in tiny.items())
        problems.append(f"{len(tiny)} classes have fewer than {len(SPLITS)} distinct images: {listed}; each of the "
                        f"{len(SPLITS)} splits needs at least one image of every class; add images or drop these "
                        "classes from data.classes")
    if short:
        label = min(short, key=short.get)
        problems.append(too_few(label, short[label], fractions, split_sizes(short[label], fractions)))
        if len(short) > 1:
            problems[-1] += f" ({len(short)} classes fall short: {', '.join(short)}; that fills them all)"
    if problems:
        raise DigitpipeError("; also ".join(problems))


def falling_short(counts: dict[str, int], fractions: dict[str, float]) -> tuple[dict[str, int], dict[str, int]]:
    """The classes that cannot give each split an image, with their counts: those too small for any fractions,
    and the others whose share of some split rounds to none."""
    tiny = {label: n for label, n in counts.items() if n < len(SPLITS)}
    short = {label: n for label, n in counts.items()
             if label not in tiny and min(split_sizes(n, fractions).values()) < 1}
    return tiny, short


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
def distinct_groups(index: pd.DataFrame, classes: list[str]) -> dict[str, list[str]]:
    """Each class's distinct contents (hashes), sorted: what the split deals out. A content already claimed
    by an earlier class stays with it."""
    groups: dict[str, list[str]] = {}
    claimed: set[str] = set()
    by_label = {label: set(hashes) for label, hashes in index.groupby("label")["hash"]}
    for label in classes:
        if label in by_label:
            groups[label] = sorted(by_label[label] - claimed)
            claimed.update(groups[label])
    return groups


def group_sizes(groups: dict[str, list[str]]) -> dict[str, int]:
    """How many distinct images each class of :func:`distinct_groups` has."""
    return {label: len(hashes) for label, hashes in groups.items()}


def stratified_split(index: pd.DataFrame, classes: list[str], fractions: dict[str, float],
                     seed: int) -> dict[str, pd.DataFrame]:
    """Split per class; identical files (same hash) always land in the same split.

    The result depends only on the index content, the classes and the seed; each
    manifest is sorted by path so it is byte-identical from run to run.
    """
    groups = distinct_groups(index, classes)
    check_dealable(group_sizes(groups), fractions)
    where: dict[str, str] = {}
    for hashes in groups.values():
        where.update(assign_groups(hashes, fractions, seed))
    split_of = index["hash"].map(where)
    return {
        name: index[split_of == name].sort_values("path", kind="stable").reset_index(drop=True)
        for name in SPLITS
    }


def unread_in(nested: list[tuple[str, str, int]], folders: dict[str, str], classes: list[str]) -> str:
    """``; the folder of class 'c' holds N files in nested folders, ...`` for each of ``classes`` whose folder holds
    folders with files in them (``nested``: their path, the class and how many files), which ingest does not read;
    or nothing. `digitpipe check` and the split stage add it to the words of a class too small to split."""
    parts = []
    for label in classes:
        paths = [(path, held) for path, owner, held in nested if owner == label]
        if paths:
            held = counted(sum(n for _, n in paths), "file")
            parts.append(f"; the folder of class '{label}' holds {held} in nested folders, which are not read "
                         f"({first_of([shown(p) for p, _ in paths])}): move them up into {shown(folders[label])}")
    return "".join(parts)
