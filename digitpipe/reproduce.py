"""Check that the workspace reproduces a committed revision's pipeline results, and say what it proved.

    dvc repro && python -m digitpipe.reproduce             # against HEAD; the mode is chosen for you
    python -m digitpipe.reproduce --rev main --tolerance 0.005

It compares, after a `dvc repro` of the workspace, in one of two modes:

- **exact**, when this machine's platform facts (the instruction set oneDNN uses, intra-op threads,
  cache sizes, GPUs, library versions; see :mod:`digitpipe.runtime`), measured as the check runs, and
  those ``metrics/platform.json`` records for the workspace's model are both those committed at the
  revision: every number of the JSON files under ``metrics/`` (the headline
  metrics and the full reports in ``metrics/details/``) but wall-clock timings, the hashes of the model and
  of its three exports (SavedModel, float and int8 TFLite: the files people ship), and the plot data, byte for
  byte;
- **tolerance**, when they differ (floating point may round differently there): every number within
  the 99.9% band of its training-seed variation (:func:`load_variation`), measured by
  ``bench/variation.py`` and committed in ``bench/results/variation.json`` (a number it does not list
  must match exactly); the epochs early stopping chose are not compared.

In both modes the data stages (``sample``, ``ingest``, ``split``, ``prepare``: every dependency and
output hash) must match exactly, and so must every stage's params and code as ``dvc.lock`` records
them: a param or code change whose results were not committed fails either way. And the workspace
must be what its ``dvc.lock`` records (``dvc status`` clean): a param edited but not yet reproduced,
or outputs missing, fail too, since the lock and metrics/ then no longer describe it. One line says
which mode was used and why; exit 0 when everything matches, 1 with one line per difference otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from digitpipe.errors import DigitpipeError, cached_file, one_line, program, run_main
from digitpipe.output import first_of

DATA_STAGES = ("sample", "ingest", "split", "prepare")
TIMING_KEYS = {"train_seconds", "seconds_per_epoch", "train_s"}
MODEL_FILES = ("models/model.keras",)
EXPORT_FILES = ("models/saved_model", "models/model.tflite", "models/model_int8.tflite")
ARTIFACTS = {"train": MODEL_FILES, "export": EXPORT_FILES}  # compared by hash, byte for byte, in exact mode
PLOT_DATA = ("plots/data/predictions.csv", "plots/data/calibration.csv", "plots/data/per_class.csv")
TRAINING_LOGS = ("dvclive",)  # DVCLive's per-epoch logs: no timings in them, so equal bytes in exact mode
PLATFORM = "metrics/platform.json"
CODE = ("stages/", "digitpipe/")  # dependencies that are code, not data
VARIATION = "bench/results/variation.json"
# Student's t, two-sided 99.9%, by degrees of freedom (seeds - 1): an SD measured on a few seeds is itself
# uncertain, so the band widens as the seeds get fewer (4 degrees of freedom: 8.61 SDs; many: 3.29).
T_999 = {1: 636.6, 2: 31.60, 3: 12.92, 4: 8.610, 5: 6.869, 6: 5.959, 7: 5.408, 8: 5.041, 9: 4.781, 10: 4.587,
         15: 4.073, 20: 3.850, 30: 3.646}
# the epochs the validation curve or early stopping chose: any last-bit difference moves them
EPOCH_CHOICES = {"best_epoch", "epochs_run", "kept_epoch"}
# numbers counted over the test images (a share of them, or how many): whatever the seeds showed, another
# machine may always move one image, so their band is at least one image's worth (five seeds that all made
# the same count measure an SD of 0, which would otherwise allow no difference at all)
IMAGE_SHARES = {"accuracy", "top2", "top2_accuracy", "int8_accuracy_drop", "precision", "recall", "f1"}
IMAGE_COUNTS = {"errors"}
STAGE_LINE = re.compile(r"dvc\.lock: stage \S+, ")  # a stage's param, code or data as dvc.lock records it
ROUNDING = 1e-4  # the headline metrics are stored to 4 decimals (the full reports to 6)


def at_revision(rev: str, path: str) -> str | None:
    """A file's text at a git revision, or None if it is not there."""
    proc = subprocess.run(["git", "show", "--end-of-options", f"{rev}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def checked_revision(rev: str) -> str:
    """``rev``, refused in one line unless git knows it as a commit: before any other git command sees it, so
    that a value such as ``--output=params.yaml`` is never read as one of git's options (it would write there)."""
    if rev and not rev.startswith("-") and is_revision(rev):
        return rev
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    hint = ("; this clone is shallow, so it lacks older commits: `git fetch --unshallow` brings them"
            if shallow.stdout.strip() == "true" else "")
    raise DigitpipeError(f"{rev!r} is not a git revision here (a commit, branch or tag); for an experiment, "
                         f"`dvc exp branch NAME BRANCH` makes one, or give the commit `dvc exp show` lists{hint}")


def parsed(text: str, path: str, rev: str | None = None, kind: str = "JSON") -> Any:
    """A JSON (or YAML) file's content, as a dict; a damaged one is refused in one line naming it and the fix."""
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        detail = one_line(err) or type(err).__name__
    else:
        if isinstance(data, dict) or (data is None and kind == "YAML"):
            return data or {}
        detail = f"a {type(data).__name__} where a mapping belongs"
    if rev is not None:
        raise DigitpipeError(f"{path} at {rev} is not valid {kind} ({detail}): compare with another revision")
    raise DigitpipeError(f"{path} is not valid {kind} ({detail}): `git checkout -- {path}` brings back the committed "
                         "one, or `dvc repro` makes it again")


def is_revision(rev: str) -> bool:
    """Whether git knows ``rev`` as a commit."""
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                          capture_output=True).returncode == 0


def flatten(data, prefix: str = "") -> dict:
    """Nested JSON as ``{"a.b.c": value}``."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def locks(rev: str) -> tuple[dict, dict]:
    old_text = at_revision(rev, "dvc.lock")
    if old_text is None:
        checked_revision(rev)  # not a commit at all, or one without the file
        raise DigitpipeError(f"dvc.lock is not committed at {rev}")
    if not Path("dvc.lock").is_file():
        raise DigitpipeError("dvc.lock not found: run `dvc repro` first")
    return parsed(old_text, "dvc.lock", rev, "YAML"), parsed(Path("dvc.lock").read_text(), "dvc.lock", kind="YAML")


def lock_hashes(lock: dict, stage: str, kinds: tuple[str, ...] = ("deps", "outs")) -> dict:
    """``{path: md5}`` of a stage's deps and/or outs in a parsed dvc.lock."""
    entry = lock.get("stages", {}).get(stage, {})
    return {item["path"]: item.get("md5") for kind in kinds for item in entry.get(kind, [])}


def differing(before: dict, after: dict) -> list[str]:
    return [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def compare_lock(rev: str) -> list[str]:
    """The data stages' hashes, and every stage's params and code, exactly."""
    old, new = locks(rev)
    problems = []
    for stage in DATA_STAGES:  # their data, byte for byte (their code is compared with every stage's below)
        before, after = ({p: h for p, h in lock_hashes(lock, stage).items() if not p.startswith(CODE)}
                         for lock in (old, new))
        problems += [f"dvc.lock: stage {stage}, {p}: {before.get(p)} at {rev}, now {after.get(p)}"
                     for p in differing(before, after)]
    for stage in sorted(set(old.get("stages", {})) | set(new.get("stages", {}))):
        before, after = (flatten(lock.get("stages", {}).get(stage, {}).get("params", {})) for lock in (old, new))
        problems += [f"dvc.lock: stage {stage}, param {k.removeprefix('params.yaml.')}: {before.get(k)} at {rev}, "
                     f"now {after.get(k)}" for k in differing(before, after)]
        code = [{p: h for p, h in lock_hashes(lock, stage, ("deps",)).items() if p.startswith(CODE)}
                for lock in (old, new)]
        problems += [f"dvc.lock: stage {stage}, code {p} differs from {rev}" for p in differing(*code)]
    return problems


def causes(problems: list[str], shown: int = 4) -> str:
    """The differences in a few words, causes first: the params and code that changed (what a person changed),
    then how many data stages, metrics and other files followed, so the last line says what the list above holds."""
    def names(pattern: str) -> list[str]:
        return sorted({m[1] for line in problems if (m := re.search(pattern, line))})

    # a list param's items (data.classes.3) count as the list
    params = sorted({re.sub(r"(\.\d+)+$", "", name) for name in names(r"^dvc\.lock: stage \S+, param ([^:]+):")})
    code = names(r"^dvc\.lock: stage \S+, code (\S+) differs")
    data = names(r"^dvc\.lock: stage (\S+), (?!param |code )")
    metrics = sum(line.startswith("metrics/") for line in problems)
    parts = [f"params {first_of(params, shown)}"] * bool(params) + [f"code {first_of(code, shown)}"] * bool(code)
    parts += [f"the data of {first_of(data, shown)}"] * bool(data) + [f"{metrics} metric(s)"] * bool(metrics)
    model = [line for line in problems if line.startswith(tuple(f"dvc.lock: {m}: " for m in MODEL_FILES))]
    exports = [line for line in problems if line.startswith(tuple(f"dvc.lock: {e}: " for e in EXPORT_FILES))]
    plot_data = [line for line in problems if line.startswith("plots/")]
    logs = [line for line in problems if line.startswith(TRAINING_LOGS)]
    parts += ["the model"] * bool(model) + ["the exports"] * bool(exports) + ["plot data"] * bool(plot_data)
    parts += ["the training logs"] * bool(logs)
    stale = [m[1] for line in problems if (m := re.search(r"^workspace: stage (\S+) is not", line))]  # pipeline order
    parts += [f"stage(s) {first_of(stale, shown)} not reproduced since their last change"] * bool(stale)
    counted = len(model) + len(exports) + len(plot_data) + len(logs) + len(stale)
    counted += sum(bool(STAGE_LINE.match(line)) or line.startswith("metrics/")
                   for line in problems)
    if len(problems) > counted:
        parts.append(f"{len(problems) - counted} other(s)")
    return "; ".join(parts)


def sigmas(seeds: int) -> float:
    """How many SDs measured on ``seeds`` seeds make a 99.9% band (Student's t with seeds - 1 degrees of freedom)."""
    dof = max(1, seeds - 1)
    return T_999[max(d for d in T_999 if d <= dof)]


def family(key: str) -> str:
    """The metric a key is one instance of: ``metrics/details/eval.json:per_class.3.f1`` -> ``...per_class.*.f1``."""
    return ".".join("*" if part.isdigit() else part for part in key.split("."))


def load_variation(test_images: int | None = None, supports: dict[str, int] | None = None) -> dict[str, float]:
    """``{"metrics/eval.json:accuracy": allowed difference, ...}`` from the measured training-seed SDs.

    Each allowed difference is :func:`sigmas` times the SD of the metric's family, pooled (root mean
    square) over its instances: the ten per-class F1 scores share one SD, since five seeds say little
    about any one class's spread. A number counted over the ``test_images`` test images (a class's over its
    ``supports`` test images) is allowed at least one image's difference (:data:`IMAGE_SHARES`,
    :data:`IMAGE_COUNTS`), plus the rounding of the stored figures."""
    path = Path(VARIATION)
    if not path.is_file():
        raise DigitpipeError(f"{VARIATION} not found: the tolerance mode needs it (python bench/variation.py)")
    measured = parsed(path.read_text(), VARIATION)
    sds = measured.get("sd")
    if not isinstance(sds, dict) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in sds.values()):
        raise DigitpipeError(f"{VARIATION} holds no standard deviations (\"sd\"): `git checkout -- {VARIATION}` "
                             "brings back the committed one, or python bench/variation.py measures them again")
    pooled: dict[str, list[float]] = {}
    for key, sd in measured["sd"].items():
        pooled.setdefault(family(key), []).append(sd * sd)
    k = sigmas(int(measured.get("seeds", 2)))
    allowed = {key: k * (sum(pooled[family(key)]) / len(pooled[family(key)])) ** 0.5 for key in measured["sd"]}
    for key in allowed:
        parts = key.split(":", 1)[-1].split(".")  # metrics/details/eval.json:per_class.3.f1 -> per_class, 3, f1
        images = (supports or {}).get(parts[1]) if parts[0] == "per_class" and len(parts) == 3 else test_images
        if parts[-1] in IMAGE_COUNTS:
            allowed[key] = max(allowed[key], 1.0)
        elif parts[-1] in IMAGE_SHARES and images:
            allowed[key] = max(allowed[key], 1.0 / images + ROUNDING)
    return allowed


def test_image_counts() -> tuple[int | None, dict[str, int]]:
    """How many test images the workspace's evaluation counted (``metrics/eval.json``), and of each class
    (``metrics/details/eval.json``), as far as they say."""
    try:
        total = int(json.loads(Path("metrics/eval.json").read_text())["images"])
    except (OSError, ValueError, KeyError, TypeError):
        total = None
    try:
        per_class = json.loads(Path("metrics/details/eval.json").read_text())["per_class"]
        supports = {name: int(row["support"]) for name, row in per_class.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        supports = {}
    return total, supports


def compare_metrics(rev: str, tolerance: float | None, variation: dict[str, float] | None) -> list[str]:
    """Every number of the JSON files under metrics/ but timings: equal (``tolerance`` 0), within ``tolerance``,
    or within the allowed difference ``variation`` gives it (exactly, for a number it does not list)."""
    problems = []
    for path in sorted(Path("metrics").rglob("*.json")):
        if path.as_posix() == PLATFORM:
            continue
        old_text = at_revision(rev, path.as_posix())
        if old_text is None:
            problems.append(f"{path}: not committed at {rev}")
            continue
        old = flatten(parsed(old_text, path.as_posix(), rev))
        new = flatten(parsed(path.read_text(), path.as_posix()))
        for key in sorted(set(old) | set(new)):
            banded = variation is not None or bool(tolerance)  # any last-bit difference may move these epochs
            if key.split(".")[-1] in TIMING_KEYS or (banded and key.split(".")[-1] in EPOCH_CHOICES):
                continue
            a, b = old.get(key), new.get(key)
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
            allowed = tolerance if variation is None else variation.get(f"{path.as_posix()}:{key}", 0.0)
            if numbers and (math.isnan(a) or math.isnan(b)):  # NaN is never within any distance of a number
                apart = math.isnan(a) != math.isnan(b)
            else:
                apart = (numbers and abs(a - b) > allowed + 1e-12) or (not numbers and a != b)
            if apart:
                problems.append(f"{path}: {key} = {a} at {rev}, now {b}" + (f" (allowed ±{allowed:.4g})" if allowed
                                                                            else ""))
    return problems


def compare_files(rev: str, paths: tuple[str, ...]) -> list[str]:
    problems = []
    for path in paths:
        proc = subprocess.run(["git", "diff", "--quiet", "--end-of-options", rev, "--", path])
        if proc.returncode != 0:
            problems.append(f"{path}: differs from {rev}")
    return problems


def artifact_problems(rev: str) -> list[str]:
    """The trained model's and the exports' hashes as dvc.lock records them, against the revision's. An export
    that differs while the model does not was converted differently (another converter, or its int8 calibration
    rounding otherwise): the file people ship is not the one committed, though the model is."""
    old, new = locks(rev)
    hashes = {stage: [{p: h for p, h in lock_hashes(lock, stage).items() if p in paths} for lock in (old, new)]
              for stage, paths in ARTIFACTS.items()}
    model_changed = differing(*hashes["train"]) != []
    problems = []
    for stage, paths in ARTIFACTS.items():
        before, after = hashes[stage]
        for p in paths:
            if before.get(p) == after.get(p):
                continue
            if stage == "train":
                why = model_change(before.get(p), Path(p))
            else:
                why = "an export of a different model file" if model_changed else "a different export of the same model"
            problems.append(f"dvc.lock: {p}: {before.get(p)} at {rev}, now {after.get(p)} ({why})")
    return problems


def model_change(old_md5: str | None, model: Path) -> str:
    """What differs between the model file ``old_md5`` names and this one: the weights, or only its card (the
    params it records, such as one that changes nothing with this setup, ``train.replicas`` without
    ``distribute``). Told apart entry by entry when the old file is still in this clone's DVC cache."""
    import zipfile

    from digitpipe.card import CARD_NAME

    if not old_md5 or not cached_file(old_md5).is_file() or not model.is_file():
        return "a different model file"
    try:
        with zipfile.ZipFile(cached_file(old_md5)) as a, zipfile.ZipFile(model) as b:
            names_a, names_b = set(a.namelist()), set(b.namelist())
            differ = sorted(names_a ^ names_b) + sorted(e for e in names_a & names_b if a.read(e) != b.read(e))
    except (OSError, zipfile.BadZipFile):
        return "a different model file"
    if differ == [CARD_NAME]:
        return "the same weights; only the params its card records differ"
    return "different weights" if any(e.endswith(".weights.h5") for e in differ) else "a different model file"


def status_failure(stderr: str) -> str:
    """Why ``dvc status`` failed, in one line. While another DVC command runs in the project, DVC refuses with a
    list of the process ids that hold it and, last, advice to remove its lock file: advice that, followed while
    that command runs, would let two commands write the same outputs. So a held lock is named as such."""
    holder = re.search(r"^\s*\(PID (\d+)\): (.+)$", stderr, flags=re.MULTILINE)
    if "is busy, it is being blocked by" in stderr and holder:
        command = " ".join(Path(holder.group(2).split()[0]).name.split() + holder.group(2).split()[1:])
        return (f"workspace: another DVC command is running in this project (PID {holder.group(1)}: {command}), "
                "so whether it was reproduced is unknown: run this check again once it has finished")
    lines = stderr.strip().splitlines()
    said = next((line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")),
                lines[-1] if lines else "no output")
    return f"workspace: `dvc status` failed, so whether it was reproduced is unknown: {said}"


def workspace_problems() -> list[str]:
    """Stages whose params, code, data or outputs in the workspace are not what ``dvc.lock`` records (``dvc
    status``): a param edited, or outputs deleted, since the last ``dvc repro``. The comparisons with the
    revision read dvc.lock and metrics/, which such a workspace no longer stands behind."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], capture_output=True, text=True)
    try:
        status = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        return [status_failure(proc.stderr)]
    problems = []
    for stage, changes in status.items():  # in the pipeline's order
        parts = []
        for change in changes:  # {"changed deps": {path: state}, ...}, or a word such as "always changed"
            for kind, items in (change.items() if isinstance(change, dict) else [(change, None)]):
                if not isinstance(items, dict) or not items:
                    parts.append(str(kind))
                    continue
                for path, state in items.items():
                    if isinstance(state, dict):  # params.yaml: {"train": "modified"}
                        parts += [f"params {section} {how}" for section, how in state.items()]
                    else:
                        parts.append(f"{path} {state}")
        problems.append(f"workspace: stage {stage} is not what dvc.lock records ({first_of(parts, 3, '; ')})")
    return problems


def provenance_problems(rev: str) -> list[str]:
    """The trained model's card against the train params dvc.lock records for it: a lock that lies fails."""
    from digitpipe.card import params_differences, read_card

    model = Path(MODEL_FILES[0])
    if not model.is_file():
        return []
    card = read_card(model)
    if not card.known:  # a damaged file, or no card at all: no params to set against the lock's
        return [f"{model}: no model card can be read from it (a damaged or foreign file): `dvc checkout train` "
                "brings back the one dvc.lock records"]
    _, new = locks(rev)
    recorded = new.get("stages", {}).get("train", {}).get("params", {}).get("params.yaml", {})
    return [f"{model} vs dvc.lock: {line}" for line in params_differences(card, recorded)]


def platform_difference(rev: str) -> tuple[list[str], list[str], dict]:
    """The platform facts that differ from the revision's (``key theirs at rev, ours here``): this machine's,
    measured now, and those ``metrics/platform.json`` records for the workspace's model (the machine its train
    ran on, which is another where `dvc pull` or the run cache brought the model); and this machine's facts."""
    from digitpipe.runtime import load_keras, platform_facts

    load_keras(pinned=True)  # as every stage runs TensorFlow: oneDNN capped, the thread count fixed
    live = platform_facts()
    old_text = at_revision(rev, PLATFORM)
    if old_text is None:
        return [f"no {PLATFORM} at {rev}"], [], live
    theirs = parsed(old_text, PLATFORM, rev)
    # a workspace without the file (a stage running, outputs removed) has no recorded facts to differ: the
    # workspace check names that
    recorded = parsed(Path(PLATFORM).read_text(), PLATFORM) if Path(PLATFORM).is_file() else theirs
    return ([f"{k} {theirs.get(k)} at {rev}, {live.get(k)} here" for k in differing(deciding(theirs), deciding(live))],
            [f"{k} {theirs.get(k)} at {rev}, {recorded.get(k)} in the workspace's"
             for k in differing(deciding(theirs), deciding(recorded))],
            live)


def deciding(facts: dict) -> dict:
    """The platform facts as compared: Python by its minor version (3.11), which the README's byte-for-byte
    promise names; a patch release (3.11.2 on Debian 12, 3.11.7 here) computes no number of the pipeline."""
    python = str(facts.get("python", ""))
    return {**facts, "python": ".".join(python.split(".")[:2])} if python else facts


def choose_mode(args: argparse.Namespace) -> tuple[str, str]:
    """("exact" | "tolerance", why) from the flags and the platform facts. Exact only where this machine, which
    computed the stages `dvc repro` ran, and the one that trained the workspace's model both have the
    revision's facts: a stage run again here after the model came from elsewhere (evaluate, after a `dvc pull`
    on a CPU with other caches) rounds as this machine does."""
    if args.tolerance is not None:
        return ("exact", "asked for --tolerance 0") if args.tolerance == 0 else (
            "tolerance", f"asked for --tolerance {args.tolerance}")
    here, trained, live = platform_difference(args.rev)
    if not here and not trained:
        facts = ", ".join([f"oneDNN {live['onednn']}"] +
                          [str(live[k]) for k in ("onednn_isa", "intra_op_threads", "cpu_caches", "tensorflow")])
        return "exact", f"this machine's platform facts match {args.rev}'s ({facts})"
    if here:
        return "tolerance", f"this machine differs from {args.rev}'s in {'; '.join(here)}"
    return "tolerance", (f"the workspace's model was trained on a platform that differs from {args.rev}'s, as "
                         f"{PLATFORM} records it: {'; '.join(trained)}")


def exact_problems(rev: str) -> list[str]:
    """What exact mode holds against the revision beyond the params, code and data: every metric but the timings,
    the model and its exports byte for byte, the plot data and the training logs."""
    return (compare_metrics(rev, 0.0, None) + artifact_problems(rev)
            + compare_files(rev, PLOT_DATA + TRAINING_LOGS))


def same_commit(rev: str, other: str) -> bool:
    """Whether two revisions name one commit."""
    heads = [subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{r}^{{commit}}"],
                            capture_output=True, text=True).stdout.strip() for r in (rev, other)]
    return bool(heads[0]) and heads[0] == heads[1]


def advice(problems: list[str], rev: str, rev_is_head: bool) -> str:
    """What to do about the differences: wait for a DVC command that is running; reproduce first when the
    workspace is not what its dvc.lock records, and again, forced, when dvc.lock stands behind results that
    no params, code or data of its own explain (a model its card says was trained otherwise, a result
    edited and `dvc commit`-ed); then, against the checked-out commit, commit the results with their cause;
    against another revision, check that one out to reproduce it (the workspace's results may well be meant to
    differ from it)."""
    if any(line.startswith("workspace: another DVC command is running") for line in problems):
        return "wait until the other DVC command has finished, then run this check again"
    if any(line.startswith("workspace: ") for line in problems):
        return "run `dvc repro`, then this check again"
    force = ("run `dvc repro --force` to make them again from the committed params, code and data (a plain "
             "`dvc repro` finds nothing to do), then this check again")
    if any(" vs dvc.lock: " in line for line in problems):
        return f"dvc.lock records params the model was not trained with: {force}"
    if rev_is_head and not any(STAGE_LINE.match(line) for line in problems):
        return (f"the params, code and data are {rev}'s but the results are not, so they were not made by "
                f"`dvc repro` from them (a result edited or brought in, then `dvc commit`): {force}")
    if rev_is_head:
        return ("commit the results of `dvc repro` (dvc.lock, metrics/, plots/, dvclive/) with the change that "
                "caused them")
    return (f"this workspace's results are not {rev}'s; to reproduce {rev}, `git checkout {rev}`, run `dvc repro` "
            "and this check again (results meant to differ from it are committed as usual)")


def tolerance_value(text: str) -> float:
    """A finite difference of 0 or more, as given on the command line."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a tolerance: give a number of 0 (exact) or more")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(prog=program("digitpipe.reproduce"), description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--tolerance", type=tolerance_value, default=None,
                        help="compare every metric within this absolute difference (0: exact) instead of choosing "
                             "the mode from the platform facts; a non-zero tolerance skips the byte comparison of "
                             "the model, the exports and the plot data")
    args = parser.parse_args()
    if not Path("dvc.yaml").is_file():
        raise DigitpipeError("no dvc.yaml here: run this in the project's root folder")
    args.rev = checked_revision(args.rev)
    mode, why = choose_mode(args)
    problems = workspace_problems() + compare_lock(args.rev) + provenance_problems(args.rev)
    if mode == "exact":
        problems += exact_problems(args.rev)
    else:
        variation = None if args.tolerance is not None else load_variation(*test_image_counts())
        problems += compare_metrics(args.rev, args.tolerance, variation)
    print(f"reproduce: {mode} mode: {why}", file=sys.stderr)
    for line in problems:
        print(f"differs: {line}", file=sys.stderr)
    if problems:
        todo = advice(problems, args.rev, same_commit(args.rev, "HEAD"))
        print(f"reproduce: {len(problems)} difference(s) from {args.rev} ({causes(problems)}): {todo}", file=sys.stderr)
        sys.exit(1)
    # chosen by the platform facts, tolerance mode still says when the bytes came out equal: the facts are what may
    # change the bits, and some machines that differ in them train the same ones
    if mode == "exact" or (args.tolerance is None and not exact_problems(args.rev)):
        print(f"reproduce: data stages, params, code, metrics, model, exports, plot data and training logs match "
              f"{args.rev} exactly" + ("" if mode == "exact" else ", though this platform differs"))
    else:
        within = (f"within {args.tolerance}" if args.tolerance is not None else
                  "within the 99.9% band of the training-seed variation (bench/results/variation.json)")
        within += "; the epochs the validation curve or early stopping chose not compared"
        print(f"reproduce: data stages, params and code match {args.rev} exactly; metrics {within}")


if __name__ == "__main__":
    run_main(main)
