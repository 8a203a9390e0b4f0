"""The papers' published numbers as data, each row with its table, source and (where known) the registry
model and options that build it, and the documented gaps between what the papers print and what their
stated configurations give. One copy: reports, tests and docstrings take their numbers from here.

Sources: [P] Li et al., Selective Kernel Networks, CVPR 2019 (arXiv 1903.06586); [SE] Hu et al.,
Squeeze-and-Excitation Networks, CVPR 2018; [RX] Xie et al., Aggregated Residual Transformations (ResNeXt),
CVPR 2017; [SN2] Ma et al., ShuffleNet V2, ECCV 2018; [T] timm's published results tables. The rows are in
``harness.paper.tables``.
"""

from __future__ import annotations

from typing import Any

from harness.paper.rows import PaperRow

__all__ = ["TABLE5_GAP", "PaperRow", "all_rows", "row_id", "rows_built_by", "tables"]


def all_rows() -> list[PaperRow]:
    from harness.paper.tables import ROWS

    return list(ROWS)


def row_id(row: PaperRow) -> str:
    """A row's identity in records: its table and its label as printed."""
    return f"{row.table} · {row.row}"


def rows_built_by(model: str, canonical_options: dict[str, Any] | None,
                  input_size: tuple[int, ...] | list[int]) -> list[str]:
    """The ids of the buildable rows that ``model`` with these (canonical) options at this input size reproduces.

    Computed when a run measures (it needs the model registry), and written into the record, so that a report
    matches rows without importing the registry or torch and with the options the run used.
    """
    from harness.errors import HarnessError
    from harness.fileio import canonical_json
    from harness.models.registry import canonical_options as canonical_of

    out = []
    for row in all_rows():
        if row.model != model or tuple(row.input_size) != tuple(input_size):
            continue
        try:
            if canonical_json(canonical_of(row.model, row.options)) == canonical_json(canonical_options):
                out.append(row_id(row))
        except HarnessError:
            continue
    return out


def tables() -> list[str]:
    """Table names in the order they first appear."""
    seen: dict[str, None] = {}
    for row in all_rows():
        seen.setdefault(row.table, None)
    return list(seen)


# [P] Table 5: what the caption's backbone gives, against the printed counts (asserted by the model tests).
TABLE5_GAP = (
    "**SENet-29 / SKNet-29 (Table 5).** The caption says both are built on ResNeXt-29 16×32d. Inserting SE "
    "(r = 16) in that backbone gives ≈25.7M parameters, not the published 35.0M (which is what SE on 8×64d "
    "gives); a two-branch SK unit with G = 32 gives ≈28.3M against the published 27.7M (with the backbone's 16 "
    "groups it would be ≈37.5M). Both published counts cannot come from the backbone the caption names, and "
    "the supplementary material with the real configurations was not found. We build what the caption "
    "describes; the ✗ on these rows records that gap, not a bug."
)
