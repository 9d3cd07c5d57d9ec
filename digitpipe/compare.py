"""Is one run's model better than another's on the test split, or is the difference chance?

    digitpipe compare                      # HEAD against the workspace (after `dvc exp run` or `dvc repro`)
    digitpipe compare main                 # main against the workspace
    digitpipe compare main lr-1e-3         # a branch, tag or commit against an experiment (`dvc exp show` names)

`dvc metrics diff` says that accuracy went from 99.47% to 99.73%; on 750 test images that is two images,
and a second training seed moves a split by about as much. This command pairs the two runs' predictions
image by image (``plots/data/predictions.csv`` at each revision: the evaluate stage writes it and git
keeps it), counts the images one run gets right and the other wrong, and asks McNemar's exact test
whether that split of the disagreements is more than chance would give. Both runs must have tested on
the same images with the same labels (the same data and ``seed``, and so the same test split); runs on
different splits are not paired, and ``bench/models.py`` compares recipes over several of them.
"""

from __future__ import annotations

import argparse
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from digitpipe.errors import DigitpipeError, program, run_main
from digitpipe.reproduce import at_revision, is_revision
from digitpipe.stats import ALPHA, mcnemar_p, most_even_significant, wilson

PREDICTIONS = "plots/data/predictions.csv"
WORKSPACE = "workspace"
LISTED = 10     # images listed by name on each side of the disagreement


def experiment_ref(name: str) -> str | None:
    """The git ref DVC keeps experiment ``name`` under (``refs/exps/<baseline>/<name>``), or None. An experiment
    named after more than one baseline is refused: its name alone does not say which run is meant."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
                         capture_output=True, text=True).stdout.split()
    found = [ref for ref in out if len(parts := ref.split("/")) == 5 and len(parts[2]) == 2 and parts[4] == name]
    if len(found) > 1:
        raise DigitpipeError(f"more than one experiment is named {name!r} ({', '.join(found)}): give the ref "
                             "or the commit `dvc exp show` lists")
    return found[0] if found else None


def check_unambiguous(rev: str) -> None:
    """Refuse a name that is both a branch and a tag at different commits: git would take the tag without a
    word, and the comparison would be of a run the user may not have meant."""
    commits = {kind: subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/{kind}/{rev}^{{commit}}"],
                                    capture_output=True, text=True).stdout.strip() for kind in ("heads", "tags")}
    if all(commits.values()) and commits["heads"] != commits["tags"]:
        raise DigitpipeError(f"{rev!r} is both a branch and a tag, at different commits: say which, heads/{rev} "
                             f"or tags/{rev}")


def predictions_text(rev: str) -> str:
    """The predictions file's text in the workspace (``rev`` = ``workspace``) or at a git revision or experiment."""
    if rev == WORKSPACE:
        try:
            return Path(PREDICTIONS).read_text()
        except FileNotFoundError:
            raise DigitpipeError(f"{PREDICTIONS} not found in the workspace: run `dvc repro` first") from None
        except (OSError, UnicodeDecodeError) as err:  # a folder in its place, no permission, bytes that are no text
            why = getattr(err, "strerror", None) or err
            raise DigitpipeError(f"{PREDICTIONS} cannot be read in the workspace ({why}): `dvc repro` makes it "
                                 f"again, or `git checkout -- {PREDICTIONS}` brings back the committed one") from None
    check_unambiguous(rev)
    ref = rev if is_revision(rev) else experiment_ref(rev)
    if ref is None:
        raise DigitpipeError(f"{rev!r} is neither a git revision here (a commit, branch or tag) nor an "
                             "experiment `dvc exp show` lists")
    text = at_revision(ref, PREDICTIONS)
    if text is None:
        raise DigitpipeError(f"{PREDICTIONS} is not committed at {rev}: it has no evaluated model to compare")
    return text


def read_predictions(rev: str) -> pd.DataFrame:
    """One row per test image, indexed by path: the true and the predicted class, as text."""
    try:
        table = pd.read_csv(io.StringIO(predictions_text(rev)), dtype=str, keep_default_na=False)
        table = table[["path", "actual", "predicted"]]
    except (ValueError, KeyError, pd.errors.ParserError) as err:
        reason = " ".join(str(err).split())  # pandas' messages can run over several lines
        raise DigitpipeError(f"{PREDICTIONS} at {rev} is not the evaluate stage's predictions ({reason})") from None
    if table.empty:
        raise DigitpipeError(f"{PREDICTIONS} at {rev} has no test images")
    if table["path"].duplicated().any():
        raise DigitpipeError(f"{PREDICTIONS} at {rev} lists an image twice")
    return table.set_index("path").sort_index()


@dataclass(frozen=True)
class Comparison:
    """Two runs' predictions on the same test images."""
    images: int
    errors_a: int
    errors_b: int
    fixed: list[str]    # images A gets wrong and B right
    broken: list[str]   # images A gets right and B wrong
    both_wrong: int


def paired(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> Comparison:
    """Pair two runs' predictions image by image; refuse runs that did not test on the same labelled images."""
    if not a.index.equals(b.index):
        common = len(a.index.intersection(b.index))
        raise DigitpipeError(
            f"{name_a} and {name_b} tested on different images ({len(a)} and {len(b)} test images, {common} of "
            "them in both): their data or `seed` (or the split fractions) differ, so their test splits do, and "
            "their predictions cannot be paired. To compare recipes over several splits: "
            "python bench/models.py --try KEY=VALUE")
    relabelled = a.index[a["actual"] != b["actual"]]
    if len(relabelled):
        raise DigitpipeError(f"{name_a} and {name_b} label {len(relabelled)} test images differently (e.g. "
                             f"{relabelled[0]}: {a['actual'][relabelled[0]]} and {b['actual'][relabelled[0]]}): "
                             "the data changed between them, so their scores are not on the same test set")
    right_a, right_b = a["actual"] == a["predicted"], b["actual"] == b["predicted"]
    return Comparison(images=len(a), errors_a=int((~right_a).sum()), errors_b=int((~right_b).sum()),
                      fixed=list(a.index[~right_a & right_b]), broken=list(a.index[right_a & ~right_b]),
                      both_wrong=int((~right_a & ~right_b).sum()))


def score_line(name: str, errors: int, images: int, width: int) -> str:
    low, high = wilson(images - errors, images)
    return (f"  {name:<{width}}  {errors:>4} errors  {100 * (images - errors) / images:6.2f}% "
            f"(95% interval {100 * low:.2f} to {100 * high:.2f}%)")


def listed(paths: list[str], wrong: pd.DataFrame, name: str) -> list[str]:
    """One line per image, ``path: true 3, NAME says 5``: the first :data:`LISTED` of ``paths``."""
    lines = [f"    {p}: true {wrong['actual'][p]}, {name} says {wrong['predicted'][p]}" for p in paths[:LISTED]]
    return lines + ([f"    and {len(paths) - LISTED} more"] if len(paths) > LISTED else [])


def verdict(c: Comparison, name_a: str, name_b: str) -> list[str]:
    """What the disagreements say, in words: the test, and what it would have taken."""
    fixed, broken = len(c.fixed), len(c.broken)
    disagree = fixed + broken
    if disagree == 0:
        return [f"they are right on the same images: nothing on this split tells {name_a} and {name_b} apart"]
    p = mcnemar_p(fixed, broken)
    test = f"McNemar's exact test, p = {p:.3g}"
    if p < ALPHA:
        better, worse = (name_b, name_a) if fixed > broken else (name_a, name_b)
        return [f"{better} is better than {worse} on these images: a split of {max(fixed, broken)} to "
                f"{min(fixed, broken)} is unlikely by chance ({test}).",
                "The test counts the draw of test images, not the training seed's luck; a recipe that wins over "
                "several splits is a surer thing (python bench/models.py --try KEY=VALUE)"]
    k = most_even_significant(disagree)
    needed = (f"no split of {disagree} disagreements would be (it takes at least 6, all one way)" if k is None else
              f"of {disagree} disagreements, only {disagree} to 0 would be" if k == 0 else
              f"of {disagree} disagreements, {disagree - k} to {k} or a more uneven split would be")
    return [f"no evidence of a difference: a split of {max(fixed, broken)} to {min(fixed, broken)} is within "
            f"what chance gives ({test});", f"p < {ALPHA} needs a less even split: {needed}"]


def describe(c: Comparison, name_a: str, name_b: str, a: pd.DataFrame, b: pd.DataFrame) -> str:
    width = max(len(name_a), len(name_b))
    lines = [f"{name_a} against {name_b}, on the same {c.images} test images:",
             score_line(name_a, c.errors_a, c.images, width), score_line(name_b, c.errors_b, c.images, width),
             f"{name_b} gets {len(c.fixed)} right that {name_a} gets wrong and {len(c.broken)} wrong that "
             f"{name_a} gets right; both are wrong on {c.both_wrong}"]
    if c.fixed:
        lines += [f"  right only in {name_b}:", *listed(c.fixed, a, name_a)]
    if c.broken:
        lines += [f"  right only in {name_a}:", *listed(c.broken, b, name_b)]
    return "\n".join(lines + verdict(c, name_a, name_b)) + "\n"


def compare(rev_a: str, rev_b: str) -> str:
    a, b = read_predictions(rev_a), read_predictions(rev_b)
    return describe(paired(a, b, rev_a, rev_b), rev_a, rev_b, a, b)


def main() -> None:
    parser = argparse.ArgumentParser(prog=program("digitpipe.compare"), description=__doc__.splitlines()[0],
                                     epilog="A revision is a git commit, branch or tag, an experiment's name, or "
                                            f"'{WORKSPACE}' (the files as they are).")
    parser.add_argument("a_rev", nargs="?", default="HEAD", help="the first run (default: HEAD)")
    parser.add_argument("b_rev", nargs="?", default=WORKSPACE, help=f"the second run (default: {WORKSPACE})")
    args = parser.parse_args()
    print(compare(args.a_rev, args.b_rev), end="")


if __name__ == "__main__":
    run_main(main)
