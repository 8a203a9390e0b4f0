"""Small markdown helpers shared by the report sections."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

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


_COLALIGN = {"l": "left", "r": "right", "c": "center"}


_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _compact(line: str) -> str:
    cells = [c.strip() for c in _UNESCAPED_PIPE.split(line)[1:-1]]
    if all(c and set(c) <= set(":-") for c in cells):
        cells = [(":" if c.startswith(":") else "-") + "-" + (":" if c.endswith(":") else "-") for c in cells]
        return "|" + "|".join(cells) + "|"
    return "| " + " | ".join(cells) + " |"


def frame_table(frame: pd.DataFrame, *, align: str | None = None) -> list[str]:
    """A GitHub markdown table from a DataFrame of display cells (tabulate's pipe format); None/NaN show as "–".

    tabulate pads every cell to its column's width; the padding is removed so that these tables look like the
    report's others and a changed number changes one line of a diff, not the whole table.
    """
    import pandas as pd

    align = align or "l" + "r" * (len(frame.columns) - 1)
    # cells as Python strings, built row by row: pandas' element-wise ``where`` / ``map`` cost a report of thousands
    # of tables seconds
    cells = [["–" if pd.api.types.is_scalar(value) and pd.isna(value) else _cell(value) for value in row]
             for row in frame.itertuples(index=False, name=None)]
    text = tabulate(cells, headers=[str(c) for c in frame.columns], tablefmt="pipe", showindex=False,
                    colalign=[_COLALIGN[a] for a in align], disable_numparse=True)
    return [_compact(line) for line in text.splitlines()]


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
