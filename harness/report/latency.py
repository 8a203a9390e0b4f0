"""Latency and throughput sections: the statistics of ``RunData.frame()`` (raw samples, rounds pooled), each
model's ratio to the run's reference (ResNeXt-50 in Table 2 runs) and to its own plain counterpart with a 95%
CI (over the worker processes; a bootstrap over cycles within one process), beside the compute ratios; achieved
GMAC/s against the measured device peak; a plot of latency and throughput with their CIs as error bars."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.measure.stats import ESTIMATOR, ESTIMATOR_WORDS
from harness.report import plots
from harness.report.complexity import match_rows
from harness.report.markdown import frame_table, num, with_ci
from harness.results import RunData
from harness.results import summaries as S
from harness.results.records import ComplexityRecord, Machine, PeakRecord, ThroughputRecord, TimedRecord
from harness.results.summaries import P99_MIN_SAMPLES

GROUP = ["batch_size", "mode", "device"]


def paper_gmacs(run: RunData) -> dict[str, float]:
    """label → the GMACs of its SKNet-paper row (the paper's own compute ratios)."""
    out: dict[str, float] = {}
    for m in match_rows(run.of_type(ComplexityRecord)):
        if m.record is not None and m.row.gmacs and m.row.table.startswith("P "):
            out.setdefault(m.record.label, m.row.gmacs)
    return out


def machines(run: RunData) -> dict[tuple[Any, Any], str]:
    """A run merged from shards measured on more than one machine: (label, batch size) → the machine that timed
    it (timing groups never span shards, so every table of the report is one machine's). Empty otherwise."""
    by_shard = {e.shard.index: machine_name(e.machine) for e in run.typed_manifest.merged_from or ()
                if e.shard is not None}
    if len(set(by_shard.values())) < 2:
        return {}
    out = {}
    for r in run.records:
        if type(r) in (TimedRecord, ThroughputRecord) and r.shard is not None:
            out[(r.label or r.model, r.batch_size)] = by_shard.get(r.shard.index, "?")
    return out


def machine_name(machine: Machine | None) -> str:
    gpus = ", ".join(str(g) for g in (machine.gpus if machine else None) or []) or "no GPU"
    return f"{(machine.hostname if machine else None) or '?'} ({(machine.cpu if machine else None) or '?'}; {gpus})"


def groups(frame: pd.DataFrame, where: dict[tuple[Any, Any], str] | None = None) -> Iterator[tuple[str, pd.DataFrame]]:
    """(heading, rows) per batch size · mode · device (· machine, for a run merged from several machines; see
    ``machines``), in a stable order."""
    if frame.empty:
        return
    machine = pd.Series([(where or {}).get((label, bs), "") for label, bs in
                         zip(frame["label"], frame["batch_size"], strict=True)], index=frame.index, name="_machine")
    # grouped by the machine as a key of its own, not a column: no copy of every group without it
    for (bs, mode, device, on), rows in frame.groupby([*(frame[c] for c in GROUP), machine], sort=True,
                                                      dropna=False):
        yield f"batch {bs} · {mode} · {device}" + (f" · measured on {on}" if on else ""), rows


def timing_frame(run: RunData, kind: str) -> pd.DataFrame:
    """The frame a report's timing tables read (``RunData.frame``: computed once per run)."""
    return run.frame(kind)


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts: the values ``iterrows`` gives (both read ``DataFrame.values``), without a Series per
    row (a report of a large run has thousands of rows) or a column extraction per column (``itertuples``)."""
    columns = list(frame.columns)
    return [dict(zip(columns, values, strict=True)) for values in frame.to_numpy(dtype=object)]


def _paper_ratio(label: str, base: str, paper: dict[str, float]) -> str:
    mine, ref = paper.get(label), paper.get(base)
    return num(mine / ref, 3) if mine and ref else "–"


def _paired(text: Any, pairs: Any) -> Any:
    unpaired = text is not None and text != "–" and not (pairs == pairs and pairs)
    return f"{text} *unpaired*" if unpaired and pairs == pairs and pairs is not None else text


def _contended(text: Any, count: Any) -> Any:
    return f"{text} ⚠ contended" if text not in (None, "–") and count == count and count else text


def _levels(row: dict[str, Any]) -> str | None:
    """``6 × 5 · ±1.2% · ±8.0%``: processes × cycles per process, the spread between processes (SD of their
    estimates) and within one (SD of one cycle's ratio), for the ratio ÷ the base network."""
    k, pairs = row.get("ratio_base_processes"), row.get("ratio_base_pairs")
    if row["label"] == row["base"] or k != k or k is None or not pairs or pairs != pairs:
        return None
    planned = row.get("processes_planned")
    shown = f"{int(k)} of {int(planned)}" if planned == planned and planned and planned > k else f"{int(k)}"
    text = f"{shown} × {pairs / k:.0f}"
    between, within = row.get("ratio_base_between_sd"), row.get("ratio_base_within_sd")
    if between == between and between is not None:
        text += f" · ±{between * 100:.1f}%"
    else:
        text += " · –"
    return text + (f" · ±{within * 100:.1f}%" if within == within and within is not None else "")


def _ratio_cells(row: dict[str, Any], paper: dict[str, float]) -> dict[str, Any]:
    base = with_ci(row["ratio_base"], row["ratio_base_ci_low"], row["ratio_base_ci_high"])
    return {
        f"÷ {row['base']}": base if row["label"] == row["base"] else
        _contended(_paired(base, row.get("ratio_base_pairs")), row.get("ratio_base_contended")),
        "K × m · between · within": _levels(row),
        "GMACs ratio (paper)": _paper_ratio(row["label"], row["base"], paper),
        "GMACs ratio (ours)": num(row["macs_ratio_base"], 3) if row["macs_ratio_base"] == row["macs_ratio_base"]
        else None,
        "plain": row["plain"],
        "÷ plain": _contended(_paired(with_ci(row["ratio_plain"], row["ratio_plain_ci_low"],
                                              row["ratio_plain_ci_high"]), row.get("ratio_plain_pairs")),
                              row.get("ratio_plain_contended")),
        "MACs ÷ plain": num(row["macs_ratio_plain"], 3) if row["macs_ratio_plain"] == row["macs_ratio_plain"]
        else None,
    }


def _threads_line(run: RunData) -> list[str]:
    choice = run.typed_manifest.threads
    if choice is None or choice.threads is None:
        return []
    n, by, cores = choice.threads, choice.chosen_by, choice.cores
    why = (f"chosen to fit the {cores} cores less the {choice.other_cores or 0:.2f} other processes kept busy"
           if by == "auto" else f"set by {by}")
    return ["", f"Threads: {n} intra-op thread{'s' * (n != 1)} ({why})."]


def _load_lines(rows: pd.DataFrame) -> list[str]:
    """A line beside a table timed on a busy machine: what the other processes did meanwhile."""
    if "busy" not in rows or not rows["busy"].eq(True).any():
        return []
    worst = rows.loc[rows["other_cores"].idxmax()]
    return [f"⚠ busy machine while this table was timed: other processes kept {worst['other_cores']:.2f} cores busy "
            f"(load average {worst['loadavg_1m']:.2f}, {int(worst['involuntary_switches'])} involuntary context "
            f"switches, {int(worst['threads'])} thread{'s' * (int(worst['threads']) != 1)}). Paired ratios cancel what "
            "hit both models in a cycle; absolute times are slower than on a quiet machine.", ""]


def interval_lines(rows: pd.DataFrame) -> list[str]:
    """What the ratios' intervals of a table mean, said once per table: over processes, or within one only; which
    processes failed; which were timed under contention, and what to do about it."""
    if "base" not in rows or "ratio_base_scope" not in rows:
        return []
    # plain numpy arrays: this runs once per table, thousands of times for a large run
    is_ratio = rows["label"].to_numpy(dtype=object) != rows["base"].to_numpy(dtype=object)
    scope = rows["ratio_base_scope"].to_numpy(dtype=object)[is_ratio]
    if not scope.size or pd.isna(scope).all():
        return []
    lines = []
    k = int(np.nanmax(rows["ratio_base_processes"].to_numpy(dtype=float)[is_ratio]))
    planned = int(rows["processes_planned"].max()) if "processes_planned" in rows else k
    if (scope == "within-process").any():
        lines.append("Intervals from **one process**: they cover within-process noise only (the cycles' scatter), "
                     "not what a process fixes for its whole life (memory layout, allocator state), which moves "
                     "these ratios by a few percent from run to run; time in several processes (`--processes 6`) "
                     "for an interval a new run falls into.")
    else:
        lines.append(f"Ratios: the mean over {k} worker processes (log scale) of each process's "
                     f"{ESTIMATOR_WORDS[ESTIMATOR]}; "
                     f"95% CI a t-interval over the processes ({k - 1} degrees of freedom): the long-run ratio on "
                     "this machine, which a new run's estimate falls inside about 5 times in 6. *K × m · between · "
                     "within*: processes × cycles per process, the spread of the processes' estimates, and of one "
                     "cycle's ratio inside a process.")
    if planned > k:
        lines.append(f"⚠ {k} of {planned} processes timed these models (the others failed: see the records' "
                     "`process_runs`); the interval has their degrees of freedom."
                     + (" With fewer than 2 left it covers within-process noise only." if k < 2 else ""))
    contended = int(rows["contended_processes"].max()) if "contended_processes" in rows else 0
    if contended:
        lines.append(f"⚠ **Measured under contention** in {contended} of {k} processes: other processes left fewer "
                     "free cores than the harness's threads, so they and these models took turns on the cores. The "
                     "interval includes the scatter this adds between processes, but a contended ratio can be "
                     "biased (interference adds time, more to the longer or more memory-bound model). Rerun on a "
                     "quiet machine: stop the other work, or `--wait-quiet 300` to wait for it, and `--threads 1`.")
    return [*lines, ""]


def _without_empty_levels(cells: pd.DataFrame) -> pd.DataFrame:
    """The process-level column only where a ratio has one (a table of one model has none)."""
    column = "K × m · between · within"
    return cells.drop(columns=column) if column in cells and cells[column].isna().all() else cells


def _name(row: dict[str, Any]) -> str:
    return str(row["label"]) + (" ⚠" if row["unstable"] else "")


def latency_section(run: RunData) -> tuple[list[str], dict[str, pd.DataFrame]]:
    frame = timing_frame(run, "latency")
    if frame.empty:
        return [], {}
    paper = paper_gmacs(run)
    lines = ["## Latency", "",
             "Per-iteration samples (`model.eval()`, `torch.inference_mode()`), warmup excluded. The models of a "
             "table were timed together, one iteration of each per cycle, the order rotating every cycle, in "
             "fresh worker processes one after another (a process is one sample of memory layout). p50 and its "
             "95% CI (two order statistics of the samples: distribution-free) are this machine's absolute times. "
             "Ratios ÷ the run's base network and ÷ each model's plain counterpart (the network it adds attention to) "
             "are paired: in each process "
             f"the {ESTIMATOR_WORDS[ESTIMATOR]}, pooled over the processes (*unpaired* marks runs from before "
             "pairing: a ratio of medians). Beside them the compute ratios (GMACs ÷ the same network's) from the "
             "paper and from our count.", *_threads_line(run), ""]
    panels = {}
    for heading, rows in groups(frame, machines(run)):
        cells = pd.DataFrame([{
            "model": _name(r), "n": r["n"], "rounds": r["rounds"], "p50 ms": num(r["p50_ms"]),
            "p90 ms": num(r["p90_ms"]), "p99 ms": num(r["p99_ms"]) if r["p99_ms"] == r["p99_ms"] else None,
            "95% CI p50": f"{num(r['ci_low_ms'])}–{num(r['ci_high_ms'])}", "CV": f"{r['cv'] * 100:.1f}%",
            **_ratio_cells(r, paper), "timed s": num(r["timed_s"], 1)} for r in rows_of(rows)])
        lines += [f"### {heading}", "", *frame_table(_without_empty_levels(cells), align="lrrrrrrrrrrrlrrr"),
                  "", *interval_lines(rows), *_load_lines(rows)]
        panels[f"latency · {heading}"] = rows
    if (frame["n"] < P99_MIN_SAMPLES).any():
        lines += [f"p99 is shown from {P99_MIN_SAMPLES} samples on: from fewer, the 99th percentile is the maximum "
                  "or next to it, not an estimate (raise `min_samples` or `rounds` to get it).", ""]
    unstable = sorted(set(frame.loc[frame["unstable"].astype(bool), "label"]))
    if unstable:
        lines += [f"⚠ unstable (CV ≥ 10%): {', '.join(unstable)} — the machine was noisy; treat these medians with "
                  "care or rerun with more rounds.", ""]
    return lines, panels


def _peaks(run: RunData) -> dict[str, float]:
    return {r.dtype: r.peak_gmacs_per_s for r in run.of_type(PeakRecord)}


def throughput_section(run: RunData, kind: str, title: str) -> tuple[list[str], dict[str, pd.DataFrame]]:
    frame = timing_frame(run, kind)
    if frame.empty:
        return [], {}
    paper = paper_gmacs(run)
    lines = [f"## {title}", "",
             "Images per second over whole timed loops at a fixed batch (total images ÷ total loop time), "
             "measured separately from latency, the models of a table timed together (one loop of each per "
             "cycle, the order rotating) in the same worker processes as latency; 95% CI: bootstrap over loops "
             "(none from fewer than 3 loops). Ratios are of images/s (below 1: slower), paired and pooled over the "
             "processes as for latency. Achieved GMAC/s = our MACs per image × images/s; utilisation is against a "
             "large matmul timed on this device in the same dtype.", ""]
    panels = {}
    for heading, rows in groups(frame, machines(run)):
        cells = pd.DataFrame([{
            "model": _name(r), "img/s": num(r["img_s"], 1),
            "95% CI": f"{num(r['img_s_ci_low'], 1)}–{num(r['img_s_ci_high'], 1)}", **_ratio_cells(r, paper),
            "GMAC/s": num(r["gmac_s"], 1) if r["gmac_s"] == r["gmac_s"] else None,
            "of peak": f"{r['util'] * 100:.0f}%" if r["util"] == r["util"] and r["util"] is not None else None,
            "loop CV": f"{r['loop_cv'] * 100:.1f}%" if r["loop_cv"] == r["loop_cv"] else None,
            "loops": r["loops"], "timed s": num(r["timed_s"], 1)} for r in rows_of(rows)])
        cells = cells.drop(columns=["GMACs ratio (ours)"])
        lines += [f"### {heading}", "", *frame_table(_without_empty_levels(cells), align="lrrrrrlrrrrrrr"), "",
                  *interval_lines(rows), *_load_lines(rows)]
        panels[f"{title.lower()} · {heading}"] = rows
    peak = _peaks(run)
    if peak and kind == "throughput":
        lines += ["Device peak (matmul): " + ", ".join(f"{d}: {v:.1f} GMAC/s" for d, v in peak.items()), ""]
    lines += _sk_comparison(run, kind)
    return lines, panels


def _sk_comparison(run: RunData, kind: str) -> list[str]:
    """Our ``sknet50`` against timm's ``skresnext50_32x4d`` (same structure and parameter count), paired."""
    lines = []
    benches = [b for b in S.benchmarks(run, kind) if not b.options]
    groups_of: dict[tuple[Any, ...], dict[str, S.Benchmark]] = {}
    for b in benches:
        groups_of.setdefault(b.group, {})[b.label] = b
    for (_, bs, mode, device), by_label in sorted(groups_of.items(), key=lambda kv: str(kv[0])):
        if not {"sknet50", "timm:skresnext50_32x4d"} <= set(by_label):
            continue
        r = S.ratio(by_label["timm:skresnext50_32x4d"], by_label["sknet50"])
        if r is None:
            continue
        how = f"paired over {r.pairs} cycles" if r.pairs else "unpaired: timed in separate tasks"
        lines.append(f"- batch {bs} · {mode} · {device}: our `sknet50` runs at **{r.value:.3f}×** "
                     f"(95% CI {r.low:.3f}–{r.high:.3f}, {how}) the throughput of timm's `skresnext50_32x4d` "
                     "(same structure, same parameter count).")
    return lines + ([""] if lines else [])


def _plot(panels: dict[str, pd.DataFrame], path: Path) -> Path:
    fig, axes = plots.figure(len(panels), width=5.0, height=0.45 * max(len(r) for r in panels.values()) + 1.6,
                             columns=min(3, len(panels)))
    for ax, (title, rows) in zip(axes, panels.items(), strict=True):
        if title.startswith("latency"):
            values = [plots.Interval.of(r["p50_ms"], r["ci_low_ms"], r["ci_high_ms"]) for r in rows_of(rows)]
            xlabel = "p50 latency, ms (95% CI)"
        else:
            values = [plots.Interval.of(r["img_s"], r["img_s_ci_low"], r["img_s_ci_high"]) for r in rows_of(rows)]
            xlabel = "images / s (95% CI)"
        kept = [(label, v) for label, v in zip(rows["label"], values, strict=True) if v is not None]
        plots.bars_with_ci(ax, [k for k, _ in kept], [v for _, v in kept], xlabel=xlabel, title=title)
    return plots.save(fig, path)


def section(run: RunData, assets: Path, stem: str) -> list[str]:
    lines, panels = latency_section(run)
    for kind, title in (("throughput", "Throughput (inference)"), ("train_throughput", "Throughput (training step)")):
        part, more = throughput_section(run, kind, title)
        lines += part
        panels.update(more)
    if panels:
        shown, note = plots.first_panels(list(panels.items()), "tables")
        path = _plot(dict(shown), assets / f"{stem}_timing.png")
        lines += [f"![latency and throughput with 95% CIs]({path.name})", "", *note]
    return lines
