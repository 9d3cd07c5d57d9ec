"""params.yaml validation: bad values are refused with the key, the value and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from digitpipe.errors import DigitpipeError
from digitpipe.params import load_params
from tests.helpers import ROOT


@pytest.fixture
def params_file(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped params.yaml, named as the stages name it (in the working folder)."""
    monkeypatch.chdir(tmp_path)
    path = Path("params.yaml")
    path.write_text((ROOT / "params.yaml").read_text())
    return path


def edit(path: Path, section: str, key: str | None, value) -> None:
    data = yaml.safe_load(path.read_text())
    if key is None:
        data[section] = value
    else:
        data[section][key] = value
    path.write_text(yaml.safe_dump(data))


def test_the_shipped_params_are_valid():
    params = load_params(["seed", "data", "ingest", "split", "augment", "model", "train"], ROOT / "params.yaml")
    assert params["data"]["classes"] == [str(i) for i in range(10)]


def test_an_experiments_value_is_the_only_line_dvc_rewrites(params_file):
    """`dvc exp run -S train.lr=0.001` rewrites params.yaml in its own style; the shipped file is written in
    that style, so an experiment's diff is the value it sets and nothing else (comments kept)."""
    from dvc.utils.serialize import modify_yaml

    before = params_file.read_text().splitlines()
    with modify_yaml(str(params_file)) as data:
        data["train"]["lr"] = 0.001
    after = params_file.read_text().splitlines()
    assert len(after) == len(before)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert [(a.split("#")[0].strip(), b.split("#")[0].strip()) for a, b in changed] == [("lr: 0.003", "lr: 0.001")]



def leaf_keys(tree: dict, prefix: tuple = ()):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from leaf_keys(value, (*prefix, key))
        else:
            yield (*prefix, key)


@pytest.mark.parametrize("value", [[], ["x", "y"], {}, {"a": 1}, "text", 3, None])
def test_any_value_dvc_writes_leaves_the_rest_of_the_file_readable(params_file, value):
    """`dvc exp run -S key=value` rewrites params.yaml keeping its comments; whatever it writes for one key
    (even a value the params stage then refuses, such as `data.classes=[]`), the file stays YAML that reads
    back with that one value changed, so the refusal names the value and not a corrupted file."""
    from dvc.utils.serialize import modify_yaml

    shipped = yaml.safe_load(params_file.read_text())
    for path in leaf_keys(shipped):
        params_file.write_text((ROOT / "params.yaml").read_text())
        with modify_yaml(str(params_file)) as data:
            node = data
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        expected = yaml.safe_load((ROOT / "params.yaml").read_text())
        node = expected
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert yaml.safe_load(params_file.read_text()) == expected, ".".join(path)


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("train", "lr", -0.1, "train.lr = -0.1 is invalid: must be a number > 0"),
    ("train", "lr", "fast", "train.lr = 'fast' is invalid: must be a number > 0 and <= 1"),
    ("train", "epochs", 2.5, "train.epochs = 2.5 is invalid: must be an integer >= 1 and <= 10000"),
    ("train", "batch_size", True, "train.batch_size = true is invalid: must be an integer >= 1 and <= 65536"),
    ("seed", None, "abc", "seed = 'abc' is invalid: must be an integer >= 0 and <= 2147483647"),
    ("model", "arch", "vgg", "model.arch = 'vgg' is invalid: must be one of: digitnet, compact, deep"),
    ("ingest", "size_policy", "crop", "must be one of: resize, reject"),
    ("train", "distribute", "horovod", "train.distribute = 'horovod' is invalid: must be one of: none, mirrored"),
    ("train", "replicas", 0, "train.replicas = 0 is invalid: must be an integer >= 1 and <= 64"),
    ("augment", "zoom", 0.9, "augment.zoom = 0.9 is invalid: must be a number >= 0 and <= 0.5"),
    ("augment", "shear", -0.1, "augment.shear = -0.1 is invalid: must be a number >= 0 and <= 0.5"),
    ("data", "classes", ["0", "0"], "data.classes"),
    ("data", "classes", [True, False], "data.classes = [true, false] is invalid: holds true, which YAML read from an "
                                       "unquoted name as a boolean: quote the names ('true', 'false')"),
    ("data", "classes", ["1", 2.5], "holds 2.5, which YAML read from an unquoted name as a number"),
    ("data", "classes", ["cat", None], "data.classes = ['cat', null] is invalid: holds null, which YAML read from an "
                                       "unquoted name as null"),
    # values in YAML's words, as the file has them, not Python's (None, inf, datetime.date(...))
    ("train", "class_weight", None, "train.class_weight = null is invalid: must be one of: none, balanced; null (or "
                                    "~) is YAML's empty value, not the word none"),
    ("train", "lr", float("inf"), "train.lr = .inf is invalid"),
    ("augment", "zoom", {"a": [1, None]}, "augment.zoom = {'a': [1, null]} is invalid"),
    ("seed", None, __import__("datetime").date(2024, 1, 1), "seed = 2024-01-01 is invalid"),
    ("train", "epochs", 1000.0, "train.epochs = 1000.0 is invalid: must be an integer >= 1 and <= 10000 (1e3 and "
                                "1000.0 are floats to YAML: write 1000)"),
    ("data", "classes", ["a\nb", "c"], "data.classes = ['a\\nb', 'c'] is invalid: holds a\\nb, a name with a control "
                                     "or invisible formatting character (\\n), which would break or hide in every "
                                     "line of output that names it: rename the class and its folder"),
    ("data", "classes", ["tab\there\x00", "c"], "holds tab\\there\\x00, a name with control or invisible formatting "
                                              "characters (\\t, \\x00)"),
    ("data", "classes", ["zero\u200bwidth", "c"], "holds zero\\u200bwidth, a name with a control or invisible"),
    ("data", "dir", "~/digits", "data.dir = '~/digits' is invalid: starts with '~', which DVC does not expand: "
                                "write the path in full ("),
    ("data", "dir", "/tmp/se\nven", "data.dir = '/tmp/se\\nven' is invalid: holds a control or invisible formatting "
                                   "character (\\n), which would break or hide in every line of output that names "
                                   "the folder: rename it"),
    ("seed", None, -1, "seed = -1 is invalid"),
    ("train", "lr_factor", 1, "train.lr_factor = 1 is invalid: must be a number > 0 and < 1"),  # Keras refuses 1
])
def test_bad_values_name_key_value_and_allowed(params_file, section, key, value, expected):
    edit(params_file, section, key, value)
    with pytest.raises(DigitpipeError, match="^params.yaml: ") as err:
        load_params([section], params_file)
    assert expected in str(err.value)


def test_unknown_key_is_refused_with_the_allowed_keys(params_file):
    edit(params_file, "train", "learning_rate", 0.1)
    with pytest.raises(DigitpipeError, match=r"unknown key train.learning_rate; allowed keys: train.epochs"):
        load_params(["train"], params_file)
    data = yaml.safe_load(params_file.read_text())
    data["train"]["epoch"] = data["train"].pop("learning_rate")  # a slip gets the nearest key, as a section does
    params_file.write_text(yaml.safe_dump(data))
    with pytest.raises(DigitpipeError, match=r"unknown key train.epoch; did you mean 'train.epochs'\? allowed keys: "):
        load_params(["train"], params_file)


def test_split_fractions_must_sum_to_one(params_file):
    edit(params_file, "split", "train", 0.8)
    with pytest.raises(DigitpipeError, match=r"= 1.1; the split fractions must sum to 1"):
        load_params(["split"], params_file)


def test_a_key_written_twice_is_refused_as_dvc_refuses_it(params_file):
    """PyYAML would keep the last value in silence; DVC refuses the whole file, so every stage must too."""
    lines = params_file.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  batch_size:"))
    params_file.write_text("\n".join([*lines[:at + 1], "  batch_size: 32", *lines[at + 1:]]) + "\n")
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], params_file)
    assert str(err.value) == (f"params.yaml: key 'batch_size' is written twice in one section (lines {at + 1} and "
                              f"{at + 2}); DVC refuses such a file: keep one")


def test_a_tab_is_named_with_its_line(params_file):
    text = params_file.read_text().replace("\n  batch_size:", "\n\tbatch_size:")
    params_file.write_text(text)
    line = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("\tbatch_size"))) + 1
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], params_file)
    assert str(err.value) == (f"params.yaml is not valid YAML: found character '\\t' that cannot start any token "
                              f"(line {line}, column 1)")


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(DigitpipeError, match="not found"):
        load_params(["train"], tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(DigitpipeError, match="is not valid YAML"):
        load_params(["train"], bad)


def test_a_message_names_the_params_file_it_came_from(params_file, tmp_path):
    other = tmp_path / "experiment.yaml"
    other.write_text(params_file.read_text().replace("lr: 0.003", "lr: -1"))
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], other)
    assert str(err.value) == f"{other}: train.lr = -1 is invalid: must be a number > 0 and <= 1"


def test_a_folder_or_a_binary_file_as_params_is_one_clear_line(tmp_path):
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], tmp_path)
    assert str(err.value) == f"{tmp_path} is a folder, not a params file"
    binary = tmp_path / "digit.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\xff\xfe")
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], binary)
    assert str(err.value) == f"{binary} is not a text file (not UTF-8)"
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'} not found"  # absolute: no hint about the working folder


@pytest.mark.parametrize(("section", "key", "value"), [
    ("train", "lr", float("nan")), ("augment", "rotation", float("nan")), ("train", "weight_decay", float("inf")),
    ("split", "val", float("-inf")),
])
def test_non_finite_numbers_are_refused(params_file, section, key, value):
    edit(params_file, section, key, value)
    with pytest.raises(DigitpipeError, match=rf"^params.yaml: {section}.{key} = .* is invalid: must be a number "
                                             r"\(not NaN or infinite\)"):
        load_params([section], params_file)


def test_nan_written_as_dvc_exp_run_writes_it_is_refused(params_file):
    """`dvc exp run -S train.lr=nan` writes the YAML float `.nan`."""
    params_file.write_text(params_file.read_text().replace("lr: 0.003", "lr: .nan"))
    with pytest.raises(DigitpipeError, match=r"train.lr = \.nan is invalid"):
        load_params(["train"], params_file)


def test_an_unknown_section_is_refused_naming_the_nearest_one(params_file):
    edit(params_file, "trian", None, {"lr": 0.1})
    with pytest.raises(DigitpipeError, match=r"unknown section 'trian'; did you mean 'train'\?"):
        load_params(["seed"], params_file)  # whatever a stage reads, a typo anywhere stops it


def test_a_bad_value_anywhere_stops_every_stage(params_file):
    edit(params_file, "data", "normalize", "auto")
    with pytest.raises(DigitpipeError, match=r"data.normalize = 'auto' is invalid: must be one of: mnist, none"):
        load_params(["train"], params_file)


def test_dotted_keys_return_only_those_keys(params_file):
    params = load_params(["seed", "data.dir", "data.normalize", "split"], params_file)
    assert params == {"seed": 42, "data": {"dir": "data/sample", "normalize": "mnist"},
                      "split": {"train": 0.7, "val": 0.15, "test": 0.15}}


def test_params_differences_name_each_key_the_model_was_not_trained_with():
    from digitpipe.card import Card, params_differences

    card = Card(params={"seed": 42, "train": {"lr": 0.003, "epochs": 40}})
    assert params_differences(card, {"seed": 42, "train": {"lr": 0.003, "epochs": 40}}) == []
    assert params_differences(card, {"seed": 42, "train": {"lr": 0.01, "epochs": 40}}) == [
        "train.lr = 0.01 (the model was trained with 0.003)"]


def test_a_split_share_of_zero_is_refused_with_what_the_images_are_for(params_file):
    """No validation or test images would leave nothing to choose the epoch, fit the temperature or measure on:
    refused before any work, saying why, not only the bound."""
    for key, why in (("val", "the validation images choose the epoch kept and fit the temperature"),
                     ("test", "the test images are what evaluate measures the model on")):
        text = params_file.read_text()
        edit(params_file, "split", key, 0)
        with pytest.raises(DigitpipeError) as err:
            load_params(["split"], params_file)
        assert f"split.{key} = 0 is invalid: must be a number > 0 and <= 1 ({why}" in str(err.value)
        params_file.write_text(text)


def test_ingest_cannot_index_images_larger_than_prepare_and_predict_decode(params_file):
    """A max_pixels above the decoders' own limit let ingest index a 7000x6000 scan that prepare then refused,
    stopping the run after ingest and split had done their work."""
    from digitpipe.limits import MAX_PIXELS

    edit(params_file, "ingest", "max_pixels", MAX_PIXELS + 1)
    with pytest.raises(DigitpipeError) as err:
        load_params(["ingest"], params_file)
    assert f"ingest.max_pixels = {MAX_PIXELS + 1} is invalid: must be an integer >= 784 and <= {MAX_PIXELS}" \
        in str(err.value)
    assert "(prepare and predict decode no image over 40,000,000 pixels" in str(err.value)
    edit(params_file, "ingest", "max_pixels", 100)  # the lower bound: the reason for the upper one is not given
    with pytest.raises(DigitpipeError) as err:
        load_params(["ingest"], params_file)
    assert str(err.value).endswith(f"ingest.max_pixels = 100 is invalid: must be an integer >= 784 and <= {MAX_PIXELS}")
    edit(params_file, "ingest", "max_pixels", MAX_PIXELS)
    assert load_params(["ingest"], params_file)["ingest"]["max_pixels"] == MAX_PIXELS


def test_numbers_are_read_as_dvc_reads_them_or_refused_where_yaml_readers_disagree(params_file):
    """DVC reads params.yaml as YAML 1.2, PyYAML as YAML 1.1: `lr: 3e-3` is 0.003 to DVC but was text here (and
    refused as not a number), and `seed: 010` is 10 to DVC but 8 here, so a run would train with one value
    while `dvc params diff` showed another. Every value is compared with DVC's own reading of it."""
    from dvc.utils.serialize import parse_yaml

    text = params_file.read_text()
    for written in ("3e-3", "0.3e0", "1E-2", "0.003"):
        params_file.write_text(text.replace("lr: 0.003", f"lr: {written}"))
        assert load_params(["train"], params_file)["train"]["lr"] == parse_yaml(f"x: {written}", "p")["x"]
    for written in ("0o17", "1_000", "0b11", "0x1F"):
        params_file.write_text(re.sub(r"(?m)^seed: \d+", f"seed: {written}", text))
        assert load_params(["seed"], params_file)["seed"] == parse_yaml(f"x: {written}", "p")["x"]
    for written, number in (("0x1F", 31), ("1_000", 1000), ("+5", 5), ("0o17", 15), ("-0", 0)):
        # a number as a seed, but a class name gone wrong: 0x1F would have taken a folder named 31
        params_file.write_text(re.sub(r"(?m)^( *)- '1'$", rf"\1- {written}", text))
        with pytest.raises(DigitpipeError) as err:
            load_params(["data"], params_file)
        assert str(err.value).endswith(f"is invalid: holds {written}, which YAML read from an unquoted name as the "
                                       f"number {number}: quote the names ('{written}')")
    params_file.write_text(re.sub(r"(?m)^( *)- '1'$", r"\1- 1", text))  # a plain 1 is the name '1', as DVC records it
    assert load_params(["data"], params_file)["data"]["classes"][1] == "1"
    for written, why in (("010", "a number written with a leading 0 is octal to some YAML readers and decimal to "
                                 "others (010 is 8 to this one, 10 to DVC's): write it without the leading 0, or "
                                 "quote it ('010') if it is a name"),
                         ("09", "a number written with a leading 0"),
                         ("1:30", "is the number 90 to this YAML reader but text to DVC's: write the number, or "
                                  "quote it ('1:30')"),
                         ("1:30.0", "is the number 90.0 to this YAML reader but text to DVC's")):
        params_file.write_text(re.sub(r"(?m)^seed: \d+", f"seed: {written}", text))
        with pytest.raises(DigitpipeError) as err:
            load_params(["seed"], params_file)
        assert f"{written} (line 4)" in str(err.value) and why in str(err.value)


def test_booleans_are_read_as_dvc_reads_them(params_file, tmp_path):
    """YAML 1.1 (PyYAML) reads yes, no, on and off as booleans, YAML 1.2 (DVC) as text: classes set with
    `dvc exp run -S 'data.classes=["no","yes"]'`, which DVC writes unquoted, are the names DVC records."""
    from dvc.utils.serialize import modify_yaml, parse_yaml

    from digitpipe.params import read_yaml

    words = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "true", "True", "TRUE", "false", "False",
             "FALSE", "tRue", "null", "~"]
    written = "x: [" + ", ".join(words) + "]\n"
    (tmp_path / "words.yaml").write_text(written)
    assert read_yaml(tmp_path / "words.yaml")["x"] == parse_yaml(written, "p")["x"]
    assert read_yaml(tmp_path / "words.yaml")["x"][:4] == ["yes", "no", "on", "off"]
    assert yaml.safe_load(written)["x"][:4] == [True, False, True, False]  # PyYAML's own loader left as it was
    with modify_yaml(str(params_file)) as data:  # what `dvc exp run -S` does
        data["data"]["classes"] = ["no", "yes"]
    assert "- no\n" in params_file.read_text()
    assert load_params(["data.classes"], params_file)["data"]["classes"] == ["no", "yes"]
    edit(params_file, "data", "classes", ["no", True])
    with pytest.raises(DigitpipeError, match="holds true, which YAML read from an unquoted name as a boolean"):
        load_params(["data.classes"], params_file)


def test_names_spelled_with_joiners_are_names(params_file):
    """Zero-width joiners are formatting characters that Persian, Indic scripts and emoji need to be spelled."""
    names = ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f469\u200d\U0001f4bb"]
    edit(params_file, "data", "classes", names)
    assert load_params(["data.classes"], params_file)["data"]["classes"] == names


def test_a_class_written_twice_in_two_unicode_forms_is_one_name_repeated(params_file):
    """'é' composed and decomposed name one folder (ingest matches them as one), so the pair is a repeat, not
    two classes that would then conflict on every image."""
    edit(params_file, "data", "classes", ["\u00e9", "e\u0301", "x"])
    with pytest.raises(DigitpipeError) as err:
        load_params(["data"], params_file)
    assert "must not repeat a name: 'é' is written twice in two Unicode forms" in str(err.value)


@pytest.mark.parametrize("pairs", [
    ["train.lr=3e-4"], ["seed=3", "data.dir=scans", "model.arch=compact"], ["data.classes=[no, yes, '1']"],
    ["seed=010"], ["data.dir=my scans"], ["data.dir='étoile [2]'"], ["augment.shear=.1", "train.keep=best"],
    ["data.classes=[true, 2.5]"], ["train.lr=null"], ["params.yaml:train.lr=0.01", "data.dir=a:b"],
    ["seed=${train.epochs}"], ["data.classes=[\\${x}, b]"], ["data.dir='a\\${b}'"],  # a reference, and the text ${
])
def test_check_sets_a_value_as_dvc_exp_run_sets_it(params_file, pairs):
    """`digitpipe check -S KEY=VALUE` checks the params `dvc exp run -S KEY=VALUE` would run with: DVC's own
    rewrite of the file, read back as the stages read it, equals the file with the values set by check."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import apply_overrides

    from digitpipe.params import read_yaml, set_values

    (overrides,) = to_path_overrides(pairs).values()  # FILE:KEY=VALUE, as `dvc exp run` splits it
    apply_overrides(str(params_file), overrides)  # what `dvc exp run -S` does to params.yaml before it runs
    assert read_yaml(params_file) == set_values(read_yaml(ROOT / "params.yaml"), pairs)
    assert read_yaml(params_file) != read_yaml(ROOT / "params.yaml")


@pytest.mark.parametrize(("pairs", "in_file"), [
    (["data.classes=['${x}', dog]"], None), (["data.dir=${data.dir}"], None), (["train.lr=0.01"], "scans/${x}"),
])
def test_a_reference_to_no_key_is_refused_by_check_as_dvc_exp_run_refuses_it(params_file, pairs, in_file):
    """DVC's -S reads ${x} anywhere in params.yaml as the value of key x: a folder named ${x} offered as a class,
    or already in the file, made `dvc exp run -S` fail with 'Interpolation key not found' where check said
    valid."""
    from dvc.utils.hydra import apply_overrides

    if in_file:
        edit(params_file, "data", "dir", in_file)
    before = params_file.read_text()
    with pytest.raises(Exception, match="Interpolation|Recursive"):
        apply_overrides(str(params_file), pairs)
    assert params_file.read_text() == before
    with pytest.raises(DigitpipeError) as err:
        load_params(["data"], params_file, pairs)
    assert "DVC's -S reads ${...} anywhere in params.yaml as a reference to another key, and data." in str(err.value)
    assert str(err.value).endswith("rename the folder, or edit params.yaml and run dvc repro")


@pytest.mark.parametrize(("pairs", "expected"), [
    (["train.lr=5"], "params.yaml with train.lr=5: train.lr = 5 is invalid: must be a number > 0 and <= 1"),
    (["trian.lr=0.1"], "params.yaml with trian.lr=0.1: unknown section 'trian'; did you mean 'train'?"),
    (["train.lrr=0.1"], "params.yaml with train.lrr=0.1: unknown key train.lrr; did you mean 'train.lr'?"),
    (["lr=0.1"], "params.yaml with lr=0.1: no such params key 'lr': a key is seed or section.key (such as train.lr); "
                 "did you mean 'train.lr'?"),
    # what the params stage says of the same -S under `dvc exp run`, not "no such params key"
    (["+seeds=1"], "params.yaml with +seeds=1: unknown section 'seeds'; did you mean 'seed'? sections: seed, data"),
    (["train=null"], "params.yaml with train=null: train is a section, not a key: set one of its keys, such as "
                     "train.epochs"),
    (["~data"], "params.yaml with ~data: data is a section, not a key"),
    (["seed=~"], "params.yaml with seed=~: DVC cannot read 'seed=~': write null for an empty value (~ is YAML's, not "
                 "DVC's)"),
    ([" train.lr=1"], "params.yaml with  train.lr=1: DVC cannot read ' train.lr=1': remove the space before the key"),
    # a byte that is not UTF-8 (a shell's $'\xff'), shown as every output shows it, not as Python's \udcff
    (["data.dir=/tmp/a\udcffb\t"], "params.yaml with data.dir=/tmp/a\\xffb\\t: DVC cannot read "
                                  "'data.dir=/tmp/a\\xffb\\t': it holds a control or invisible formatting character "
                                  "(\\t) and a byte that is not UTF-8 (\\xff), which no param may hold"),
    (["data.dir=it's \\x"], "params.yaml with data.dir=it's \\\\x: DVC cannot read \"data.dir=it's \\\\x\": "
                            "quote text"),
    (["train.lr.x=1"], "params.yaml with train.lr.x=1: no such params key 'train.lr.x'"),
    (["seed=3", "data.dir=é"], "params.yaml with seed=3 data.dir=é: DVC cannot read 'data.dir=é': quote text that "
                               "holds letters outside ASCII or signs: data.dir='étoile [2]'"),
    (["data.classes=[ü,日本]"], "params.yaml with data.classes=[ü,日本]: DVC cannot read 'data.classes=[ü,日本]': "
                              "quote each name that holds letters outside ASCII or signs: "
                              "data.classes=[cat,'étoile [2]']"),
    (["~train.lr"], "params.yaml with ~train.lr: missing key train.lr"),
    (["train.lr"], "params.yaml with train.lr: 'train.lr' is not KEY=VALUE (such as train.lr=0.001)"),
    (["other.yaml:train.lr=0.1"], "params.yaml with other.yaml:train.lr=0.1: 'other.yaml:train.lr=0.1' sets "
                                  "other.yaml, not params.yaml, the params file checked here"),
    (["=3"], "params.yaml with =3: '=3' is not KEY=VALUE"),
    (["train.lr=1e-3,3e-3"], "params.yaml with train.lr=1e-3,3e-3: 'train.lr=1e-3,3e-3' is a sweep, one experiment "
                             "for each value: check the values one at a time (train.lr=0.001)"),
    (["train.lr=interval(0,1)"], "params.yaml with train.lr=interval(0,1): 'train.lr=interval(0,1)' is a sweep"),
])
def test_a_value_set_on_the_command_line_is_refused_naming_it(params_file, pairs, expected):
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], params_file, pairs)
    assert str(err.value).startswith(expected)
    assert load_params(["train"], params_file) == load_params(["train"], ROOT / "params.yaml")  # the file untouched


@pytest.mark.parametrize(("data_dir", "expected"), [
    ("data", "holds the pipeline's own outputs (data/index/index.csv, data/index/rejects.csv, data/prepared, "
             "data/splits)"),  # not data/sample: ingest reads it, and may read a folder that holds it
    (".", "holds the pipeline's own outputs (data/index/index.csv"),
    ("plots/", "holds the pipeline's own outputs (plots/"),
    ("models/saved_model/x", "is inside models/saved_model, which the export stage writes"),
    ("data/prepared", "is data/prepared, which the prepare stage writes"),
    ("metrics/details", "holds the pipeline's own outputs (metrics/details/data.json, metrics/details/eval.json, "
                        "metrics/details/export.json)"),
])
def test_a_data_dir_that_holds_or_lies_in_the_pipelines_outputs_is_refused(data_dir, expected, monkeypatch):
    """DVC refuses a stage whose dependency holds its own outputs ("Same item(s) are defined as both a
    dependency and an output") and finds a cycle where it holds a later stage's: said before, in words."""
    from digitpipe.params import data_dir_problem

    monkeypatch.chdir(ROOT)  # its dvc.yaml declares the outputs
    problem = data_dir_problem(data_dir)
    assert problem is not None and problem.startswith(f"data.dir = {data_dir!r}: {expected}")
    assert problem.endswith("put the class folders in a folder of their own, beside data/ (such as mydigits)")
    assert data_dir_problem(str(ROOT / data_dir)) is not None  # the same folder, written in full


def test_the_sample_and_folders_beside_the_outputs_are_data_dirs(monkeypatch, tmp_path):
    from digitpipe.params import data_dir_problem

    monkeypatch.chdir(ROOT)
    assert data_dir_problem("data/sample") is None  # made by the stage before ingest, as a fresh clone has it
    assert data_dir_problem(str(tmp_path)) is None
    assert data_dir_problem("digitpipe") is None  # a folder that holds none of the outputs
    assert data_dir_problem("data/sample/..") is not None  # data, written otherwise
    assert data_dir_problem("data/nothing-here").endswith("no such folder (a path from the project root, holding "
                                                          "one folder of images per class)")


def test_a_data_dir_that_is_a_file_or_missing_from_an_experiments_copy_says_so(monkeypatch, tmp_path):
    """`dvc exp run --temp` and `--queue` run in a copy of the project under .dvc/tmp/exps that holds only what git
    and DVC track: a data folder beside the code, untracked, is missing there, and "no such folder" alone sent the
    user looking at a folder that is right there in the workspace."""
    from digitpipe.params import data_dir_problem

    (tmp_path / "scans").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12"
    copy.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert data_dir_problem("notes.txt") == ("data.dir = 'notes.txt': is a file, not a folder (data.dir holds one "
                                             "folder of images per class)")
    assert "copy of the project" not in data_dir_problem("elsewhere")
    monkeypatch.chdir(copy)
    assert data_dir_problem("scans").endswith(
        "no such folder (a path from the project root, holding one folder of images per class); this experiment "
        "runs in a copy of the project (dvc exp run --temp or --queue), which holds only what git and DVC track, "
        "though your workspace has it: commit it or dvc add it, give its full path, or copy it in with --copy-paths "
        "scans")
    assert "though your workspace has it" not in data_dir_problem("elsewhere")
    assert "copy of the project" not in data_dir_problem(str(tmp_path / "gone"))  # a full path is the same in a copy


def test_only_what_ingest_and_the_stages_after_it_write_is_refused(monkeypatch, tmp_path):
    """A stage of the user's before ingest (unzipping an archive) may make the data folder, or a folder around
    it; what ingest writes, and whatever reads that, directly or not, may not hold it or be held by it."""
    import yaml

    from digitpipe.params import data_dir_problem

    monkeypatch.chdir(tmp_path)
    Path("dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "unzip": {"cmd": "true", "deps": ["archive.zip"], "outs": ["raw"]},
        "ingest": {"cmd": "true", "deps": ["raw/train"], "outs": ["index/index.csv"]},
        "train": {"cmd": "true", "deps": ["index"], "outs": ["out/model"],
                  "metrics": [{"out/m.json": {"cache": False}}]},
        "report": {"cmd": "true", "deps": ["out/m.json"], "outs": ["report"]},
        "other": {"cmd": "true", "deps": ["archive.zip"], "outs": ["other"]},
    }}))
    for folder in ("raw/train", "other/x", "out/model/x", "report/x", "index"):
        Path(folder).mkdir(parents=True)
    assert data_dir_problem("raw/train") is None
    assert data_dir_problem("raw") is None
    assert data_dir_problem("other/x") is None  # a stage that no stage after ingest reads from
    assert "holds the pipeline's own outputs (index/index.csv)" in data_dir_problem("index")
    assert "is inside out/model, which the train stage writes" in data_dir_problem("out/model/x")
    assert "is inside report, which the report stage writes" in data_dir_problem("report/x")  # reads train's metric
    assert "holds the pipeline's own outputs (index/index.csv, out/m.json, out/model, report)" in data_dir_problem(".")


def test_a_signed_fraction_with_no_leading_digit_is_the_number_dvc_reads():
    """`+.5e-3` is 0.0005 to DVC (YAML 1.2) but was text here (YAML 1.1 reads only an unsigned `.5`), so a value
    DVC records as a number was refused as text; and `1:30.0`, 90.0 here, is text to DVC: trained with 90 degrees
    of rotation, recorded as text, it gave a model a third worse with no word said."""
    from dvc.utils.serialize import parse_yaml

    from digitpipe.params import UniqueKeyLoader

    for written in ("+.5e-3", "-.5", "+.5", ".5", ".5e-3", "-.25E+2", ".5e3", "+.5e3"):  # the last two: text
        assert yaml.load(f"x: {written}", Loader=UniqueKeyLoader)["x"] == parse_yaml(f"x: {written}", "p")["x"]
    assert isinstance(parse_yaml("x: 1:30.0", "p")["x"], str)
    with pytest.raises(DigitpipeError, match="^1:30.0 .line 1. is the number 90.0 to this YAML reader"):
        yaml.load("x: 1:30.0", Loader=UniqueKeyLoader)


@pytest.mark.parametrize(("written", "what"), [("[a, b]: 1", "list"), ("? {a: 1}\n: 1", "mapping")])
def test_a_key_that_is_not_a_name_is_one_line_not_a_traceback(params_file, written, what):
    params_file.write_text(params_file.read_text() + f"\n{written}\n")
    with pytest.raises(DigitpipeError, match=rf"^params.yaml: line \d+: a key must be a name \(such as lr\), not "
                                             rf"a {what}$"):
        load_params(["train"], params_file)


def test_a_names_hidden_characters_are_escaped_and_a_slip_of_case_is_named(params_file):
    """An unknown key is named as written, but a carriage return or a terminal escape in it would break the
    one line (or recolour the terminal): they are shown escaped. `LR` for `lr` gets its nearest name."""
    data = yaml.safe_load(params_file.read_text())
    data["trian\r\x1b[31mok"] = 1
    params_file.write_text(yaml.safe_dump(data))
    with pytest.raises(DigitpipeError) as err:
        load_params(["train"], params_file)
    assert "unknown section 'trian\\r\\x1b[31mok'" in str(err.value) and "\r" not in str(err.value)
    data.pop("trian\r\x1b[31mok")
    data["train"]["LR"] = data["train"].pop("lr")
    params_file.write_text(yaml.safe_dump(data))
    with pytest.raises(DigitpipeError, match=r"unknown key train.LR; did you mean 'train.lr'\? allowed keys: "):
        load_params(["train"], params_file)
