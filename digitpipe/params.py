"""Load ``params.yaml`` and refuse bad values before any work starts.

Every knob has one rule here. A stage asks for the sections it reads; each is checked
(type, range, choice, unknown keys) and a bad value stops the stage with one line
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import datetime
import difflib
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from digitpipe.errors import DigitpipeError, stage_outputs
from digitpipe.limits import MAX_PIXELS
from digitpipe.output import escaped, first_of, is_raw_byte, quoted, shown

ARCHS = ("digitnet", "compact", "deep", "wide", "mini", "mlp")
KEEP = ("last", "best")  # train.keep: see digitpipe.training.make_callbacks
DISTRIBUTE = ("none", "mirrored", "multi_worker")  # train.distribute: see digitpipe.distribute
NORMALIZE = ("mnist", "none")  # data.normalize: the preprocessing policies of digitpipe.images
CLASS_WEIGHT = ("none", "balanced")  # train.class_weight: see digitpipe.training.class_weights


def yaml_text(value: Any) -> str:
    """A value as YAML writes it, for messages about a params value: ``null``, ``true``, ``.inf``, ``[1, null]``,
    ``{a: 1}``, a date as written, a number as spelled (``0x1F``), where Python would say ``None``, ``True``,
    ``inf`` or ``datetime.date(2024, 1, 1)``. Text is quoted (``'0.1x'``), its hidden characters escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Spelled):
        return value.text
    if isinstance(value, float):
        return (".nan" if math.isnan(value) else ".inf" if value == math.inf else "-.inf" if value == -math.inf
                else repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_text(k)}: {yaml_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)  # quoted, with control characters escaped
    return str(value)


@dataclass(frozen=True)
class Num:
    """A number in [lo, hi]; ``integer`` demands an int; ``open_lo`` excludes ``lo`` and ``open_hi`` ``hi``;
    ``why_lo`` and ``why_hi``, where a bound is not obvious, say what it is there for (shown when it is crossed)."""

    lo: float
    hi: float
    integer: bool = False
    open_lo: bool = False
    open_hi: bool = False
    why_lo: str = ""
    why_hi: str = ""

    def check(self, value: Any) -> str | None:
        kind = "an integer" if self.integer else "a number"
        lo_sign, hi_sign = (">" if self.open_lo else ">="), ("<" if self.open_hi else "<=")
        allowed = f"must be {kind} {lo_sign} {self.lo} and {hi_sign} {self.hi}"
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:  # text, a boolean, a float for an integer: say the range too
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                return allowed + f" (1e3 and {value!r} are floats to YAML: write {int(value)})"
            return allowed
        if not math.isfinite(value):
            return f"must be {kind} (not NaN or infinite)"
        below = value <= self.lo if self.open_lo else value < self.lo
        above = value >= self.hi if self.open_hi else value > self.hi
        if below or above:
            why = self.why_lo if below else self.why_hi
            return allowed + (f" ({why})" if why else "")
        return None


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    options: tuple[str, ...]

    def check(self, value: Any) -> str | None:
        if value not in self.options:
            null = "; null (or ~) is YAML's empty value, not the word none" if value is None and \
                "none" in self.options else ""
            return "must be one of: " + ", ".join(self.options) + null
        return None


@dataclass(frozen=True)
class Text:
    """A non-empty string."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        return None


def hidden_characters(text: str) -> str:
    """What every output would show escaped (:func:`~digitpipe.output.shown`) in a name or path, in words, or
    "" for none: ``a control or invisible formatting character (\\n)`` for controls, line separators and format
    characters but the joiners, and ``a byte that is not UTF-8 (\\xff)``. A backslash is shown doubled, and
    is a name's own business."""
    marks = [c for c in dict.fromkeys(text) if c != "\\" and shown(c) != c]
    hidden = [escaped(c) for c in marks if not is_raw_byte(c)]
    raw = [escaped(c) for c in marks if is_raw_byte(c)]
    said = []
    if hidden:
        what = "a control or invisible formatting character" if len(hidden) == 1 else \
            "control or invisible formatting characters"
        said.append(f"{what} ({', '.join(hidden)})")
    if raw:
        said.append(f"{'a byte that is' if len(raw) == 1 else 'bytes that are'} not UTF-8 ({', '.join(raw)})")
    return " and ".join(said)


@dataclass(frozen=True)
class Folder(Text):
    """A folder path as DVC reads it: written in full, since neither DVC nor the stages expand ``~``, and
    without characters that would break the lines that name it."""

    def check(self, value: Any) -> str | None:
        problem = super().check(value)
        if problem is None and value.startswith("~"):
            return f"starts with '~', which DVC does not expand: write the path in full ({os.path.expanduser(value)})"
        if problem is None and (hidden := hidden_characters(value)):
            return (f"holds {hidden}, which would break or hide in every line of output that names the folder: "
                    "rename it")
        return problem


@dataclass(frozen=True)
class Names:
    """A list of at least two distinct, non-empty folder names."""

    def check(self, value: Any) -> str | None:
        if not isinstance(value, list) or len(value) < 2:
            return "must be a list of at least two class folder names"
        for v in value:  # YAML reads true, false, null, ~ and 1.0 as other things than names
            if isinstance(v, bool) or v is None or isinstance(v, float) or not isinstance(v, (str, int)):
                kind, quoted = {bool: ("a boolean", "'true', 'false'"), float: ("a number", "'1.0', '2.5'"),
                                type(None): ("null", "'null', '~'")}.get(type(v), (f"a {type(v).__name__}", "'a', 'b'"))
                return (f"holds {yaml_text(v)}, which YAML read from an unquoted name as {kind}: quote the names "
                        f"({quoted})")
            if isinstance(v, Spelled):
                return (f"holds {v.text}, which YAML read from an unquoted name as the number {int(v)}: quote the "
                        f"names ('{v.text}')")
        names = [str(v) for v in value]
        if any(not n or "/" in n or n.startswith(".") for n in names):
            return "must hold plain folder names (no '/', not hidden)"
        for n in names:
            if hidden := hidden_characters(n):
                return (f"holds {shown(n)}, a name with {hidden}, which would break or hide in every line of "
                        "output that names it: rename the class and its folder")
        if len(set(names)) != len(names):
            return "must not repeat a name"
        composed = [unicodedata.normalize("NFC", n) for n in names]  # how ingest matches folders to classes
        if len(set(composed)) != len(composed):
            twins = next(n for n in names if composed.count(unicodedata.normalize("NFC", n)) > 1)
            return (f"must not repeat a name: {twins!r} is written twice in two Unicode forms (composed and "
                    "decomposed), which name one folder")
        return None


RULES: dict[str, Any] = {
    "seed": Num(0, 2**31 - 1, integer=True),
    "data": {"dir": Folder(), "classes": Names(), "normalize": Choice(NORMALIZE)},
    "ingest": {"size_policy": Choice(("resize", "reject")), "max_pixels": Num(
        784, MAX_PIXELS, integer=True,
        why_hi=f"prepare and predict decode no image over {MAX_PIXELS:,} pixels, so ingest may index none either")},
    "split": {
        "train": Num(0, 1, open_lo=True),
        "val": Num(0, 1, open_lo=True, why_lo="the validation images choose the epoch kept and fit the temperature "
                                          "that calibrates the confidences"),
        "test": Num(0, 1, open_lo=True, why_lo="the test images are what evaluate measures the model on"),
    },
    "augment": {
        "rotation": Num(0, 180),
        "translation": Num(0, 0.5),
        "zoom": Num(0, 0.5),
        "shear": Num(0, 0.5),
    },
    "model": {"arch": Choice(ARCHS)},
    "train": {
        "epochs": Num(1, 10_000, integer=True),
        "batch_size": Num(1, 65_536, integer=True),
        "lr": Num(0, 1, open_lo=True),
        "schedule": Choice(("cosine", "plateau")),
        "warmup_epochs": Num(0, 10_000, integer=True),
        "label_smoothing": Num(0, 0.5),
        "weight_decay": Num(0, 1),
        "class_weight": Choice(CLASS_WEIGHT),
        "keep": Choice(KEEP),
        "patience": Num(1, 10_000, integer=True),
        "lr_patience": Num(1, 10_000, integer=True),
        "lr_factor": Num(0, 1, open_lo=True, open_hi=True),  # 1 would never lower the rate
        "distribute": Choice(DISTRIBUTE),
        "replicas": Num(1, 64, integer=True),
    },
}


class Spelled(int):
    """A whole number written other than in plain decimal digits (``0x1F``, ``1_000``, ``+5``, ``0o17``): a number
    to DVC too, and fine as one, but a class name written so was a name gone wrong (``0x1F`` is class ``31``, which
    would silently take a folder named ``31``), so :class:`Names` refuses it, quoting it as written."""

    text: str

    def __new__(cls, value: int, text: str | None = None) -> Spelled:
        number = super().__new__(cls, value)
        number.text = str(value) if text is None else text
        return number


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping: PyYAML would keep the last one in
    silence, while DVC refuses the whole file, so a check that passed would mean nothing to ``dvc repro``.

    Numbers and booleans are read as DVC reads them (YAML 1.2, where PyYAML follows YAML 1.1): ``3e-3`` and
    ``1.5e3`` are numbers, not text, and so is ``0o17``; ``yes``, ``no``, ``on`` and ``off`` are text, only
    ``true`` and ``false`` booleans. A number the two read differently is refused, naming its line,
    rather than trained with one value and recorded with another: one written with a leading 0 (``010`` is 8
    here and 10 to DVC, ``09`` text here and 9 to DVC; ``[00, 01, 010]`` are folder names gone wrong) and
    ``1:30`` (90 here, text to DVC)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):  # DVC reads it, but no stage could look it up
                what = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise DigitpipeError(f"line {line}: a key must be a name (such as lr), not a {what}")
            if key in seen:
                raise DigitpipeError(f"key {key!r} is written twice in one section (lines {seen[key]} and {line}); "
                                     "DVC refuses such a file: keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text, line = node.value, node.start_mark.line + 1
        if re.fullmatch(r"[-+]?0[0-9_]+", text):
            raise DigitpipeError(
                f"{text} (line {line}): a number written with a leading 0 is octal to some YAML readers and decimal "
                f"to others (010 is 8 to this one, 10 to DVC's): write it without the leading 0, or quote it "
                f"('{text}') if it is a name")
        if ":" in text:
            raise DigitpipeError(f"{text} (line {line}) is the number {super().construct_yaml_int(node)} to this YAML "
                                 f"reader but text to DVC's: write the number, or quote it ('{text}')")
        if re.fullmatch(r"[-+]?0o[0-7_]+", text):
            number = int(text.replace("_", ""), 0)
        else:
            number = super().construct_yaml_int(node)
        return number if text == str(number) else Spelled(number, text)


    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text, line = node.value, node.start_mark.line + 1
        if ":" in text:
            raise DigitpipeError(f"{text} (line {line}) is the number {super().construct_yaml_float(node)} to this "
                                 f"YAML reader but text to DVC's: write the number, or quote it ('{text}')")
        return super().construct_yaml_float(node)


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", UniqueKeyLoader.construct_yaml_int)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", UniqueKeyLoader.construct_yaml_float)
# what YAML 1.2 reads as numbers and YAML 1.1 as text: floats with an exponent but no signed one after a dot
# (3e-3, 1.5e3), octal written 0o17, and digits after a leading 0 that octal cannot hold (09)
UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                      re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                      list("-+0123456789"))
# and a fraction with no digit before its dot, signed (+.5, -.5e-3): YAML 1.1 reads only an unsigned one (.5,
# .5e-3) as a number; with an unsigned exponent (.5e3) it is text to both
UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                      re.compile(r"^[-+]\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?$"), list("-+"))
UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:int",
                                      re.compile(r"^[-+]?(?:0o[0-7_]+|0[0-9_]*[89][0-9_]*)$"), list("-+0"))
# booleans as YAML 1.2 reads them: true and false (also True, TRUE, False, FALSE), where YAML 1.1 also reads yes,
# no, on, off, y and n, which DVC writes unquoted (`dvc exp run -S 'data.classes=["no","yes"]'` writes `- no`) and
# reads as text. The resolvers are this loader's own copy (made by the calls above), rebuilt: SafeLoader keeps its own.
UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in UniqueKeyLoader.yaml_implicit_resolvers.items()}
UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                      list("tTfF"))


def yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's complaint in one line: what is wrong and where (its first line alone, "while scanning for the
    next token", says neither)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark
        return err.problem + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")
    return str(err).splitlines()[0]


def params_text(path: Path) -> str:
    """The text of a params file; a clear error for a folder, a fifo or device (reading a fifo waits for ever), a
    missing file, and one the file system refuses (no permission on it or a folder on its way, a name too long)."""
    try:
        if path.is_dir():
            raise DigitpipeError(f"{path} is a folder, not a params file")
        if path.exists() and not path.is_file():
            raise DigitpipeError(f"{path} is not a regular file (a fifo, a device or a socket), not a params file")
        if not path.is_file():
            raise DigitpipeError(f"{path} not found" + ("" if path.is_absolute() else " (run from the project root)"))
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise DigitpipeError(f"cannot read {path}: {err.strerror or err}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning a missing or malformed file into a clear error."""
    path = Path(path)
    try:
        text = params_text(path)
    except UnicodeDecodeError:
        raise DigitpipeError(f"{path} is not a text file (not UTF-8)") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as err:
        raise DigitpipeError(f"{path} is not valid YAML: {yaml_problem(err)}") from None
    except DigitpipeError as err:
        raise DigitpipeError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise DigitpipeError(f"{path} must be a mapping of sections")
    return data


def check_section(name: str, value: Any) -> None:
    """Validate one top-level entry of the params against :data:`RULES`."""
    rule = RULES[name]
    if not isinstance(rule, dict):
        problem = rule.check(value)
        if problem:
            raise DigitpipeError(f"{name} = {yaml_text(value)} is invalid: {problem}")
        return
    if not isinstance(value, dict):
        raise DigitpipeError(f"section '{name}' must be a mapping of keys, not {yaml_text(value)}")
    unknown = sorted((set(value) - set(rule)), key=str)
    if unknown:
        near = nearest(unknown[0], list(rule))
        hint = f"did you mean '{name}.{near}'? " if near else ""
        raise DigitpipeError(
            f"unknown key {name}.{shown(str(unknown[0]))}; {hint}allowed keys: "
            + ", ".join(f"{name}.{k}" for k in rule)
        )
    for key, spec in rule.items():
        if key not in value:
            raise DigitpipeError(f"missing key {name}.{key}")
        problem = spec.check(value[key])
        if problem:
            raise DigitpipeError(f"{name}.{key} = {yaml_text(value[key])} is invalid: {problem}")


def check_split(fractions: dict[str, float]) -> None:
    """Split fractions must add up to 1 (within rounding)."""
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        parts = " + ".join(f"split.{k}={v}" for k, v in fractions.items())
        raise DigitpipeError(f"{parts} = {total:g}; the split fractions must sum to 1")


def nearest(name: Any, names: list[str]) -> str | None:
    """The known name ``name`` most likely misspells: the same but for case (``LR``), else the closest."""
    text = str(name)
    same = [n for n in names if n.lower() == text.lower()]
    near = same or difflib.get_close_matches(text, names, n=1)
    return near[0] if near else None


def check_sections(data: dict[str, Any]) -> None:
    """Every top-level entry must be a known section: a typo (``trian:``) would otherwise be ignored."""
    for name in data:
        if name not in RULES:
            near = nearest(name, list(RULES))
            hint = f"did you mean '{near}'? " if near else ""
            raise DigitpipeError(f"unknown section '{shown(str(name))}'; {hint}sections: " + ", ".join(RULES))


def check_params(data: dict[str, Any]) -> None:
    """Every section present and known, every value allowed, the split fractions summing to 1; the error
    names the key, the value and what is allowed (without the file: :func:`load_params` adds it)."""
    check_sections(data)
    for name in RULES:
        if name not in data:
            raise DigitpipeError(f"missing section '{name}'")
        check_section(name, data[name])
    check_split(data["split"])


def ingest_and_after(root: Path = Path(".")) -> dict[str, str]:
    """The outputs of ``ingest`` and of every stage that reads what it makes, directly or not: ``{path: stage}``
    (from ``dvc.yaml``; empty without one)."""
    try:
        stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
        paths = {name: [str(next(iter(e)) if isinstance(e, dict) else e) for kind in ("outs", "metrics", "plots")
                        for e in spec.get(kind, [])] for name, spec in stages.items()}
        deps = {name: [str(d) for d in spec.get("deps", [])] for name, spec in stages.items()}
    except (OSError, KeyError, TypeError, ValueError, AttributeError, yaml.YAMLError):
        return {}

    def overlap(a: str, b: str) -> bool:
        a, b = Path(os.path.normpath(a)), Path(os.path.normpath(b))
        return a.is_relative_to(b) or b.is_relative_to(a)

    after = {"ingest"} & set(stages)
    while True:
        more = {name for name in stages if name not in after and any(
            overlap(dep, out) for dep in deps[name] for stage in after for out in paths[stage])}
        if not more:
            return {out: stage for stage in sorted(after) for out in paths[stage]}
        after |= more


TEMP_EXPERIMENTS = "/.dvc/tmp/exps/"  # where `dvc exp run --temp` and `--queue` run an experiment's copy of the project


def data_dir_problem(data_dir: str) -> str | None:
    """Why ``data.dir`` names nothing to read, or ``None``: it must be a folder, unless a stage makes it
    (``data/sample``, which a fresh clone has only once the ``sample`` stage has run); and it must neither hold
    nor lie inside what ingest or a stage after it writes: DVC refuses a stage whose data holds its own outputs,
    and finds a cycle where they hold a later stage's."""
    outputs = stage_outputs()
    here = Path(os.path.abspath(data_dir))
    made = {Path(os.path.abspath(path)): (path, stage) for path, stage in ingest_and_after().items()}
    inside = sorted(path for out, (path, _) in made.items() if out.is_relative_to(here) and out != here)
    around = sorted((out == here, path, stage) for out, (path, stage) in made.items() if here.is_relative_to(out))
    if inside or around:
        what = (f"holds the pipeline's own outputs ({first_of(inside)})" if inside else
                f"is {'' if around[0][0] else 'inside '}{around[0][1]}, which the {around[0][2]} stage writes")
        return (f"data.dir = {quoted(data_dir)}: {what}, and ingest would read its own or later stages' outputs as "
                "data, which DVC refuses: put the class folders in a folder of their own, beside data/ (such as "
                "mydigits)")
    try:
        if Path(data_dir).as_posix() in outputs or Path(data_dir).is_dir():
            return None
        if Path(data_dir).exists():
            return (f"data.dir = {quoted(data_dir)}: is a file, not a folder (data.dir holds one folder of images "
                    "per class)")
    except OSError as err:  # a name too long, a folder on the way this user may not enter
        return f"data.dir = {quoted(data_dir)}: cannot be read: {err.strerror or err}"
    workspace, copy, _ = Path.cwd().as_posix().partition(TEMP_EXPERIMENTS)
    untracked = ""
    if copy and not Path(data_dir).is_absolute():  # a folder that git and DVC do not track is not in the copy
        there = ", though your workspace has it" if Path(workspace, data_dir).is_dir() else ""
        untracked = (f"; this experiment runs in a copy of the project (dvc exp run --temp or --queue), which "
                     f"holds only what git and DVC track{there}: commit it or dvc add it, give its full path, or "
                     f"copy it in with --copy-paths {data_dir}")
    return (f"data.dir = {quoted(data_dir)}: no such folder (a path from the project root, holding one folder of "
            f"images per class){untracked}")


def parse_setting(setting: str, path: str | Path = "params.yaml") -> Any:
    """One ``KEY=VALUE`` for the params file ``path`` (``seed=3``, ``section.key=value``, or ``FILE:KEY=VALUE``
    naming ``path``) read as ``dvc exp run -S`` reads it, by DVC's own reader: Hydra's override grammar, where
    ``train.lr=3e-3`` is a number, ``data.classes=[a,b]`` a list and ``data.dir='my scans'`` text. Returns Hydra's
    override (its key, value and whether it deletes the key); a sweep, one experiment a value, is refused."""
    from dvc.utils.hydra import to_hydra_overrides
    from hydra.errors import OverrideParseException

    pair = setting
    if ":" in setting.partition("=")[0]:  # FILE:KEY=VALUE, as DVC splits it
        file, _, pair = setting.partition(":")
        if Path(file) != Path(path):
            raise DigitpipeError(f"{quoted(setting)} sets {file}, not {path}, the params file checked here")
    key, equals, _ = pair.partition("=")
    if not key.lstrip("+~").strip() or not (equals or key.startswith("~")):
        raise DigitpipeError(f"{quoted(pair)} is not KEY=VALUE (such as train.lr=0.001)")
    try:
        (override,) = to_hydra_overrides([pair])
    except OverrideParseException:
        key, _, value = (part.strip() for part in pair.partition("="))
        hidden = hidden_characters(pair)
        hint = (f"it holds {hidden}, which no param may hold" if hidden else
                "remove the space before the key" if pair[:1].isspace() else
                "write null for an empty value (~ is YAML's, not DVC's)" if value == "~" else
                f"quote each name that holds letters outside ASCII or signs: {key}=[cat,'étoile [2]']"
                if value.startswith("[") else
                f"quote text that holds letters outside ASCII or signs: {key}='étoile [2]'")
        raise DigitpipeError(f"DVC cannot read {quoted(pair)}: {hint}") from None
    if override.is_sweep_override():
        first = "..." if override.is_interval_sweep() else next(iter(override.sweep_string_iterator()), "...")
        raise DigitpipeError(f"{quoted(pair)} is a sweep, one experiment for each value: check the values one at a "
                             f"time ({override.key_or_group}={first})")
    section, _, name = override.key_or_group.partition(".")
    if not name and section != "seed" and section in RULES:
        raise DigitpipeError(f"{section} is a section, not a key: set one of its keys, such as "
                             f"{section}.{next(iter(RULES[section]))}")
    within = [f"{s}.{section}" for s, keys in RULES.items() if isinstance(keys, dict) and section in keys]
    near = nearest(section, list(RULES))
    if section not in RULES and (name or (near and not within)):  # trian.lr, seeds; lr is train.lr's slip
        hint = f"did you mean '{near}'? " if near else ""
        raise DigitpipeError(f"unknown section '{shown(section)}'; {hint}sections: " + ", ".join(RULES))
    if "." in name or (name == "") != (section == "seed"):
        hint = f"; did you mean '{within[0]}'?" if within and not name else ""
        raise DigitpipeError(f"no such params key {quoted(override.key_or_group)}: a key is seed or section.key "
                             f"(such as train.lr){hint}")
    return override


def set_values(data: dict[str, Any], pairs: list[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    """``data`` (the mapping of the params file ``path``) with each ``KEY=VALUE`` of ``pairs``
    (:func:`parse_setting`) set as ``dvc exp run -S`` sets it; ``data`` itself is left as it was. A key the file
    does not know is set all the same, for :func:`check_params` to refuse with its nearest name (DVC refuses it
    too)."""
    out = {name: dict(value) if isinstance(value, dict) else value for name, value in data.items()}
    for pair in pairs:
        override = parse_setting(pair, path)
        section, _, name = override.key_or_group.partition(".")
        target = out.setdefault(section, {}) if name else out
        if not isinstance(target, dict):  # a key inside a value that is no section: the section check names it
            target = out[section] = {}
        if override.is_delete():
            target.pop(name or section, None)
        else:
            target[name or section] = override.value()
    return resolved(out, path) if pairs else out


def resolved(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``data`` as ``dvc exp run -S`` writes it back: DVC passes the whole params file through OmegaConf, which
    reads ``${key}`` in any text as the value of another key and ``\\${`` as the text ``${``. A reference to
    no key fails DVC with a traceback-like error after it has started; here it is one line that says what to do."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(data, flags={"allow_objects": True}), resolve=True)
    except OmegaConfBaseException as err:
        where = err.full_key or "a value"
        reason = str(err).splitlines()[0]
        raise DigitpipeError(f"DVC's -S reads ${{...}} anywhere in {path} as a reference to another key, and "
                             f"{where} refers to none ({reason}): a name that holds ${{ cannot go through -S (written "
                             "\\${ it is set, and then every later -S fails on it); rename the folder, or edit "
                             f"{path} and run dvc repro") from None


def load_params(keys: list[str], path: str | Path = "params.yaml", settings: list[str] | None = None) -> dict[str, Any]:
    """The validated ``keys`` of the params file, nested as in the file: a section (``"train"``) or one key
    of a section (``"data.dir"``). Each stage asks for exactly the keys ``dvc.yaml`` declares for it (a
    test holds them equal); the whole file is checked either way, so a bad value anywhere stops any stage
    before it does any work. ``settings`` (``KEY=VALUE``, :func:`set_values`) change the file's values first,
    as ``dvc exp run -S`` would."""
    data = read_yaml(path)
    where = f"{path} with {' '.join(map(shown, settings))}" if settings else str(path)  # one line, whatever they hold
    try:
        data = set_values(data, settings or [], path)
        check_params(data)
    except DigitpipeError as err:
        raise DigitpipeError(f"{where}: {err}") from None
    data["data"] = {**data["data"], "classes": [str(c) for c in data["data"]["classes"]]}
    out: dict[str, Any] = {}
    for key in keys:
        section, _, name = key.partition(".")
        if section not in RULES or (name and name not in RULES[section]):
            raise ValueError(f"load_params: no such params key {key!r}")  # a bug in the caller, not the user's
        if name:
            out.setdefault(section, {})[name] = data[section][name]
        else:
            out[section] = data[section]
    return out
