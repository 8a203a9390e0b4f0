"""The papers' published numbers as data, each row with its table, source and (where known) the
registry model and options that build it. See ``harness.reference.paper`` for the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PaperRow:
    table: str  # e.g. "P Table 2"
    row: str  # row label as printed in the paper
    source: str  # key into PAPER.md's source list, e.g. "[P] Table 2"
    params_m: float | None = None  # millions, as printed
    gmacs: float | None = None  # the paper's "GFLOPs" (multiply-adds), as printed
    top1_err: float | None = None  # %, 224 crop (ImageNet) or CIFAR-10
    top1_err_alt: dict[str, float] = field(default_factory=dict)  # e.g. {"320 crop": 19.32, "CIFAR-100": 17.33}
    model: str | None = None  # registry name that builds this row, None when the paper gives no config
    options: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] = (3, 224, 224)
    note: str = ""

    @property
    def buildable(self) -> bool:
        return self.model is not None


def all_rows() -> list[PaperRow]:
    from harness.reference.paper import ROWS

    return list(ROWS)


def tables() -> list[str]:
    """Table names in the order they first appear."""
    seen: dict[str, None] = {}
    for row in all_rows():
        seen.setdefault(row.table, None)
    return list(seen)
