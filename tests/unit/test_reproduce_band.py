"""The tolerance mode's band: what a number may differ by on another machine."""

import json

from digitpipe.reproduce import ROUNDING, load_variation, sigmas


def test_a_count_over_the_test_images_may_always_move_by_one_image(tmp_path, monkeypatch):
    """Five seeds that all made the same int8 drop (SD 0) must not forbid another machine's int8 model one
    image more or fewer, stored rounded (one image of 750 is 0.001333, stored as 0.0013 or 0.0014); a class's
    figures move by one of its own images; the numbers that only count the data (support, images) stay exact."""
    monkeypatch.chdir(tmp_path)
    sd = {"metrics/details/export.json:int8_accuracy_drop": 0.0, "metrics/eval.json:errors": 0.0,
          "metrics/details/eval.json:per_class.3.support": 0.0, "metrics/eval.json:images": 0.0,
          "metrics/eval.json:accuracy": 0.002, "metrics/details/eval.json:per_class.3.f1": 0.0,
          "metrics/details/eval.json:per_class.4.f1": 0.0}
    (tmp_path / "bench/results").mkdir(parents=True)
    (tmp_path / "bench/results/variation.json").write_text(json.dumps({"seeds": 5, "sd": sd}))
    allowed = load_variation(test_images=750, supports={"3": 75, "4": 50})
    drop = allowed["metrics/details/export.json:int8_accuracy_drop"]
    assert drop == 1 / 750 + ROUNDING and drop >= round(0.998667 - 0.997333, 4) and drop < 2 / 750
    assert allowed["metrics/details/eval.json:per_class.3.f1"] == 1 / 75 + ROUNDING
    assert allowed["metrics/details/eval.json:per_class.4.f1"] == 1 / 50 + ROUNDING
    assert allowed["metrics/eval.json:errors"] == 1.0
    assert allowed["metrics/details/eval.json:per_class.3.support"] == 0.0
    assert allowed["metrics/eval.json:images"] == 0.0
    assert allowed["metrics/eval.json:accuracy"] == sigmas(5) * 0.002  # a measured band wider than the floor stays


def test_onednn_switched_on_is_another_platform_and_a_python_patch_release_is_not(tmp_path, monkeypatch):
    """`TF_ENABLE_ONEDNN_OPTS=1` trains other weights on the committing CPU, yet the check chose exact mode (the
    facts did not record it) and then failed; Python 3.11.2 against 3.11.7 chose tolerance mode, though a patch
    release computes no number of the pipeline."""
    import json
    import subprocess
    import sys

    from digitpipe import reproduce, runtime
    from tests.helpers import ENV

    said = {}
    for value in ("0", "1", None):  # None: unset, where the stages switch oneDNN's kernels on themselves
        env = {k: v for k, v in ENV.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        proc = subprocess.run([sys.executable, "-c", "from digitpipe.runtime import load_keras, platform_facts; "
                               "load_keras(pinned=True); print(platform_facts()['onednn'])"],
                              env={**env, **({"TF_ENABLE_ONEDNN_OPTS": value} if value else {})},
                              capture_output=True, text=True, check=True)
        said[value] = proc.stdout.strip()
    assert said == {"0": "off", "1": "on", None: "on"}

    committed = {"machine": "x86_64", "onednn": "off", "onednn_isa": "AVX2", "intra_op_threads": 2,
                 "cpu_caches": "L1d 32K, L2 512K", "gpus": 0, "tensorflow": "2.21.0", "python": "3.11.7"}
    monkeypatch.chdir(tmp_path)  # no metrics/platform.json in the workspace: nothing recorded to differ
    monkeypatch.setattr(runtime, "load_keras", lambda pinned=False: None)
    monkeypatch.setattr(reproduce, "at_revision", lambda rev, path: json.dumps(committed))
    for here, expected in (({"python": "3.11.2"}, []), ({"onednn": "on"}, ["onednn off at HEAD, on here"]),
                           ({"python": "3.12.1"}, ["python 3.11.7 at HEAD, 3.12.1 here"])):
        monkeypatch.setattr(runtime, "platform_facts", lambda here=here: {**committed, **here})
        assert reproduce.platform_difference("HEAD")[:2] == (expected, [])
