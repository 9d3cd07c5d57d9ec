"""Training on several devices and machines: TF_CONFIG, the launcher, replicas that agree, only the chief
writing, and a missing peer ending the run instead of hanging it. Real worker processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitpipe.distribute import parse_tf_config, tf_config
from digitpipe.errors import DigitpipeError
from digitpipe.launch import free_ports
from tests.helpers import ENV, ROOT, children_of, run, running, set_params

pytestmark = pytest.mark.distributed

TRAIN_OUTPUTS = ("models/model.keras", "metrics/train.json", "metrics/time.json", "metrics/platform.json", "dvclive")
ACCURACY_TOLERANCE = 0.03  # on 1,000 held-out digits: 30 digits either way


def python(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env={**ENV, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def fingerprints(output: str) -> dict[str, str]:
    """``{"worker 0": "ab12...", ...}`` from the train stage's "weights fingerprint" lines."""
    found = {}
    for line in output.splitlines():
        if "weights fingerprint" in line:
            who, _, digest = line.removeprefix("train: ").partition(": weights fingerprint ")
            found[who] = digest.strip()
    return found


def test_tf_config_gives_the_task_and_its_peers_and_every_mistake_is_one_line():
    cluster = parse_tf_config(tf_config(["127.0.0.1:2001", "127.0.0.1:2002", "127.0.0.1:2003"], 1))
    assert (cluster.name, cluster.size, cluster.is_chief) == ("worker 1", 3, False)
    assert cluster.peers() == [("worker 0", "127.0.0.1:2001"), ("worker 2", "127.0.0.1:2003")]
    chief = parse_tf_config(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]},
                                        "task": {"type": "worker", "index": 0}}))
    assert not chief.is_chief  # with a chief job, worker 0 is an ordinary worker
    bad = {
        "{not json": "not valid JSON",
        "[]": 'no "cluster"',
        '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}': 'job "ps"',
        '{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}': "at least one",
        '{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}': "'nohost'",
        '{"cluster": {"worker": ["a:1"]}}': '"task"',
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}': "index 1",
        '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}': "twice",
    }
    for text, says in bad.items():
        with pytest.raises(DigitpipeError) as err:
            parse_tf_config(text)
        assert says in str(err.value) and "\n" not in str(err.value), (text, str(err.value))


def test_the_code_the_workers_compare_is_every_python_file_the_train_stage_declares(tmp_path):
    """Each Python dep of the train stage in dvc.yaml, by its bytes, plus the library versions; data deps are
    compared on their own. A project without that layout is unlike any other worker's, and not a traceback."""
    from digitpipe.distribute import code_identity

    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "train.py").write_text("x = 1\n")
    (tmp_path / "lib.py").write_text("rate = 0.3\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  train:\n    cmd: x\n    deps:\n      - stages/train.py\n"
                                       "      - lib.py\n      - data/prepared/train.npz\n")
    first = code_identity(pipeline=tmp_path / "dvc.yaml")
    assert first[0].startswith("tensorflow ") and first[1].startswith("keras ") and first[2].startswith("numpy ")
    assert [line.split()[0] for line in first[3:]] == ["lib.py", "stages/train.py"]
    assert code_identity(pipeline=tmp_path / "dvc.yaml") == first
    (tmp_path / "lib.py").write_text("rate = 0.5\n")
    changed = code_identity(pipeline=tmp_path / "dvc.yaml")
    assert changed[4] == first[4] and changed[3] != first[3]
    assert code_identity(pipeline=tmp_path / "none.yaml")[3:] == [f"{tmp_path / 'none.yaml'}: FileNotFoundError"]
    assert [line.split()[0] for line in code_identity()[3:]][-1] == "stages/train.py"  # the project's own


def test_the_launcher_gives_each_worker_its_place_and_stops_the_rest_when_one_fails(tmp_path):
    report = ("import json, os, sys, time; task = json.loads(os.environ['TF_CONFIG'])['task']; "
              f"open(r'{tmp_path}/%d' % task['index'], 'w').write(os.environ['TF_CONFIG']); "
              "time.sleep({0: 120, 1: 2, 2: 0}[task['index']]); sys.exit(3 if task['index'] == 1 else 0)")
    start = time.monotonic()
    proc = python("-m", "digitpipe.launch", "--workers", "3", "--", sys.executable, "-c", report)
    took = time.monotonic() - start
    assert proc.returncode == 3, proc.stderr
    assert took < 30, f"the launcher waited {took:.0f} s for workers it should have stopped"
    # worker 2 had finished (code 0) before worker 1 failed: only worker 0 was stopped
    assert proc.stderr.endswith("launch: worker 1 exited with code 3 (worker 0 was stopped)\n"), proc.stderr
    configs = [json.loads((tmp_path / str(i)).read_text()) for i in range(3)]
    addresses = configs[0]["cluster"]["worker"]
    assert [c["task"]["index"] for c in configs] == [0, 1, 2]
    assert all(c["cluster"]["worker"] == addresses for c in configs) and len(set(addresses)) == 3
    assert all(a.startswith("127.0.0.1:") for a in addresses)
    usage = python("-m", "digitpipe.launch", "--workers", "0", "--", "true")
    assert usage.returncode == 2 and usage.stderr.strip().count("\n") == 0 and "--workers 0" in usage.stderr


def test_a_last_batch_too_small_to_share_between_the_replicas_neither_aborts_nor_loses_a_validation_image(tmp_path):
    """170 training and 40 validation digits in batches of 13 on 2 replicas: 1 left over each time, which gave
    one replica no image and aborted TensorFlow (a oneDNN max-pooling gradient) with the model lost."""
    out = tmp_path / "history.json"
    proc = python("-m", "tests.distributed.short_batches", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 1 of the 170 training images, a different few each epoch, sit out every epoch" in proc.stdout
    history = json.loads(out.read_text())
    assert len(history["val_accuracy"]) == 2
    for accuracy in history["val_accuracy"]:  # a share of all 40 validation images: none was left out
        assert abs(accuracy * 40 - round(accuracy * 40)) < 1e-4 and 0 < accuracy < 1
    for accuracy in history["accuracy"]:  # a share of the 169 training images of each epoch: 1 sat out
        assert abs(accuracy * 169 - round(accuracy * 169)) < 1e-4 and 0 < accuracy < 1


def test_two_workers_and_two_mirrored_devices_train_like_one_device(tmp_path):
    """The same recipe on 2 workers (2 processes on 127.0.0.1) and on 2 logical CPUs of one process: every
    worker ends with the same weights, and accuracy on held-out digits is one device's, within tolerance."""
    results = {}
    for kind in ("none", "mirrored"):
        (tmp_path / kind).mkdir()
        proc = python("-m", "tests.distributed.replica_train", kind, str(tmp_path / kind))
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[kind] = json.loads((tmp_path / kind / f"{kind}.json").read_text())
    (tmp_path / "multi").mkdir()
    proc = python("-m", "digitpipe.launch", "--workers", "2", "--", sys.executable, "-m",
                  "tests.distributed.replica_train", "multi_worker", str(tmp_path / "multi"),
                  env={"DIGITPIPE_PEER_TIMEOUT": "120"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    workers = [json.loads((tmp_path / "multi" / f"worker{i}.json").read_text()) for i in range(2)]
    assert workers[0]["fingerprint"] == workers[1]["fingerprint"], "the workers ended with different weights"
    assert workers[0]["val_accuracy"] == workers[1]["val_accuracy"]
    # 2 replicas either way: each all-reduce adds the same two numbers, so both kinds give the same bits
    assert results["mirrored"]["fingerprint"] == workers[0]["fingerprint"]
    assert results["mirrored"]["replicas"] == 2 and workers[0]["replicas"] == 2 and results["none"]["replicas"] == 1
    one = results["none"]["test_accuracy"]
    assert one > 0.8, f"the one-device baseline did not learn ({one})"
    for name, acc in (("mirrored", results["mirrored"]["test_accuracy"]),
                      ("multi_worker", workers[0]["test_accuracy"])):
        assert abs(acc - one) <= ACCURACY_TOLERANCE, f"{name}: {acc:.3f} against {one:.3f} on one device"
    assert (tmp_path / "multi" / "model.keras").is_file()


def two_machines(project: Path, tmp_path: Path) -> tuple[list[Path], list[str]]:
    """Two copies of the project standing for two machines, and a free loopback address for each."""
    machines = [project, tmp_path / "second"]
    shutil.copytree(project, machines[1], symlinks=True)
    return machines, [f"127.0.0.1:{p}" for p in free_ports(2)]


def start_train(root: Path, addresses: list[str], index: int, stderr=subprocess.PIPE) -> subprocess.Popen:
    """The train stage of one machine as task ``index`` of the cluster (a generous peer timeout)."""
    return subprocess.Popen([sys.executable, "-m", "stages.train"], cwd=root, text=True, stdout=subprocess.PIPE,
                            stderr=stderr, env={**ENV, "TF_CONFIG": tf_config(addresses, index),
                                                "DIGITPIPE_PEER_TIMEOUT": "120"})


def test_on_two_machines_only_the_chief_writes_the_train_stage_outputs(project, tmp_path):
    """Two copies of the project stand for two machines: each runs the train stage with its own TF_CONFIG."""
    machines, addresses = two_machines(project, tmp_path)
    procs = []
    for index, root in enumerate(machines):
        set_params(root, **{"train.distribute": "multi_worker", "train.epochs": 2})
        for out in TRAIN_OUTPUTS:
            shutil.rmtree(root / out) if (root / out).is_dir() else (root / out).unlink()
        procs.append(start_train(root, addresses, index, stderr=subprocess.STDOUT))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all((machines[0] / out).exists() for out in TRAIN_OUTPUTS), outputs[0]
    assert not any((machines[1] / out).exists() for out in TRAIN_OUTPUTS), "a worker that is not the chief wrote"
    prints = {**fingerprints(outputs[0]), **fingerprints(outputs[1])}
    assert set(prints) == {"worker 0", "worker 1"} and len(set(prints.values())) == 1, prints


def test_dvc_repro_with_multi_worker_starts_local_workers_itself(project):
    set_params(project, **{"train.distribute": "multi_worker", "train.replicas": 2})
    proc = run(["dvc", "repro", "train"], project)
    prints = fingerprints(proc.stdout + proc.stderr)
    assert set(prints) == {"worker 0", "worker 1"} and len(set(prints.values())) == 1, proc.stdout
    assert "distribute multi_worker (worker 0 of 2 workers, 2 replicas)" in proc.stdout
    assert run(["dvc", "status", "train"], project).stdout.strip().endswith("up to date.")


@pytest.mark.parametrize(("env", "says"), [
    ({"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "chief"}}'}, '"task" must name'),
    ({"TF_CONFIG": tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)}, "train.distribute is none"),
    ({"DIGITPIPE_PEER_TIMEOUT": "soon"}, "DIGITPIPE_PEER_TIMEOUT='soon' is invalid"),
])
def test_a_bad_cluster_setting_is_one_line_before_any_work(project, env, says):
    start = time.monotonic()
    proc = python("-m", "stages.train", cwd=project, env=env, timeout=60)
    assert proc.returncode == 2
    assert says in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert time.monotonic() - start < 20  # refused before TensorFlow is imported


def test_a_peer_that_never_comes_ends_the_run_within_the_timeout(project):
    set_params(project, **{"train.distribute": "multi_worker"})
    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    start = time.monotonic()
    proc = python("-m", "stages.train", cwd=project, timeout=120,
                  env={"TF_CONFIG": tf_config(addresses, 0), "DIGITPIPE_PEER_TIMEOUT": "5"})
    took = time.monotonic() - start
    assert proc.returncode != 0
    assert took < 60, f"took {took:.0f} s"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"worker 1 ({addresses[1]}) cannot be reached" in errors[0], proc.stderr
    assert not (project / "models" / ".model.partial.keras").exists()


def test_workers_whose_params_differ_refuse_to_train(project, tmp_path):
    """`-S train.lr=...` on the chief alone would train each worker with its own LR: refused, on every worker."""
    machines, addresses = two_machines(project, tmp_path)
    set_params(project, **{"train.distribute": "multi_worker"})
    set_params(machines[1], **{"train.distribute": "multi_worker", "train.lr": 0.01})
    procs = [start_train(root, addresses, i) for i, root in enumerate(machines)]
    results = [p.communicate(timeout=300) for p in procs]
    for index, (proc, (_, err)) in enumerate(zip(procs, results, strict=True)):
        assert proc.returncode == 2, err
        assert f"error: worker {index}: the workers differ in params.yaml; every machine needs the same commit" in err
    assert "epoch" not in results[0][0]


def test_workers_whose_code_differs_refuse_to_train(project, tmp_path):
    """A second machine on another commit, whose dropout rate differs: every tensor keeps its shape, so TensorFlow
    would train the two recipes into one model without a word. Refused on every worker, naming the code, and the
    process ends on its one line, without the teardown tracebacks of TensorFlow's collectives after it."""
    machines, addresses = two_machines(project, tmp_path)
    for root in machines:
        set_params(root, **{"train.distribute": "multi_worker"})
    models = machines[1] / "digitpipe" / "models.py"
    text = models.read_text()
    assert "Dropout(0.3)" in text
    models.write_text(text.replace("Dropout(0.3)", "Dropout(0.5)"))
    procs = [start_train(root, addresses, i) for i, root in enumerate(machines)]
    results = [p.communicate(timeout=300) for p in procs]
    for index, (proc, (out, err)) in enumerate(zip(procs, results, strict=True)):
        assert proc.returncode == 2, err
        assert f"error: worker {index}: the workers differ in code (the train stage's Python files, or the " in err
        assert "epoch" not in out and "Traceback" not in err and "Exception ignored" not in err, err


def test_workers_whose_tf_config_clusters_differ_are_told_so_not_that_a_peer_vanished(project, tmp_path):
    """Worker 1 lists a third worker that worker 0 does not: TensorFlow's group of 3 cannot form with worker 0's
    group of 2. Each stops in one line that names the sizes (it was a traceback of TensorFlow's internals). The
    other way round, worker 0 waits for a worker 2 that never comes and its watchdog stops it; worker 1 then says
    its peer went away before training began (it said "during training"), with the likely cause."""
    machines, addresses = two_machines(project, tmp_path)
    for root in machines:
        set_params(root, **{"train.distribute": "multi_worker"})
    third = f"127.0.0.1:{free_ports(1)[0]}"
    for wider in (1, 0):
        procs = [subprocess.Popen([sys.executable, "-m", "stages.train"], cwd=root, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  env={**ENV, "DIGITPIPE_PEER_TIMEOUT": "15" if i == 0 else "90",  # 0's first
                                       "TF_CONFIG": tf_config(addresses + [third] * (i == wider), i)})
                 for i, root in enumerate(machines)]
        results = [p.communicate(timeout=300) for p in procs]
        errors = [[line for line in err.splitlines() if line.startswith("error:")] for _, err in results]
        assert all(p.returncode != 0 for p in procs) and all(len(e) == 1 for e in errors), results
        assert not any("during training" in e[0] or "Traceback" in err
                       for e, (_, err) in zip(errors, results, strict=True))
        if wider == 1:
            assert errors[0][0].startswith("error: worker 0: the workers' TF_CONFIG clusters differ: this one lists "
                                           "2 tasks, another worker's 3; every machine needs the same \"cluster\""), \
                errors
        else:
            assert f"worker 2 ({third}) cannot be reached" in errors[0][0], errors
            assert errors[1][0].startswith(f"error: worker 1: worker 0 ({addresses[0]}) cannot be reached before "
                                           "training began"), errors
            assert "a TF_CONFIG that lists another cluster than this one's" in errors[1][0]


def test_a_worker_lost_mid_run_ends_the_others_in_one_line_not_a_traceback(project, tmp_path):
    """Worker 1 is killed after training has begun: worker 0 (the chief) stops at once, naming the worker that
    cannot be reached, and writes no model."""
    machines, addresses = two_machines(project, tmp_path)
    procs = []
    for index, root in enumerate(machines):
        set_params(root, **{"train.distribute": "multi_worker", "train.epochs": 400})
        (root / "models" / "model.keras").unlink()
        procs.append(start_train(root, addresses, index))
    chief, worker = procs
    for line in chief.stdout:  # training has begun once the first epoch is reported
        if "epoch" in line and "/400" in line:
            break
    worker.kill()
    start = time.monotonic()
    _, err = chief.communicate(timeout=120)
    worker.communicate(timeout=30)
    assert time.monotonic() - start < 60
    assert chief.returncode == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: worker 0: worker 1 ({addresses[1]}) cannot be reached during training, so the run stopped and "
        "wrote no model; start train on every machine again (TensorFlow's "), err
    assert not (project / "models" / "model.keras").exists()
    assert not (project / "models" / ".model.partial.keras").exists()


def test_a_port_another_program_holds_is_named_in_one_line(project):
    import socket

    set_params(project, **{"train.distribute": "multi_worker"})
    addresses = [f"127.0.0.1:{p}" for p in free_ports(2)]
    port = int(addresses[0].rpartition(":")[2])
    with socket.socket() as holder:  # on every address, as TensorFlow itself binds
        holder.bind(("0.0.0.0", port))
        holder.listen(1)
        proc = python("-m", "stages.train", cwd=project, timeout=120,
                      env={"TF_CONFIG": tf_config(addresses, 0), "DIGITPIPE_PEER_TIMEOUT": "60"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: worker 0: cannot listen on port {port} ({addresses[0]} in TF_CONFIG; TensorFlow "
                      "listens on every address of this machine): another program holds it; free it or give this "
                      "task another port"], proc.stderr
    assert not re.search(r"^[IWEF]\d{4} ", proc.stderr, re.MULTILINE), proc.stderr  # and no TensorFlow log lines


def test_sigterm_stops_a_multi_worker_run_with_its_local_workers_and_writes_nothing(project):
    """TensorFlow's multi-worker strategy takes SIGTERM for itself and ignores it: `timeout` or a cancelled CI job
    left the run training to its end, writing the model after DVC had given up on it."""
    set_params(project, **{"train.distribute": "multi_worker", "train.replicas": 2, "train.epochs": 400})
    (project / "models" / "model.keras").unlink()
    chief = subprocess.Popen([sys.executable, "-m", "stages.train"], cwd=project, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**ENV, "DIGITPIPE_PEER_TIMEOUT": "120"},
                             start_new_session=True)
    try:
        for line in chief.stdout:  # training has begun once the first epoch is reported
            if "epoch" in line and "/400" in line:
                break
        workers = children_of(chief.pid)
        chief.send_signal(signal.SIGTERM)
        start = time.monotonic()
        _, err = chief.communicate(timeout=60)
        assert time.monotonic() - start < 30
        assert chief.returncode == 143 and err.strip().splitlines()[-1] == "terminated", err
        assert "Traceback" not in err and "error:" not in err, err
        time.sleep(1)
        assert not any(running(pid) for pid in workers)
        assert not (project / "models" / "model.keras").exists()
        assert not (project / "models" / ".model.partial.keras").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(chief.pid, signal.SIGKILL)


def test_a_worker_that_is_not_the_chief_is_refused_under_dvc_repro_before_any_work(project):
    """Under `dvc repro`, a worker that writes nothing made DVC delete the clone's outputs, then fail."""
    set_params(project, **{"train.distribute": "multi_worker"})
    start = time.monotonic()
    proc = python("-m", "stages.train", cwd=project, timeout=60,
                  env={"TF_CONFIG": tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1), "DVC_STAGE": "train"})
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "makes this process worker 1, which writes no outputs" in proc.stderr
    assert "run `python -m stages.train`" in proc.stderr
    assert time.monotonic() - start < 20
    assert (project / "models" / "model.keras").is_file()
