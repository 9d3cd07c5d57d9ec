"""The split: stratified, seeded, disjoint, duplicates kept together, byte-identical output."""

from __future__ import annotations

import pandas as pd
import pytest

from digitpipe.errors import DigitpipeError
from digitpipe.files import write_csv
from digitpipe.split import split_sizes, stratified_split

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
CLASSES = ["0", "1", "2"]


def make_index(per_class: int = 20, duplicates: int = 0) -> pd.DataFrame:
    rows = []
    for label in CLASSES:
        for i in range(per_class):
            rows.append({"path": f"{label}/img_{i}.jpg", "label": label, "hash": f"h{label}_{i}"})
        for d in range(duplicates):  # copies of image 0 under other names
            rows.append({"path": f"{label}/copy_{d}.jpg", "label": label, "hash": f"h{label}_0"})
    return pd.DataFrame(rows)


def test_sizes_round_val_and_test():
    assert split_sizes(500, FRACTIONS) == {"train": 350, "val": 75, "test": 75}
    assert split_sizes(7, FRACTIONS) == {"train": 5, "val": 1, "test": 1}


def test_stratified_and_disjoint():
    parts = stratified_split(make_index(20), CLASSES, FRACTIONS, seed=1)
    for label in CLASSES:
        counts = [int((parts[s]["label"] == label).sum()) for s in ("train", "val", "test")]
        assert counts == [14, 3, 3]
    paths = [set(parts[s]["path"]) for s in ("train", "val", "test")]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2]) and not (paths[1] & paths[2])
    assert sum(len(p) for p in paths) == 60


def test_identical_images_never_in_two_splits():
    parts = stratified_split(make_index(20, duplicates=5), CLASSES, FRACTIONS, seed=3)
    hashes = [set(parts[s]["hash"]) for s in ("train", "val", "test")]
    assert not (hashes[0] & hashes[1]) and not (hashes[0] & hashes[2]) and not (hashes[1] & hashes[2])
    assert sum(len(parts[s]) for s in parts) == 3 * 25


def test_seeded_and_byte_identical(tmp_path):
    index = make_index(30)
    shuffled = index.sample(frac=1, random_state=0)  # input order must not matter
    a = stratified_split(index, CLASSES, FRACTIONS, seed=7)
    b = stratified_split(shuffled, CLASSES, FRACTIONS, seed=7)
    c = stratified_split(index, CLASSES, FRACTIONS, seed=8)
    for name in ("train", "val", "test"):
        write_csv(a[name], tmp_path / f"a_{name}.csv")
        write_csv(b[name], tmp_path / f"b_{name}.csv")
        assert (tmp_path / f"a_{name}.csv").read_bytes() == (tmp_path / f"b_{name}.csv").read_bytes()
    assert list(a["test"]["path"]) != list(c["test"]["path"])


def test_too_few_images_for_the_split():
    with pytest.raises(DigitpipeError, match="class '0' has only 2 distinct image"):
        stratified_split(make_index(2)[lambda d: d["label"] == "0"], ["0"], FRACTIONS, seed=1)
    with pytest.raises(DigitpipeError, match=r"3 classes have fewer than 3 distinct images: '0' \(2\), '1' \(2\)"):
        stratified_split(make_index(2), CLASSES, FRACTIONS, seed=1)


def test_a_fraction_too_small_for_a_class_names_the_empty_split_and_the_fraction_that_fills_it():
    """500 images are plenty: the message blames the fraction that rounds to zero, not the class's size."""
    fractions = {"train": 0.9992, "val": 0.0004, "test": 0.0004}
    with pytest.raises(DigitpipeError) as err:
        stratified_split(make_index(500), CLASSES, fractions, seed=1)
    message = str(err.value)
    assert "too few" not in message
    assert "deal them out as train 500, val 0, test 0" in message
    assert "set split.val >= 0.001 and split.test >= 0.001" in message
    fixed = {"train": 0.998, "val": 0.001, "test": 0.001}
    parts = stratified_split(make_index(500), CLASSES, fixed, seed=1)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [3 * 498, 3, 3]


def test_a_train_fraction_too_small_asks_for_a_larger_one():
    fractions = {"train": 0.01, "val": 0.5, "test": 0.49}
    with pytest.raises(DigitpipeError) as err:
        stratified_split(make_index(20), CLASSES, fractions, seed=1)
    assert "deal them out as train 0, val 10, test 10" in str(err.value)
    assert "set split.train >= 0.1 " in str(err.value)
    parts = stratified_split(make_index(20), CLASSES, {"train": 0.1, "val": 0.45, "test": 0.45}, seed=1)
    assert min(len(parts[s]) for s in ("train", "val", "test")) >= 3


def test_split_stage_refuses_bad_fractions_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ENV, ROOT

    params = (ROOT / "params.yaml").read_text().replace("train: 0.70", "train: 0.80")
    (tmp_path / "params.yaml").write_text(params)
    proc = subprocess.run([sys.executable, "-m", "stages.split"], cwd=tmp_path, capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr == ("error: params.yaml: split.train=0.8 + split.val=0.15 + split.test=0.15 = 1.1; "
                           "the split fractions must sum to 1\n")
    assert not (tmp_path / "data").exists()


def test_split_stage_points_at_the_rejects_for_a_class_without_usable_images(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ENV, ROOT

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "data/index").mkdir(parents=True)
    rows = "".join(f"{c}/{i}.png,{c},{c}{i:031x},28,28,L,PNG,\n" for c in "012345678" for i in range(5))
    (tmp_path / "data/index/index.csv").write_text("path,label,hash,width,height,mode,format,notes\n" + rows)
    proc = subprocess.run([sys.executable, "-m", "stages.split"], cwd=tmp_path, capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr == ("error: no usable images for class(es) 9 in the index; data/index/rejects.csv lists each "
                           "file ingest refused (and folders it did not read), and why\n")


def test_split_stage_names_the_nested_folders_of_a_class_too_small_to_split(tmp_path):
    import subprocess
    import sys

    import yaml

    from digitpipe.ingest import nested_reject
    from tests.helpers import ENV, ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["classes"] = ["no", "yes"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "data/index").mkdir(parents=True)
    rows = "".join(f"no/{i}.png,no,{i:032x},28,28,L,PNG,\n" for i in range(30))
    rows += f"yes/y.png,yes,{99:032x},28,28,L,PNG,\n"
    (tmp_path / "data/index/index.csv").write_text("path,label,hash,width,height,mode,format,notes\n" + rows)
    write_csv(pd.DataFrame([nested_reject("yes/sub", 1500), nested_reject("yes/one", 1)]),
              tmp_path / "data/index/rejects.csv")  # as ingest words them
    proc = subprocess.run([sys.executable, "-m", "stages.split"], cwd=tmp_path, capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.endswith("; the folder of class 'yes' holds 1,501 files in nested folders, which are not read "
                                "(yes/sub, yes/one): move them up into yes\n")
    assert "class 'no'" not in proc.stderr


def test_any_class_names_work(tmp_path, mnist):
    from digitpipe.ingest import ingest
    from digitpipe.sample import encode_jpeg

    images, labels = mnist
    for name, digit in (("cat", 1), ("dog", 7)):
        (tmp_path / name).mkdir()
        for i in range(10):
            (tmp_path / name / f"{i}.jpg").write_bytes(encode_jpeg(images[labels == digit][i]))
    index = ingest(tmp_path, ["cat", "dog"]).index
    parts = stratified_split(index, ["cat", "dog"], FRACTIONS, seed=0)
    assert sorted(set(parts["test"]["label"])) == ["cat", "dog"]
    assert len(parts["train"]) + len(parts["val"]) + len(parts["test"]) == 20


def test_every_class_too_small_is_named_in_one_message_before_any_dealing():
    """A folder of many small classes is refused once, with all of them, not one class per run."""
    index = pd.concat([make_index(500)] + [
        pd.DataFrame([{"path": f"{label}/img_{i}.jpg", "label": label, "hash": f"h{label}_{i}"} for i in range(n)])
        for label, n in (("a", 3), ("b", 2), ("c", 3), ("d", 1))])
    with pytest.raises(DigitpipeError) as err:
        stratified_split(index, [*CLASSES, "a", "b", "c", "d"], FRACTIONS, seed=1)
    message = str(err.value)
    assert message.startswith("2 classes have fewer than 3 distinct images: 'b' (2), 'd' (1);")
    # the smallest class a fraction can fix sets the fraction, which then fixes the others too
    assert "; also class 'a' has 3 distinct images:" in message
    assert "(2 classes fall short: a, c; that fills them all)" in message
    fix = {"train": 0.66, "val": 0.17, "test": 0.17}
    assert "set split.val >= 0.17 and split.test >= 0.17" in message
    parts = stratified_split(index[~index["label"].isin(["b", "d"])], [*CLASSES, "a", "c"], fix, seed=1)
    for name in ("train", "val", "test"):
        assert set(parts[name]["label"]) == {*CLASSES, "a", "c"}


def where(parts: dict[str, pd.DataFrame]) -> dict[str, str]:
    return {path: name for name, part in parts.items() for path in part["path"]}


def grown(index: pd.DataFrame, label: str, extra: int) -> pd.DataFrame:
    """``index`` with ``extra`` new images of class ``label``."""
    new = [{"path": f"{label}/new_{i}.jpg", "label": label, "hash": f"new{label}_{i}"} for i in range(extra)]
    return pd.concat([index, pd.DataFrame(new)], ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adding_or_removing_an_image_leaves_the_rest_of_the_split_in_place(seed):
    """A new version of the data keeps its test set: one image added to a class moves at most three of that
    class's others, each into a neighbouring split, and leaves every other class as it was."""
    before = make_index(100)
    after = grown(before, "1", 1)
    for a, b in ((before, after), (after, before)):  # adding, then removing
        old = where(stratified_split(a, CLASSES, FRACTIONS, seed))
        new = where(stratified_split(b, CLASSES, FRACTIONS, seed))
        moved = {path: (old[path], new[path]) for path in old.keys() & new.keys() if old[path] != new[path]}
        assert len(moved) <= 3
        assert all(path.startswith("1/") for path in moved)
        assert not {("test", "train"), ("train", "test")} & set(moved.values())


def test_ten_percent_more_images_put_no_test_image_into_training():
    before = make_index(100)
    after = before
    for label in CLASSES:
        after = grown(after, label, 10)
    for seed in range(5):
        old = where(stratified_split(before, CLASSES, FRACTIONS, seed))
        new = where(stratified_split(after, CLASSES, FRACTIONS, seed))
        assert [path for path in old if old[path] == "test" and new[path] == "train"] == []
        assert sum(old[path] == new[path] for path in old) >= 0.9 * len(old)
        assert [new[f"{label}/new_{i}.jpg"] for label in CLASSES for i in range(10)].count("train") >= 10


def test_the_seed_deals_each_class_independently_of_the_others():
    """Another seed re-deals the split; the deal of one class does not hang on how many images the others have."""
    index = make_index(40)
    a = stratified_split(index, CLASSES, FRACTIONS, seed=5)
    b = stratified_split(grown(index, "0", 7), CLASSES, FRACTIONS, seed=5)
    c = stratified_split(index, CLASSES, FRACTIONS, seed=6)
    for name in ("val", "test"):
        assert set(a[name][a[name]["label"] != "0"]["path"]) == set(b[name][b[name]["label"] != "0"]["path"])
    assert set(a["test"]["path"]) != set(c["test"]["path"])
