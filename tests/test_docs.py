"""docs/reliability.md holds each promise by a named test: every test file and test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_reliability_promises_name_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    files = set(re.findall(r"`(tests/[\w/]+\.py)", text))
    names = set(re.findall(r"\b(test_\w+…?)", text)) - {Path(f).stem for f in files}  # "…": a name's beginning
    defined = {m for path in (ROOT / "tests").rglob("test_*.py")
               for m in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M)}
    defined |= {p.stem for p in (ROOT / "tests").rglob("test_*.py")}
    assert files and names
    assert sorted(f for f in files if not (ROOT / f).is_file()) == []
    assert sorted(n for n in names if not any(d == n or (n.endswith("…") and d.startswith(n[:-1]))
                                               for d in defined)) == []
