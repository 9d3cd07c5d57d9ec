"""The README's model-registry recipe: the models dvc.yaml registers, tagged GTO-style, fetched by name from
another clone through a DVC remote with `dvc artifacts get`."""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import run, set_params

pytestmark = pytest.mark.pipeline


def release(project, version: str) -> dict[str, bytes]:
    """Push the outputs, tag both artifacts at HEAD as ``version`` (annotated tags, as GTO writes them) and
    return the bytes each tag should give."""
    run(["dvc", "push"], project)
    for name in ("digit-classifier", "digit-classifier-int8"):
        run(["git", "tag", "-a", f"{name}@{version}", "-m", f"Registering artifact {name} version {version}"],
            project)
    return {"digit-classifier": (project / "models/model.keras").read_bytes(),
            "digit-classifier-int8": (project / "models/model_int8.tflite").read_bytes()}


def test_artifacts_get_fetches_each_version_by_name_from_a_clone_through_the_remote(project, tmp_path):
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-d", "storage", str(remote)], project)
    run(["git", "commit", "-qam", "DVC remote"], project)
    v1 = release(project, "v1.0.0")
    run(["git", "tag", "-a", "digit-classifier#prod#1", "-m", "Promote digit-classifier v1.0.0 to prod",
         "digit-classifier@v1.0.0^{}"], project)
    set_params(project, **{"train.lr": 0.01})  # another model: v1.1.0
    run(["dvc", "repro"], project)
    run(["git", "commit", "-qam", "lr 0.01"], project)
    v2 = release(project, "v1.1.0")
    assert v2["digit-classifier"] != v1["digit-classifier"]

    registry = tmp_path / "registry"  # a clone holds the history and the tags, and no DVC cache
    run(["git", "clone", "-q", str(project), str(registry)], tmp_path)
    assert not (registry / ".dvc/cache").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def get(name: str, out: str, *how: str) -> bytes:
        run(["dvc", "artifacts", "get", str(registry), name, *how, "-o", out], elsewhere)
        return (elsewhere / out).read_bytes()

    assert get("digit-classifier", "latest.keras") == v2["digit-classifier"]
    assert get("digit-classifier", "v1.keras", "--rev", "v1.0.0") == v1["digit-classifier"]
    assert get("digit-classifier", "prod.keras", "--stage", "prod") == v1["digit-classifier"]
    assert get("digit-classifier-int8", "v1.tflite", "--rev", "v1.0.0") == v1["digit-classifier-int8"]
    assert get("digit-classifier-int8", "latest.tflite") == v2["digit-classifier-int8"]
    shutil.rmtree(remote)  # the bytes came from the remote: without it there is nothing to fetch
    proc = run(["dvc", "artifacts", "get", str(registry), "digit-classifier", "-o", "gone.keras"], elsewhere,
               check=False)
    assert proc.returncode != 0 and not (elsewhere / "gone.keras").exists()
