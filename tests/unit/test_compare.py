"""`digitpipe compare`: two runs' test predictions paired image by image, and McNemar's exact test on them."""

import subprocess
from pathlib import Path

import pytest

from digitpipe.stats import mcnemar_p, most_even_significant, wilson
from tests.helpers import ENV, ROOT, run

HEADER = "path,actual,predicted,confidence\n"


def test_mcnemars_exact_p_is_the_two_sided_binomial_tail_of_the_disagreements():
    assert mcnemar_p(0, 6) == pytest.approx(2 / 64)          # all six one way: 2 * (1/2)^6
    assert mcnemar_p(6, 4) == pytest.approx(2 * 386 / 1024)  # 2 * P(X <= 4), X ~ Bin(10, 1/2)
    assert mcnemar_p(4, 6) == mcnemar_p(6, 4)
    assert mcnemar_p(3, 3) == 1.0 and mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 5) > 0.05 > mcnemar_p(0, 6)


def test_the_most_even_significant_split_is_the_edge_of_p_below_5_percent():
    assert most_even_significant(5) is None                  # five disagreements can never be significant
    assert most_even_significant(6) == 0
    assert most_even_significant(10) == 1                    # 9 to 1: p 0.021; 8 to 2: p 0.109
    assert mcnemar_p(1, 9) < 0.05 < mcnemar_p(2, 8)


def test_wilsons_interval_matches_the_textbook_values_and_stays_inside_0_to_1():
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    low, high = wilson(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    low, high = wilson(750, 750)
    assert high == 1.0 and 0.99 < low < 1.0


def write(repo: Path, rows: list[tuple[str, str, str]]) -> None:
    (repo / "plots/data").mkdir(parents=True, exist_ok=True)
    (repo / "plots/data/predictions.csv").write_text(
        HEADER + "".join(f"{p},{a},{b},0.9\n" for p, a, b in rows))


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


@pytest.fixture
def repo(tmp_path):
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    return tmp_path


def compare(repo: Path, *revs: str) -> subprocess.CompletedProcess:
    # the script on the PATH, running this checkout's code (an install from another clone would run that one's)
    return subprocess.run(["digitpipe", "compare", *revs], cwd=repo, env={**ENV, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True,
                          timeout=60)


def rows(n: int, wrong: set[int]) -> list[tuple[str, str, str]]:
    """n test images of classes 0-9, the ones in ``wrong`` misread as the next class."""
    return [(f"{i % 10}/img_{i}.jpg", str(i % 10), str((i % 10 + (i in wrong)) % 10)) for i in range(n)]


def test_a_change_that_fixes_six_and_breaks_none_is_called_better_with_its_images(repo):
    write(repo, rows(100, wrong={1, 2, 3, 4, 5, 6, 7}))
    commit(repo, "first")
    write(repo, rows(100, wrong={7}))
    proc = compare(repo)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("HEAD against workspace, on the same 100 test images:\n")
    assert "  HEAD          7 errors   93.00%" in out and "  workspace     1 errors   99.00%" in out
    assert "workspace gets 6 right that HEAD gets wrong and 0 wrong that HEAD gets right; both are wrong on 1" in out
    assert "    3/img_3.jpg: true 3, HEAD says 4\n" in out
    assert "right only in HEAD" not in out
    assert "workspace is better than HEAD on these images: a split of 6 to 0" in out
    assert "p = 0.0312" in out


def test_an_uneven_split_too_small_to_tell_says_so_and_what_it_would_take(repo):
    write(repo, rows(100, wrong={1, 2, 3, 4}))
    commit(repo, "first")
    write(repo, rows(100, wrong={5}))
    commit(repo, "second")
    out = compare(repo, "HEAD~1", "main").stdout
    assert "main gets 4 right that HEAD~1 gets wrong and 1 wrong that HEAD~1 gets right; both are wrong on 0" in out
    assert "    5/img_5.jpg: true 5, main says 6\n" in out
    assert "no evidence of a difference: a split of 4 to 1" in out and "p = 0.375" in out
    assert "no split of 5 disagreements would be" in out
    # swapping the two swaps the sides and keeps the test
    swapped = compare(repo, "main", "HEAD~1").stdout
    assert "HEAD~1 gets 1 right that main gets wrong and 4 wrong that main gets right" in swapped
    assert "p = 0.375" in swapped


def test_an_experiment_is_found_by_the_name_dvc_gives_it(repo):
    write(repo, rows(20, wrong={1}))
    commit(repo, "baseline")
    baseline = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    write(repo, rows(20, wrong=set()))
    commit(repo, "an experiment")
    exp = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    run(["git", "reset", "-q", "--hard", "HEAD~1"], repo)
    run(["git", "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/bushy-oath", exp], repo)
    out = compare(repo, "main", "bushy-oath").stdout
    assert "  bushy-oath     0 errors  100.00%" in out
    assert "bushy-oath gets 1 right that main gets wrong" in out


@pytest.mark.parametrize("change, message", [
    ("other images", "HEAD and workspace tested on different images (100 and 100 test images, 99 of them in both)"),
    ("relabelled", "HEAD and workspace label 1 test images differently (e.g. 0/img_0.jpg: 0 and 3)"),
    ("not predictions", "plots/data/predictions.csv at workspace is not the evaluate stage's predictions"),
    ("no rows", "plots/data/predictions.csv at workspace has no test images"),
])
def test_runs_that_cannot_be_paired_are_refused_in_one_line(repo, change, message):
    write(repo, rows(100, wrong=set()))
    commit(repo, "first")
    new = rows(100, wrong=set())
    if change == "other images":
        new[0] = ("0/img_other.jpg", "0", "0")
    elif change == "relabelled":
        new[0] = ("0/img_0.jpg", "3", "3")
    write(repo, new)
    if change == "not predictions":
        (repo / "plots/data/predictions.csv").write_text("image,label\na.jpg,1\n")
    elif change == "no rows":
        (repo / "plots/data/predictions.csv").write_text(HEADER)
    proc = compare(repo)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {message}"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_name_that_is_a_branch_and_a_tag_at_different_commits_is_refused_until_it_says_which(repo):
    """git takes the tag without a word, so `compare v1` compared a run the user may not have meant."""
    write(repo, rows(20, wrong={1, 2}))
    commit(repo, "tagged run")
    run(["git", "tag", "v1"], repo)
    run(["git", "branch", "v1"], repo)
    assert compare(repo, "v1", "HEAD").returncode == 0  # both at one commit: no doubt which run is meant
    write(repo, rows(20, wrong={1}))
    commit(repo, "a newer run")
    run(["git", "branch", "-f", "v1"], repo)
    proc = compare(repo, "v1", "HEAD")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("error: 'v1' is both a branch and a tag, at different commits: say which, heads/v1 or "
                           "tags/v1\n")
    tag, branch = compare(repo, "tags/v1", "HEAD"), compare(repo, "heads/v1", "HEAD")
    assert (tag.returncode, branch.returncode) == (0, 0)
    assert "  tags/v1     2 errors" in tag.stdout  # the tagged run
    assert "  heads/v1     1 errors" in branch.stdout and "2 errors" not in branch.stdout  # the branch's, HEAD's


def test_a_revision_without_predictions_or_unknown_is_named(repo):
    (repo / "README").write_text("x")
    commit(repo, "no pipeline yet")
    write(repo, rows(10, wrong=set()))
    proc = compare(repo)
    assert proc.returncode == 2
    assert proc.stderr == ("error: plots/data/predictions.csv is not committed at HEAD: it has no evaluated model "
                           "to compare\n")
    proc = compare(repo, "piney-doek")
    assert proc.stderr.startswith("error: 'piney-doek' is neither a git revision here"), proc.stderr
    commit(repo, "evaluated")
    (repo / "plots/data/predictions.csv").unlink()
    proc = compare(repo)
    assert proc.stderr.startswith("error: plots/data/predictions.csv not found in the workspace"), proc.stderr
