"""Where benchmark sets come from: a harness run dir, a baseline file, or a pytest-benchmark JSON file.

``load_benchmarks(path)`` tells them apart: a directory is a run dir; a JSON file with ``"format":
"harness-baseline"`` is a baseline (``harness.gate.baseline``); one with ``machine_info`` and
``benchmarks`` is pytest-benchmark output (``--benchmark-json`` or autosave). Every malformed input is a
one-line ``ResultsError`` naming the file and the entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.fileio import JSONInputError, parse_json
from harness.gate.samples import PYTEST_BENCHMARK_KIND, BenchmarkSet, BenchSamples, Rounds
from harness.results import load_run
from harness.results.records import REFERENCE_KIND, TIMED_KINDS
from harness.results.schema import check_schema
from harness.results.summaries import KEY_FIELDS, BenchmarkKey, benchmarks

BASELINE_FORMAT = "harness-baseline"
BASELINE_SCHEMA = 1
# Fields a reference record should share with a model record to be its yardstick.
_REFERENCE_MATCH_FIELDS = ("device", "dtype", "batch_size", "channels_last", "compile")


# --- harness run dirs -------------------------------------------------------------------------------


def float_list(value: Any, *, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ResultsError(f"{where}: expected a list of numbers, got {type(value).__name__}")
    out = tuple(float(x) for x in value)
    if not all(math.isfinite(x) and x > 0.0 for x in out):
        # a zero or non-finite time cannot be measured; left in, it would make every ratio NaN ("unchanged")
        raise ResultsError(f"{where}: timing samples must be finite and positive")
    return out


def _round_of(record: Mapping[str, Any]) -> int:
    value = record.get("round")
    return int(value) if isinstance(value, int) else 0


def _reference_for(record: Mapping[str, Any], rnd: int, refs: Sequence[Mapping[str, Any]]) -> tuple[float, ...]:
    """Samples of the reference record of round ``rnd`` that best matches ``record``'s device and mode.

    Only references measured by the same process count: after ``--shard`` + ``merge`` each shard's rounds are
    normalised by the machine speed that shard saw, never by another process's.
    """
    # Sorted by task id so that max(), which keeps the first of equal scores, picks deterministically.
    candidates = sorted((r for r in refs if _round_of(r) == rnd and r.get("shard") == record.get("shard")),
                        key=lambda r: str(r.get("task_id", "")))
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
    interleaved: dict[int, list[float]] = {}
    for rec in records:
        task = f"{where}: task {rec.get('task_id')!r}"
        by_round.setdefault(_round_of(rec), []).extend(float_list(rec["samples_ms"], where=f"{task} samples_ms"))
        if "reference_samples_ms" in rec:
            interleaved.setdefault(_round_of(rec), []).extend(
                float_list(rec["reference_samples_ms"], where=f"{task} reference_samples_ms"))
    order = sorted(by_round)
    threads = records[0].get("threads")
    # The reference timed interleaved with the model, in the same task, is the better yardstick (the same
    # moments); a run without it (older runs, reference: false) falls back on the reference task of the round.
    # (each round's own record: after --shard + merge, a model's rounds may come from different processes)
    round_refs = tuple(_reference_for(next(x for x in records if _round_of(x) == r), r, refs) for r in order)
    rounds = tuple(tuple(by_round[r]) for r in order)
    threads = threads if isinstance(threads, int) else None
    if all(interleaved.get(r) for r in order):
        return BenchSamples(rounds=rounds, reference_rounds=tuple(tuple(interleaved[r]) for r in order),
                            threads=threads, yardstick="interleaved",
                            round_reference_rounds=round_refs if all(round_refs) else ())
    return BenchSamples(rounds=rounds, reference_rounds=round_refs, threads=threads)


def benchmarks_from_records(records: Sequence[Mapping[str, Any]], *, where: str) -> dict[BenchmarkKey, BenchSamples]:
    """The run's benchmarks (``harness.results.summaries.benchmarks``, the one grouping), rounds in order, each
    with its rounds' reference samples."""
    ok = [r for r in records if r.get("status") == "ok" and "samples_ms" in r]
    refs = [r for r in ok if r.get("kind") == REFERENCE_KIND]
    for ref in refs:
        float_list(ref["samples_ms"], where=f"{where}: task {ref.get('task_id')!r} samples_ms")
    return {bench.key: _samples_from_records(bench.records, refs, where=where)
            for kind in TIMED_KINDS for bench in benchmarks(ok, kind)}


def failed_timed_tasks(records: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """One line per timed task (or reference) that ended in an error: the gate cannot judge what it lacks."""
    out = []
    for rec in records:
        if rec.get("status") == "error" and (rec.get("kind") in TIMED_KINDS or rec.get("kind") == REFERENCE_KIND):
            error = rec.get("error") if isinstance(rec.get("error"), dict) else {}
            message = " ".join(str(error.get("message", "")).split())[:200]
            out.append(f"{rec.get('kind')} task {rec.get('task_id')!r} ({rec.get('label') or rec.get('model')}, "
                       f"batch {rec.get('batch_size')}) failed: {error.get('type', 'error')}: {message}")
    return tuple(out)


def load_run_dir(path: Path) -> tuple[BenchmarkSet, dict[str, Any]]:
    """The benchmark set of a run dir, and its manifest."""
    run = load_run(path)
    environment = run.manifest.get("environment") or {}
    bset = BenchmarkSet(
        environment=dict(environment),
        benchmarks=benchmarks_from_records(run.records, where=str(path)),
        source=str(path),
        origin="harness-run",
        failed=failed_timed_tasks(run.records),
    )
    return bset, run.manifest


# --- baseline files (written by harness.gate.baseline) ---------------------------------------------


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
    flat_ref = float_list(entry.get("reference_samples_ms", []), where=f"{where}.reference_samples_ms")
    # Without per-round alignment the pooled reference is the best yardstick for every round.
    return rounds, tuple(flat_ref for _ in rounds) if flat_ref else ()


def _aligned_rounds(refs: Any, count: int, *, where: str) -> Rounds:
    if not isinstance(refs, list) or len(refs) != count:
        raise ResultsError(f"{where}: expected one list per round ({count})")
    return tuple(float_list(r, where=f"{where}[{i}]") for i, r in enumerate(refs))


def _parse_yardstick(entry: Mapping[str, Any], rounds: Rounds, *, where: str) -> dict[str, Any]:
    yardstick = entry.get("yardstick", "round")  # baselines frozen before interleaving have none: "round"
    if yardstick not in ("round", "interleaved"):
        raise ResultsError(f"{where}.yardstick: expected 'round' or 'interleaved', got {yardstick!r}")
    fields: dict[str, Any] = {"yardstick": yardstick}
    if yardstick == "interleaved" and entry.get("round_reference_rounds"):
        fields["round_reference_rounds"] = _aligned_rounds(entry["round_reference_rounds"], len(rounds),
                                                           where=f"{where}.round_reference_rounds")
    return fields


def _parse_entry(entry: Any, *, where: str) -> tuple[BenchmarkKey, BenchSamples]:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), dict):
        raise ResultsError(f"{where}: expected an object with a 'key' object")
    key_fields = entry["key"]
    missing = [f for f in KEY_FIELDS if f not in key_fields]
    if missing or not isinstance(key_fields.get("model"), str):
        raise ResultsError(f"{where}.key: missing or invalid fields {missing or ['model']}")
    rounds, reference_rounds = _parse_rounds(entry, where=where)
    threshold = entry.get("threshold_pct")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold) or threshold <= 0):
        raise ResultsError(f"{where}.threshold_pct: expected a finite positive number or null, got {threshold!r}")
    threads = entry.get("threads")
    samples = BenchSamples(
        rounds=rounds,
        reference_rounds=reference_rounds,
        threads=threads if isinstance(threads, int) else None,
        threshold_pct=None if threshold is None else float(threshold),
        **_parse_yardstick(entry, rounds, where=where),
    )
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
    extra = bench.get("extra_info") if isinstance(bench.get("extra_info"), dict) else {}
    params = bench.get("params") if isinstance(bench.get("params"), dict) else {}
    fields = {f: extra.get(f, params.get(f)) for f in ("batch_size", "device", "dtype", "channels_last", "compile")}
    fields.update(model=bench["fullname"], label=bench.get("name") or bench["fullname"], options=params)
    key = BenchmarkKey.from_fields(dict(fields, kind=PYTEST_BENCHMARK_KIND))
    stats, threads = bench["stats"], extra.get("threads")
    threads = threads if isinstance(threads, int) else None
    # pytest-benchmark stores seconds per iteration; raw `data` only with --benchmark-save-data.
    if "data" in stats:
        data = float_list(stats["data"], where=f"{where}.stats.data")
        return key, BenchSamples(rounds=(tuple(x * 1e3 for x in data),), threads=threads)
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
        benchmarks[key] = samples
    environment = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    return BenchmarkSet(environment=environment, benchmarks=benchmarks, source=str(path), origin="pytest-benchmark")


# --- entry points ------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    try:
        return parse_json(path.read_bytes())
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
