"""One published row: its table, source, numbers as printed, and the registry model and options that build it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PaperRow:
    table: str  # e.g. "P Table 2"
    row: str  # row label as printed in the paper
    source: str  # the paper and table it is printed in, e.g. "[P] Table 2"
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
