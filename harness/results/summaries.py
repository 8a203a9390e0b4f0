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
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from harness.fileio import canonical_json
from harness.measure.mode import mode_label
from harness.measure.stats import (
    BootstrapRequest,
    Summary,
    bootstrap_cis,
    bootstrap_many,
    process_ratios,
    ratio_of_medians_cis,
    row_mean,
    summarize,
    summarize_many,
)
from harness.results.records import (
    LOOP_KINDS,
    ComplexityRecord,
    FailedRecord,
    RecordBase,
    ThroughputRecord,
    TimedRecord,
)

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
        """The key of a benchmark described by a JSON object (a baseline file's ``key``, a gate spec)."""
        values = {name: _canonical(fields.get(name)) for name in KEY_FIELDS}
        if values["options"] is None:
            values["options"] = "{}"
        values["channels_last"] = bool(values["channels_last"])  # absent in older records: not channels_last
        return cls(**values)

    @classmethod
    def of(cls, record: TimedRecord) -> BenchmarkKey:
        """The key of the benchmark ``record`` is a round of."""
        return cls(model=str(record.model), label=str(record.label), options=canonical_json(record.options or {}),
                   batch_size=record.batch_size, device=record.device, dtype=record.dtype,
                   channels_last=bool(record.channels_last), compile=_canonical(record.compile), kind=record.kind)

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
    """Every round of one benchmark of one run, pooled (``round``: the one round it holds, when split by round)."""

    key: BenchmarkKey
    records: tuple[TimedRecord, ...] = field(repr=False)
    round: int | None = None

    @property
    def first(self) -> TimedRecord:
        """The benchmark's first round: its model, options and mode as the run wrote them."""
        return self.records[0]

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def label(self) -> str:
        return self.key.label

    @property
    def model(self) -> str:
        return self.key.model

    @property
    def options(self) -> dict[str, Any]:
        return self.first.options or {}

    @property
    def batch_size(self) -> int | None:
        return self.key.batch_size

    @property
    def device(self) -> str | None:
        return self.key.device

    @property
    def dtype(self) -> str:
        return self.first.dtype or "fp32"

    @property
    def channels_last(self) -> bool:
        return self.key.channels_last or False

    @property
    def compile(self) -> Any:
        return self.first.compile

    @property
    def mode(self) -> str:
        return mode_label(self.dtype, channels_last=self.channels_last, compile=self.compile)

    @property
    def group(self) -> tuple[Any, ...]:
        """Benchmarks compared with each other inside a run: same kind, batch size, mode and device."""
        return self.kind, self.batch_size, self.mode, self.device

    def split_rounds(self) -> list[Benchmark]:
        """One benchmark per round (record) of this one."""
        return [Benchmark(key=self.key, records=(r,), round=r.round) for r in self.records]

    @cached_property
    def samples_ms(self) -> np.ndarray:
        return np.asarray([x for r in self.records for x in r.samples_ms], dtype=np.float64)

    @cached_property
    def summary(self) -> Summary | None:
        return summarize(self.samples_ms) if self.samples_ms.size else None

    @cached_property
    def loop_s(self) -> np.ndarray:
        return np.asarray([s for r in self.records for s in _loops(r)], dtype=np.float64)

    @cached_property
    def s_per_image(self) -> np.ndarray:
        """Seconds per image of every timed loop (``loop_s_per_image``)."""
        out = [s for r in self.records if isinstance(r, ThroughputRecord) for s in loop_s_per_image(r)]
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
        images = sum(r.images for r in self.records if isinstance(r, ThroughputRecord) and r.loop_samples_s)
        return images / seconds if seconds > 0 else None

    @property
    def rounds(self) -> int:
        return len(self.records)

    @property
    def timed_s(self) -> float:
        return float(sum(r.wall_s or 0.0 for r in self.records))

    @property
    def peak_mem_bytes(self) -> int | None:
        return max((r.peak_mem_bytes for r in self.records if r.peak_mem_bytes is not None), default=None)

    @property
    def iter_peak_mem_bytes(self) -> int | None:
        return max((r.iter_peak_mem_bytes for r in self.records if r.iter_peak_mem_bytes is not None), default=None)

    @property
    def threads(self) -> int | None:
        return next((r.threads for r in self.records if r.threads is not None), None)

    @property
    def timer(self) -> str | None:
        return next((r.timer for r in self.records if r.timer is not None), None)

    @property
    def mem_method(self) -> str | None:
        return next((r.mem_method for r in self.records if r.mem_method is not None), None)


def loop_s_per_image(record: ThroughputRecord) -> list[float]:
    """Seconds per image of each of the record's loops: the loop's mean iteration time (``samples_ms``) ÷ the batch.
    Each worker process sizes its loops from its own warm-up, so loops of one record may hold different numbers of
    iterations; a record without one sample per loop or without a batch size (hand-written) spreads its images
    evenly over its loops."""
    loops = record.loop_samples_s
    if record.batch_size and len(record.samples_ms) == len(loops):
        return [ms / 1e3 / record.batch_size for ms in record.samples_ms]
    per_loop = record.images / len(loops) if loops else 0
    return [s / per_loop for s in loops] if per_loop else []


def _loops(record: TimedRecord) -> list[float]:
    return record.loop_samples_s if isinstance(record, ThroughputRecord) else []


def benchmarks(run: RunData | Iterable[RecordBase], kind: str) -> list[Benchmark]:
    """Benchmarks of ``kind`` (a run's, or of ``ok`` records) in the order they first ran; records without samples
    are left out. The one grouping of records into benchmarks."""
    records = run.records if hasattr(run, "records") else run
    pooled: dict[BenchmarkKey, list[TimedRecord]] = {}
    for r in records:
        if isinstance(r, TimedRecord) and r.kind == kind and (r.samples_ms or _loops(r)):
            pooled.setdefault(BenchmarkKey.of(r), []).append(r)
    return [Benchmark(key=key, records=tuple(records)) for key, records in pooled.items()]


def failed_tasks(records: Iterable[RecordBase], kinds: Sequence[str]) -> tuple[str, ...]:
    """One line per task of ``kinds`` that ended in an error: what a gate cannot judge and an export leaves out."""
    out = []
    for rec in records:
        if isinstance(rec, FailedRecord) and rec.kind in kinds:
            message = " ".join(rec.error.message.split())[:200]
            out.append(f"{rec.kind} task {rec.task_id!r} ({rec.label or rec.model}, batch {rec.batch_size}) failed: "
                       f"{rec.error.type}: {message}")
    return tuple(out)


# ------------------------------------------------------------------------------------------------- ratios


def _ratio_of_mean_s(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(row_mean(np.moveaxis(a, axis, -1)) / row_mean(np.moveaxis(b, axis, -1)))


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
    properties give one by one, with one bootstrap of images/s per sample count instead of one per benchmark (a
    report of a large run has thousands)."""
    todo = [b for b in benches if "summary" not in b.__dict__ and b.samples_ms.size]
    summaries = summarize_many([b.samples_ms for b in todo])
    for bench, summary in zip(todo, summaries, strict=True):
        bench.__dict__["summary"] = summary  # what the cached_property stores
    loops = [b for b in benches if b.kind in LOOP_KINDS and "img_per_s_ci" not in b.__dict__]
    for bench, ci in zip(loops, _img_per_s_cis(loops), strict=True):
        bench.__dict__["img_per_s_ci"] = ci


ProcessId = tuple[str, int]


def _contended_of(r: TimedRecord) -> dict[ProcessId, bool]:
    """Which processes that timed record ``r`` were contended (none known before the process level)."""
    runs = {run.index: run for run in r.process_runs or ()}
    if r.processes is None or not runs:
        return {}
    session = r.pairing or ""
    return {(session, i): run.contended for i, run in runs.items() if not run.error}


def _by_process(bench: Benchmark) -> dict[ProcessId, tuple[tuple[tuple[str, int], ...], np.ndarray]]:
    """``Benchmark.by_process``: per process, (pairing, cycle) → time, a later record's sample of a cycle replacing an
    earlier one's."""
    groups: dict[ProcessId, dict[tuple[str, int], float]] = {}
    for r in bench.records:
        cycles = r.cycles or ()
        values: Sequence[float]
        if isinstance(r, ThroughputRecord):
            values = loop_s_per_image(r)
        else:
            values = r.samples_ms
        runs = {run.index: run for run in r.process_runs or ()}
        # runs timed before the process level have no ``processes``: all their samples are one process (rounds
        # were sessions of the same process), paired by the record's ``pairing``
        processes: Sequence[int]
        if r.processes is None or not runs:
            processes = [0] * len(r.samples_ms)
            ids, pairings = {0: ("", 0)}, {0: r.pairing}
        else:
            processes = r.processes
            session = r.pairing or ""
            ids = {i: (session, i) for i in runs}
            pairings = {i: run.pairing for i, run in runs.items()}
        if len(values) == len(cycles) == len(processes):
            # the samples sorted by process (stably: a later sample of a cycle still replaces an earlier), then each
            # process's in one dict update
            order = np.argsort(np.asarray(processes), kind="stable")
            process_of: list[int] = np.asarray(processes)[order].tolist()
            cycle_of: list[int] = np.asarray(cycles)[order].tolist()
            time_of: list[float] = np.asarray(values, np.float64)[order].tolist()
            start = 0
            while start < len(process_of):
                index = process_of[start]
                end = bisect_right(process_of, index, lo=start)
                if pairing := pairings[index]:
                    groups.setdefault(ids[index], {}).update(
                        zip(zip(repeat(pairing), cycle_of[start:end], strict=False), time_of[start:end], strict=True))
                start = end
    out = {}
    for process in sorted(groups):
        times = groups[process]
        keys = sorted(times)
        out[process] = tuple(keys), np.fromiter(map(times.__getitem__, keys), np.float64, len(keys))
    return out


def contended_processes(bench: Benchmark) -> dict[ProcessId, bool]:
    return bench.contention


def _contention(bench: Benchmark) -> dict[ProcessId, bool]:
    out: dict[ProcessId, bool] = {}
    for r in bench.records:
        out.update(_contended_of(r))
    return out


def processes_planned(bench: Benchmark) -> int:
    return max((r.processes_planned or 1 for r in bench.records), default=1)


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
    return ratios([(base, other)])[0]


def ratios(pairs: Sequence[tuple[Benchmark, Benchmark]]) -> list[Ratio | None]:
    """``ratio(base, other)`` of every pair, the same numbers; their bootstraps taken together (``process_ratios``,
    ``ratio_of_medians_cis``, ``bootstrap_many``): a report of a large run asks for thousands."""
    out: list[Ratio | None] = [None] * len(pairs)
    paired: list[tuple[int, dict[ProcessId, tuple[np.ndarray, np.ndarray]]]] = []
    loops: list[tuple[int, float]] = []
    loop_requests: list[BootstrapRequest] = []
    medians: list[int] = []
    for i, (base, other) in enumerate(pairs):
        parts = paired_by_process(base, other)
        if sum(a.size for a, _ in parts.values()) >= PAIRED_MIN_CYCLES:
            paired.append((i, parts))
        elif base.kind in LOOP_KINDS:
            a, b = base.s_per_image, other.s_per_image
            rate_a, rate_b = base.img_per_s, other.img_per_s
            if not a.size or not b.size or not rate_a or not rate_b:
                continue
            value = rate_b / rate_a
            if min(a.size, b.size) < 3 or (np.ptp(a) == 0.0 and np.ptp(b) == 0.0):
                out[i] = Ratio(value, value, value)
            else:
                loops.append((i, value))
                loop_requests.append(((a, b), _ratio_of_mean_s, False))
        elif base.samples_ms.size and other.samples_ms.size:
            medians.append(i)
    # latency: other's time ÷ base's; loops: images/s ratio = base's time per image ÷ other's
    # arrays, which process_ratios reads as sequences of floats
    pooled = process_ratios([cast(list[tuple[Sequence[float], Sequence[float]]],
                                  [(a, b) if pairs[i][0].kind not in LOOP_KINDS else (b, a) for a, b in parts.values()])
                             for i, parts in paired])
    for (i, parts), p in zip(paired, pooled, strict=True):
        base, other = pairs[i]
        contention = {**contended_processes(base), **contended_processes(other)}
        out[i] = Ratio(p.value, p.low, p.high, pairs=p.cycles, processes=p.processes,
                       processes_planned=max(processes_planned(base), processes_planned(other)), scope=p.scope,
                       between_sd=p.between_sd, within_sd=p.within_sd,
                       contended=sum(bool(contention.get(k)) for k in parts))
    for (i, value), (low, high) in zip(loops, bootstrap_many(loop_requests), strict=True):
        out[i] = Ratio(value, low, high)
    unpaired = ratio_of_medians_cis([(pairs[i][0].samples_ms, pairs[i][1].samples_ms) for i in medians])
    for i, (value, low, high) in zip(medians, unpaired, strict=True):
        out[i] = Ratio(value, low, high)
    return out


# --------------------------------------------------------------------------------------- plain counterpart


def base_index(items: Sequence[RecordBase | Benchmark]) -> int:
    """Index of the Table 2 reference (plain ResNeXt-50 without options), else of the first item."""
    for i, item in enumerate(items):
        first = item.first if isinstance(item, Benchmark) else item
        if first.model == BASE_MODEL and not first.options:
            return i
    return 0


def plain_indices(items: Sequence[RecordBase | Benchmark]) -> list[int | None]:
    """Index in ``items`` of each item's plain counterpart (``harness.models.plain.plain_matches``, which reads the
    identity fields as the records' lines hold them: ``plain`` absent in records from before it was written)."""
    from harness.models.plain import plain_matches

    firsts = [item.first if isinstance(item, Benchmark) else item for item in items]
    return plain_matches([{"model": r.model, "options": r.options, "canonical_options": r.canonical_options,
                           **({"plain": r.plain.to_json() if r.plain else None} if "plain" in r.model_fields_set
                              else {})} for r in firsts])


def complexity_of(run: RunData) -> dict[str, ComplexityRecord]:
    """label → its (first) complexity record."""
    out: dict[str, ComplexityRecord] = {}
    for r in run.of_type(ComplexityRecord):
        out.setdefault(r.label, r)
    return out


def value_ratio(a: Any, b: Any) -> float | None:
    """``a / b`` for numbers, None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)
