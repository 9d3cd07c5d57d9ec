"""Stage `ingest`: index every image of ${data.dir}; list every unusable file in the rejects file."""

from __future__ import annotations

import time
from pathlib import Path

from digitpipe import headline
from digitpipe.errors import run_main
from digitpipe.files import write_csv, write_json
from digitpipe.ingest import Policy, ingest, summarize
from digitpipe.output import counted, in_lines
from digitpipe.params import load_params

INDEX = Path("data/index/index.csv")
REJECTS = Path("data/index/rejects.csv")
METRICS = Path("metrics/data.json")          # the headline: images indexed
DETAILS = Path("metrics/details/data.json")  # every count: per class, rejected per reason, skipped per kind


def report(summary: dict, seconds: float, root: Path) -> None:
    """The human summary: counts, reasons, speed and where the files went."""
    rejected, folders = summary["rejected"], summary["folders_not_read"]
    seen = summary["indexed"] + rejected  # the files `digitpipe check` counts
    print(f"ingest: {seen:,} files from {root} in {seconds:.1f} s ({seen / max(seconds, 1e-9):,.0f} images/s): "
          f"{summary['indexed']:,} indexed, {rejected:,} rejected, {summary['skipped']:,} skipped"
          + (f"; {counted(folders, 'folder')} inside class folders not read" if folders else ""))
    print("\n".join(in_lines([f"{k}:{v}" for k, v in summary["images_per_class"].items()], "  per class: ")))
    width = max([30, *map(len, summary["rejected_by_reason"]), *map(len, summary["skipped_by_kind"])])  # counts align
    for reason, count in summary["rejected_by_reason"].items():
        print(f"  rejected  {reason:<{width}} {count:>6}")
    for kind, count in summary["skipped_by_kind"].items():
        print(f"  skipped   {kind:<{width}} {count:>6}")
    if rejected or folders:
        print(f"  every rejected file{' and folder not read' if folders else ''}, with its reason: {REJECTS}")
    print(f"  wrote {INDEX}, {REJECTS}, {METRICS}, {DETAILS}")


def main() -> None:
    params = load_params(["data.dir", "data.classes", "ingest"])
    root, classes = Path(params["data"]["dir"]), params["data"]["classes"]
    start = time.perf_counter()
    result = ingest(root, classes, Policy(**params["ingest"]))
    seconds = time.perf_counter() - start
    write_csv(result.index, INDEX)
    write_csv(result.rejects, REJECTS)
    summary = summarize(result, classes)
    write_json(summary, DETAILS)
    write_json(headline.data(summary), METRICS)
    report(summary, seconds, root)


if __name__ == "__main__":
    run_main(main)
