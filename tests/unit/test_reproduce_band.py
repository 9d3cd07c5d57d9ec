"""The tolerance mode's band: what a number may differ by on another machine."""

import json

from digitpipe.reproduce import load_variation, sigmas


def test_a_count_over_the_test_images_may_always_move_by_one_image(tmp_path, monkeypatch):
    """Five seeds that all made the same int8 drop (SD 0) must not forbid another machine's int8 model one
    image more or fewer; the numbers that only count the data (support, images) stay exact."""
    monkeypatch.chdir(tmp_path)
    sd = {"metrics/details/export.json:int8_accuracy_drop": 0.0, "metrics/eval.json:errors": 0.0,
          "metrics/details/eval.json:per_class.3.support": 0.0, "metrics/eval.json:images": 0.0,
          "metrics/eval.json:accuracy": 0.002, "metrics/details/eval.json:per_class.3.f1": 0.0}
    (tmp_path / "bench/results").mkdir(parents=True)
    (tmp_path / "bench/results/variation.json").write_text(json.dumps({"seeds": 5, "sd": sd}))
    allowed = load_variation(test_images=750)
    assert allowed["metrics/details/export.json:int8_accuracy_drop"] == 1 / 750
    assert allowed["metrics/details/eval.json:per_class.3.f1"] == 1 / 750
    assert allowed["metrics/eval.json:errors"] == 1.0
    assert allowed["metrics/details/eval.json:per_class.3.support"] == 0.0
    assert allowed["metrics/eval.json:images"] == 0.0
    assert allowed["metrics/eval.json:accuracy"] == sigmas(5) * 0.002  # a measured band wider than the floor stays
