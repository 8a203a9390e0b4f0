"""SK's cost by execution mode: does a model's extra compute become the same extra time when the framework may
optimise (channels_last, torch.compile, bf16)?

For a run whose timing groups hold models in several modes (a timing section with ``modes``), per kind, batch size
and device: each model's time (p50, or images/s) per mode; each model's time ÷ the base network's (ResNeXt-50 in
the paper's Table 2) per mode with its 95% CI, beside its MACs and activations ratios (mode-independent counts);
each model's speed-up of every mode over its own eager fp32 (paired: a model's modes are timed in the same group,
cycle by cycle); ours ÷ timm's SK-ResNeXt-50 per mode; what compiling cost (seconds, graphs, graph breaks); a
verdict per mode; and a plot of the overhead per mode with the MACs ratios as references. A model × mode that was
skipped or failed is named with its reason in the cell it would fill.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.measure.mode import EAGER, mode_label
from harness.report import plots
from harness.report.markdown import num, table, with_ci
from harness.results import RunData
from harness.results import summaries as S
from harness.results.records import LOOP_KINDS, ComplexityRecord, FailedRecord, RecordBase, SkippedRecord

KINDS = (("latency", "Latency"), ("throughput", "Throughput (inference)"), ("train_throughput", "Train step"))
TIMM_SK = "timm:skresnext50_32x4d"  # timm's SK-ResNeXt-50, our SKNet-50's peer implementation
OURS_SK = "sknet50"
# Below this extra compute (SE's +0.1% MACs) a time overhead is not stated as a multiple of it.
MIN_EXTRA = 0.01


@dataclass(frozen=True)
class Table:
    """One kind × batch size × device of a run timed in several modes."""

    kind: str
    batch_size: Any
    device: Any
    modes: list[str]  # in the order they were timed
    labels: list[str]
    base: str
    cells: dict[tuple[str, str], S.Benchmark]  # (label, mode) → its benchmark
    missing: dict[tuple[str, str], str]  # (label, mode) → why it has no samples (skipped / error)

    @property
    def heading(self) -> str:
        return f"batch {self.batch_size} · {self.device}"


def _mode_of(record: RecordBase) -> str:
    return mode_label(record.dtype, channels_last=record.channels_last, compile=record.compile)


def tables(run: RunData) -> list[tuple[str, Table]]:
    """(kind's title, table) for every kind × batch size × device timed in two or more modes."""
    out = []
    not_timed = _missing(run)
    for kind, title in KINDS:
        benches = S.benchmarks(run, kind)
        by_group: dict[tuple[Any, Any], list[S.Benchmark]] = {}
        for b in benches:
            by_group.setdefault((b.batch_size, b.device), []).append(b)
        for (bs, device), group in by_group.items():
            modes = list(dict.fromkeys(b.mode for b in group))
            missing = not_timed.get((kind, bs, device), {})
            modes += [m for _, m in missing if m not in modes]
            if len(modes) < 2:
                continue
            labels = list(dict.fromkeys([b.label for b in group] + [label for label, _ in missing]))
            measured = list(dict.fromkeys(b.label for b in group))
            base = measured[S.base_index([next(b for b in group if b.label == label) for label in measured])]
            out.append((title, Table(kind=kind, batch_size=bs, device=device, modes=modes, labels=labels, base=base,
                                     cells={(b.label, b.mode): b for b in group}, missing=missing)))
    return out


def _missing(run: RunData) -> dict[tuple[Any, Any, Any], dict[tuple[str, str], str]]:
    """(kind, batch size, device) → (label, mode) → why a timed model has no samples in that mode (its skipped or
    error record), in one pass over the records."""
    out: dict[tuple[Any, Any, Any], dict[tuple[str, str], str]] = {}
    kinds = {kind for kind, _ in KINDS}
    for r in run.records:
        if not isinstance(r, FailedRecord | SkippedRecord) or r.kind not in kinds or r.dtype is None:
            continue
        why = r.reason if isinstance(r, SkippedRecord) else f"{r.error.type}: {r.error.message}"
        key = (r.kind, r.batch_size, r.device)
        out.setdefault(key, {})[(str(r.label or r.model), _mode_of(r))] = f"{r.status}: {why}"
    return out


# ------------------------------------------------------------------------------------------------- numbers


def _time_ratio(ratio: S.Ratio | None, kind: str) -> plots.Interval | None:
    """A ratio as a time ratio (> 1: slower): latency ratios are; images/s ratios are inverted."""
    if ratio is None or kind not in LOOP_KINDS:
        return _interval(ratio)
    return plots.Interval(1.0 / ratio.value, 1.0 / ratio.high, 1.0 / ratio.low)


def _interval(ratio: S.Ratio | None) -> plots.Interval | None:
    return None if ratio is None else plots.Interval(ratio.value, ratio.low, ratio.high)


def overheads(t: Table) -> dict[tuple[str, str], plots.Interval | None]:
    """(label, mode) → time ÷ the base network's in that mode (paired, 95% CI), for every label but the base."""
    keys = [(label, mode) for mode in t.modes for label in t.labels
            if label != t.base and (label, mode) in t.cells and (t.base, mode) in t.cells]
    computed = S.ratios([(t.cells[(t.base, mode)], t.cells[(label, mode)]) for label, mode in keys])
    return {k: _time_ratio(r, t.kind) for k, r in zip(keys, computed, strict=True)}


def speedups(t: Table) -> dict[tuple[str, str], plots.Interval | None]:
    """(label, mode) → the mode's speed-up over the model's own eager fp32 (paired, 95% CI)."""
    keys = [(label, mode) for mode in t.modes if mode != EAGER for label in t.labels
            if (label, mode) in t.cells and (label, EAGER) in t.cells]
    if t.kind in LOOP_KINDS:  # images/s of the mode ÷ of eager
        pairs = [(t.cells[(label, EAGER)], t.cells[(label, mode)]) for label, mode in keys]
    else:  # eager's time ÷ the mode's
        pairs = [(t.cells[(label, mode)], t.cells[(label, EAGER)]) for label, mode in keys]
    return {k: _interval(r) for k, r in zip(keys, S.ratios(pairs), strict=True)}


def ours_vs_timm(t: Table) -> dict[str, plots.Interval | None]:
    """mode → our SKNet-50's time ÷ timm's SK-ResNeXt-50's (paired, 95% CI), where both were timed."""
    modes = [m for m in t.modes if (OURS_SK, m) in t.cells and (TIMM_SK, m) in t.cells]
    computed = S.ratios([(t.cells[(TIMM_SK, m)], t.cells[(OURS_SK, m)]) for m in modes])
    return {m: _time_ratio(r, t.kind) for m, r in zip(modes, computed, strict=True)}


Compute = dict[str, tuple[float | None, float | None]]  # label → (MACs, activations) ÷ the base network's


def compute_ratios(cx: dict[str, ComplexityRecord], t: Table) -> Compute:
    """label → (MACs, activations) ÷ the base network's, from the run's complexity records (``cx``, by label)."""
    base = cx.get(t.base)

    def ratio(label: str, count: str) -> float | None:
        mine = cx.get(label)
        return None if mine is None or base is None else S.value_ratio(getattr(mine, count), getattr(base, count))

    return {label: (ratio(label, "macs"), ratio(label, "activations")) for label in t.labels if label != t.base}


# ------------------------------------------------------------------------------------------------- tables


def _ci(interval: plots.Interval | None) -> str:
    return "–" if interval is None else with_ci(interval.value, interval.low, interval.high)


def _cell(t: Table, label: str, mode: str, text: str | None) -> str:
    if (label, mode) in t.missing:
        return f"*{t.missing[(label, mode)].split(':')[0]}* ¹"
    return text if text is not None else "–"


def _times_table(t: Table) -> list[str]:
    loops = t.kind in LOOP_KINDS
    rows = []
    for mode in t.modes:
        row = [mode]
        for label in t.labels:
            b = t.cells.get((label, mode))
            value = None if b is None else (num(b.img_per_s, 1) if loops else
                                            num(b.summary.median if b.summary else None))
            row.append(_cell(t, label, mode, value))
        rows.append(row)
    what = "img/s" if loops else "p50 ms"
    return table(["mode", *(f"{label} {what}" for label in t.labels)], rows, align="l" + "r" * len(t.labels))


def _overhead_table(t: Table, ratios: Compute, over: dict[tuple[str, str], plots.Interval | None],
                    timm: dict[str, plots.Interval | None]) -> list[str]:
    others = [label for label in t.labels if label != t.base]
    with_timm = OURS_SK in t.labels and TIMM_SK in t.labels
    rows = [[mode, *(_cell(t, label, mode, _ci(over.get((label, mode))) if (label, mode) in over else None)
                     for label in others), *([_ci(timm.get(mode))] if with_timm else [])] for mode in t.modes]
    for name, at in (("*MACs ratio*", 0), ("*activations ratio*", 1)):
        rows.append([name, *(num(ratios[label][at], 3) for label in others), *(["–"] if with_timm else [])])
    headers = ["mode", *(f"{label} ÷ {t.base}" for label in others), *([f"{OURS_SK} ÷ {TIMM_SK}"] if with_timm else [])]
    return table(headers, rows, align="l" + "r" * (len(headers) - 1))


def _speedup_table(t: Table, speed: dict[tuple[str, str], plots.Interval | None]) -> list[str]:
    rows = [[mode, *(_cell(t, label, mode, _ci(speed.get((label, mode))) if (label, mode) in speed else None)
                     for label in t.labels)] for mode in t.modes if mode != EAGER]
    return table(["mode", *t.labels], rows, align="l" + "r" * len(t.labels))


def _compile_rows(t: Table) -> list[list[Any]]:
    rows = []
    for mode in t.modes:
        for label in t.labels:
            b = t.cells.get((label, mode))
            if b is None or not b.compile:
                continue
            r = b.first
            seconds = r.compile_s or []
            hits = r.compile_cache_hits or []
            later = statistics.median(seconds[1:]) if len(seconds) > 1 else None
            reasons = "; ".join(r.graph_break_reasons or []) or "–"
            rows.append([label, mode, num(seconds[0], 1) if seconds else "–", num(later, 1),
                         r.compiled_graphs, r.graph_breaks,
                         ", ".join(str(h) for h in hits) or "–", reasons[:300]])
    return rows


# ------------------------------------------------------------------------------------------------- verdict


def _verdicts(t: Table, ratios: Compute, over: dict[tuple[str, str], plots.Interval | None],
              timm: dict[str, plots.Interval | None]) -> list[str]:
    lines = []
    for label in t.labels:
        if label == t.base or label == TIMM_SK:
            continue
        macs, acts = ratios.get(label, (None, None))
        parts = []
        for mode in t.modes:
            r = over.get((label, mode))
            if r is None:
                continue
            parts.append(f"{mode} {_words(r, macs, acts)}")
        if parts and macs:
            lines.append(f"- **{label} ÷ {t.base}** (MACs {macs:.3f}" + (f", activations {acts:.3f}" if acts else "")
                         + "): " + "; ".join(parts) + ".")
    if timm:
        said = "; ".join(f"{mode} {_ci(r)}" for mode, r in timm.items() if r is not None)
        lines.append(f"- **ours ÷ timm** ({OURS_SK} ÷ {TIMM_SK}, time): {said}.")
    return lines


def _words(r: plots.Interval, macs: float | None, acts: float | None) -> str:
    """``+16.4% time (+15.0 to +17.9%), 2.9× its MACs' +5.6%, below its activations' +20.0%``: where the time's
    interval lies against each compute ratio (a multiple of the MACs' extra where there is enough of it)."""
    text = f"{(r.value - 1) * 100:+.1f}% time ({(r.low - 1) * 100:+.1f} to {(r.high - 1) * 100:+.1f}%)"
    for name, ratio in (("MACs", macs), ("activations", acts)):
        if not ratio:
            continue
        extra = f"its {name}' {(ratio - 1) * 100:+.1f}%"
        if r.low <= ratio <= r.high:
            text += f", {extra} inside the CI"
        elif name == "MACs" and ratio - 1 >= MIN_EXTRA and r.value > 1:  # a multiple of almost nothing says nothing
            text += f", {(r.value - 1) / (ratio - 1):.1f}× {extra}"
        else:
            text += f", {'above' if r.low > ratio else 'below'} {extra}"
    return text


# ------------------------------------------------------------------------------------------------- section


Panel = tuple[str, Table, Compute, dict[tuple[str, str], plots.Interval | None]]


def _plot(shown: Sequence[Panel], path: Path) -> Path:
    fig, axes = plots.figure(len(shown), width=6.0,
                             height=0.55 * max(len(t.modes) for _, t, _, _ in shown) * 2 + 1.8)
    for ax, (title, t, ratios, over) in zip(axes, shown, strict=True):
        others = [label for label in t.labels if label != t.base]
        series = {label: [over.get((label, mode)) for mode in t.modes] for label in others}
        plots.mode_overheads(ax, t.modes, series, macs={label: ratios[label][0] for label in others},
                             xlabel=f"time ÷ {t.base} (95% CI)", title=f"{title}, {t.heading}")
    return plots.save(fig, path)


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    found = tables(run)
    if not found:
        return []
    lines = ["## SK's cost by execution mode", "",
             "Every model timed in every mode, all in one timing group per batch size (models and modes paired "
             "alike, cycle by cycle, in the same worker processes). Overheads are time ratios (> 1: slower; for "
             "throughput, time per image) ÷ the base network in the same mode, with their 95% CIs, beside the "
             "MACs and activations ratios, which no mode changes: how far each mode brings the extra time towards "
             "the extra compute. Speed-ups are each model's own eager fp32 time ÷ its time in the mode (> 1: "
             "faster), paired the same way.", ""]
    cx = S.complexity_of(run)
    shown: list[Panel] = []
    notes: dict[str, None] = {}  # every reason a cell was not timed, once, in order
    for title, t in found:
        over, timm, speed, ratios = overheads(t), ours_vs_timm(t), speedups(t), compute_ratios(cx, t)
        lines += [f"### {title} · {t.heading}", "", *_times_table(t), "",
                  f"Overhead ÷ {t.base} per mode:", "", *_overhead_table(t, ratios, over, timm), "",
                  "Speed-up over the model's own eager fp32:", "", *_speedup_table(t, speed), ""]
        compiled = _compile_rows(t)
        if compiled:
            lines += ["Compilation (apart from the timed samples): seconds in the first process and the median of "
                      "the later ones, graphs compiled, graph breaks, Inductor FX-graph cache hits per process "
                      "(0: compiled cold):", "",
                      *table(["model", "mode", "compile s (1st)", "compile s (later)", "graphs", "graph breaks",
                              "cache hits", "break reasons"], compiled, align="llrrrrll"), ""]
        verdicts = _verdicts(t, ratios, over, timm)
        if verdicts:
            lines += ["Verdict per mode:", "", *verdicts, ""]
        notes.update(dict.fromkeys(t.missing.values()))
        shown.append((title, t, ratios, over))
    if notes:
        lines += [f"¹ {why}" for why in notes] + [""]
    if run.of_kind("op_time"):
        lines += ["Where the time goes in each mode: the section *Where the time goes* below profiles the models in "
                  "every mode its suite lists (a compiled model by Inductor's kernels and the convolutions' backends, "
                  "not by the eager operator kinds, which compilation fuses away).", ""]
    panels, note = plots.first_panels(shown, "tables")
    path = _plot(panels, assets / f"{stem}_modes.png")
    return lines + [f"![overhead ÷ {found[0][1].base} per mode, MACs ratios as references]({path.name})", "", *note]
