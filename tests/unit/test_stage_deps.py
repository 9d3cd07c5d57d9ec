"""dvc.yaml declares exactly what each stage uses: the digitpipe modules its script imports (directly or
through other modules) and the params keys it loads. Derived from the code with `ast`, so a new import or
a new params key that dvc.yaml does not list (or a listed one the code no longer uses) fails here, before
it can leave a stale output that `dvc status` calls up to date."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT

SPEC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(SPEC["stages"])


def imported_modules(path: Path) -> set[str]:
    """The ``digitpipe`` modules a source file imports anywhere in it (inside functions too), as file paths.
    The package's ``__init__`` is left out: it holds only the docstring and version, no code a stage runs."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "digitpipe" and len(parts) >= 2 and (ROOT / "digitpipe" / f"{parts[1]}.py").is_file():
                found.add(f"digitpipe/{parts[1]}.py")
    return found


def closure(script: str) -> set[str]:
    """Every digitpipe module a stage script runs: its imports, their imports, and so on."""
    todo, seen = list(imported_modules(ROOT / script)), set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imported_modules(ROOT / module)
    return seen


def script_of(stage: str) -> str:
    cmd = SPEC["stages"][stage]["cmd"]
    assert cmd == f"python -m stages.{stage}"  # one script per stage, named after it
    return f"stages/{stage}.py"


def loaded_params(path: Path) -> list[str]:
    """The keys a file passes to ``load_params([...])`` (which must be a literal list)."""
    keys = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_params":
            assert isinstance(node.args[0], ast.List), f"{path}: load_params needs a literal list"
            keys += [ast.literal_eval(e) for e in node.args[0].elts]
    return keys


def declared(stage: str, kind: str) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in SPEC["stages"][stage].get(kind, [])]


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_the_import_closure_of_the_stage_script(stage):
    script = script_of(stage)
    code_deps = {d for d in declared(stage, "deps") if d.startswith(("digitpipe/", "stages/"))}
    assert code_deps == {script} | closure(script)


@pytest.mark.parametrize("stage", [s for s in STAGES if s != "params"])
def test_params_are_exactly_the_keys_the_stage_loads(stage):
    script = script_of(stage)
    assert sorted(declared(stage, "params")) == sorted(loaded_params(ROOT / script))


def test_the_params_stage_declares_the_whole_file_and_only_checks_it():
    """Any change to params.yaml runs it (a misspelled key that no other stage declares included), and it
    reads no value, so it can hold up no stage's outputs."""
    assert SPEC["stages"]["params"]["params"] == [{"params.yaml": None}]
    # to check the data folder, and that its classes could be dealt into the splits
    assert loaded_params(ROOT / script_of("params")) == ["data.dir", "data.classes", "split"]
    assert "outs" not in SPEC["stages"]["params"] and "metrics" not in SPEC["stages"]["params"]


CHECKER = "digitpipe/check.py"  # `digitpipe check`: a command that checks the whole file, never part of a stage


def test_only_stage_scripts_load_params():
    """A library module that read params.yaml itself would hide a key from the check above."""
    modules = [p for p in sorted((ROOT / "digitpipe").glob("*.py")) if p.relative_to(ROOT).as_posix() != CHECKER]
    assert [p.relative_to(ROOT).as_posix() for p in modules if loaded_params(p)] == []
    assert all(CHECKER not in closure(script_of(stage)) for stage in STAGES)


def test_only_ingest_and_prepare_read_the_data_folder():
    readers = sorted(s for s in STAGES if "${data.dir}" in declared(s, "deps") or "data.dir" in declared(s, "params"))
    assert readers == ["ingest", "prepare"]
    assert "${data.dir}" not in declared("prepare", "deps")  # it reads only what the manifests name, by hash


def test_the_closure_finds_nested_and_package_imports(tmp_path):
    """The checker itself: imports inside functions and `from digitpipe import module` count."""
    script = tmp_path / "s.py"
    script.write_text("from digitpipe import plots\n\ndef main():\n    from digitpipe.files import read_csv\n")
    assert imported_modules(script) == {"digitpipe/plots.py", "digitpipe/files.py"}
