"""A run dir's timed benchmarks as a pytest-benchmark JSON document (the format of ``pytest --benchmark-json``),
for the tools that chart pytest-benchmark files and for the regression gate, which reads them.

``to_pytest_benchmark(run_dir)`` gives one entry per benchmark of every timed kind (latency, throughput,
train_throughput): the project's one benchmark key (``harness.results.summaries.BenchmarkKey``), ``ok`` records
only, rounds pooled in the order they ran (``summaries.benchmarks``, the grouping the report uses). Each entry is
what pytest-benchmark writes:

- ``stats``: computed by pytest-benchmark's own ``pytest_benchmark.stats.Stats`` from the samples in seconds
  (min, max, mean, stddev, rounds, median, iqr, q1, q3, iqr_outliers, stddev_outliers, outliers, ld15iqr, hd15iqr,
  ops, total), then ``data`` (every sample, seconds per iteration) and ``iterations`` (iterations per sample: 1 for
  latency; a throughput sample is a whole loop's mean iteration, so its loop's iterations);
- ``group``: the kind, batch size, mode and device (the benchmarks a report compares with each other);
- ``fullname``: ``<suite>::<kind>::<label>[<param>]``, ``name``: ``<kind>[<label>-<param>]``, ``param``: batch
  size, device, dtype, memory format, compile mode and the model's options, joined by ``-``;
- ``params``: the model, its options and the key's other fields (the gate takes them as the benchmark's options);
- ``extra_info``: kind, batch size, device, dtype, channels_last, compile, threads (what the gate reads), and the
  model, label, input size, rounds and the run;
- ``options``: the harness's sampling window in pytest-benchmark's names (``min_rounds``: the minimum number of
  samples, ``max_time`` / ``min_time``: the window's seconds, ``warmup``: warm-up iterations, ``timer``;
  ``disable_gc``: true, the timer pauses the cycle collector).

``machine_info`` holds the manifest's environment in pytest-benchmark's key names where it has them (``node``,
``machine``, ``python_*``, ``system``, ``cpu.brand_raw`` / ``count`` / ``arch_string_raw``; ``None`` where a run
does not record the value), plus ``torch``, ``device`` and ``gpus`` as the harness records them and the whole
environment under ``harness``. ``commit_info`` is the manifest's git commit; ``datetime`` the run's creation
time, so that two exports of one run are the same document; ``version`` the installed pytest-benchmark's.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ResultsError
from harness.results.records import TIMED_KINDS, ThroughputRecord
from harness.results.store import load_run
from harness.results.summaries import Benchmark, benchmarks, failed_tasks

log = logging.getLogger(__name__)

FORMAT_NAME = "pytest-benchmark"
INSTALL_HINT = ("the pytest-benchmark export needs pytest-benchmark: pip install -e \".[test]\" "
                "(or pip install pytest-benchmark)")


def _pytest_benchmark() -> tuple[type, str]:
    try:
        from pytest_benchmark import __version__
        from pytest_benchmark.stats import Stats
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return Stats, __version__


def _option_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_option_text(v) for v in value)
    return str(value)


def _param(bench: Benchmark) -> str:
    parts = [f"bs{bench.batch_size}", str(bench.device), bench.dtype]
    if bench.channels_last:
        parts.append("channels_last")
    if bench.compile:
        parts.append(f"compile={bench.compile}")
    parts += [f"{k}={_option_text(v)}" for k, v in sorted(bench.options.items())]
    return "-".join(parts)


def _iterations(bench: Benchmark) -> int:
    """Iterations per sample: a latency sample is one iteration, a loop sample the mean of its loop's."""
    if not bench.loop_s.size:
        return 1
    per_record = [round(r.images / len(r.loop_samples_s) / r.batch_size)
                  for r in bench.records if isinstance(r, ThroughputRecord) and r.loop_samples_s]
    # one value per benchmark in pytest-benchmark's format: the rounds of one benchmark share their loop length
    return max(1, Counter(per_record).most_common(1)[0][0]) if per_record else 1


def _threads(bench: Benchmark) -> int | None:
    values = {r.threads for r in bench.records}
    return values.pop() if len(values) == 1 else None


def _options(bench: Benchmark) -> dict[str, Any]:
    window = next((r.window for r in bench.records if r.window is not None), None)
    warmup = next((r.warmup_ms for r in bench.records if r.warmup_ms is not None), None)
    return {
        "disable_gc": True,  # the harness's timer pauses the cycle collector around its loops
        "timer": bench.timer or "perf_counter_ns",
        "min_rounds": window.min_samples if window else None,
        "max_time": window.max_time_s if window else None,
        "min_time": window.min_time_s if window else None,
        "warmup": len(warmup) if warmup else False,
    }


def _entry(bench: Benchmark, *, stats_class: type, suite: str, run_id: str) -> dict[str, Any]:
    kind = bench.kind
    stats = stats_class()
    for ms in bench.samples_ms:
        stats.update(float(ms) / 1e3)
    param = _param(bench)
    key = {"batch_size": bench.batch_size, "device": bench.device, "dtype": bench.dtype,
           "channels_last": bench.channels_last, "compile": bench.compile}
    return {
        "group": f"{kind}: batch {bench.batch_size}, {bench.mode}, {bench.device}",
        "name": f"{kind}[{bench.label}-{param}]",
        "fullname": f"{suite}::{kind}::{bench.label}[{param}]",
        "params": {"model": bench.model, "label": bench.label, "options": bench.options, **key},
        "param": param,
        "extra_info": {
            "kind": kind, **key, "threads": _threads(bench), "model": bench.model, "label": bench.label,
            "input_size": bench.first.input_size, "rounds": bench.rounds, "run_id": run_id, "suite": suite,
        },
        "options": _options(bench),
        "stats": {**stats.as_dict(), "data": list(stats.data), "iterations": _iterations(bench)},
    }


def _mapping(value: Any) -> dict[str, Any]:
    """A part of the manifest that pytest-benchmark's file copies whole (the environment, as captured)."""
    return value if isinstance(value, dict) else {}


def _machine_info(env: dict[str, Any]) -> dict[str, Any]:
    cpu, packages = _mapping(env.get("cpu")), _mapping(env.get("packages"))
    platform_text = env.get("platform")
    python = env.get("python")
    return {
        "node": env.get("hostname"),
        "processor": None,
        "machine": env.get("machine"),
        "python_compiler": None,
        "python_implementation": env.get("python_implementation"),
        "python_implementation_version": python if env.get("python_implementation") == "CPython" else None,
        "python_version": python,
        "python_build": None,
        "release": None,
        "system": platform_text.split("-")[0] if isinstance(platform_text, str) and platform_text else None,
        "cpu": {"brand_raw": cpu.get("model"), "count": cpu.get("logical_cores"),
                "arch_string_raw": env.get("machine")},
        "torch": env.get("torch") or packages.get("torch"),
        "device": env.get("device"),
        "gpus": env.get("gpus"),
        "harness": env,
    }


def _commit_info(manifest: dict[str, Any]) -> dict[str, Any]:
    git = _mapping(manifest.get("git"))
    return {
        "id": git.get("commit") or "unversioned",
        "time": None,
        "author_time": None,
        "dirty": bool(git.get("dirty")),
        "project": "harness",
        "branch": git.get("branch") or "(unknown)",
    }


def _datetime(created_utc: Any) -> str | None:
    if not isinstance(created_utc, str):
        return None
    try:
        stamp = datetime.strptime(created_utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return created_utc
    return stamp.isoformat()


def to_pytest_benchmark(run_dir: Path, *, kinds: tuple[str, ...] = TIMED_KINDS) -> dict[str, Any]:
    """The ``ok`` timed benchmarks of ``run_dir`` (of ``kinds``) as a pytest-benchmark JSON document."""
    run_dir = Path(run_dir)
    unknown = [k for k in kinds if k not in TIMED_KINDS]
    if unknown:
        raise ConfigError(f"--format {FORMAT_NAME} exports timed kinds only ({', '.join(TIMED_KINDS)}), "
                          f"not {', '.join(unknown)}")
    stats_class, version = _pytest_benchmark()
    run = load_run(run_dir)
    manifest = run.manifest
    suite, run_id = str(manifest.get("suite_name") or run_dir.parent.name), str(manifest.get("run_id") or run_dir.name)
    entries = [_entry(bench, stats_class=stats_class, suite=suite, run_id=run_id)
               for kind in kinds for bench in benchmarks(run, kind)]
    if not entries:
        raise ResultsError(f"{run_dir}: no ok {' / '.join(kinds)} records with samples to export")
    for failed in failed_tasks(run.records, kinds):
        # pytest-benchmark leaves a benchmark that raised out of its file; so does this export
        log.warning("%s: not exported, %s", run_dir, failed)
    env = _mapping(manifest.get("environment"))
    return {
        "machine_info": _machine_info(env),
        "commit_info": _commit_info(manifest),
        "benchmarks": entries,
        "datetime": _datetime(manifest.get("created_utc")),
        "version": version,
    }
