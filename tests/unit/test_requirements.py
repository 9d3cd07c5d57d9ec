"""constraints.txt pins every package the requirements install, at the versions installed here, so a clean
machine next year installs what the committed results were made with."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.helpers import ROOT

INSTALLER = {"pip", "setuptools"}  # the venv's own tools: the lock leaves them to it


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or constraints file, by canonical name."""
    found = {}
    for line in path.read_text().splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        spec = str(req.specifier)
        assert spec.startswith("==") and "," not in spec, f"{path.name}: {line!r} is not pinned with =="
        found[canonical(req.name)] = spec[2:]
    return found


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def closure(top: list[str]) -> set[str]:
    """Every distribution the named requirements need, following the extras each one asks for and the
    markers of this interpreter, as pip resolves them."""
    seen: set[tuple[str, frozenset]] = set()
    names: set[str] = set()
    todo = [(canonical(n), frozenset()) for n in top]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for spec in metadata.requires(name) or []:
            req = Requirement(spec)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((canonical(req.name), frozenset(req.extras)))
    return names


def test_requirements_read_the_constraints():
    assert "-c constraints.txt" in [re.sub(r"\s+#.*$", "", line) for line in lines(ROOT / "requirements.txt")]
    assert "-r requirements.txt" in lines(ROOT / "requirements-dev.txt")


def test_each_direct_pin_is_the_constraints_pin():
    lock = pins(ROOT / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for dist, version in pins(ROOT / name).items():
            assert lock.get(dist) == version, f"{name} pins {dist}=={version}, constraints.txt {lock.get(dist)}"


def test_the_constraints_name_each_package_once_and_no_installer_tool():
    names = [canonical(line.split("==")[0]) for line in lines(ROOT / "constraints.txt")]
    assert len(set(names)) == len(names)
    assert not INSTALLER & set(names) and "digitpipe" not in names


def test_every_package_installed_for_the_project_is_pinned_at_its_installed_version():
    """Walks the installed metadata from the direct requirements: a dependency that a new pin brings in and
    the lock lacks, or an environment installed without the lock, fails here with the names."""
    lock = pins(ROOT / "constraints.txt")
    top = [*pins(ROOT / "requirements.txt"), *pins(ROOT / "requirements-dev.txt")]
    try:
        needed = closure(top) - INSTALLER
    except metadata.PackageNotFoundError as e:
        pytest.fail(f"{e.name} is required but not installed: python -m pip install -r requirements-dev.txt")
    unpinned = sorted(needed - set(lock))
    assert not unpinned, f"installed for the project but not in constraints.txt: {unpinned}"
    drifted = {n: (metadata.version(n), lock[n]) for n in sorted(needed) if metadata.version(n) != lock[n]}
    assert not drifted, f"installed (left) differs from constraints.txt (right): {drifted}"
    assert len(needed) > 100  # the walk found the dependencies' dependencies, not just the direct pins
