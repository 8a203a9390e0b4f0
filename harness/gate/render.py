"""How the regression gate's report is shown: markdown (CI job summaries), aligned text (terminals), JSON.

Labels, sources and notes come from untrusted files: every cell and header line is ``printable`` (a newline in a
label would otherwise forge lines such as ``**Result: PASS**`` above the real verdict)."""

from __future__ import annotations

import json
import math
from typing import Any

from harness.errors import printable
from harness.gate.verdict import GATE_QUANTILE, CheckReport, CheckRow, Verdict

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


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None or math.isnan(value) else format(value, fmt)


def _cells(row: CheckRow) -> list[str]:
    ci = "—" if row.ci_low is None else f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
    verdict = row.verdict.value
    if row.note:
        verdict += f"; {row.note}"
    return [printable(cell) for cell in [
        row.key.label,
        "—" if row.key.batch_size is None else str(row.key.batch_size),
        row.key.mode,
        # the numbers judged (the statistic); a row without raw samples has only medians
        _num(row.baseline_stat_ms if row.baseline_stat_ms is not None else row.baseline_median_ms, ".3f"),
        _num(row.candidate_stat_ms if row.candidate_stat_ms is not None else row.candidate_median_ms, ".3f"),
        _num(row.raw_ratio, ".3f"),
        _num(row.normalised_ratio, ".3f"),
        ci,
        _num(row.p_value, ".2g"),
        verdict,
    ]]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _header(report: CheckReport) -> list[str]:
    lines = [
        f"Latency check: {report.candidate_source or 'candidate'} against {report.baseline_source or 'baseline'}",
        f"Threshold ±{report.threshold_pct:g}%, alpha {report.alpha:g}; "
        "regression = Mann-Whitney U p < alpha (on the fastest quarter of each round) AND ratio beyond "
        "threshold AND 95% bootstrap CI excludes 1. "
        f"Ratios are candidate/baseline of the median over rounds of each round's {GATE_QUANTILE:.0%}-quantile "
        "of per-iteration latency (the undisturbed iterations; the ms columns are that statistic, the numbers judged; "
        "plain medians are in the JSON); norm. = each "
        "round divided by the same quantile of the reference samples of that round "
        "(CI and p use normalised samples when both sides have them).",
    ]
    if report.env_mismatches:
        lines.append(f"ENVIRONMENT MISMATCH (compared anyway, --force): {'; '.join(report.env_mismatches)}")
    summary = ", ".join(f"{n} {v}" for v, n in report.counts().items())
    result = {0: "PASS", 1: "FAIL"}.get(report.exit_code, "COULD NOT JUDGE")
    if report.exit_code == 2:
        unjudged = report.unjudged
        more = f" and {len(unjudged) - 3} more" if len(unjudged) > 3 else ""
        summary = f"{summary + '; ' if summary else ''}{'; '.join(unjudged[:3])}{more}"
    lines.append(f"Result: {result} ({summary or 'no benchmarks'})")
    return [printable(line) for line in lines]


def render_markdown(report: CheckReport) -> str:
    head = _header(report)
    lines = [f"### {head[0]}", "", head[1], ""]
    lines += [*(f"- {printable(note)}" for note in report.notes), *([""] if report.notes else [])]
    lines += [f"> **{line}**" for line in head[2:-1]] + ([""] if len(head) > 3 else [])
    lines.append("| " + " | ".join(_COLUMNS) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 6 + ["---"]) + "|")
    for row in report.rows:
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        if row.verdict is Verdict.REGRESSION:
            cells[-1] = f"**{cells[-1]}**"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"**{head[-1]}**", ""]
    return "\n".join(lines)


def render_text(report: CheckReport) -> str:
    table = [list(_COLUMNS)] + [_cells(row) for row in report.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS) - 1)]
    body = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in table]
    head = _header(report)
    notes = [printable(note) for note in report.notes]
    return "\n".join(head[:2] + notes + head[2:-1] + [""] + body + ["", head[-1]]) + "\n"


def render_json(report: CheckReport) -> str:
    rows = []
    for row in report.rows:
        fields = {k: _json_value(v) for k, v in row.__dict__.items() if k not in ("key", "verdict")}
        rows.append({"key": row.key.to_dict(), "mode": row.key.mode, "verdict": row.verdict.value, **fields})
    doc = {
        "threshold_pct": report.threshold_pct,
        "alpha": report.alpha,
        "exit_code": report.exit_code,
        "environment_mismatches": list(report.env_mismatches),
        "baseline": report.baseline_source,
        "candidate": report.candidate_source,
        "counts": report.counts(),
        "could_not_judge": report.unjudged,
        "notes": list(report.notes),
        "rows": rows,
    }
    return json.dumps(doc, indent=2)


def render(report: CheckReport, fmt: str) -> str:
    """``fmt`` is ``md``, ``text`` or ``json``."""
    return {"md": render_markdown, "text": render_text, "json": render_json}[fmt](report)
