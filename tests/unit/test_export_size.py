"""The export report's sizes, and which way it says int8 differs from Keras."""

from __future__ import annotations

from digitpipe.export import size_kb


def test_a_saved_model_size_is_the_sum_of_its_files(tmp_path):
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"x" * 2048)
    (tmp_path / "variables" / "variables.data-00000-of-00001").write_bytes(b"x" * 1024)
    (tmp_path / "variables" / "variables.index").write_bytes(b"x" * 512)
    (tmp_path / "fingerprint.pb").write_bytes(b"x" * 512)
    assert size_kb(tmp_path) == 4.0
    assert size_kb(tmp_path / "saved_model.pb") == 2.0


def test_the_export_stage_says_which_way_int8_differs_from_keras():
    from stages.export import versus_keras

    assert versus_keras(0.00133) == "is 0.13 points below Keras"
    assert versus_keras(-0.0077) == "is 0.77 points above Keras"  # not "-0.77 points below"
    assert versus_keras(0.0) == versus_keras(-0.00001) == "is as accurate as Keras"  # not "+0.00 points below"
