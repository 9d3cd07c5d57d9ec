"""dvc.yaml's model registry entries: each names a model a stage writes and DVC caches, so `dvc push` sends it to
the remote and `dvc artifacts get` can fetch it by name."""

from __future__ import annotations

import pytest
import yaml
from dvc.repo.artifacts import check_name_format

from tests.helpers import ROOT

SPEC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
ARTIFACTS = SPEC.get("artifacts", {})


def cached_outs() -> set[str]:
    outs = set()
    for stage in SPEC["stages"].values():
        for entry in stage.get("outs", []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            if (options or {}).get("cache", True):
                outs.add(path)
    return outs


def test_the_model_and_its_int8_export_are_registered():
    assert {name: a["path"] for name, a in ARTIFACTS.items()} == {
        "digit-classifier": "models/model.keras", "digit-classifier-int8": "models/model_int8.tflite"}


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_each_artifact_is_a_described_model_that_dvc_caches(name):
    check_name_format(name)  # the names GTO tags (`name@v1.0.0`) and `dvc artifacts get` accept
    artifact = ARTIFACTS[name]
    assert artifact["type"] == "model"
    assert artifact["desc"].strip() and artifact["labels"]
    assert artifact["path"] in cached_outs()


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_each_artifact_is_described_for_any_data_not_only_digits(name):
    """The model is trained on data.classes, whatever they are: neither its description nor its labels may
    promise ten digits."""
    artifact = ARTIFACTS[name]
    assert "mnist" not in artifact["labels"]
    assert "10 class" not in artifact["desc"] and "Handwritten-digit classifier" not in artifact["desc"]
