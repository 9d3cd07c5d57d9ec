"""Sharing experiments between two clones: a bare git remote for the experiments' commits and a DVC remote
over SSH, served by a real OpenSSH server on 127.0.0.1 with throw-away keys."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.helpers import ENV, run
from tests.pipeline.test_dvc_pipeline import stages_run
from tests.pipeline.test_dvc_workflows import experiments

pytestmark = pytest.mark.pipeline

SSHD = Path(shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin:/sbin") or "/usr/sbin/sshd")


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "digitpipe-tests", "-f", str(path)],
                   check=True, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """An OpenSSH server on a free port of 127.0.0.1 that lets this user in with a throw-away key (and SFTP),
    and a home folder whose known_hosts trusts its throw-away host key."""
    if not SSHD.exists() or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server); .ci/run installs it")
    root = tmp_path_factory.mktemp("sshd")
    keygen(root / "host_key")
    keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text("\n".join([
        # quoted: a temporary folder's path may hold spaces (sshd splits an unquoted one into arguments)
        f"Port {port}", "ListenAddress 127.0.0.1", f'HostKey "{root / "host_key"}"', f'PidFile "{root / "sshd.pid"}"',
        f'AuthorizedKeysFile "{root / "authorized_keys"}"', "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel ERROR", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"sshd did not start: {server.communicate()[0]}")
            time.sleep(0.1)
    home = root / "home"
    (home / ".ssh").mkdir(parents=True)
    key_type, key = (root / "host_key.pub").read_text().split()[:2]
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    yield SimpleNamespace(port=port, key=root / "client_key", home=home, user=getpass.getuser())
    server.terminate()
    server.wait(10)


def sh(cmd: list[str], cwd: Path, home: Path) -> str:
    """Run a command as a user whose home holds the SSH known_hosts; its output, or the test fails with it."""
    proc = run(cmd, cwd, env={**ENV, "HOME": str(home)})
    return proc.stdout + proc.stderr


def run_cache_stages(storage: Path) -> set[str]:
    """The stages (by their script) that have run-cache entries in a DVC remote or cache: each entry under
    ``runs/`` is the lock entry of one run, its command included."""
    return {yaml.safe_load(p.read_text())["cmd"].removeprefix("python -m stages.")
            for p in (storage / "runs").rglob("*") if p.is_file()}


def stages_with_only_cached_outs(project: Path) -> set[str]:
    """The stages of dvc.yaml that have ``outs``, none of them ``cache: false`` (metrics and plots do not count):
    the only ones DVC keeps run-cache entries for (a stage with no outputs, ``params``, has nothing to restore)."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return {name for name, stage in stages.items()
            if stage.get("outs") and not any(isinstance(out, dict) and next(iter(out.values())).get("cache") is False
                                             for out in stage["outs"])}


def test_an_experiment_pushed_from_one_clone_is_pulled_applied_and_reproduced_in_another_without_training(
        project, tmp_path, sshd):
    """The README's recipe, "Sharing experiments between machines", command for command."""
    if not str(tmp_path).isascii():  # as the README says: DVC cannot write such a remote into .dvc/config
        pytest.skip(f"the temporary folder {tmp_path} is not ASCII, and DVC 3.67 cannot store a remote URL that is")
    origin, storage, second = tmp_path / "origin.git", tmp_path / "storage", tmp_path / "second"
    storage.mkdir()
    home = sshd.home
    sh(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path, home)
    # the first machine: the remotes, committed (the key's path and the user stay in the untracked .dvc/config.local)
    sh(["git", "remote", "add", "origin", str(origin)], project, home)
    sh(["dvc", "remote", "add", "-d", "storage", f"ssh://127.0.0.1:{sshd.port}{storage}"], project, home)
    sh(["dvc", "remote", "modify", "--local", "storage", "keyfile", str(sshd.key)], project, home)
    sh(["dvc", "remote", "modify", "--local", "storage", "user", sshd.user], project, home)
    sh(["git", "commit", "-qam", "DVC remote over SSH"], project, home)
    committed = sh(["dvc", "config", "--list", "--project"], project, home).splitlines()
    assert [line for line in committed if line.startswith("remote.")] == [
        f"remote.storage.url=ssh://127.0.0.1:{sshd.port}{storage}"], committed
    sh(["git", "push", "-q", "origin", "main"], project, home)
    sh(["dvc", "push"], project, home)  # main's outputs, for a `dvc pull` on main elsewhere
    assert "Cache and remote 'storage' are in sync." in sh(["dvc", "status", "--cloud"], project, home)
    assert not (storage / "runs").exists(), "a plain `dvc push` sent the run cache"
    sh(["dvc", "exp", "run", "-n", "lower-lr", "-S", "train.lr=0.001"], project, home)
    model = (project / "models" / "model.keras").read_bytes()
    model_md5 = hashlib.md5(model).hexdigest()
    metrics = (project / "metrics" / "eval.json").read_text()

    # `dvc exp push`: the experiment's commit to origin and its cached outputs, over SSH, to the DVC remote ...
    pushed = sh(["dvc", "exp", "push", "origin", "lower-lr"], project, home)
    assert "Pushed experiment lower-lr" in pushed, pushed
    assert (storage / "files" / "md5" / model_md5[:2] / model_md5[2:]).read_bytes() == model
    assert not (storage / "runs").exists(), "a plain `dvc exp push` sent the run cache"
    # ... and with --run-cache the run cache too; DVC keeps run-cache entries only for stages whose outputs are
    # all cached, so train, evaluate, export and plot (cache: false reports beside their outputs) have none
    pushed = sh(["dvc", "exp", "push", "--run-cache", "origin", "lower-lr"], project, home)
    assert "up to date" in pushed, pushed
    run_cached = stages_with_only_cached_outs(project)
    assert "train" not in run_cached and run_cache_stages(storage) == run_cached

    # the second machine: a clone of the git remote, its own key
    sh(["git", "clone", "-q", str(origin), str(second)], tmp_path, home)
    sh(["dvc", "remote", "modify", "--local", "storage", "keyfile", str(sshd.key)], second, home)
    sh(["dvc", "remote", "modify", "--local", "storage", "user", sshd.user], second, home)
    assert "lower-lr" in sh(["dvc", "exp", "list", "origin"], second, home)
    sh(["dvc", "exp", "pull", "origin", "lower-lr"], second, home)
    assert experiments(second) == {"lower-lr": {"lr": 0.001, "accuracy": json.loads(metrics)["accuracy"]}}
    sh(["dvc", "exp", "apply", "lower-lr"], second, home)
    # `dvc exp pull` brought the experiment's outputs: applied, the model is already the first machine's
    assert (second / "models" / "model.keras").read_bytes() == model
    sh(["dvc", "pull", "--run-cache"], second, home)
    assert run_cache_stages(second / ".dvc" / "cache") == run_cached
    reproduced = sh(["dvc", "repro"], second, home)
    assert stages_run(reproduced) == [], reproduced
    stages = yaml.safe_load((second / "dvc.yaml").read_text())["stages"]
    assert reproduced.count("didn't change, skipping") == len(stages), reproduced
    assert "Data and pipelines are up to date." in reproduced, reproduced
    assert (second / "models" / "model.keras").read_bytes() == model
    assert (second / "metrics" / "eval.json").read_text() == metrics
    diff = json.loads(sh(["dvc", "params", "diff", "main", "--json"], second, home))
    assert list(diff["params.yaml"]) == ["train.lr"] and diff["params.yaml"]["train.lr"]["new"] == 0.001, diff
