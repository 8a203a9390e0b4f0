"""Every lower bound in pyproject.toml is the version `tox -e lowest` installs (.ci/lowest-constraints.txt)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    floors = {}
    for spec in specs:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*([^,;\s]+)", spec)
        if match:
            floors[_norm(match.group(1))] = match.group(2)
    return floors


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "lowest-constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def test_every_floor_is_pinned_for_the_lowest_run_and_nothing_else():
    floors, pins = _floors(), _pins()
    testable = {k: Version(v) for k, v in floors.items() if k != "ruff"}
    assert {k: Version(v) for k, v in pins.items()} == testable
