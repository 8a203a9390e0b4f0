"""Small markdown helpers shared by the report sections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

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


def frame_table(frame: pd.DataFrame, *, align: str | None = None) -> list[str]:
    """A GitHub markdown table (``table``) from a DataFrame of display cells; None/NaN show as "–", cells unpadded
    and stripped, so that a changed number changes one line of a diff, not the whole table."""
    import pandas as pd

    # cells as Python strings, built row by row: pandas' element-wise ``where`` / ``map`` cost a report of thousands
    # of tables seconds
    cells = [[None if pd.api.types.is_scalar(value) and pd.isna(value) else str(value).strip() for value in row]
             for row in frame.itertuples(index=False, name=None)]
    return table([str(c).strip() for c in frame.columns], cells, align=align)


def with_ci(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """``1.362 (1.317–1.410)``; the interval is left out when there is none."""
    if value is None or value != value:  # None or NaN
        return "–"
    if low is None or high is None or low != low or high != high or (low == value == high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def mb(value: float | None) -> str:
    """Bytes as MiB with one decimal."""
    return "–" if value is None or value != value else f"{value / 2**20:.1f}"
