"""Benchmark sets, the gate's input: every benchmark's raw samples by round, read from a harness run dir, a baseline
file or a pytest-benchmark JSON file, and baseline files frozen from a run.

``load_benchmarks(path)`` tells the sources apart: a directory is a run dir; a JSON file with ``"format":
"harness-baseline"`` is a baseline; one with ``machine_info`` and ``benchmarks`` is pytest-benchmark output
(``--benchmark-json`` or autosave). Every malformed input is a one-line ``ResultsError`` naming the file and the
entry. A benchmark is identified by ``harness.results.summaries.BenchmarkKey`` (the one key of the project).

The yardstick: a run whose suite sets ``latency.reference: true`` times the fixed reference workload as one more
member of each timing group, so every model's record carries the reference's samples of the same cycles
(``reference_samples_ms``); the gate divides each round's statistic by the reference's (``harness.gate.verdict``).

Baseline file, schema 1::

    {"format": "harness-baseline", "schema": 1, "created_utc", "source_run", "environment", "suite",
     "benchmarks": [{"key": {model, label, options, batch_size, device, dtype, channels_last, compile, kind},
                     "samples_ms", "rounds", "reference_samples_ms", "reference_rounds", "threads"}]}

``reference_rounds`` is aligned with ``rounds`` (``[]`` where a round had none). Files frozen by older versions
may hold ``threshold_pct`` (calibrated thresholds, no longer read: the threshold is the command's) and
``yardstick: round`` (a reference timed as a task of its own, not used).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ResultsError
from harness.fileio import JSONInputError, parse_json, read_input, write_json_atomic
from harness.results import load_run
from harness.results.records import REFERENCE_KIND, TIMED_KINDS, LoadReading, Manifest, RecordBase, TimedRecord
from harness.results.schema import check_schema
from harness.results.store import refuse_run_file
from harness.results.summaries import KEY_FIELDS, BenchmarkKey, benchmarks, failed_tasks

log = logging.getLogger(__name__)

BASELINE_FORMAT = "harness-baseline"
BASELINE_SCHEMA = 1
PYTEST_BENCHMARK_KIND = "pytest-benchmark"

Rounds = tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class BenchSamples:
    """Timing samples of one benchmark by round, with the reference workload's samples of the same rounds (empty
    when there were none). Without raw samples (pytest-benchmark JSON without ``data``) only
    ``summary_median_ms`` is known."""

    rounds: Rounds = ()
    reference_rounds: Rounds = ()
    threads: int | None = None
    summary_median_ms: float | None = None
    summary_n: int = 0

    @property
    def samples_ms(self) -> tuple[float, ...]:
        return tuple(x for r in self.rounds for x in r)

    @property
    def reference_samples_ms(self) -> tuple[float, ...]:
        return tuple(x for r in self.reference_rounds for x in r)

    @property
    def has_raw(self) -> bool:
        return any(self.rounds)

    @property
    def n(self) -> int:
        return len(self.samples_ms) if self.has_raw else self.summary_n

    @property
    def median_ms(self) -> float:
        if self.has_raw:
            return float(np.median(self.samples_ms))
        return math.nan if self.summary_median_ms is None else self.summary_median_ms


@dataclass(frozen=True)
class BenchmarkSet:
    """Benchmarks of one source with the environment they were measured in."""

    environment: dict[str, Any] = field(default_factory=dict)
    benchmarks: dict[BenchmarkKey, BenchSamples] = field(default_factory=dict)
    source: str = ""
    origin: str = ""  # "harness-run" | "harness-baseline" | "pytest-benchmark" | "harness-ab"
    # Timed tasks of this source that ended in an error (one line each): what was not measured cannot pass.
    failed: tuple[str, ...] = ()
    # A merged run's machines, one description each, when its shards were timed on more than one machine.
    machines: tuple[str, ...] = ()
    # Timing processes (or sessions) that ran while other processes oversubscribed the cores, one line each.
    contended: tuple[str, ...] = ()


# --- harness run dirs -------------------------------------------------------------------------------


def float_list(value: Any, *, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ResultsError(f"{where}: expected a list of numbers, got {type(value).__name__}")
    out = tuple(float(x) for x in value)
    if not all(math.isfinite(x) and x > 0.0 for x in out):
        # a zero or non-finite time cannot be measured; left in, it would make every ratio NaN ("unchanged")
        raise ResultsError(f"{where}: timing samples must be finite and positive")
    return out


def _samples_from_records(records: Sequence[TimedRecord], *, where: str) -> BenchSamples:
    """One benchmark's samples by round, each round with the reference workload's samples of the same cycles."""
    by_round: dict[int, list[float]] = {}
    refs: dict[int, list[float]] = {}
    for rec in records:
        task = f"{where}: task {rec.task_id!r}"
        by_round.setdefault(rec.round or 0, []).extend(float_list(rec.samples_ms, where=f"{task} samples_ms"))
        refs.setdefault(rec.round or 0, []).extend(
            float_list(rec.reference_samples_ms or [], where=f"{task} reference_samples_ms"))
    order = sorted(by_round)
    return BenchSamples(rounds=tuple(tuple(by_round[r]) for r in order),
                        reference_rounds=tuple(tuple(refs[r]) for r in order), threads=records[0].threads)


def benchmarks_from_records(records: Sequence[RecordBase], *, where: str) -> dict[BenchmarkKey, BenchSamples]:
    """The run's benchmarks (``harness.results.summaries.benchmarks``, the one grouping), rounds in order."""
    return {bench.key: _samples_from_records(bench.records, where=where)
            for kind in TIMED_KINDS for bench in benchmarks(records, kind)}


def load_run_dir(path: Path) -> tuple[BenchmarkSet, dict[str, Any]]:
    """The benchmark set of a run dir, and its manifest."""
    run = load_run(path)
    environment = run.manifest.get("environment") or {}
    bset = BenchmarkSet(
        environment=dict(environment),
        benchmarks=benchmarks_from_records(run.records, where=str(path)),
        source=str(path),
        origin="harness-run",
        failed=failed_tasks(run.records, (*TIMED_KINDS, REFERENCE_KIND)),
        machines=_shard_machines(run.typed_manifest),
        contended=contended_timings(run.records),
    )
    return bset, run.manifest


def contended_timings(records: Iterable[RecordBase]) -> tuple[str, ...]:
    """One line per timing process (or, in runs from before the process level, per timing session) that ran while
    other processes left fewer free cores than its threads: a slowdown measured then is no regression of the code."""
    from harness.measure.load import Load
    from harness.measure.processes import contended

    out: dict[tuple[Any, ...], str] = {}
    for r in records:
        if not isinstance(r, TimedRecord):
            continue
        threads = r.threads or 1
        runs: list[tuple[int | None, LoadReading | None]] = [(p.index, p.load) for p in r.process_runs or ()]
        for index, load in runs or [(None, r.load)]:
            if load is None:
                continue
            reading = Load(wall_s=load.wall_s, other_cores=load.other_cores, own_cores=load.own_cores,
                           loadavg_1m=load.loadavg_1m, involuntary_switches=load.involuntary_switches,
                           cores=load.cores)
            if contended(reading, threads):
                out[(r.pairing, index)] = (
                    f"{r.label} timed under contention (other processes kept {reading.other_cores:.2f} of "
                    f"{reading.cores} cores busy, {threads} thread{'s' * (threads != 1)})")
    return tuple(out.values())


def _shard_machines(manifest: Manifest) -> tuple[str, ...]:
    """The distinct machines (host, CPU, GPUs) the shards of a merged run were timed on (``results.merge``)."""
    machines = [e.machine for e in manifest.merged_from or () if e.machine is not None]
    names = {", ".join(str(v) for v in (m.hostname, m.cpu, *(m.gpus or [])) if v) for m in machines}
    return tuple(sorted(names))


# --- baseline files -----------------------------------------------------------------------------------


def _parse_rounds(entry: Mapping[str, Any], *, where: str) -> tuple[Rounds, Rounds]:
    raw_rounds = entry.get("rounds", [entry.get("samples_ms")])
    if not isinstance(raw_rounds, list) or not raw_rounds:
        raise ResultsError(f"{where}.rounds: expected a non-empty list of sample lists")
    rounds = tuple(float_list(r, where=f"{where}.rounds[{i}]") for i, r in enumerate(raw_rounds))
    if "samples_ms" in entry:
        flat = float_list(entry["samples_ms"], where=f"{where}.samples_ms")
        if flat != tuple(x for r in rounds for x in r):
            raise ResultsError(f"{where}: samples_ms is not the concatenation of rounds; re-freeze the baseline")
    if "reference_rounds" in entry:
        return rounds, _aligned_rounds(entry["reference_rounds"], len(rounds), where=f"{where}.reference_rounds")
    return rounds, ()


def _aligned_rounds(refs: Any, count: int, *, where: str) -> Rounds:
    if not isinstance(refs, list) or len(refs) != count:
        raise ResultsError(f"{where}: expected one list per round ({count})")
    return tuple(float_list(r, where=f"{where}[{i}]") for i, r in enumerate(refs))


def _parse_entry(entry: Any, *, where: str) -> tuple[BenchmarkKey, BenchSamples]:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict):
        raise ResultsError(f"{where}: expected an object with a 'key' object")
    key_fields = entry["key"]
    missing = [f for f in KEY_FIELDS if f not in key_fields]
    if missing or not isinstance(key_fields.get("model"), str):
        raise ResultsError(f"{where}.key: missing or invalid fields {missing or ['model']}")
    rounds, reference_rounds = _parse_rounds(entry, where=where)
    if entry.get("yardstick") == "round":
        # frozen before the reference was timed in the models' cycles: a yardstick of another kind, not divided by
        log.warning("%s: reference samples of an older kind (a task of their own) are not used; re-freeze the "
                    "baseline to normalise by the reference again", where)
        reference_rounds = ()
    threads = entry.get("threads")
    samples = BenchSamples(rounds=rounds, reference_rounds=reference_rounds,
                           threads=threads if isinstance(threads, int) else None)
    return BenchmarkKey.from_fields(key_fields), samples


def parse_baseline(doc: Mapping[str, Any], *, path: Path) -> BenchmarkSet:
    check_schema(doc, where=str(path), current=BASELINE_SCHEMA, what="baseline", minimum=1,
                 hint="upgrade harness or re-freeze the baseline with this version")
    entries, environment = doc.get("benchmarks"), doc.get("environment", {})
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: 'benchmarks' must be a list")
    if not isinstance(environment, dict):
        raise ResultsError(f"{path}: 'environment' must be an object")
    benchmarks: dict[BenchmarkKey, BenchSamples] = {}
    for i, entry in enumerate(entries):
        key, samples = _parse_entry(entry, where=f"{path}: benchmarks[{i}]")
        if key in benchmarks:
            raise ResultsError(f"{path}: benchmarks[{i}] repeats the key of an earlier entry ({key.label})")
        benchmarks[key] = samples
    return BenchmarkSet(environment=environment, benchmarks=benchmarks, source=str(path), origin=BASELINE_FORMAT)


# --- pytest-benchmark JSON ---------------------------------------------------------------------------


def _pytest_entry(bench: Any, *, where: str) -> tuple[BenchmarkKey, BenchSamples]:
    if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
        raise ResultsError(f"{where}: expected an object with a 'stats' object")
    if not isinstance(bench.get("fullname"), str):
        raise ResultsError(f"{where}: missing string 'fullname'")
    extra: dict[str, Any] = bench["extra_info"] if isinstance(bench.get("extra_info"), dict) else {}
    params: dict[str, Any] = bench["params"] if isinstance(bench.get("params"), dict) else {}
    fields = {f: extra.get(f, params.get(f)) for f in ("batch_size", "device", "dtype", "channels_last", "compile")}
    fields.update(model=bench["fullname"], label=bench.get("name") or bench["fullname"], options=params)
    key = BenchmarkKey.from_fields(dict(fields, kind=PYTEST_BENCHMARK_KIND))
    stats, threads = bench["stats"], extra.get("threads")
    threads = threads if isinstance(threads, int) else None
    # pytest-benchmark stores seconds per iteration; raw `data` only with --benchmark-save-data.
    if "data" in stats:
        data = float_list(stats["data"], where=f"{where}.stats.data")
        # seconds to ms: a time near the float limit becomes inf, which no ratio survives
        return key, BenchSamples(rounds=(float_list([x * 1e3 for x in data], where=f"{where}.stats.data"),),
                                 threads=threads)
    median, n = stats.get("median"), stats.get("rounds")
    if (isinstance(median, bool) or not isinstance(median, (int, float)) or not math.isfinite(median) or median <= 0
            or isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ResultsError(f"{where}.stats: needs a finite positive 'median' and a positive integer 'rounds' when "
                           f"'data' is absent (got {median!r}, {n!r})")
    return key, BenchSamples(summary_median_ms=float(median) * 1e3, summary_n=n, threads=threads)


def _parse_pytest_benchmark(doc: Mapping[str, Any], *, path: Path) -> BenchmarkSet:
    entries = doc.get("benchmarks")
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: 'benchmarks' must be a list")
    benchmarks: dict[BenchmarkKey, BenchSamples] = {}
    for i, bench in enumerate(entries):
        key, samples = _pytest_entry(bench, where=f"{path}: benchmarks[{i}]")
        if key in benchmarks:  # which one to judge? the last would win silently
            raise ResultsError(f"{path}: benchmarks[{i}] repeats an earlier benchmark ({key.label}); a file lists "
                               "each benchmark once")
        benchmarks[key] = samples
    environment: dict[str, Any] = doc["machine_info"] if isinstance(doc.get("machine_info"), dict) else {}
    return BenchmarkSet(environment=environment, benchmarks=benchmarks, source=str(path), origin="pytest-benchmark")


# --- freezing a baseline ----------------------------------------------------------------------------


def _entry_to_dict(key: BenchmarkKey, samples: BenchSamples) -> dict[str, Any]:
    return {
        "key": key.to_dict(),
        "samples_ms": list(samples.samples_ms),
        "rounds": [list(r) for r in samples.rounds],
        "reference_samples_ms": list(samples.reference_samples_ms),
        "reference_rounds": [list(r) for r in samples.reference_rounds],
        "threads": samples.threads,
    }


def freeze_baseline(run_dir: Path, out: Path) -> Path:
    """Write the timing samples of ``run_dir`` to the baseline file ``out`` (atomically); return ``out``."""
    run_dir, out = Path(run_dir), refuse_run_file(Path(out), what="the baseline file")
    bset, manifest = load_run_dir(run_dir)
    if not bset.benchmarks:
        raise ResultsError(
            f"{run_dir}: no ok latency/throughput records with samples_ms to freeze; "
            "run a suite with a latency section first"
        )
    for failed in bset.failed:
        # left out of the baseline: a check can never judge them (it says "could not judge", exit 2)
        log.warning("%s: not frozen, %s", run_dir, failed)
    doc = {
        "format": BASELINE_FORMAT,
        "schema": BASELINE_SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_run": {"path": str(run_dir), "run_id": manifest.get("run_id"), "git": manifest.get("git")},
        "environment": bset.environment,
        "suite": manifest.get("suite_name"),
        "benchmarks": [_entry_to_dict(k, bset.benchmarks[k])
                       for k in sorted(bset.benchmarks, key=BenchmarkKey.sort_key)],
    }
    write_json_atomic(out, doc)
    log.info("froze %d benchmarks of %s into %s", len(bset.benchmarks), run_dir, out)
    return out


# --- entry points ------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    try:
        return parse_json(read_input(path))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file or run dir") from None
    except (OSError, JSONInputError) as exc:
        raise ResultsError(f"{path}: not readable JSON ({getattr(exc, 'strerror', None) or exc})") from None


def load_benchmarks(path: Path) -> BenchmarkSet:
    """Load a harness run dir, a baseline file or a pytest-benchmark JSON file."""
    path = Path(path)
    if path.is_dir():
        return load_run_dir(path)[0]
    doc = read_json(path)
    if isinstance(doc, dict) and doc.get("format") == BASELINE_FORMAT:
        return parse_baseline(doc, path=path)
    if isinstance(doc, dict) and "machine_info" in doc and "benchmarks" in doc:
        return _parse_pytest_benchmark(doc, path=path)
    raise ResultsError(
        f"{path}: neither a harness baseline (format {BASELINE_FORMAT!r}) nor a pytest-benchmark JSON file; "
        "pass a run dir, a file from `freeze_baseline`, or pytest --benchmark-json output"
    )
