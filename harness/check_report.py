"""What the regression gate decided, and how it is shown: verdicts, per-benchmark rows, the report and
its markdown / text / JSON renderings (the decision logic lives in ``harness.check``)."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from harness.baseline import BenchKey

# the gate's statistic: each round's 5th percentile (the undisturbed iterations), median over rounds
GATE_QUANTILE = 0.05


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



# --- report and rendering -------------------------------------------------------------------------------

_COLUMNS = (
    "label",
    "batch",
    "mode",
    "baseline ms",
    "candidate ms",
    "raw ratio",
    "norm. ratio",
    "95% CI",
    "p",
    "verdict",
)


def _mode(key: BenchKey) -> str:
    parts = [str(key.device or "?"), str(key.dtype or "?")]
    if key.channels_last:
        parts.append("channels_last")
    if key.compile not in (None, False, "", "none"):
        parts.append("compile" if key.compile is True else f"compile={key.compile}")
    if key.kind != "latency":
        parts.append(key.kind)
    return " ".join(parts)


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, fmt)


def _cells(row: CheckRow, default_threshold: float) -> list[str]:
    ci = "—" if row.ci_low is None else f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
    verdict = row.verdict.value
    if row.threshold_pct != default_threshold:
        verdict += f" (±{row.threshold_pct:.1f}%)"
    if row.note:
        verdict += f"; {row.note}"
    return [
        row.key.label,
        "—" if row.key.batch_size is None else str(row.key.batch_size),
        _mode(row.key),
        _num(row.baseline_median_ms, ".3f"),
        _num(row.candidate_median_ms, ".3f"),
        _num(row.raw_ratio, ".3f"),
        _num(row.normalised_ratio, ".3f"),
        ci,
        _num(row.p_value, ".2g"),
        verdict,
    ]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`compare`; ``exit_code`` is 1 when any benchmark regressed."""

    rows: tuple[CheckRow, ...]
    threshold_pct: float
    alpha: float
    env_mismatches: tuple[str, ...] = ()
    baseline_source: str = ""
    candidate_source: str = ""

    @property
    def exit_code(self) -> int:
        return int(any(r.verdict is Verdict.REGRESSION for r in self.rows))

    def counts(self) -> dict[str, int]:
        """Rows per verdict, in the order of :class:`Verdict` (regressions first)."""
        return {v.value: n for v in Verdict if (n := sum(r.verdict is v for r in self.rows))}

    def _header(self) -> list[str]:
        lines = [
            f"Latency check: {self.candidate_source or 'candidate'} against {self.baseline_source or 'baseline'}",
            f"Threshold ±{self.threshold_pct:g}% (calibrated per-benchmark thresholds override), alpha {self.alpha:g}; "
            "regression = Mann-Whitney U p < alpha (on the fastest quarter of each round) AND ratio beyond "
            "threshold AND 95% bootstrap CI excludes 1. "
            f"Ratios are candidate/baseline of the median over rounds of each round's {GATE_QUANTILE:.0%}-quantile "
            "of per-iteration latency (the undisturbed iterations; ms columns are plain medians); norm. = each "
            "round divided by the same quantile of the reference workload of that round "
            "(CI and p use normalised samples when both sides have them).",
        ]
        if self.env_mismatches:
            lines.append(f"ENVIRONMENT MISMATCH (compared anyway, --force): {'; '.join(self.env_mismatches)}")
        summary = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        lines.append(f"Result: {'FAIL' if self.exit_code else 'PASS'} ({summary or 'no benchmarks'})")
        return lines

    def to_markdown(self) -> str:
        head = self._header()
        lines = [f"### {head[0]}", "", head[1], ""]
        lines += [f"> **{line}**" for line in head[2:-1]] + ([""] if len(head) > 3 else [])
        lines.append("| " + " | ".join(_COLUMNS) + " |")
        lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 6 + ["---"]) + "|")
        for row in self.rows:
            cells = [c.replace("|", "\\|") for c in _cells(row, self.threshold_pct)]
            if row.verdict is Verdict.REGRESSION:
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"**{head[-1]}**", ""]
        return "\n".join(lines)

    def to_text(self) -> str:
        table = [list(_COLUMNS)] + [_cells(row, self.threshold_pct) for row in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS) - 1)]
        body = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in table]
        return "\n".join(self._header()[:-1] + [""] + body + ["", self._header()[-1]]) + "\n"

    def to_json(self) -> str:
        rows = []
        for row in self.rows:
            fields = {k: _json_value(v) for k, v in row.__dict__.items() if k not in ("key", "verdict")}
            rows.append({"key": row.key.to_dict(), "mode": _mode(row.key), "verdict": row.verdict.value, **fields})
        doc = {
            "threshold_pct": self.threshold_pct,
            "alpha": self.alpha,
            "exit_code": self.exit_code,
            "environment_mismatches": list(self.env_mismatches),
            "baseline": self.baseline_source,
            "candidate": self.candidate_source,
            "counts": self.counts(),
            "rows": rows,
        }
        return json.dumps(doc, indent=2)
