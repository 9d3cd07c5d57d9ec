"""Stage `ingest`: index every image of ${data.dir}; list every unusable file in the rejects file."""

from __future__ import annotations

import time
from pathlib import Path

from digitpipe.errors import run_main
from digitpipe.files import write_csv, write_json
from digitpipe.ingest import ingest, summarize
from digitpipe.params import load_params

INDEX = Path("data/index/index.csv")
REJECTS = Path("data/index/rejects.csv")
METRICS = Path("metrics/data.json")


def main() -> None:
    params = load_params(["data", "ingest"])
    root, classes = Path(params["data"]["dir"]), params["data"]["classes"]
    start = time.perf_counter()
    result = ingest(root, classes, params["ingest"]["size_policy"])
    seconds = time.perf_counter() - start
    write_csv(result.index, INDEX)
    write_csv(result.rejects, REJECTS)
    summary = summarize(result, classes)
    write_json(summary, METRICS)
    total = summary["indexed"] + summary["rejected"]
    print(f"ingest: {summary['indexed']} images indexed, {summary['rejected']} rejected "
          f"from {root} in {seconds:.1f} s ({total / max(seconds, 1e-9):,.0f} files/s)")
    print("  per class: " + "  ".join(f"{k}:{v}" for k, v in summary["images_per_class"].items()))
    for reason, count in summary["rejected_by_reason"].items():
        print(f"  rejected ({reason}): {count}  -> see {REJECTS}")
    print(f"  wrote {INDEX}, {REJECTS}, {METRICS}")


if __name__ == "__main__":
    run_main(main)
