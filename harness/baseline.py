"""Latency baselines: freeze a run's timing samples into a versioned file, and load benchmark sets.

A *benchmark set* is what the regression gate (:mod:`harness.check`) compares. For each benchmark key
(model, label, options, batch size, device, dtype, memory format, compile mode, record kind) it holds the
raw per-iteration samples grouped by round, and the samples of the run's reference workload (records of
kind ``calibration``) taken in the same rounds, so latency can be normalised by machine speed.

Three sources are accepted by :func:`load_benchmarks`: a harness run dir, a baseline file written by
:func:`freeze_baseline`, and a pytest-benchmark JSON file (``--benchmark-json`` or autosave).

Baseline file, schema 1::

    {"format": "harness-baseline", "schema": 1, "created_utc", "source_run", "environment", "suite",
     "benchmarks": [{"key": {model, label, options, batch_size, device, dtype, channels_last, compile, kind},
                     "samples_ms", "rounds", "reference_samples_ms", "reference_rounds", "threads",
                     "threshold_pct"}]}

``reference_rounds`` is aligned with ``rounds`` (the reference samples of the same round; ``[]`` where a
round had none); ``threshold_pct`` is ``null`` until :func:`write_thresholds` stores a calibrated one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ResultsError

log = logging.getLogger(__name__)

BASELINE_FORMAT = "harness-baseline"
BASELINE_SCHEMA = 1
REFERENCE_KIND = "calibration"
# Kinds whose records carry per-iteration `samples_ms` worth gating on.
TIMED_KINDS = frozenset({"latency", "throughput", "train_throughput"})
PYTEST_BENCHMARK_KIND = "pytest-benchmark"
KEY_FIELDS = ("model", "label", "options", "batch_size", "device", "dtype", "channels_last", "compile", "kind")
# Fields a reference (calibration) record should share with a model record to be its yardstick.
_REFERENCE_MATCH_FIELDS = ("device", "dtype", "batch_size", "channels_last", "compile")

Rounds = tuple[tuple[float, ...], ...]


def _canonical(value: Any) -> Any:
    # Dicts and lists are not hashable; canonical JSON keeps equal values equal across sources.
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


@dataclass(frozen=True)
class BenchKey:
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
    def from_fields(cls, fields: Mapping[str, Any]) -> BenchKey:
        values = {name: _canonical(fields.get(name)) for name in KEY_FIELDS}
        if values["options"] is None:
            values["options"] = "{}"
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in KEY_FIELDS}
        out["options"] = json.loads(self.options)
        return out

    def sort_key(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name)) for name in KEY_FIELDS)


@dataclass(frozen=True)
class BenchSamples:
    """Timing samples of one benchmark. Without raw samples only ``summary_median_ms`` is known."""

    rounds: Rounds = ()
    reference_rounds: Rounds = ()
    threads: int | None = None
    threshold_pct: float | None = None
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

    def normalised(self) -> np.ndarray | None:
        """Samples divided by the median reference sample of their own round, or None.

        Every round must have reference samples: normalising only some rounds would mix units.
        """
        if not self.has_raw or len(self.reference_rounds) != len(self.rounds):
            return None
        scales = [float(np.median(ref)) if ref else 0.0 for ref in self.reference_rounds]
        if not all(scale > 0.0 for scale in scales):
            return None
        return np.concatenate([np.asarray(r) / scale for r, scale in zip(self.rounds, scales, strict=True)])


@dataclass(frozen=True)
class BenchmarkSet:
    """Benchmarks of one source with the environment they were measured in."""

    environment: dict[str, Any] = field(default_factory=dict)
    benchmarks: dict[BenchKey, BenchSamples] = field(default_factory=dict)
    source: str = ""
    origin: str = ""  # "harness-run" | "harness-baseline" | "pytest-benchmark"


# --- harness run dirs -------------------------------------------------------------------------------


def _float_list(value: Any, *, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ResultsError(f"{where}: expected a list of numbers, got {type(value).__name__}")
    out = tuple(float(x) for x in value)
    if not all(math.isfinite(x) and x >= 0.0 for x in out):
        raise ResultsError(f"{where}: timing samples must be finite and non-negative")
    return out


def _round_of(record: Mapping[str, Any]) -> int:
    value = record.get("round")
    return int(value) if isinstance(value, int) else 0


def _reference_for(record: Mapping[str, Any], rnd: int, refs: Sequence[Mapping[str, Any]]) -> tuple[float, ...]:
    """Samples of the reference record of round ``rnd`` that best matches ``record``'s device and mode."""
    # Sorted by task id so that max(), which keeps the first of equal scores, picks deterministically.
    candidates = sorted((r for r in refs if _round_of(r) == rnd), key=lambda r: str(r.get("task_id", "")))
    if not candidates:
        return ()

    def score(ref: Mapping[str, Any]) -> int:
        return sum(ref.get(f) == record.get(f) for f in _REFERENCE_MATCH_FIELDS if f in ref)

    best = max(candidates, key=score)
    return tuple(float(x) for x in best["samples_ms"])


def _samples_from_records(
    records: Sequence[Mapping[str, Any]], refs: Sequence[Mapping[str, Any]], *, where: str
) -> BenchSamples:
    by_round: dict[int, list[float]] = {}
    for rec in records:
        samples = _float_list(rec["samples_ms"], where=f"{where}: task {rec.get('task_id')!r} samples_ms")
        by_round.setdefault(_round_of(rec), []).extend(samples)
    order = sorted(by_round)
    threads = records[0].get("threads")
    return BenchSamples(
        rounds=tuple(tuple(by_round[r]) for r in order),
        reference_rounds=tuple(_reference_for(records[0], r, refs) for r in order),
        threads=threads if isinstance(threads, int) else None,
    )


def benchmarks_from_records(records: Sequence[Mapping[str, Any]], *, where: str) -> dict[BenchKey, BenchSamples]:
    """Group ok timing records by key (rounds in order) and attach each round's reference samples."""
    ok = [r for r in records if r.get("status") == "ok" and "samples_ms" in r]
    refs = [r for r in ok if r.get("kind") == REFERENCE_KIND]
    for ref in refs:
        _float_list(ref["samples_ms"], where=f"{where}: task {ref.get('task_id')!r} samples_ms")
    grouped: dict[BenchKey, list[Mapping[str, Any]]] = {}
    for rec in ok:
        if rec.get("kind") not in TIMED_KINDS:
            continue
        if not isinstance(rec.get("model"), str):
            raise ResultsError(f"{where}: task {rec.get('task_id')!r} has no string 'model' field")
        fields = dict(rec, label=rec.get("label") or rec["model"])
        grouped.setdefault(BenchKey.from_fields(fields), []).append(rec)
    return {key: _samples_from_records(recs, refs, where=where) for key, recs in grouped.items()}


def _load_run_dir(path: Path) -> tuple[BenchmarkSet, dict[str, Any]]:
    # Imported on use (here and below): results.py is the runner's module, needed only for run dirs/writes.
    from harness.results import load_run

    run = load_run(path)
    environment = run.manifest.get("environment") or {}
    bset = BenchmarkSet(
        environment=dict(environment),
        benchmarks=benchmarks_from_records(run.records, where=str(path)),
        source=str(path),
        origin="harness-run",
    )
    return bset, run.manifest


# --- baseline files ---------------------------------------------------------------------------------


def _entry_to_dict(key: BenchKey, samples: BenchSamples) -> dict[str, Any]:
    return {
        "key": key.to_dict(),
        "samples_ms": list(samples.samples_ms),
        "rounds": [list(r) for r in samples.rounds],
        "reference_samples_ms": list(samples.reference_samples_ms),
        "reference_rounds": [list(r) for r in samples.reference_rounds],
        "threads": samples.threads,
        "threshold_pct": samples.threshold_pct,
    }


def freeze_baseline(run_dir: Path, out: Path) -> Path:
    """Write the timing samples of ``run_dir`` to the baseline file ``out`` (atomically); return ``out``."""
    run_dir, out = Path(run_dir), Path(out)
    bset, manifest = _load_run_dir(run_dir)
    if not bset.benchmarks:
        raise ResultsError(
            f"{run_dir}: no ok latency/throughput records with samples_ms to freeze; "
            "run a suite with a latency section first"
        )
    doc = {
        "format": BASELINE_FORMAT,
        "schema": BASELINE_SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_run": {"path": str(run_dir), "run_id": manifest.get("run_id"), "git": manifest.get("git")},
        "environment": bset.environment,
        "suite": manifest.get("suite_name"),
        "benchmarks": [_entry_to_dict(k, bset.benchmarks[k]) for k in sorted(bset.benchmarks, key=BenchKey.sort_key)],
    }
    from harness.results import write_json_atomic

    write_json_atomic(out, doc)
    log.info("froze %d benchmarks of %s into %s", len(bset.benchmarks), run_dir, out)
    return out


def _parse_rounds(entry: Mapping[str, Any], *, where: str) -> tuple[Rounds, Rounds]:
    raw_rounds = entry.get("rounds", [entry.get("samples_ms")])
    if not isinstance(raw_rounds, list) or not raw_rounds:
        raise ResultsError(f"{where}.rounds: expected a non-empty list of sample lists")
    rounds = tuple(_float_list(r, where=f"{where}.rounds[{i}]") for i, r in enumerate(raw_rounds))
    if "samples_ms" in entry:
        flat = _float_list(entry["samples_ms"], where=f"{where}.samples_ms")
        if flat != tuple(x for r in rounds for x in r):
            raise ResultsError(f"{where}: samples_ms is not the concatenation of rounds; re-freeze the baseline")
    if "reference_rounds" in entry:
        refs = entry["reference_rounds"]
        if not isinstance(refs, list) or len(refs) != len(rounds):
            raise ResultsError(f"{where}.reference_rounds: expected one list per round ({len(rounds)})")
        return rounds, tuple(_float_list(r, where=f"{where}.reference_rounds[{i}]") for i, r in enumerate(refs))
    flat_ref = _float_list(entry.get("reference_samples_ms", []), where=f"{where}.reference_samples_ms")
    # Without per-round alignment the pooled reference is the best yardstick for every round.
    return rounds, tuple(flat_ref for _ in rounds) if flat_ref else ()


def _parse_entry(entry: Any, *, where: str) -> tuple[BenchKey, BenchSamples]:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict):
        raise ResultsError(f"{where}: expected an object with a 'key' object")
    key_fields = entry["key"]
    missing = [f for f in KEY_FIELDS if f not in key_fields]
    if missing or not isinstance(key_fields.get("model"), str):
        raise ResultsError(f"{where}.key: missing or invalid fields {missing or ['model']}")
    rounds, reference_rounds = _parse_rounds(entry, where=where)
    threshold = entry.get("threshold_pct")
    if threshold is not None and (not isinstance(threshold, (int, float)) or threshold <= 0):
        raise ResultsError(f"{where}.threshold_pct: expected a positive number or null, got {threshold!r}")
    threads = entry.get("threads")
    samples = BenchSamples(
        rounds=rounds,
        reference_rounds=reference_rounds,
        threads=threads if isinstance(threads, int) else None,
        threshold_pct=None if threshold is None else float(threshold),
    )
    return BenchKey.from_fields(key_fields), samples


def _check_schema(doc: Mapping[str, Any], *, where: str) -> None:
    schema = doc.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise ResultsError(f"{where}: 'schema' must be a positive integer, got {schema!r}")
    if schema > BASELINE_SCHEMA:
        raise ResultsError(
            f"{where}: baseline schema {schema} is newer than this harness supports ({BASELINE_SCHEMA}); "
            "upgrade harness or re-freeze the baseline with this version"
        )


def _parse_baseline(doc: Mapping[str, Any], *, path: Path) -> BenchmarkSet:
    _check_schema(doc, where=str(path))
    entries, environment = doc.get("benchmarks"), doc.get("environment", {})
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: 'benchmarks' must be a list")
    if not isinstance(environment, dict):
        raise ResultsError(f"{path}: 'environment' must be an object")
    benchmarks: dict[BenchKey, BenchSamples] = {}
    for i, entry in enumerate(entries):
        key, samples = _parse_entry(entry, where=f"{path}: benchmarks[{i}]")
        if key in benchmarks:
            raise ResultsError(f"{path}: benchmarks[{i}] repeats the key of an earlier entry ({key.label})")
        benchmarks[key] = samples
    return BenchmarkSet(environment=environment, benchmarks=benchmarks, source=str(path), origin=BASELINE_FORMAT)


# --- pytest-benchmark JSON ---------------------------------------------------------------------------


def _pytest_entry(bench: Any, *, where: str) -> tuple[BenchKey, BenchSamples]:
    if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
        raise ResultsError(f"{where}: expected an object with a 'stats' object")
    if not isinstance(bench.get("fullname"), str):
        raise ResultsError(f"{where}: missing string 'fullname'")
    extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
    params = bench.get("params") if isinstance(bench.get("params"), dict) else {}
    fields = {f: extra.get(f, params.get(f)) for f in ("batch_size", "device", "dtype", "channels_last", "compile")}
    fields.update(model=bench["fullname"], label=bench.get("name") or bench["fullname"], options=params)
    key = BenchKey.from_fields(dict(fields, kind=PYTEST_BENCHMARK_KIND))
    stats, threads = bench["stats"], extra.get("threads")
    threads = threads if isinstance(threads, int) else None
    # pytest-benchmark stores seconds per iteration; raw `data` only with --benchmark-save-data.
    if "data" in stats:
        data = _float_list(stats["data"], where=f"{where}.stats.data")
        return key, BenchSamples(rounds=(tuple(x * 1e3 for x in data),), threads=threads)
    median, n = stats.get("median"), stats.get("rounds")
    if not isinstance(median, (int, float)) or not isinstance(n, int):
        raise ResultsError(f"{where}.stats: needs numeric 'median' and integer 'rounds' when 'data' is absent")
    return key, BenchSamples(summary_median_ms=float(median) * 1e3, summary_n=n, threads=threads)


def _parse_pytest_benchmark(doc: Mapping[str, Any], *, path: Path) -> BenchmarkSet:
    entries = doc.get("benchmarks")
    if not isinstance(entries, list):
        raise ResultsError(f"{path}: 'benchmarks' must be a list")
    benchmarks: dict[BenchKey, BenchSamples] = {}
    for i, bench in enumerate(entries):
        key, samples = _pytest_entry(bench, where=f"{path}: benchmarks[{i}]")
        benchmarks[key] = samples
    environment = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    return BenchmarkSet(environment=environment, benchmarks=benchmarks, source=str(path), origin="pytest-benchmark")


# --- entry points ------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file or run dir") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not readable JSON ({exc})") from None


def load_benchmarks(path: Path) -> BenchmarkSet:
    """Load a harness run dir, a baseline file or a pytest-benchmark JSON file."""
    path = Path(path)
    if path.is_dir():
        return _load_run_dir(path)[0]
    doc = _read_json(path)
    if isinstance(doc, dict) and doc.get("format") == BASELINE_FORMAT:
        return _parse_baseline(doc, path=path)
    if isinstance(doc, dict) and "machine_info" in doc and "benchmarks" in doc:
        return _parse_pytest_benchmark(doc, path=path)
    raise ResultsError(
        f"{path}: neither a harness baseline (format {BASELINE_FORMAT!r}) nor a pytest-benchmark JSON file; "
        "pass a run dir, a file from `freeze_baseline`, or pytest --benchmark-json output"
    )


def write_thresholds(baseline_path: Path, thresholds: Mapping[BenchKey, float]) -> Path:
    """Store per-benchmark ``threshold_pct`` values in a baseline file (atomically); return its path."""
    baseline_path = Path(baseline_path)
    doc = _read_json(baseline_path)
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise ResultsError(f"{baseline_path}: thresholds can only be written into a harness baseline file")
    _parse_baseline(doc, path=baseline_path)  # validates before anything is rewritten
    seen: set[BenchKey] = set()
    for entry in doc["benchmarks"]:
        key = BenchKey.from_fields(entry["key"])
        if key in thresholds:
            entry["threshold_pct"] = float(thresholds[key])
            seen.add(key)
    for key in sorted(set(thresholds) - seen, key=BenchKey.sort_key):
        log.warning("%s: no benchmark %s (%s) to store a threshold for", baseline_path, key.label, key.model)
    from harness.results import write_json_atomic

    write_json_atomic(baseline_path, doc)
    return baseline_path
