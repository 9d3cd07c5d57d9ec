"""How ``bench/models.py`` averages models trained with several seeds on one split, and reports them."""

import numpy as np
import pytest

from bench.models import class_recalls, mean_of_runs, render


def run(accuracy: float, seconds: float, ece: float = 0.01, wrong: tuple[int, ...] | None = None) -> dict:
    """One model's figures on a split of 750 test images; ``wrong``: the images it gets wrong (by default the
    first ones, as many as ``accuracy`` leaves)."""
    import numpy as np

    correct = np.ones(750, bool)
    correct[list(wrong) if wrong is not None else slice(0, round((1 - accuracy) * 750))] = False
    return {"accuracy": accuracy, "ece": 0.08, "ece_calibrated": ece, "seconds": seconds, "parameters": 1000,
            "images": 750, "temperature": 0.5, "raw": None, "correct": correct}


def test_mean_of_runs_averages_the_figures_and_keeps_each_accuracy():
    runs = [run(1 - 8 / 750, 100, 0.01), run(1 - 6 / 750, 120, 0.03)]
    r = mean_of_runs(runs)
    assert r["accuracy"] == pytest.approx(1 - 7 / 750)
    assert r["seconds"] == pytest.approx(110) and r["ece_calibrated"] == pytest.approx(0.02)
    assert r["accuracies"] == [runs[0]["accuracy"], runs[1]["accuracy"]]
    assert r["parameters"] == 1000 and r["temperature"] == 0.5


def test_render_with_seeds_sums_each_seeds_errors_over_the_splits():
    compact = [mean_of_runs([run(1 - 10 / 750, 50), run(1 - 12 / 750, 50)]),
               mean_of_runs([run(1 - 9 / 750, 52), run(1 - 7 / 750, 48)])]
    digitnet = [mean_of_runs([run(1 - 5 / 750, 100), run(1 - 8 / 750, 110)]),
                mean_of_runs([run(1 - 3 / 750, 105), run(1 - 4 / 750, 95)])]
    table = render({"compact": compact, "digitnet": digitnet}, "digitnet", "python bench/models.py --seeds 2",
                   range(10, 12), 5000, repeats=2)
    assert "- compact: 19, 19" in table and "- digitnet: 8, 12" in table
    assert "trains 2 models with seeds k, k+1000" in table
    assert "| **digitnet** (default) |" in table and "| 102 | 2.05 |" in table  # medians 102.5 s over 50 s


def test_render_with_one_seed_has_no_per_seed_lines():
    table = render({"compact": [run(0.99, 50)], "digitnet": [run(0.992, 100)]}, "digitnet", "c", range(0, 1), 5000)
    assert "by training seed" not in table and "trains with seed k" in table


def test_each_row_is_set_against_the_default_split_by_split_and_image_by_image():
    """The paired column is the mean of the per-split differences with its t interval; here compact is behind by
    2, 4 and 3 images on three splits: -3 images (-0.40 points) a split, t(2) 4.303 x SD 1 / sqrt 3 = 2.48
    images (0.33 points). Image by image, compact gets one image right that the default misses on each split."""
    default = [run(1 - 5 / 750, 100, wrong=(0, 1, 2, 3, 4)), run(1 - 3 / 750, 100, wrong=(7, 8, 9)),
               run(1 - 4 / 750, 100, wrong=(10, 11, 12, 13))]
    compact = [run(1 - 7 / 750, 50, wrong=(1, 2, 3, 4, 20, 21, 22)),
               run(1 - 7 / 750, 50, wrong=(8, 9, 30, 31, 32, 33, 34)),
               run(1 - 7 / 750, 50, wrong=(11, 12, 13, 40, 41, 42, 43))]
    table = render({"compact": compact, "digitnet": default}, "digitnet", "c", range(0, 3), 5000)
    assert "| vs default (paired) |" in table
    assert "| compact | 1,000 | 99.07% ± 0.00% | -0.40% ± 0.33% | 0.080 |" in table
    assert "| **digitnet** (default) | 1,000 | 99.47% ± 0.33% |  | 0.080 |" in table
    assert "- compact: right on 3 test images that `digitnet` gets wrong, wrong on 12 that it gets right" in table


def test_without_the_default_among_the_rows_there_is_no_paired_column():
    """`--archs compact` leaves the default out: the table said it paired every row against the default and left
    that column blank; now the column and its sentence go, and every row has as many cells as the header."""
    table = render({"compact": [run(0.99, 50), run(0.98, 52)]}, "digitnet", "c", range(0, 2), 5000)
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert "vs default" not in table and "paired (each split" not in table
    assert "`digitnet` (not among the rows, so no row is paired against it)" in table
    assert len({line.count("|") for line in rows}) == 1 and rows[0].count("|") == 8
    paired = render({"compact": [run(0.99, 50)], "digitnet": [run(0.992, 100)]}, "digitnet", "c", range(0, 1), 5000)
    assert len({line.count("|") for line in paired.splitlines() if line.startswith("|")}) == 1


def test_uneven_classes_get_the_balanced_accuracy_and_the_rarest_class_recall():
    import numpy as np

    y = np.array([0] * 8 + [1] * 4 + [2] * 2)
    predicted = np.array([0] * 8 + [1, 1, 1, 0] + [2, 0])
    assert class_recalls(predicted, y, 3).tolist() == [1.0, 0.75, 0.5]
    uneven = [{**run(0.9, 50), "balanced": 0.75, "rarest": 0.5}, {**run(0.95, 50), "balanced": 0.85, "rarest": 1.0}]
    table = render({"compact": uneven}, "compact", "c", range(0, 2), 14, per_class=True)
    assert "| balanced accuracy (95% interval) | rarest class's recall |" in table
    assert "| 92.50% ± 31.76% | 80.00% ± 63.53% | 75.00% |" in table  # the means over the two splits
    assert "balanced accuracy" not in render({"compact": uneven}, "compact", "c", range(0, 2), 14)


def test_another_folder_is_ingested_prepared_and_dealt_as_the_stages_would(tmp_path):
    """``--data DIR``: classes are the sub-folders in natural order, unusable files stay out, every split
    holds every class, and no image sits in two splits."""
    import numpy as np
    from PIL import Image

    from bench.models import folder_images, split_arrays

    rng = np.random.default_rng(0)
    for name in ("10", "9", "b"):
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / name / f"img_{i}.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"not an image")
    data = folder_images(tmp_path, "none")
    assert data.classes == ["9", "10", "b"] and data.normalize == "none"
    assert data.x.shape == (36, 28, 28) and len(data.index) == 36
    assert [int((data.y == k).sum()) for k in range(3)] == [12, 12, 12]
    params = {"split": {"train": 0.7, "val": 0.15, "test": 0.15}}
    parts = split_arrays(params, 3, data)
    assert [len(y) for _, y in parts] == [24, 6, 6]
    assert all(set(y.tolist()) == {0, 1, 2} for _, y in parts)
    seen = [bytes(image) for x, _ in parts for image in x]
    assert len(set(seen)) == 36


def test_try_reads_values_as_dvc_reads_them_and_refuses_bad_ones_in_words():
    from bench.models import with_overrides
    from digitpipe.params import RULES, load_params
    from tests.helpers import ROOT

    params = load_params(list(RULES), ROOT / "params.yaml")
    changed = with_overrides(params, "train.lr=3e-3,augment.rotation=15")
    assert changed["train"]["lr"] == 0.003 and changed["augment"]["rotation"] == 15  # 3e-3: a number to DVC
    assert params["augment"]["rotation"] == 10  # the params it was given are left as they were
    for spec, words in [("train.keep=no", "train.keep = 'no' is invalid: must be one of: last, best"),
                        ("augment.rotation=[", "DVC cannot read 'augment.rotation=['"),
                        ("train.lrr=0.1", "unknown key train.lrr; did you mean 'train.lr'?")]:
        with pytest.raises(SystemExit) as refused:
            with_overrides(params, spec)
        assert str(refused.value).startswith(f"--try {spec}: ") and words in str(refused.value)


def test_a_try_of_what_the_run_fixes_is_refused_not_ignored():
    """data.*, ingest.*, split.* and seed are the run's (--data, --normalize, --first), not a row's: a row that
    "tried" data.normalize=mnist trained exactly as the default did, and split fractions crashed after training."""
    from bench.models import with_overrides
    from digitpipe.params import RULES, load_params
    from tests.helpers import ROOT

    params = load_params(list(RULES), ROOT / "params.yaml")
    for spec, key in [("data.normalize=none", "data.normalize"), ("seed=7,train.epochs=2", "seed"),
                      ("train.epochs=2,split.train=0.6,split.val=0.2,split.test=0.2", "split.train"),
                      ("ingest.size_policy=reject", "ingest.size_policy")]:
        with pytest.raises(SystemExit) as refused:
            with_overrides(params, spec)
        assert str(refused.value).startswith(f"--try {spec}: {key} is the run's, not a row's: a row changes model, "
                                             "train and augment keys")
    assert with_overrides(params, "model.arch=compact,train.epochs=2")["train"]["epochs"] == 2


def test_one_split_has_no_interval_and_many_splits_use_students_t():
    from bench.models import interval, plus_minus

    assert plus_minus([0.9]) == "90.00% (one split: no interval)"  # not "± 0.00%", a certainty it lacks
    values = [0.98, 0.99] * 7 + [0.985]  # 15 splits: t(14) = 2.145, not 1.96
    assert interval(values) == pytest.approx(2.145 * np.std(values, ddof=1) / np.sqrt(15))
    assert interval(list(np.linspace(0.9, 1, 200))) == pytest.approx(1.98 * np.std(np.linspace(0.9, 1, 200), ddof=1)
                                                                       / np.sqrt(200))


def test_a_data_folder_that_cannot_be_a_data_set_is_one_line_before_any_work(tmp_path):
    from bench.models import folder_images
    from digitpipe.errors import DigitpipeError

    (tmp_path / "afile").write_text("x")
    (tmp_path / "one" / "circle").mkdir(parents=True)
    for path, words in [(tmp_path / "nope", "no such folder"), (tmp_path / "afile", "not a folder"),
                        (tmp_path / "one", "1 class folder; a classifier needs at least two")]:
        with pytest.raises(DigitpipeError, match=f"^--data {path}: {words}"):
            folder_images(path, "none")


def test_a_class_too_small_to_split_is_refused_before_any_file_is_read(tmp_path, monkeypatch):
    """With the split fractions, a class that cannot give each split an image is one line before ingest: it was
    said only after every file of the data set had been decoded and prepared."""
    import bench.models as bm
    from digitpipe.errors import DigitpipeError

    for name, n in (("a", 12), ("b", 3), ("c", 2)):
        (tmp_path / name).mkdir()
        for i in range(n):
            (tmp_path / name / f"{i}.png").write_bytes(b"not read")

    def never(*args, **kwargs):
        raise AssertionError("ingest ran")

    monkeypatch.setattr(bm, "ingest", never)
    with pytest.raises(DigitpipeError) as refused:
        bm.folder_images(tmp_path, "none", {"train": 0.7, "val": 0.15, "test": 0.15})
    assert str(refused.value).startswith(f"--data {tmp_path}: class 'c' has only 2 distinct image(s): too few ")
    assert "also class 'b' has 3 distinct images: split.train=0.7, split.val=0.15" in str(refused.value)
    assert str(refused.value).endswith("(counting every file in the class folders)")
    assert "data.classes" not in str(refused.value)  # the classes are the folder's, not params.yaml's
    (tmp_path / "c" / "2.png").write_bytes(b"not read")
    with pytest.raises(AssertionError, match="ingest ran"):  # enough files: it goes on to ingest
        bm.folder_images(tmp_path, "none", {"train": 0.34, "val": 0.33, "test": 0.33})


def test_a_results_file_holding_another_commands_table_is_not_replaced(tmp_path):
    from bench.models import other_table, table_command

    out = tmp_path / "models-letters-none.md"
    assert other_table(out, "python bench/models.py --data letters") is None  # nothing there yet
    out.write_text("Command: `python bench/models.py --data /data/letters --normalize none` (2 CPU cores). Each\n")
    assert table_command(out) == "python bench/models.py --data /data/letters --normalize none"
    assert other_table(out, "python bench/models.py --data /data/letters --normalize none") is None  # a rerun
    kept = other_table(out, "python bench/models.py --data /tmp/letters --normalize none --splits 5")
    assert kept.startswith(f"not written: {out} holds the table of another command (`python bench/models.py --data "
                           "/data/letters --normalize none`)")
