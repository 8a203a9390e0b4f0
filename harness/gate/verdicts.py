"""What the regression gate decided: a verdict per benchmark (``CheckRow``) and the whole ``CheckReport``.

``harness.gate.compare`` builds them; ``harness.gate.render`` shows them as markdown, text or JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from harness.gate.samples import BenchKey


class Verdict(str, enum.Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    CHANGED = "changed (not significant)"
    UNCHANGED = "unchanged"
    MISSING = "missing"
    INSUFFICIENT = "insufficient samples"
    NO_RAW = "no raw samples"


@dataclass(frozen=True)
class CheckRow:
    """Outcome for one benchmark key. Ratios are candidate / baseline (> 1: candidate slower).

    With raw samples the ratios compare the gate's statistic (median over rounds of each round's
    ``GATE_QUANTILE``); ``*_median_ms`` are plain medians, for reading.
    """

    key: BenchKey
    verdict: Verdict
    threshold_pct: float
    baseline_median_ms: float | None = None
    candidate_median_ms: float | None = None
    raw_ratio: float | None = None
    normalised_ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_candidate: int = 0
    note: str = ""


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`harness.gate.compare.compare`; ``exit_code`` is 1 when any benchmark regressed."""

    rows: tuple[CheckRow, ...]
    threshold_pct: float
    alpha: float
    env_mismatches: tuple[str, ...] = ()
    baseline_source: str = ""
    candidate_source: str = ""
    notes: tuple[str, ...] = ()  # lines shown under the header (how the two sides were measured, noise check)

    @property
    def exit_code(self) -> int:
        return int(any(r.verdict is Verdict.REGRESSION for r in self.rows))

    def counts(self) -> dict[str, int]:
        """Rows per verdict, in the order of :class:`Verdict` (regressions first)."""
        return {v.value: n for v in Verdict if (n := sum(r.verdict is v for r in self.rows))}
