"""Same data and params give the same bytes: two `dvc repro -f` runs, and the reproduce check."""

from __future__ import annotations

import hashlib
import re
import sys

import pytest

from tests.helpers import ENV, ROOT, run, set_params

pytestmark = pytest.mark.pipeline

COMPARED = ["metrics/platform.json", "data/index/index.csv", "data/index/rejects.csv", "data/splits/train.csv",
            "data/splits/val.csv", "data/splits/test.csv", "data/prepared/train.npz", "data/prepared/test.npz",
            "metrics/data.json", "metrics/eval.json", "metrics/export.json", "metrics/details/data.json",
            "metrics/details/eval.json", "metrics/details/export.json", "models/model.keras",
            "models/saved_model", "models/model.tflite", "models/model_int8.tflite",
            "plots/data/predictions.csv", "plots/data/calibration.csv", "plots/data/per_class.csv",
            "dvclive/plots/metrics/eval/accuracy.tsv",
            "dvclive/plots/metrics/train/loss.tsv"]


def digests(project) -> dict[str, str]:
    """Each compared file's SHA-256; a folder's (the SavedModel) over its files' paths and bytes."""
    from digitpipe.inference import folder_files

    def digest(path):
        names = folder_files(path) if path.is_dir() else [""]
        assert names, path
        return hashlib.sha256(b"".join(name.encode() + b"\0" + (path / name).read_bytes()
                                       for name in names)).hexdigest()

    return {p: digest(project / p) for p in COMPARED}


def test_two_forced_runs_give_identical_outputs(project):
    first = digests(project)  # the fixture's run
    run(["dvc", "repro", "-f"], project)
    assert digests(project) == first
    code, out = reproduce(project)  # and the check says so
    assert code == 0, out
    assert ("reproduce: data stages, params, code, metrics, model, exports, plot data and training logs match HEAD "
            "exactly") in out


def reproduce(project, *args, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = run([sys.executable, "-m", "digitpipe.reproduce", *args], project, check=False,
               env={**ENV, "PYTHONPATH": str(ROOT), **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


def test_reproduce_check_fails_on_results_that_are_not_committed(project):
    code, out = reproduce(project)  # the committed results pass (a forced run too, above)
    assert code == 0, out
    set_params(project, **{"train.lr": 0.01})  # a change whose results are not committed
    run(["dvc", "repro"], project)
    run(["git", "checkout", "params.yaml"], project)  # params look committed; results do not match
    code, out = reproduce(project)
    assert code == 1
    assert "metrics/eval.json: accuracy" in out or "metrics/eval.json: loss" in out
    assert "workspace: stage train is not what dvc.lock records (params train modified" in out
    assert out.strip().endswith("run `dvc repro`, then this check again")
    assert "models/model.keras: " in out and "(different weights)" in out
    for export in ("models/saved_model", "models/model.tflite", "models/model_int8.tflite"):
        assert f"differs: dvc.lock: {export}: " in out and "(an export of a different model file)" in out
    last = out.strip().splitlines()[-1]  # what a person sees under a long list: the cause first
    assert re.match(r"reproduce: \d+ difference\(s\) from HEAD \(params train\.lr; \d+ metric\(s\); the model; "
                    r"the exports[;)]", last), last


def test_an_export_that_differs_from_the_same_model_is_caught(project):
    """The model and every number match, but the int8 file people ship is not the committed one (another
    converter, or its calibration rounding otherwise): exact mode compares the exports' bytes too."""
    code, out = reproduce(project)
    assert code == 0, out
    assert ("reproduce: data stages, params, code, metrics, model, exports, plot data and training logs match HEAD "
            "exactly") in out
    logs = project / "dvclive/metrics.json"
    kept = logs.read_text()
    logs.write_text(re.sub(r'("accuracy": )[0-9.]+', r"\g<1>0.5", kept, count=1))  # DVCLive's log, edited
    code, out = reproduce(project)
    assert code == 1 and "differs: dvclive: differs from HEAD" in out, out
    assert "the training logs" in out.strip().splitlines()[-1]
    logs.write_text(kept)
    int8 = project / "models/model_int8.tflite"
    data = int8.read_bytes()
    int8.unlink()  # DVC may link outputs from its cache: replace the file rather than write through the link
    int8.write_bytes(data + b"\0")
    run(["dvc", "commit", "-f", "export"], project)  # the lock now records the other bytes; dvc status is clean
    code, out = reproduce(project)
    assert code == 1, out
    assert "differs: dvc.lock: models/model_int8.tflite: " in out and "(a different export of the same model)" in out
    assert "model.keras" not in out and "differs: metrics/" not in out
    assert "reproduce: 1 difference(s) from HEAD (the exports): " in out


def test_a_param_edited_but_not_yet_reproduced_fails_the_check(project):
    """dvc.lock and metrics/ still match HEAD, but the workspace's params.yaml does not: the results
    checked are not those of the params in the workspace, so the check fails and says to run dvc repro."""
    set_params(project, **{"train.lr": 0.01})
    code, out = reproduce(project)
    assert code == 1, out
    assert "differs: workspace: stage train is not what dvc.lock records (params train modified" in out
    assert "stage evaluate" in out and "stage ingest" not in out  # the stages downstream of the param only
    last = out.strip().splitlines()[-1]
    assert last.startswith("reproduce: ") and "not reproduced since their last change" in last
    assert last.endswith("run `dvc repro`, then this check again"), last
    run(["dvc", "repro"], project)  # reproduced, the results now differ from HEAD's, as they should
    code, out = reproduce(project)
    assert code == 1 and "workspace:" not in out and "param train.lr: 0.003 at HEAD, now 0.01" in out


def test_a_param_that_changes_no_weight_is_told_apart_from_new_weights(project):
    """train.replicas does nothing without train.distribute: the model file differs only in the params its
    card records, and the check says so rather than "different weights"."""
    set_params(project, **{"train.replicas": 3})
    run(["dvc", "repro"], project)
    run(["git", "checkout", "params.yaml"], project)
    code, out = reproduce(project)
    assert code == 1
    assert "param train.replicas: 2 at HEAD, now 3" in out
    assert "(the same weights; only the params its card records differ)" in out and "different weights" not in out


def repro_on(project, machine: dict[str, str], *args: str) -> None:
    """`dvc repro` as another machine would run it: ``isa`` is the highest instruction set its CPU offers
    oneDNN (ONEDNN_MAX_CPU_ISA), ``cores`` the cores this process may use (taskset)."""
    cmd = ["dvc", "repro", *args]
    if machine.get("cores") == "1":
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**ENV, **({"ONEDNN_MAX_CPU_ISA": machine["isa"]} if "isa" in machine else {})}
    run(cmd, project, env=env)


def test_machines_with_another_isa_or_core_count_train_the_same_bytes(project):
    """The fixture ran on this machine as it is (AVX-512 where the CPU has it, all cores); an AVX2-only
    machine with one core must give the same model, metrics and plot data, byte for byte."""
    first = digests(project)
    repro_on(project, {"isa": "AVX2", "cores": "1"}, "-f")
    assert digests(project) == first
    code, out = reproduce(project)
    assert code == 0
    assert "reproduce: exact mode: this machine's platform facts match HEAD's" in out


def test_tolerance_mode_on_an_older_cpu_and_a_real_change_still_fails(project):
    """A CPU without AVX2 rounds differently: the check says so, compares the model's numbers within the
    committed seed-to-seed variation (here a generous one, as a 1-epoch model on 60 images varies a lot),
    keeps the data exact, and still fails when a param changed without its results."""
    import json

    variation = project / "bench/results/variation.json"
    variation.parent.mkdir(parents=True, exist_ok=True)
    keys = [f"{path.relative_to(project).as_posix()}:{k}" for path in (project / "metrics").rglob("*.json")
            if path.name not in ("platform.json", "data.json") for k in flat_keys(path)]
    variation.write_text(json.dumps({"sd": {k: 1.0 for k in keys}}))
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "variation of the tiny config"], project)
    repro_on(project, {"isa": "AVX"}, "-f")
    assert json.loads((project / "metrics/platform.json").read_text())["onednn_isa"] == "AVX"
    code, out = reproduce(project, env={"ONEDNN_MAX_CPU_ISA": "AVX"})  # the check on that machine
    assert code == 0, out
    assert "reproduce: tolerance mode: this machine differs from HEAD's in onednn_isa AVX2 at HEAD, AVX here" in out
    code, out = reproduce(project)  # its model brought to this machine (`dvc pull`): trained elsewhere
    assert code == 0, out
    assert ("reproduce: tolerance mode: the workspace's model was trained on a platform that differs from HEAD's, "
            "as metrics/platform.json records it: onednn_isa AVX2 at HEAD, AVX in the workspace's") in out
    set_params(project, **{"train.lr": 0.01})
    repro_on(project, {"isa": "AVX"})
    run(["git", "checkout", "params.yaml"], project)  # the params look committed; the results are not
    code, out = reproduce(project)
    assert code == 1
    assert "reproduce: tolerance mode" in out and "stage train, param train.lr: 0.003 at HEAD, now 0.01" in out


def test_a_stage_run_again_on_another_machine_is_compared_within_tolerance(project):
    """The model came from the committing machine (`dvc pull`, the run cache) and evaluate ran again here, on a
    CPU that rounds otherwise: its plot data differs in the last digit. The mode came from the committed
    metrics/platform.json, which only train writes, so the check compared exactly and reported a difference."""
    env = {"ONEDNN_MAX_CPU_ISA": "AVX"}
    repro_on(project, {"isa": "AVX"}, "-f", "-s", "evaluate")
    repro_on(project, {"isa": "AVX"})  # and plot after it, whose data evaluate has just rewritten
    code, out = reproduce(project, env=env)
    assert "reproduce: tolerance mode: this machine differs from HEAD's in onednn_isa AVX2 at HEAD, AVX here" in out
    assert "plots/data/predictions.csv" not in out


def test_a_platform_that_differs_but_trains_the_same_bits_is_told_so(project):
    """Other cache sizes (and, with oneDNN's kernels pinned off, a CPU TensorFlow would run them on) have trained
    the committed bits: tolerance mode, chosen by the facts, says when the bytes came out equal after all, and
    leaves that out when they did not."""
    import json

    facts = json.loads((project / "metrics/platform.json").read_text())
    facts["cpu_caches"] = "L1d 48K, L2 2048K"  # as if the committing machine had had other caches
    (project / "metrics/platform.json").write_text(json.dumps(facts, indent=2) + "\n")
    run(["dvc", "commit", "-f", "-q", "train"], project)
    run(["git", "commit", "-qam", "results from a machine with other caches"], project)
    code, out = reproduce(project)
    assert code == 0, out
    assert "reproduce: tolerance mode: this machine differs from HEAD's in cpu_caches L1d 48K, L2 2048K at HEAD" in out
    assert ("reproduce: data stages, params, code, metrics, model, exports, plot data and training logs match HEAD "
            "exactly, though this platform differs\n") in out  # the verdict, on stdout
    repro_on(project, {"isa": "AVX"}, "-f")  # other bits: in the band, and no claim of equal bytes
    code, out = reproduce(project, env={"ONEDNN_MAX_CPU_ISA": "AVX"})
    assert "reproduce: tolerance mode: this machine differs from HEAD's in cpu_caches" in out
    assert "; onednn_isa AVX2 at HEAD, AVX here" in out and "training logs match HEAD exactly" not in out


def flat_keys(path) -> list[str]:
    import json

    from digitpipe.reproduce import flatten

    return list(flatten(json.loads(path.read_text())))


def test_a_lock_that_lies_about_the_models_params_is_caught(project):
    """params.yaml edited and recorded in dvc.lock without the model being retrained (as a refused
    `dvc exp run -S` used to leave it): the model's card says what it was trained with."""
    set_params(project, **{"train.epochs": 2})
    run(["dvc", "commit", "-f", "train"], project)  # dvc.lock now claims the 1-epoch model is a 2-epoch one
    code, out = reproduce(project)
    assert code == 1
    assert "models/model.keras vs dvc.lock: train.epochs = 2 (the model was trained with 1)" in out
    proc = run(["dvc", "repro", "--single-item", "-f", "evaluate"], project, check=False)
    assert proc.returncode != 0
    assert ("error: models/model.keras does not match params.yaml: train.epochs = 2 (the model was trained with 1); "
            "run `dvc repro`") in proc.stdout + proc.stderr
