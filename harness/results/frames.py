"""A run's results as tidy pandas DataFrames: ``load_run(path).frame(kind)``.

One row per benchmark for the timed kinds (rounds pooled, as the report shows them; ``by_round=True`` gives one
row per round), per task for complexity, peak and training runs, per module for the complexity breakdown
(``modules``) and per epoch for ``train_epoch``. The columns are the statistics the report prints, computed by
the same code (``harness.results.summaries``), plus the run's identity and environment, so frames of several
runs (``load_runs(paths).frame(kind)``) concatenate into one table. Missing values are NaN / None; nothing is
rounded. ``p99_ms`` is NaN below ``P99_MIN_SAMPLES`` samples, as in the report.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.errors import ConfigError
from harness.fileio import canonical_json
from harness.measure.load import BUSY_CORES
from harness.measure.mode import EAGER
from harness.measure.stats import UNSTABLE_CV, variation
from harness.results import summaries as S
from harness.results.records import (
    LOOP_KINDS,
    SAMPLED_KINDS,
    ComplexityRecord,
    LoadReading,
    Manifest,
    PeakRecord,
    RecordBase,
    TrainRecord,
    scalar_fields,
)

if TYPE_CHECKING:
    from harness.results.store import RunData

def RATIO_PARTS(prefix: str) -> list[str]:  # noqa: N802 - a column list, read as a constant
    """A paired ratio's columns: value, 95% CI, cycles, processes (its interval's degrees of freedom + 1), the
    interval's scope (``processes`` or ``within-process``), the between- and within-process spreads (log scale) and
    how many of its processes were timed under contention."""
    return [f"ratio_{prefix}{part}" for part in ("", "_ci_low", "_ci_high", "_pairs", "_processes", "_scope",
                                                 "_between_sd", "_within_sd", "_contended")]


ENV_COLUMNS = ["suite", "created_utc", "git_commit", "git_dirty", "run_device", "cpu_model", "gpu_name", "torch",
               "cuda", "fvcore", "torch_threads"]
MODEL_COLUMNS = ["model", "label", "options"]
TIMING_COLUMNS = [
    "kind", *MODEL_COLUMNS, "batch_size", "device", "dtype", "channels_last", "compile", "mode", "threads", "timer",
    "n", "rounds", "p50_ms", "p90_ms", "p99_ms", "iqr_ms", "mean_ms", "std_ms", "cv", "ci_low_ms", "ci_high_ms",
    "unstable", "timed_s", "img_s", "img_s_ci_low", "img_s_ci_high", "loops", "loop_cv", "gmac_s", "peak_gmac_s",
    "util", "peak_mem_bytes", "iter_peak_mem_bytes", "mem_method", "params", "macs", "activations",
    "base", *RATIO_PARTS("base"), "macs_ratio_base",
    "iter_peak_mem_ratio_base", "plain", *RATIO_PARTS("plain"), "macs_ratio_plain", "activations_ratio_plain",
    "iter_peak_mem_ratio_plain", "eager_mode", *RATIO_PARTS("eager"), "compile_s", "compile_s_later",
    "compiled_graphs", "graph_breaks", "processes", "processes_planned", "contended_processes",
    "other_cores", "loadavg_1m", "involuntary_switches", "busy",
]
COLUMNS: dict[str, list[str]] = {
    "complexity": [*MODEL_COLUMNS, "input_size", "params", "params_trainable", "macs", "activations", "flops_torch",
                   "counter", "counter_version", "base", "macs_ratio_base", "plain", "params_ratio_plain",
                   "macs_ratio_plain", "activations_ratio_plain"],
    "modules": [*MODEL_COLUMNS, "input_size", "module", "stage", "part", "is_stage", "macs", "activations"],
    **{kind: TIMING_COLUMNS for kind in SAMPLED_KINDS},
    # one row per record: the record type's own scalar fields (harness.results.records), as declared there
    "peak": ["device", *scalar_fields("peak")],
    "train_epoch": [*MODEL_COLUMNS, "device", "seed", *scalar_fields("train_epoch"), "wall_s"],
    "train": [*MODEL_COLUMNS, "device", "seed", *scalar_fields("train"), "world_size"],
}
KINDS = tuple(COLUMNS)  # == harness.results.store.FRAME_KINDS (tested), which the CLI reads without pandas


def environment_columns(manifest: Manifest) -> dict[str, Any]:
    env, git = manifest.environment, manifest.git
    cpu = env.cpu if env else None
    packages = (env.packages if env else None) or {}
    gpus = ", ".join(str(g.name or "?") for g in (env.gpus if env else None) or []) or None
    return {"run_id": manifest.run_id, "suite": manifest.suite_name,
            "created_utc": manifest.created_utc, "git_commit": git.commit if git else None,
            "git_dirty": git.dirty if git else None, "run_device": manifest.device,
            "cpu_model": cpu.model if cpu else None, "gpu_name": gpus,
            "torch": packages.get("torch") or (env.torch if env else None), "cuda": env.cuda if env else None,
            "fvcore": packages.get("fvcore"), "torch_threads": cpu.torch_threads if cpu else None}


def _model_fields(record: RecordBase | S.Benchmark) -> dict[str, Any]:
    first = record.first if isinstance(record, S.Benchmark) else record
    return {"model": first.model, "label": first.label, "options": canonical_json(first.options or {})}


def _size(size: list[int] | None) -> str | None:
    return "x".join(map(str, size)) if size else None


# --------------------------------------------------------------------------------------------- complexity


def _complexity_rows(run: RunData) -> list[dict[str, Any]]:
    records = run.of_type(ComplexityRecord)
    base = records[S.base_index(records)] if records else None
    rows = []
    for r, plain_at in zip(records, S.plain_indices(records), strict=True):
        plain = records[plain_at] if plain_at is not None else None
        counter = r.macs_counter
        rows.append({**_model_fields(r), "input_size": _size(r.input_size), "params": r.params,
                     "params_trainable": r.params_trainable, "macs": r.macs,
                     "activations": r.activations, "flops_torch": r.flop_counter.flops if r.flop_counter else None,
                     "counter": counter.name if counter else None,
                     "counter_version": counter.version if counter else None,
                     "base": base.label if base else None,
                     "macs_ratio_base": S.value_ratio(r.macs, base.macs) if base else None,
                     "plain": plain.label if plain else None,
                     "params_ratio_plain": S.value_ratio(r.params, plain.params) if plain else None,
                     "macs_ratio_plain": S.value_ratio(r.macs, plain.macs) if plain else None,
                     "activations_ratio_plain": S.value_ratio(r.activations, plain.activations) if plain else None})
    return rows


def stage_of(module: str, stages: list[str]) -> str | None:
    return next((s for s in stages if module == s or module.startswith(s + ".")), None)


def part_of(module: str, stage: str | None) -> str:
    """The module's name inside its block (``stages.1.2.conv2.paths.1`` → ``conv2.paths.1``); '' for stages
    and blocks themselves."""
    if stage is None or module == stage:
        return ""
    rest = module[len(stage) + 1:].split(".", 1)
    return rest[1] if len(rest) == 2 else ""


def _module_rows(run: RunData) -> list[dict[str, Any]]:
    rows = []
    for r in run.of_type(ComplexityRecord):
        stages = list(r.stages or [])
        for module, macs, acts in r.modules or ():
            stage = stage_of(module, stages)
            rows.append({**_model_fields(r), "input_size": _size(r.input_size), "module": module, "stage": stage,
                         "part": part_of(module, stage), "is_stage": module in stages, "macs": macs,
                         "activations": acts})
    return rows


# ------------------------------------------------------------------------------------------------- timing


def _stats(bench: S.Benchmark) -> dict[str, Any]:
    s = bench.summary
    if s is None:
        return {}
    return {"n": s.n, "p50_ms": s.median, "p90_ms": s.p90,
            "p99_ms": s.p99 if s.n >= S.P99_MIN_SAMPLES else float("nan"), "iqr_ms": s.iqr, "mean_ms": s.mean,
            "std_ms": s.std, "cv": s.cv, "ci_low_ms": s.ci_low, "ci_high_ms": s.ci_high, "unstable": s.unstable}


def _loop_stats(bench: S.Benchmark, macs: int | None, peak: float | None) -> dict[str, Any]:
    if bench.kind not in LOOP_KINDS:
        return {}
    rate, ci = bench.img_per_s, S.img_per_s_ci(bench)
    # the loops' spread only (summarize's CV, not its bootstrap interval, which no column shows)
    loop_cv = variation(bench.loop_s)[2] if bench.loop_s.size >= 2 else None
    gmac_s = macs * rate / 1e9 if macs and rate and bench.kind == "throughput" else None
    return {"img_s": rate, "img_s_ci_low": ci[0] if ci else None, "img_s_ci_high": ci[1] if ci else None,
            "loops": int(bench.loop_s.size), "loop_cv": loop_cv,
            "unstable": loop_cv is not None and bool(loop_cv >= UNSTABLE_CV), "gmac_s": gmac_s, "peak_gmac_s": peak,
            "util": gmac_s / peak if gmac_s and peak else None}


def _ratio_columns(prefix: str, r: S.Ratio | None) -> dict[str, Any]:
    if r is None:
        return {}
    return {f"ratio_{prefix}": r.value, f"ratio_{prefix}_ci_low": r.low, f"ratio_{prefix}_ci_high": r.high,
            f"ratio_{prefix}_pairs": r.pairs, f"ratio_{prefix}_processes": r.processes,
            f"ratio_{prefix}_scope": r.scope, f"ratio_{prefix}_between_sd": r.between_sd,
            f"ratio_{prefix}_within_sd": r.within_sd, f"ratio_{prefix}_contended": r.contended}


def _load_columns(bench: S.Benchmark) -> dict[str, Any]:
    """The busiest the machine was while this benchmark was timed (each process's load reading, or each session's
    in runs from before the process level), and how many of its processes were contended."""
    loads: list[LoadReading] = []
    for r in bench.records:
        runs = [run.load for run in r.process_runs or () if run.load is not None]
        loads += runs or ([r.load] if r.load is not None else [])
    contention = S.contended_processes(bench)
    out: dict[str, Any] = {"processes": len(contention) or 1, "processes_planned": S.processes_planned(bench),
                           "contended_processes": sum(contention.values())}
    if not loads:
        return out
    return {**out, "other_cores": max(x.other_cores for x in loads),
            "loadavg_1m": max(x.loadavg_1m for x in loads),
            "involuntary_switches": sum(x.involuntary_switches for x in loads),
            "busy": any(x.other_cores >= BUSY_CORES for x in loads)}


def _self_ratio(bench: S.Benchmark) -> S.Ratio:
    # a benchmark against itself is 1 exactly: resampling the same samples twice is no interval of anything
    parts = S.paired_by_process(bench, bench)
    return S.Ratio(1.0, 1.0, 1.0, pairs=sum(a.size for a, _ in parts.values()), processes=max(1, len(parts)),
                   processes_planned=S.processes_planned(bench),
                   scope="processes" if len(parts) > 1 else "within-process", between_sd=0.0, within_sd=0.0)


def _ratios(pairs: list[tuple[S.Benchmark, S.Benchmark]]) -> list[S.Ratio | None]:
    """Every (reference, benchmark) pair's ratio, computed together (``summaries.ratios``)."""
    others = [i for i, (base, bench) in enumerate(pairs) if base is not bench]
    computed = dict(zip(others, S.ratios([pairs[i] for i in others]), strict=True))
    return [computed[i] if i in computed else _self_ratio(bench) for i, (_, bench) in enumerate(pairs)]


def _group_rows(group: list[S.Benchmark], cx: dict[str, ComplexityRecord],
                peaks: dict[str, float]) -> list[dict[str, Any]]:
    base = group[S.base_index(group)]
    plains = [group[at] if at is not None else None for at in S.plain_indices(group)]
    # every ratio of the group at once: ÷ the base, then ÷ each plain counterpart
    with_plain = [(plain, bench) for plain, bench in zip(plains, group, strict=True) if plain is not None]
    computed = iter(_ratios([(base, bench) for bench in group] + with_plain))
    base_ratios = [next(computed) for _ in group]
    rows = []
    for bench, plain, base_ratio in zip(group, plains, base_ratios, strict=True):
        mine, base_cx = cx.get(bench.label), cx.get(base.label)
        plain_cx = cx.get(plain.label) if plain else None
        macs, activations = (mine.macs, mine.activations) if mine else (None, None)
        mem = bench.iter_peak_mem_bytes
        row = {"kind": bench.kind, **_model_fields(bench), "batch_size": bench.batch_size, "device": bench.device,
               "dtype": bench.dtype, "channels_last": bench.channels_last, "compile": bench.compile,
               "mode": bench.mode, "threads": bench.threads, "timer": bench.timer, "rounds": bench.rounds,
               "timed_s": bench.timed_s, **_stats(bench), **_load_columns(bench),
               **_loop_stats(bench, macs, peaks.get(bench.dtype)),
               "peak_mem_bytes": bench.peak_mem_bytes, "iter_peak_mem_bytes": mem,
               "mem_method": bench.mem_method, "params": mine.params if mine else None, "macs": macs,
               "activations": activations, "base": base.label,
               **_ratio_columns("base", base_ratio),
               "macs_ratio_base": S.value_ratio(macs, base_cx.macs if base_cx else None),
               "iter_peak_mem_ratio_base": S.value_ratio(mem, base.iter_peak_mem_bytes)}
        if plain is not None:
            row.update({"plain": plain.label, **_ratio_columns("plain", next(computed)),
                        "macs_ratio_plain": S.value_ratio(macs, plain_cx.macs if plain_cx else None),
                        "activations_ratio_plain": S.value_ratio(activations,
                                                                 plain_cx.activations if plain_cx else None),
                        "iter_peak_mem_ratio_plain": S.value_ratio(mem, plain.iter_peak_mem_bytes)})
        rows.append(row)
    return rows


def _timing_rows(run: RunData, kind: str, *, by_round: bool) -> list[dict[str, Any]]:
    benches = S.benchmarks(run, kind)
    if by_round:
        benches = [one for b in benches for one in b.split_rounds()]
    S.compute_statistics(benches)
    groups: dict[tuple[Any, ...], list[S.Benchmark]] = defaultdict(list)
    for b in benches:
        key = (*b.group, b.round)
        groups[key].append(b)
    cx = S.complexity_of(run)
    peaks = {r.dtype: r.peak_gmacs_per_s for r in run.of_type(PeakRecord)}
    eager = _eager_columns(benches)
    rows = []
    for group in groups.values():
        for row, bench in zip(_group_rows(group, cx, peaks), group, strict=True):
            row.update(eager.get(id(bench), {}), **_compile_columns(bench))
            rows.append({**row, "round": bench.round} if by_round else row)
    return rows


def _eager_columns(benches: list[S.Benchmark]) -> dict[int, dict[str, Any]]:
    """id(benchmark) → its ratio to the same model's eager fp32 (same kind, batch size, device and round, paired
    when timed in one group: a timing section with ``modes``), as ``ratio_base`` is (a time ratio for latency, an
    images/s ratio for loops)."""
    eager: dict[tuple[Any, ...], S.Benchmark] = {}
    for b in benches:
        if b.mode == EAGER:
            eager.setdefault(_same_model(b), b)
    pairs = [(eager[_same_model(b)], b) for b in benches if b.mode != EAGER and _same_model(b) in eager]
    out = {id(b): {"eager_mode": EAGER, **_ratio_columns("eager", r)}
           for (_, b), r in zip(pairs, S.ratios(pairs), strict=True)}
    out.update({id(b): {"eager_mode": EAGER} for b in eager.values()})
    return out


def _same_model(bench: S.Benchmark) -> tuple[Any, ...]:
    return (bench.label, bench.key.options, bench.batch_size, bench.device, bench.kind, bench.round)


def _compile_columns(bench: S.Benchmark) -> dict[str, Any]:
    """A compiled benchmark's compile time (the first process's, and the median of the later ones'), graphs and graph
    breaks (its first round's)."""
    first = bench.first
    seconds = first.compile_s or []
    return {"compile_s": seconds[0] if seconds else None,
            "compile_s_later": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
            "compiled_graphs": first.compiled_graphs, "graph_breaks": first.graph_breaks}


# ---------------------------------------------------------------------------------------- other kinds


def _simple_rows(run: RunData, kind: str) -> list[dict[str, Any]]:
    rows = []
    for r in run.of_kind(kind):
        row = {c: getattr(r, c, None) for c in COLUMNS[kind]}  # a record type's declared scalar fields
        if kind != "peak":
            row.update(_model_fields(r))
        if isinstance(r, TrainRecord):
            row["world_size"] = r.distributed.world_size if r.distributed else None
        rows.append(row)
    return rows


def frame(run: RunData, kind: str, *, by_round: bool = False) -> pd.DataFrame:
    """Tidy DataFrame of ``run``'s ``kind`` records (status ok); see the module docstring for the rows."""
    if kind not in COLUMNS:
        raise ConfigError(f"unknown kind {kind!r} for a results frame; choose one of {', '.join(KINDS)}")
    if by_round and kind not in SAMPLED_KINDS:
        raise ConfigError(f"by_round applies to timed kinds ({', '.join(SAMPLED_KINDS)}), not {kind!r}")
    if kind in SAMPLED_KINDS:
        rows = _timing_rows(run, kind, by_round=by_round)
    elif kind == "complexity":
        rows = _complexity_rows(run)
    elif kind == "modules":
        rows = _module_rows(run)
    else:
        rows = _simple_rows(run, kind)
    env = environment_columns(run.typed_manifest)
    columns = ["run_id", *COLUMNS[kind], *(["round"] if by_round else []), *ENV_COLUMNS]
    return pd.DataFrame([{**row, **env} for row in rows], columns=columns)
