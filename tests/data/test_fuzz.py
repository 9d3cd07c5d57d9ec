"""Fuzzing the readers: thousands of damaged, forged and fake image files, and not one crash.

Each file goes through ingest's inspector, ``predict``'s reader and chunk decoder, and the web page's decoder
(``gray_from_bytes``, errors worded by ``failure_reason``). Every file must come out as pixels or as a one-line
reason, a file ingest indexes must be readable by ``predict``, and a file both refuse must be refused in the
same words. ``python bench/fuzz.py`` runs the same with more files and prints what became of them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import MUTATIONS, hostile_files, judge, judge_chunk

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
SEED = 20_240_601
FILES = 2_500  # about 8 s on two cores


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, mnist) -> tuple:
    """The hostile files, written to ``root/0/``, and what each reader made of each."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "0").mkdir()
    files = hostile_files(SEED, FILES, mnist[0][:4])
    for name, data in files:
        (root / "0" / name).write_bytes(data)
    verdicts = {name: judge(root, name, data) for name, data in files}
    return root, files, verdicts


def test_every_hostile_file_gives_pixels_or_a_reason_in_every_reader(fuzzed):
    _, _, verdicts = fuzzed
    problems = [f"{name}: {problem}" for name, v in verdicts.items() for problem in v.problems]
    assert problems == []


def test_the_chunk_decoder_loses_no_file(fuzzed):
    root, files, _ = fuzzed
    paths = [str(root / "0" / name) for name, _ in files]
    problems = [p for i in range(0, len(paths), 500) for p in judge_chunk(paths[i:i + 500])]
    assert problems == []


def test_the_fuzz_reaches_every_verdict(fuzzed):
    """A fuzz that only ever produced one kind of file would prove little: each way of damaging a file is used,
    and the files end up indexed and refused for each of ingest's decoder reasons."""
    _, files, verdicts = fuzzed
    kinds = Counter(name.split("_", 1)[1].rsplit("_", 1)[0] for name, _ in files)
    assert set(kinds) == set(MUTATIONS)
    reasons = Counter(v.ingest for v in verdicts.values())
    assert {"indexed", "corrupt", "not_image", "too_large", "empty", "multi_frame", "blank"} <= set(reasons)
    assert reasons["too_large"] >= 100  # forged headers are refused from the header, not decoded
