"""A run's timing records as benchmarks (rounds pooled), their ratios with bootstrap CIs, and each model's plain
counterpart — the numbers the report, ``frame()``, ``compare`` and ``history`` all read, computed in one place.

A benchmark is identified by its ``BenchmarkKey`` (model, label, options, batch size, device, dtype, memory format,
compile mode, kind): the one key that the report, frames, export, compare, history and the regression gate use. Two
benchmarks timed together (one timing group, ``harness.measure.timer.time_group``) are compared from their paired
samples, pooled over the worker processes they were timed in (``harness.measure.stats.process_ratio``: each process's
estimate, ``ESTIMATOR``, and a t-interval over the processes; one process: a bootstrap over its cycles). Runs
from before the paired engine fall back to ratios of medians (latency) and of pooled images/s (throughput) with
independent bootstraps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.fileio import canonical_json
from harness.measure.mode import mode_label
from harness.measure.stats import (
    Summary,
    bootstrap_ci,
    bootstrap_cis,
    process_ratio,
    ratio_of_medians_ci,
    row_mean,
    summarize,
    summarize_many,
)
from harness.results.records import LOOP_KINDS

if TYPE_CHECKING:
    from harness.results.store import RunData

KEY_FIELDS = ("model", "label", "options", "batch_size", "device", "dtype", "channels_last", "compile", "kind")
# The base network of the reports' ratios, as in the paper's Table 2 ("÷ ResNeXt-50").
BASE_MODEL = "resnext50"
# Fewer common cycles than this and a ratio is not called paired (a bootstrap over 2 cycles says nothing).
PAIRED_MIN_CYCLES = 3
# A 99th percentile from fewer samples is the maximum or next to it, not an estimate.
P99_MIN_SAMPLES = 100


def _canonical(value: Any) -> Any:
    # Dicts and lists are not hashable; canonical JSON keeps equal values equal across sources.
    return canonical_json(value) if isinstance(value, (dict, list)) else value


@dataclass(frozen=True)
class BenchmarkKey:
    """Identity of one benchmark; equal keys on both sides of a comparison are compared."""

    model: str
    label: str
    options: str  # canonical JSON of the options dict, so the key stays hashable
    batch_size: int | None
    device: str | None
    dtype: str | None
    channels_last: bool | None
    compile: Any
    kind: str

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> BenchmarkKey:
        values = {name: _canonical(fields.get(name)) for name in KEY_FIELDS}
        if values["options"] is None:
            values["options"] = "{}"
        values["channels_last"] = bool(values["channels_last"])  # absent in older records: not channels_last
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in KEY_FIELDS}
        out["options"] = json.loads(self.options)
        return out

    def without(self, *names: str) -> tuple[Any, ...]:
        """The key's values less ``names`` (``compare`` lines up a CPU and a GPU run without the device)."""
        return tuple(getattr(self, n) for n in KEY_FIELDS if n not in names)

    def sort_key(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name)) for name in KEY_FIELDS)

    @property
    def mode(self) -> str:
        """Device, the mode label and (unless latency) the kind: ``cpu fp32`` or ``cuda bf16, channels_last``."""
        mode = mode_label(self.dtype or "?", channels_last=self.channels_last, compile=self.compile)
        text = f"{self.device or '?'} {mode}"
        return text if self.kind == "latency" else f"{text} {self.kind}"



@dataclass(frozen=True)
class Ratio:
    value: float
    low: float
    high: float
    pairs: int = 0  # cycles the ratio was paired over (0: unpaired, from runs before the paired engine)
    processes: int = 1  # worker processes it was pooled over (its interval's degrees of freedom + 1)
    processes_planned: int = 1  # processes the run asked for (fewer timed: some failed)
    scope: str = "within-process"  # "processes": the interval covers process-level effects; else cycles only
    between_sd: float = float("nan")  # spread of the per-process estimates (log scale, ~relative)
    within_sd: float = float("nan")  # typical spread of one cycle's ratio inside a process (log scale)
    contended: int = 0  # processes timed while other processes oversubscribed the cores


@dataclass(frozen=True)
class Benchmark:
    """Every round of one benchmark of one run, pooled."""

    key: BenchmarkKey
    fields: dict[str, Any]
    records: tuple[dict[str, Any], ...] = field(repr=False)

    @property
    def kind(self) -> str:
        return self.fields["kind"]

    @property
    def label(self) -> str:
        return self.fields["label"]

    @property
    def mode(self) -> str:
        return mode_label(self.fields["dtype"], channels_last=self.fields["channels_last"],
                          compile=self.fields["compile"])

    @property
    def group(self) -> tuple[Any, ...]:
        """Benchmarks compared with each other inside a run: same kind, batch size, mode and device."""
        return self.kind, self.fields["batch_size"], self.mode, self.fields["device"]

    @cached_property
    def samples_ms(self) -> np.ndarray:
        return np.asarray([x for r in self.records for x in r.get("samples_ms") or ()], dtype=np.float64)

    @cached_property
    def summary(self) -> Summary | None:
        return summarize(self.samples_ms) if self.samples_ms.size else None

    @cached_property
    def loop_s(self) -> np.ndarray:
        return np.asarray([s for r in self.records for s in r.get("loop_samples_s") or ()], dtype=np.float64)

    @cached_property
    def s_per_image(self) -> np.ndarray:
        """Seconds per image of every timed loop (a record's images are spread evenly over its loops)."""
        out = [s / (r["images"] / len(r["loop_samples_s"]))
               for r in self.records if r.get("loop_samples_s") for s in r["loop_samples_s"]]
        return np.asarray(out, dtype=np.float64)

    @cached_property
    def img_per_s_ci(self) -> tuple[float, float] | None:
        """Bootstrap 95% CI of images/s (1 ÷ mean seconds per image, over loops)."""
        return _img_per_s_cis([self])[0]

    @cached_property
    def contention(self) -> dict[ProcessId, bool]:
        """Which of the processes that timed it were contended (process → contended)."""
        return _contention(self)

    @cached_property
    def by_process(self) -> dict[ProcessId, tuple[tuple[tuple[str, int], ...], np.ndarray]]:
        """Per process (in order), its (pairing, cycle) keys in order and the time of one item (ms per iteration,
        or s per image for loops) in each: what ``paired_by_process`` pairs."""
        return _by_process(self)

    @property
    def img_per_s(self) -> float | None:
        seconds = float(self.loop_s.sum())
        images = sum(r.get("images", 0) for r in self.records if r.get("loop_samples_s"))
        return images / seconds if seconds > 0 else None

    @property
    def rounds(self) -> int:
        return len(self.records)

    @property
    def timed_s(self) -> float:
        return float(sum(r.get("wall_s", 0.0) for r in self.records))

    def max_of(self, name: str) -> Any:
        values = [r[name] for r in self.records if r.get(name) is not None]
        return max(values) if values else None

    def first_of(self, name: str) -> Any:
        return next((r[name] for r in self.records if r.get(name) is not None), None)


def benchmarks(run: RunData | Iterable[Mapping[str, Any]], kind: str) -> list[Benchmark]:
    """Benchmarks of ``kind`` (a run's, or of ``ok`` records) in the order they first ran; records without samples
    are left out. The one grouping of records into benchmarks."""
    records = run.of_kind(kind) if hasattr(run, "of_kind") else \
        [r for r in run if r.get("kind") == kind and r.get("status") == "ok"]
    pooled: dict[BenchmarkKey, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("samples_ms") or r.get("loop_samples_s"):
            pooled.setdefault(BenchmarkKey.from_fields(r), []).append(r)
    out = []
    for key, records in pooled.items():
        first = records[0]
        fields = {n: first.get(n) for n in KEY_FIELDS}
        fields.update(options=first.get("options") or {}, canonical_options=first.get("canonical_options"),
                      dtype=first.get("dtype", "fp32"), channels_last=bool(first.get("channels_last")),
                      input_size=first.get("input_size"))
        if "plain" in first:
            fields["plain"] = first["plain"]
        out.append(Benchmark(key=key, fields=fields, records=tuple(records)))
    return out


def failed_tasks(records: Iterable[Mapping[str, Any]], kinds: Sequence[str]) -> tuple[str, ...]:
    """One line per task of ``kinds`` that ended in an error: what a gate cannot judge and an export leaves out."""
    out = []
    for rec in records:
        if rec.get("status") == "error" and rec.get("kind") in kinds:
            error = rec.get("error") if isinstance(rec.get("error"), dict) else {}
            message = " ".join(str(error.get("message", "")).split())[:200]
            out.append(f"{rec.get('kind')} task {rec.get('task_id')!r} ({rec.get('label') or rec.get('model')}, "
                       f"batch {rec.get('batch_size')}) failed: {error.get('type', 'error')}: {message}")
    return tuple(out)


# ------------------------------------------------------------------------------------------------- ratios


def _ratio_of_mean_s(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def _inverse_mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return 1.0 / row_mean(np.moveaxis(x, axis, -1))


def img_per_s_ci(bench: Benchmark) -> tuple[float, float] | None:
    """Bootstrap 95% CI of images/s (1 ÷ mean seconds per image, over loops)."""
    return bench.img_per_s_ci


def _img_per_s_cis(benches: Sequence[Benchmark]) -> list[tuple[float, float] | None]:
    """Each benchmark's images/s interval, one bootstrap per loop count (``stats.bootstrap_cis``)."""
    out: list[tuple[float, float] | None] = [None] * len(benches)
    by_size: dict[int, list[int]] = {}
    for i, bench in enumerate(benches):
        spi = bench.s_per_image
        if spi.size < 3 or np.ptp(spi) == 0.0:
            rate = bench.img_per_s
            out[i] = None if rate is None else (rate, rate)
        else:
            by_size.setdefault(spi.size, []).append(i)
    for indices in by_size.values():
        low, high = bootstrap_cis((np.stack([benches[i].s_per_image for i in indices]),), _inverse_mean)
        for i, lo, hi in zip(indices, low, high, strict=True):
            out[i] = float(lo), float(hi)
    return out


def compute_statistics(benches: Sequence[Benchmark]) -> None:
    """Compute the summaries and images/s intervals of many benchmarks at once, cached on each: the numbers their
    properties give one by one, with one bootstrap per sample count instead of one per benchmark (a report of a
    large run has thousands)."""
    todo = [b for b in benches if "summary" not in b.__dict__ and b.samples_ms.size]
    for bench, summary in zip(todo, summarize_many([b.samples_ms for b in todo]), strict=True):
        bench.__dict__["summary"] = summary  # what the cached_property stores
    loops = [b for b in benches if b.kind in LOOP_KINDS and "img_per_s_ci" not in b.__dict__]
    for bench, ci in zip(loops, _img_per_s_cis(loops), strict=True):
        bench.__dict__["img_per_s_ci"] = ci


ProcessId = tuple[str, int]


def _contended_of(r: Mapping[str, Any]) -> dict[ProcessId, bool]:
    """Which processes that timed record ``r`` were contended (none known before the process level)."""
    runs = {run["index"]: run for run in r.get("process_runs") or ()}
    if r.get("processes") is None or not runs:
        return {}
    session = str(r.get("pairing") or "")
    return {(session, i): bool(run.get("contended")) for i, run in runs.items() if not run.get("error")}


def _by_process(bench: Benchmark) -> dict[ProcessId, tuple[tuple[tuple[str, int], ...], np.ndarray]]:
    """``Benchmark.by_process``: per process, (pairing, cycle) → time, a later record's sample of a cycle replacing an
    earlier one's."""
    groups: dict[ProcessId, dict[tuple[str, int], float]] = {}
    for r in bench.records:
        cycles = r.get("cycles") or ()
        if bench.kind in LOOP_KINDS:
            loops = r.get("loop_samples_s") or ()
            per_loop = r["images"] / len(loops) if loops else 0
            values = [s / per_loop for s in loops] if per_loop else []
        else:
            values = r.get("samples_ms") or ()
        runs = {run["index"]: run for run in r.get("process_runs") or ()}
        # runs timed before the process level have no ``processes``: all their samples are one process (rounds
        # were sessions of the same process), paired by the record's ``pairing``
        if r.get("processes") is None or not runs:
            processes: Sequence[int] = [0] * len(r.get("samples_ms") or ())
            ids, pairings = {0: ("", 0)}, {0: r.get("pairing")}
        else:
            processes = r["processes"]
            session = str(r.get("pairing") or "")
            ids = {i: (session, int(i)) for i in runs}
            pairings = {i: run.get("pairing") for i, run in runs.items()}
        if len(values) == len(cycles) == len(processes):
            for p, cycle, value in zip(processes, cycles, values, strict=True):
                if pairings[p]:
                    groups.setdefault(ids[p], {})[(pairings[p], int(cycle))] = float(value)
    out = {}
    for process in sorted(groups):
        keys = sorted(groups[process])
        out[process] = tuple(keys), np.asarray([groups[process][k] for k in keys], dtype=np.float64)
    return out


def contended_processes(bench: Benchmark) -> dict[ProcessId, bool]:
    return bench.contention


def _contention(bench: Benchmark) -> dict[ProcessId, bool]:
    out: dict[ProcessId, bool] = {}
    for r in bench.records:
        out.update(_contended_of(r))
    return out


def processes_planned(bench: Benchmark) -> int:
    return max((int(r.get("processes_planned") or 1) for r in bench.records), default=1)


def paired_by_process(base: Benchmark, other: Benchmark) -> dict[ProcessId, tuple[np.ndarray, np.ndarray]]:
    """Per process, the two benchmarks' samples taken in the same cycles (in cycle order)."""
    a, b = base.by_process, other.by_process
    out: dict[ProcessId, tuple[np.ndarray, np.ndarray]] = {}
    for process in sorted(a.keys() & b.keys()):
        (keys_a, times_a), (keys_b, times_b) = a[process], b[process]
        if keys_a == keys_b:  # models timed in one group: the same cycles, the common case
            out[process] = times_a, times_b
            continue
        common = sorted(set(keys_a) & set(keys_b))
        if common:
            at_a, at_b = {k: i for i, k in enumerate(keys_a)}, {k: i for i, k in enumerate(keys_b)}
            out[process] = times_a[[at_a[k] for k in common]], times_b[[at_b[k] for k in common]]
    return out


def paired_samples(base: Benchmark, other: Benchmark) -> tuple[np.ndarray, np.ndarray]:
    """The two benchmarks' samples taken in the same cycles of the same sessions, in process and cycle order."""
    parts = list(paired_by_process(base, other).values())
    if not parts:
        return np.asarray([], dtype=np.float64), np.asarray([], dtype=np.float64)
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def ratio(base: Benchmark, other: Benchmark) -> Ratio | None:
    """``other`` ÷ ``base``: latency ratio, or images/s ratio for loop kinds, with a 95% CI.

    Paired when both were timed together (``time_group``): pooled over the worker processes they were timed in
    (``process_ratio``: each process's estimate, a t-interval with the processes' degrees of freedom); a run of
    one process gets a bootstrap over its cycles, marked within-process. Runs from before the paired engine fall
    back to the ratio of pooled statistics.
    """
    parts = paired_by_process(base, other)
    cycles = sum(a.size for a, _ in parts.values())
    if cycles >= PAIRED_MIN_CYCLES:
        # latency: other's time ÷ base's; loops: images/s ratio = base's time per image ÷ other's
        pairs = [(a, b) if base.kind not in LOOP_KINDS else (b, a) for a, b in parts.values()]
        p = process_ratio(pairs)
        contention = {**contended_processes(base), **contended_processes(other)}
        return Ratio(p.value, p.low, p.high, pairs=p.cycles, processes=p.processes,
                     processes_planned=max(processes_planned(base), processes_planned(other)), scope=p.scope,
                     between_sd=p.between_sd, within_sd=p.within_sd,
                     contended=sum(bool(contention.get(k)) for k in parts))
    if base.kind in LOOP_KINDS:
        a, b = base.s_per_image, other.s_per_image
        rate_a, rate_b = base.img_per_s, other.img_per_s
        if not a.size or not b.size or not rate_a or not rate_b:
            return None
        value = rate_b / rate_a
        if min(a.size, b.size) < 3 or (np.ptp(a) == 0.0 and np.ptp(b) == 0.0):
            return Ratio(value, value, value)
        low, high = bootstrap_ci((a, b), _ratio_of_mean_s)
        return Ratio(value, low, high)
    if not base.samples_ms.size or not other.samples_ms.size:
        return None
    return Ratio(*ratio_of_medians_ci(base.samples_ms, other.samples_ms))


# --------------------------------------------------------------------------------------- plain counterpart


def base_index(items: Sequence[dict[str, Any]]) -> int:
    """Index of the Table 2 reference (plain ResNeXt-50 without options), else of the first item."""
    for i, item in enumerate(items):
        if item.get("model") == BASE_MODEL and not item.get("options"):
            return i
    return 0


def complexity_of(run: RunData) -> dict[str, dict[str, Any]]:
    """label → its (first) complexity record."""
    out: dict[str, dict[str, Any]] = {}
    for r in run.of_kind("complexity"):
        out.setdefault(r["label"], r)
    return out


def value_ratio(a: Any, b: Any) -> float | None:
    """``a / b`` for numbers, None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)
