"""Complexity section: every paper table beside our params and MACs, with Δ% and ✓/✗; every model's counts
(fvcore MACs and activations, the FlopCounterMode cross-check); a params-vs-GMACs plot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.fileio import canonical_json
from harness.paper import TABLE5_GAP, PaperRow, all_rows, row_id
from harness.report import plots
from harness.report.markdown import BAD, OK, delta_pct, frame_table, num, pct
from harness.results import RunData
from harness.results.records import ComplexityRecord

log = logging.getLogger(__name__)

PARAMS_TOL_PCT = 1.0
GMACS_TOL_PCT = 1.5

@dataclass(frozen=True)
class Match:
    row: PaperRow
    record: ComplexityRecord | None


def _row_key(row: PaperRow) -> tuple[str, str, tuple[int, ...]] | None:
    from harness.errors import HarnessError
    from harness.models.registry import canonical_options

    if row.model is None:
        return None
    try:
        canonical = canonical_options(row.model, row.options)
    except HarnessError:
        return None
    return row.model, _freeze(canonical), tuple(row.input_size)


def _record_key(record: ComplexityRecord) -> tuple[str, str, tuple[int, ...]]:
    return record.model, _freeze(record.canonical_options), tuple(record.input_size)


def _freeze(value: Any) -> str:
    return canonical_json(value)


def match_rows(records: list[ComplexityRecord]) -> list[Match]:
    """Every paper row with the record that reproduces it (None: not in this run).

    Records name their rows (``paper_rows``, decided when the run measured); records of older runs are matched
    through today's registry (which imports the model code).
    """
    if records and all(r.paper_rows is not None for r in records):
        by_id = {row: r for r in records for row in r.paper_rows or ()}
        return [Match(row, by_id.get(row_id(row))) for row in all_rows()]
    by_key = {_record_key(r): r for r in records}
    return [Match(row, by_key.get(key) if (key := _row_key(row)) else None) for row in all_rows()]


def _verdict(params_delta: float | None, macs_delta: float | None) -> str:
    checks = []
    if params_delta is not None:
        checks.append(abs(params_delta) <= PARAMS_TOL_PCT)
    if macs_delta is not None:
        checks.append(abs(macs_delta) <= GMACS_TOL_PCT)
    if not checks:
        return "–"
    return OK if all(checks) else BAD


def _table_row(m: Match) -> list[Any]:
    rec = m.record
    params = rec.params / 1e6 if rec else None
    gmacs = rec.macs / 1e9 if rec else None
    dp, dm = delta_pct(params, m.row.params_m), delta_pct(gmacs, m.row.gmacs)
    ours = rec.label if rec else "not built¹"
    return [m.row.row, ours, num(m.row.params_m), num(params, 3), pct(dp), _gmacs(m.row.gmacs, 2), _gmacs(gmacs, 3),
            pct(dm), _verdict(dp, dm) if rec else "–"]


def _gmacs(value: float | None, digits: int) -> str:
    """GMACs as printed, with two more decimals below 1 (Table 4's 40.39 MFLOPs is 0.0404, not 0.04)."""
    return num(value, digits + 2 if value is not None and value < 1 else digits)


def _table_block(name: str, group: list[Match]) -> list[str]:
    shown = [m for m in group if m.record or not m.row.model]
    rows = pd.DataFrame([_table_row(m) for m in shown], columns=HEADERS)
    lines = [f"### {name}", "", *frame_table(rows, align="llrrrrrrc"), ""]
    unbuilt = sorted({m.row.note for m in shown if not m.record and m.row.note})
    lines += [f"¹ {note}." for note in unbuilt]
    lines += [f"- {m.row.row}: {m.row.note}" for m in group if m.record and m.row.note]
    missing = [m.row.row for m in group if m.row.model and not m.record]
    if missing:
        lines.append(f"- Buildable rows not in this run (see `suites/paper_complexity.yaml`): {'; '.join(missing)}.")
    return lines + [""]


def summary(matches: list[Match]) -> tuple[int, int]:
    """(rows within tolerance, rows compared) over every matched paper row."""
    verdicts = []
    for m in matches:
        if m.record is None:
            continue
        dp = delta_pct(m.record.params / 1e6, m.row.params_m)
        dm = delta_pct(m.record.macs / 1e9, m.row.gmacs)
        verdicts.append(_verdict(dp, dm))
    return sum(v == OK for v in verdicts), sum(v in (OK, BAD) for v in verdicts)


HEADERS = ["paper row", "ours", "#P paper (M)", "#P ours (M)", "Δ#P", "GMACs paper", "GMACs ours", "ΔGMACs", ""]


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    records = run.of_type(ComplexityRecord)
    if not records:
        return []
    matches = match_rows(records)
    lines = ["## Complexity: paper vs. measured", "",
             f"Tolerances: #P ±{PARAMS_TOL_PCT:g}%, GMACs ±{GMACS_TOL_PCT:g}%. The papers' \"GFLOPs\" are "
             "multiply-adds (SKNet follows ShuffleNet), so they are compared with our MACs "
             "(fvcore, batch 1, eval mode, one multiply-add = 1).", ""]
    within, compared = summary(matches)
    lines += [f"**{within} of {compared} paper rows within tolerance.**", ""]
    shown_tables = []
    for name in dict.fromkeys(m.row.table for m in matches):
        group = [m for m in matches if m.row.table == name]
        if any(m.record for m in group):
            shown_tables.append(name)
            lines += _table_block(name, group)
    if "P Table 5" in shown_tables:
        lines += [TABLE5_GAP, ""]
    lines += _others(records, matches)
    lines += _counts(run)
    lines += _uncounted(records)
    plot = _plot(records, matches, assets / f"{stem}_complexity.png")
    if plot is not None:
        lines += [f"![params vs GMACs]({plot.name})", ""]
    return lines


def _others(records: list[ComplexityRecord], matches: list[Match]) -> list[str]:
    matched = {id(m.record) for m in matches if m.record}
    rest = [r for r in records if id(r) not in matched]
    if not rest:
        return []
    rows = pd.DataFrame([[r.label, r.model, num(r.params / 1e6, 3), num(r.macs / 1e9, 3),
                          "×".join(map(str, r.input_size))] for r in rest],
                        columns=["model", "registry name", "#P (M)", "GMACs", "input"])
    return ["### Models without a paper row", "", *frame_table(rows, align="llrrr"), ""]


def _scaled(value: Any, scale: float, digits: int) -> str | None:
    return None if value is None or value != value else num(value / scale, digits)


def _counts(run: RunData) -> list[str]:
    """Every model's counts: params, fvcore MACs and activations, and the FlopCounterMode cross-check."""
    f = run.frame("complexity")
    half = pd.to_numeric(f["flops_torch"], errors="coerce") / 2
    rows = pd.DataFrame({
        "model": f["label"], "#P (M)": [_scaled(v, 1e6, 3) for v in f["params"]],
        "fvcore GMACs": [_scaled(v, 1e9, 4) for v in f["macs"]],
        "FlopCounterMode GFLOPs ÷ 2": [_scaled(v, 1e9, 4) for v in half],
        "difference": [pct(delta_pct(h, m)) if h == h else None for h, m in zip(half, f["macs"], strict=True)],
        "activations (M)": [_scaled(v, 1e6, 2) for v in f["activations"]],
    })
    return ["### Counts of every model", "",
            "fvcore MACs beside `torch.utils.flop_counter.FlopCounterMode` FLOPs ÷ 2 (it counts convolutions and "
            "matmuls only — no batch-norm, no pooling — so it sits slightly below fvcore), and fvcore's activations: "
            "the elements written by conv and linear layers in one forward pass at batch 1 (not BN, ReLU or "
            "elementwise outputs) — the feature maps a network reads and writes, which cost time that MACs do not "
            "show.", "", *frame_table(rows), ""]


def _uncounted(records: list[ComplexityRecord]) -> list[str]:
    ops: dict[str, set[str]] = {}
    for r in records:
        for op in (r.macs_counter.uncounted_ops if r.macs_counter else None) or ():
            ops.setdefault(op, set()).add(r.label)
    counter = records[0].macs_counter
    if not ops or counter is None:
        return []
    listed = ", ".join(f"`{op}`" for op in sorted(ops))
    return [f"Not counted by {counter.name} {counter.version} (elementwise and pooling ops whose cost is "
            f"small in MACs but not in time — SE/SK's mean, mul, sigmoid, softmax, sum): {listed}.", ""]


def _plot(records: list[ComplexityRecord], matches: list[Match], path: Path) -> Path | None:
    sizes = list(dict.fromkeys(tuple(r.input_size) for r in records))
    fig, axes = plots.figure(len(sizes), width=6.5, height=5.0)
    for ax, size in zip(axes, sizes, strict=True):
        group = [r for r in records if tuple(r.input_size) == size]
        _scatter(ax, group, [m for m in matches if m.record in group])
        ax.set_title(f"input {'×'.join(map(str, size))}")
    fig.suptitle("Parameters vs. multiply-adds (filled: measured, hollow: paper)")
    fig.tight_layout()
    for ax, size in zip(axes, sizes, strict=True):
        group = [r for r in records if tuple(r.input_size) == size]
        _label(ax, group, [m for m in matches if m.record in group])
    return plots.save(fig, path, layout=False)


def _points(records: list[ComplexityRecord]) -> dict[tuple[float, float], list[str]]:
    """(GMACs, params M) → labels; models with the same counts share a point and a label."""
    points: dict[tuple[float, float], list[str]] = {}
    for r in records:
        points.setdefault((r.macs / 1e9, r.params / 1e6), []).append(r.label)
    return points


def _scatter(ax: Any, records: list[ComplexityRecord], matches: list[Match]) -> None:
    for x, y in _points(records):
        ax.scatter(x, y, color=plots.BAR, zorder=3)
    for m in matches:
        if m.row.params_m and m.row.gmacs:
            ax.scatter(m.row.gmacs, m.row.params_m, facecolors="none", edgecolors=plots.REFERENCE, s=60, zorder=2)
    ax.margins(x=0.25, y=0.12)
    ax.set_xlabel("GMACs (paper: \"GFLOPs\")")
    ax.set_ylabel("parameters (M)")
    ax.grid(alpha=0.3)


def _label(ax: Any, records: list[ComplexityRecord], matches: list[Match]) -> None:
    paper = [(m.row.gmacs, m.row.params_m) for m in matches if m.row.params_m and m.row.gmacs]
    plots.place_labels(ax, [(x, y, " = ".join(labels)) for (x, y), labels in _points(records).items()], avoid=paper)
