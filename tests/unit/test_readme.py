"""The README's Quick start shows what `dvc metrics show` prints for the committed metrics: every cell it quotes
must be the committed value, so a retrain that moves a number cannot leave the first thing a newcomer reads stale."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quoted_table() -> tuple[list[str], list[list[str]]]:
    """The header and rows of the README's `dvc metrics show` block (the text block that starts with ``Path``)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```text\n(Path +[^\n]*\n(?:metrics/[^\n]*\n)+)```", text)
    assert block is not None, "the README has no `dvc metrics show` table"
    header, *rows = (line.split() for line in block.group(1).splitlines())
    return header, rows


def committed(path: str) -> dict | None:
    """``path``'s content at HEAD, or None outside a git clone (a copy of the files)."""
    proc = subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_the_quick_starts_metrics_table_is_the_committed_metrics():
    """The committed file's values, or the workspace's: after the Quick start's own `dvc repro` the workspace holds
    this machine's training seconds (the README says so), and before a commit the README and the metrics it quotes
    change together. A README left stale by a commit matches neither."""
    header, rows = quoted_table()
    assert header[0] == "Path" and len(rows) >= 3
    shown = set()
    for path, *cells in rows:
        assert len(cells) == len(header) - 1, f"a row of {len(cells)} cells under {len(header) - 1} columns: {path}"
        quoted = {key: cell for key, cell in zip(header[1:], cells, strict=True) if cell != "-"}
        versions = [{key: str(value) for key, value in metrics.items()}
                    for metrics in (committed(path), json.loads((ROOT / path).read_text())) if metrics is not None]
        assert quoted in versions, (path, quoted, versions)
        shown.add(path)
    # every metrics file dvc.yaml declares under `metrics:` has its row
    declared = set(re.findall(r"metrics:\n((?:\s+- metrics/[^\n]+\n)+)", (ROOT / "dvc.yaml").read_text()))
    files = {m for group in declared for m in re.findall(r"(metrics/[\w./]+\.json)", group)}
    assert files and files == shown


def allowed(rule) -> str:
    """What the README's Params table says a rule of ``digitpipe.params.RULES`` allows."""
    from digitpipe.params import Choice, Folder, Names, Num

    if isinstance(rule, Num):
        def number(x):
            return f"{int(x):,}" if rule.integer or float(x).is_integer() else f"{x:g}"
        if rule.open_lo or rule.open_hi:
            span = (f"{'above' if rule.open_lo else 'at least'} {number(rule.lo)}, "
                    f"{'below' if rule.open_hi else 'at most'} {number(rule.hi)}")
        else:
            span = f"{number(rule.lo)} to {number(rule.hi)}"
        return ("a whole number " if rule.integer else "") + span
    if isinstance(rule, Choice):
        return " \\| ".join(f"`{option}`" for option in rule.options)
    if isinstance(rule, Folder):
        return "a folder, from the project root"
    assert isinstance(rule, Names), rule
    return "2 or more folder names"


def test_the_params_table_lists_every_key_with_its_default_and_what_the_checks_allow():
    """The Params section's table is the reference for every key: one row each, in params.yaml's order, with the
    committed default and exactly the range the stages enforce (no key left out, no stale bound)."""
    import yaml

    from digitpipe.params import RULES

    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Params\n"):]
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in section.splitlines() if line.startswith("| `")]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    expected = []
    for section_name, value in params.items():
        keys = [(section_name, None)] if not isinstance(value, dict) else [(section_name, k) for k in value]
        for top, key in keys:
            rule, default = (RULES[top], params[top]) if key is None else (RULES[top][key], params[top][key])
            name = top if key is None else f"{top}.{key}"
            shown_default = ", ".join(default) if isinstance(default, list) else str(default)
            expected.append([f"`{name}`", f"`{shown_default}`", allowed(rule)])
    assert len(expected) == sum(len(v) if isinstance(v, dict) else 1 for v in RULES.values())
    assert [row[:3] for row in rows] == expected
    assert all(len(row) == 4 and row[3] for row in rows), "every key says what it sets"
