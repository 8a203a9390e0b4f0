"""Small markdown helpers shared by the report sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OK, BAD = "✓", "✗"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None) -> list[str]:
    """A GitHub markdown table; ``align`` is one char per column: l, r or c."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return str(value).replace("|", "\\|").replace("\n", " ")


def pct(value: float | None, *, signed: bool = True, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def delta_pct(measured: float | None, reference: float | None) -> float | None:
    if measured is None or reference in (None, 0):
        return None
    return (measured / reference - 1.0) * 100.0
