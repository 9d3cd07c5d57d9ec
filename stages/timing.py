"""Stage `timing`: the training time from train's summary, as the headline `dvc metrics show` lists.

`metrics/train.json` keeps every number of the training run (best epoch, epochs run, best validation
accuracy and loss, seconds); its six long keys would take most of a terminal's width in `dvc metrics show`,
so it is not a DVC metric. This stage copies the training seconds to `metrics/time.json`, which is.
"""

from __future__ import annotations

from pathlib import Path

from digitpipe import headline
from digitpipe.errors import run_main
from digitpipe.files import read_json, write_json

TRAIN = Path("metrics/train.json")
METRICS = Path("metrics/time.json")


def main() -> None:
    numbers = headline.timing(read_json(TRAIN))
    write_json(numbers, METRICS)
    print(f"timing: trained in {numbers['train_s']} s -> {METRICS}")


if __name__ == "__main__":
    run_main(main)
