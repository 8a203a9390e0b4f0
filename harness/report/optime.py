"""Where the time goes: each model's profiled time per operator kind, and each SE / SK network's extra time over
its plain network kind by kind, beside its extra MACs and activations — why +5% MACs ([P] Table 2) can cost far
more time. Reads ``op_time`` records (``harness.tasks.optime``); imports no torch.

Summaries are made here, from the raw per-iteration times: a kind's time is its median over the profiled
iterations; a variant's extra time per kind is the median over cycles of the paired difference (iteration i of
every model ran in cycle i, next to each other). Medians of parts do not add up exactly to the median of the
whole, so the shares of the extra are of the kinds' summed extra, and the total is shown beside it.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.measure.mode import mode_label
from harness.measure.stats import bootstrap_ci
from harness.report.markdown import frame_table, num
from harness.results import RunData
from harness.results.records import ComplexityRecord, OpTimeModel, OpTimeRecord
from harness.results.summaries import complexity_of, value_ratio

# Shares of the extra are shown when the kinds' summed extra is at least this fraction of the plain network's time.
SHARE_MIN_EXTRA = 0.05
MIN_CI_CYCLES = 3
TIMERS = {"profiler_cpu_self_time": "torch.profiler, CPU self time of every op",
          "profiler_cuda_device_time": "torch.profiler, CUDA kernel time of every op (host time kept apart)"}


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _kind_ms(model: OpTimeModel, kind: str) -> float:
    return _median(model.kinds_ms.get(kind)) or 0.0


def _paired_delta(a: list[float] | None, b: list[float] | None) -> float | None:
    """Median over cycles of b − a (the two lists are per cycle, in the same order)."""
    pairs = list(zip(a or (), b or (), strict=False))
    return statistics.median(y - x for x, y in pairs) if pairs else None


def _median_axis(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.median(values, axis=axis))


def _delta_ci(a: list[float] | None, b: list[float] | None) -> tuple[float, float] | None:
    """Bootstrap 95% interval of the median paired difference, resampling cycles (taken as independent: each
    cycle runs every model once, back to back); None below 3 cycles or when every difference is the same."""
    diffs = np.array([y - x for x, y in zip(a or (), b or (), strict=False)], dtype=float)
    if diffs.size < MIN_CI_CYCLES or np.ptp(diffs) == 0.0:
        return None
    return bootstrap_ci((diffs,), _median_axis)


def _with_ci(value: float, ci: tuple[float, float] | None) -> str:
    return _signed(value) + (f" ({ci[0]:+.2f} to {ci[1]:+.2f})" if ci else "")


def _signed(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def _overhead(model: OpTimeModel) -> float | None:
    return value_ratio(_median(model.total_ms), _median(model.unprofiled_ms))


def _plain(record: OpTimeRecord, label: str) -> str:
    """The label of ``label``'s plain counterpart in the group (only asked of a model that has one)."""
    plain = record.models[label].plain
    assert plain is not None, label
    return plain


# ------------------------------------------------------------------------------------------------- tables


def _kinds_table(record: OpTimeRecord) -> list[str]:
    """Kinds × models: median ms per iteration and its share of the model's summed kinds."""
    models, kinds = record.models, record.kinds or []
    sums = {label: sum(_kind_ms(m, k) for k in kinds) for label, m in models.items()}
    rows = []
    for kind in kinds:
        row: dict[str, Any] = {"kind": kind}
        for label, m in models.items():
            ms = _kind_ms(m, kind)
            row[f"{label} ms"] = f"{ms:.2f} ({ms / sums[label] * 100:.0f}%)" if sums[label] else num(ms)
        rows.append(row)
    rows.append({"kind": "**sum of kinds**", **{f"{label} ms": num(sums[label]) for label in models}})
    rows.append({"kind": "profiled iteration (median)",
                 **{f"{label} ms": num(_median(m.total_ms)) for label, m in models.items()}})
    rows.append({"kind": "unprofiled iteration (median)",
                 **{f"{label} ms": num(_median(m.unprofiled_ms)) for label, m in models.items()}})
    rows.append({"kind": "ops called per iteration",
                 **{f"{label} ms": _calls(m) for label, m in models.items()}})
    return frame_table(pd.DataFrame(rows))


def _calls(model: OpTimeModel) -> str | None:
    calls = model.op_calls
    return f"{sum(calls.values()):.0f}" if calls else None


def _extra(record: OpTimeRecord, label: str) -> tuple[list[dict[str, Any]], float | None, float]:
    """Per kind (plain ms, ms, Δ ms), the paired total Δ, and the kinds' summed Δ."""
    models = record.models
    m, plain = models[label], models[_plain(record, label)]
    rows: list[dict[str, Any]] = []
    for kind in record.kinds or []:
        a, b = plain.kinds_ms.get(kind), m.kinds_ms.get(kind)
        rows.append({"kind": kind, "plain": _kind_ms(plain, kind), "mine": _kind_ms(m, kind),
                     "delta": _paired_delta(a, b) or 0.0, "ci": _delta_ci(a, b)})
    total = _paired_delta(plain.total_ms, m.total_ms)
    return rows, total, sum(r["delta"] for r in rows)


def _extra_table(record: OpTimeRecord, label: str) -> list[str]:
    models = record.models
    plain = _plain(record, label)
    rows, total, summed = _extra(record, label)
    base = sum(r["plain"] for r in rows)
    # a share of an extra within the noise (a few % of the plain network's time) would be a ratio of noise
    shared = summed > SHARE_MIN_EXTRA * base

    calls = (models[plain].op_calls, models[label].op_calls)

    def more_calls(kind: str | None) -> str | None:
        if not all(calls):
            return None  # records made before op_calls existed
        a, b = ((sum(c.values()) if kind is None else c.get(kind, 0.0)) for c in calls)
        return f"{b - a:+.0f}"

    def cells(kind: str, plain_ms: float | None, ms: float | None, delta: str, of_plain: float | None,
              share: str | None, ops: str | None = None) -> dict[str, Any]:
        return {"kind": kind, f"{plain} ms": num(plain_ms), f"{label} ms": num(ms), "Δ ms (95% CI)": delta,
                f"Δ % of {plain}": f"{of_plain / base * 100:+.1f}%" if base and of_plain is not None else None,
                "share of the extra": share, "Δ ops called": ops}

    table = [cells(r["kind"], r["plain"], r["mine"], _with_ci(r["delta"], r["ci"]), r["delta"],
                   f"{r['delta'] / summed * 100:+.0f}%" if shared else None,
                   more_calls(r["kind"]) if r["kind"] != "python" else None) for r in rows]
    table.append(cells("**sum of kinds**", base, sum(r["mine"] for r in rows), _signed(summed), summed,
                       "100%" if shared else None, more_calls(None)))
    total_ci = _delta_ci(models[plain].total_ms, models[label].total_ms)
    table.append(cells("profiled iteration (paired median Δ)", _median(models[plain].total_ms),
                       _median(models[label].total_ms),
                       _with_ci(total, total_ci) if total is not None else "–", None, None))
    # the unprofiled cycles were interleaved too: their paired Δ is the extra without the profiler's per-op cost
    bare_a, bare_b = models[plain].unprofiled_ms, models[label].unprofiled_ms
    bare = _paired_delta(bare_a, bare_b)
    table.append(cells("unprofiled iteration (paired median Δ)", _median(bare_a), _median(bare_b),
                       _with_ci(bare, _delta_ci(bare_a, bare_b)) if bare is not None else "–", None, None))
    return frame_table(pd.DataFrame(table))


def _summary_line(record: OpTimeRecord, label: str, cx: dict[str, ComplexityRecord]) -> str:
    models = record.models
    plain = _plain(record, label)
    rows, total, summed = _extra(record, label)
    time_ratio = value_ratio(_median(models[label].total_ms), _median(models[plain].total_ms))
    bare_ratio = value_ratio(_median(models[label].unprofiled_ms), _median(models[plain].unprofiled_ms))
    mine, other = cx.get(label), cx.get(plain)
    macs = value_ratio(mine.macs, other.macs) if mine and other else None
    acts = value_ratio(mine.activations, other.activations) if mine and other else None
    # the largest parts whose interval excludes no extra at all (a kind's noise is not its cost)
    top = sorted((r for r in rows if r["delta"] > 0 and (r["ci"] is None or r["ci"][0] > 0)),
                 key=lambda r: -r["delta"])[:3]
    base = sum(r["plain"] for r in rows)
    parts = ", ".join(f"{r['kind']} {r['delta']:+.2f} ms ({r['delta'] / summed * 100:.0f}%)" for r in top) \
        if summed > SHARE_MIN_EXTRA * base else f"within {SHARE_MIN_EXTRA:.0%} of {plain}'s time, no share shown"
    return (f"- **{label} over {plain}**: {_signed(total)} ms per iteration profiled ({_pct(time_ratio)}; "
            f"unprofiled {_pct(bare_ratio)}) vs MACs {_pct(macs)}, activations {_pct(acts)}. "
            f"Most of the extra (of the kinds whose 95% CI is above 0): {parts}.")


# ------------------------------------------------------------------------------------------------ section


def _heading(record: OpTimeRecord) -> str:
    mode = mode_label(record.dtype, channels_last=record.channels_last, compile=record.compile)
    return (f"### batch {record.batch_size} · {record.device} · {mode} · "
            f"{record.threads} thread(s) · {record.iterations} paired iterations")


def _errors(record: OpTimeRecord) -> list[str]:
    return [f"- {label}: not profiled ({e.error.type}: {e.error.message})" for label, e in record.errors.items()]


def _block(record: OpTimeRecord, cx: dict[str, ComplexityRecord]) -> list[str]:
    models = record.models
    lines = [_heading(record), ""]
    if not models:
        return [*lines, *_errors(record), ""]
    overheads = ", ".join(f"{label} {_pct(_overhead(m))}" for label, m in models.items() if _overhead(m))
    timer = TIMERS.get(record.timer, record.timer) if record.timer else None
    lines += [f"Timer: {timer}. Profiled ÷ unprofiled iteration "
              f"(the profiler's and the hooks' overhead, this run): {overheads or '–'}.", "",
              *_kinds_table(record), ""]
    variants = [label for label, m in models.items() if m.plain in models]
    for label in variants:
        lines += [f"#### {label} over {_plain(record, label)}", "", *_extra_table(record, label), ""]
    if variants:
        lines += [*(_summary_line(record, label, cx) for label in variants), ""]
    errors = _errors(record)
    return lines + ([*errors, ""] if errors else [])


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    records = run.of_type(OpTimeRecord)
    if not records:
        return []
    cx = complexity_of(run)
    lines = ["## Where the time goes: operator kinds", "",
             "Each model's forward pass profiled with `torch.profiler`, the models of a group interleaved iteration "
             "by iteration in one process (order rotating every cycle), and every op's self time attributed to one "
             "kind: convolutions by their groups, dilation and kernel (`conv.dilated` is SK's second, dilated branch; "
             "`conv.grouped` ResNeXt's 3×3 and SK's first branch), the attention's pooling / fc / softmax "
             "(`attn.*`; SE's sigmoid and SK's two-branch softmax are `attn.softmax`), element-wise ops (`eltwise`: "
             "residual adds, SE's scale, SK's select), memory ops (allocation, copies, views), and `python`: the "
             "interpreter between ops, module calls and the profiler's own hooks. Medians over the iterations; "
             "extra time is the median of the paired per-cycle differences. The profiler slows small ops most, "
             "so profiled times exceed the unprofiled ones shown beside them; compare models profiled together.",
             ""]
    if any(r.compile for r in records):
        lines += ["A compiled model (`compile`) is profiled without the hooks: its time is Inductor's generated "
                  "kernels (`fused`: BN, activations, sums and the attention's arithmetic, fused together), the "
                  "convolutions it calls by backend (`conv.other`: oneDNN; `conv.im2col`: aten's im2col + matmul "
                  "path), dynamo's guard checks (`guards`) and the graph call itself (`python`); the eager kinds are "
                  "fused away.", ""]
    for record in records:
        lines += _block(record, cx)
    return lines
