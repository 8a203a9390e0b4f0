"""What the regression gate decided: a verdict per benchmark (``CheckRow``) and the whole ``CheckReport``.

``harness.gate.compare`` builds them; ``harness.gate.render`` shows them as markdown, text or JSON.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from harness.results.summaries import BenchmarkKey


class Verdict(str, enum.Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    CHANGED = "changed (not significant)"
    UNCHANGED = "unchanged"
    MISSING = "missing"
    INSUFFICIENT = "insufficient samples"
    NO_RAW = "no raw samples"


# Verdicts that judge nothing: a report holding one of them cannot pass (exit 2, "could not judge").
UNJUDGED = frozenset({Verdict.MISSING, Verdict.INSUFFICIENT})


@dataclass(frozen=True)
class CheckRow:
    """Outcome for one benchmark key. Ratios are candidate / baseline (> 1: candidate slower).

    With raw samples the ratios compare the gate's statistic (median over rounds of each round's
    ``GATE_QUANTILE``); ``*_median_ms`` are plain medians, for reading.
    """

    key: BenchmarkKey
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
    """Result of :func:`harness.gate.compare.compare`; ``exit_code`` is 1 when any benchmark regressed,
    2 when the gate could not judge (``unjudged``), else 0."""

    rows: tuple[CheckRow, ...]
    threshold_pct: float
    alpha: float
    env_mismatches: tuple[str, ...] = ()
    baseline_source: str = ""
    candidate_source: str = ""
    notes: tuple[str, ...] = ()  # lines shown under the header (how the two sides were measured, noise check)
    failed: tuple[str, ...] = ()  # timed tasks of either side that ended in an error

    @property
    def unjudged(self) -> list[str]:
        """Why the gate could not judge (empty when it could): a side with nothing measured, a benchmark on one
        side only or with too few samples, a timed task that failed. What was not measured must not pass."""
        reasons = []
        if not self.rows:
            reasons.append("no benchmark was measured on either side")
        reasons += [f"{r.key.label} ({r.key.mode}, batch {r.key.batch_size}): {r.verdict.value}"
                    + (f", {r.note}" if r.note else "") for r in self.rows if r.verdict in UNJUDGED]
        return reasons + list(self.failed)

    @property
    def exit_code(self) -> int:
        """1: a regression (and nothing else); 2: could not judge (see ``unjudged``); 0: pass."""
        if any(r.verdict is Verdict.REGRESSION for r in self.rows):
            return 1
        return 2 if self.unjudged else 0

    def counts(self) -> dict[str, int]:
        """Rows per verdict, in the order of :class:`Verdict` (regressions first)."""
        return {v.value: n for v in Verdict if (n := sum(r.verdict is v for r in self.rows))}
