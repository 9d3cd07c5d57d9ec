"""Benchmark: the readers on many hostile image files, how fast and with what verdicts.

    python bench/fuzz.py                    # 20,000 files, seed 0 (about a minute and a half on 2 cores)
    python bench/fuzz.py -n 100000 --seed 7

Generates N hostile files (``tests/helpers.py``: valid JPEG/PNG/GIF/BMP/TIFF/WebP digits, then cut short,
bit-flipped, given huge forged sizes, wrong magic numbers, emptied, or random bytes after a real magic number),
writes them to a temporary folder, and runs each reader over all of them, one at a time in this process:

  ingest   ``digitpipe.ingest.inspect_file`` (the ingest stage's inspector);
  predict  ``digitpipe.batch.read`` (one file), then ``decode_chunk`` (1,024 files at a time, preprocessing
           included);
  web      ``digitpipe.web.upload_gray``, the page's decoder, on the bytes: pixels or the page's words.

Prints files/s per reader, the verdicts (ingest's reason codes, predict's and the web page's reasons with
numbers replaced by N), and the broken promises the fuzz test checks for (any escape, a file with neither
pixels nor a reason, readers that disagree); there should be none.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.args import at_least  # noqa: E402
from digitpipe.batch import decode_chunk, read  # noqa: E402
from digitpipe.decode import quiet_decoder_warnings  # noqa: E402
from digitpipe.ingest import Policy, inspect_file  # noqa: E402
from digitpipe.sample import load_mnist_sample  # noqa: E402
from digitpipe.web import upload_gray  # noqa: E402
from tests.helpers import hostile_files, judge, judge_chunk  # noqa: E402

CHUNK = 1_024


def kind_of(reason: str) -> str:
    """A reason without its particulars: numbers become N, a decoder's own words are dropped (what follows
    ``cannot decode: ``); a reason that starts with the image's size (``5x5: a side under ...``) keeps its words."""
    head, _, rest = reason.partition(": ")
    words = reason if re.fullmatch(r"\d+x\d+", head) else head
    return re.sub(r"\d[\d,]*", "N", words)


def timed(label: str, n: int, work) -> Counter:
    start = time.perf_counter()
    verdicts = work()
    seconds = time.perf_counter() - start
    print(f"{label:<22} {seconds:7.2f} s  {n / seconds:9,.0f} files/s")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=at_least(1), default=20_000, help="how many hostile files (default 20,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated files (default 0)")
    args = parser.parse_args()
    quiet_decoder_warnings()
    warnings.simplefilter("ignore")  # Pillow's warnings about damaged metadata are expected here by the thousand
    files = hostile_files(args.seed, args.n, load_mnist_sample()[0][:4])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "0").mkdir()
        for name, data in files:
            (root / "0" / name).write_bytes(data)
        paths = [str(root / "0" / name) for name, _ in files]
        print(f"{args.n:,} hostile files (seed {args.seed}), {sum(len(d) for _, d in files) / 2**20:.1f} MiB, "
              "one process:")
        ingest = timed("ingest inspect_file", args.n, lambda: Counter(
            inspect_file((f"0/{name}", "0"), root, Policy()).get("reason", "indexed") for name, _ in files))
        predict = timed("predict read", args.n, lambda: Counter(
            "pixels" if not isinstance(got := read(path), str) else kind_of(got) for path in paths))
        timed("predict decode_chunk", args.n, lambda: [decode_chunk(paths[i:i + CHUNK], "mnist")
                                                        for i in range(0, len(paths), CHUNK)])
        web = timed("web upload_gray", args.n, lambda: Counter(web_verdict(data) for _, data in files))
        problems = [p for name, data in files for p in judge(root, name, data).problems]
        problems += [p for i in range(0, len(paths), CHUNK) for p in judge_chunk(paths[i:i + CHUNK])]
    for title, counts in (("ingest", ingest), ("predict", predict), ("web", web)):
        print(f"\n{title}:")
        for verdict, n in counts.most_common():
            print(f"  {n:7,}  {verdict}")
    print(f"\nbroken promises (escapes, neither pixels nor a reason, readers disagreeing): {len(problems)}")
    for problem in problems[:20]:
        print(f"  {problem}")
    print(f"\ncommand: python bench/fuzz.py -n {args.n} --seed {args.seed}")


def web_verdict(data: bytes) -> str:
    """What the web page would make of an upload: pixels, or the words it shows (escaped: a bug)."""
    try:
        upload_gray(data)
        return "pixels"
    except ValueError as err:  # the page's 400 and its words
        return kind_of(str(err))
    except Exception as err:  # noqa: BLE001 - the verdict is the point: an escape is the server's 500
        return f"ESCAPED {type(err).__name__}"


if __name__ == "__main__":
    main()
