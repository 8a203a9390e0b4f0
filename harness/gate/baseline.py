"""Baseline files: a run's raw timing samples frozen into one versioned JSON file, and thresholds stored in it.

Baseline file, schema 1::

    {"format": "harness-baseline", "schema": 1, "created_utc", "source_run", "environment", "suite",
     "benchmarks": [{"key": {model, label, options, batch_size, device, dtype, channels_last, compile, kind},
                     "samples_ms", "rounds", "reference_samples_ms", "reference_rounds", "threads",
                     "threshold_pct", "yardstick", "round_reference_rounds"}]}

``reference_rounds`` is aligned with ``rounds`` (the reference samples of the same round; ``[]`` where a
round had none); ``threshold_pct`` is ``null`` until :func:`write_thresholds` stores a calibrated one.
``yardstick`` says how the reference was timed: ``interleaved`` with the model's iterations, or ``round`` (a
task of its own in the round; also what a baseline without the field means). An interleaved baseline keeps
the round's reference tasks in ``round_reference_rounds`` (when the run had them), so a candidate timed the
older way can still be normalised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ResultsError
from harness.fileio import write_json_atomic
from harness.gate.samples import BenchSamples
from harness.gate.sources import BASELINE_FORMAT, BASELINE_SCHEMA, load_run_dir, parse_baseline, read_json
from harness.results.summaries import BenchmarkKey

log = logging.getLogger(__name__)

def _entry_to_dict(key: BenchmarkKey, samples: BenchSamples) -> dict[str, Any]:
    return {
        "key": key.to_dict(),
        "samples_ms": list(samples.samples_ms),
        "rounds": [list(r) for r in samples.rounds],
        "reference_samples_ms": list(samples.reference_samples_ms),
        "reference_rounds": [list(r) for r in samples.reference_rounds],
        "threads": samples.threads,
        "threshold_pct": samples.threshold_pct,
        "yardstick": samples.yardstick,
        **({"round_reference_rounds": [list(r) for r in samples.round_reference_rounds]}
           if samples.round_reference_rounds else {}),
    }


def freeze_baseline(run_dir: Path, out: Path) -> Path:
    """Write the timing samples of ``run_dir`` to the baseline file ``out`` (atomically); return ``out``."""
    run_dir, out = Path(run_dir), Path(out)
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


def write_thresholds(baseline_path: Path, thresholds: Mapping[BenchmarkKey, float]) -> Path:
    """Store per-benchmark ``threshold_pct`` values in a baseline file (atomically); return its path."""
    baseline_path = Path(baseline_path)
    doc = read_json(baseline_path)
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise ResultsError(f"{baseline_path}: thresholds can only be written into a harness baseline file")
    parse_baseline(doc, path=baseline_path)  # validates before anything is rewritten
    seen: set[BenchmarkKey] = set()
    for entry in doc["benchmarks"]:
        key = BenchmarkKey.from_fields(entry["key"])
        if key in thresholds:
            entry["threshold_pct"] = float(thresholds[key])
            seen.add(key)
    for key in sorted(set(thresholds) - seen, key=BenchmarkKey.sort_key):
        log.warning("%s: no benchmark %s (%s) to store a threshold for", baseline_path, key.label, key.model)
    write_json_atomic(baseline_path, doc)
    return baseline_path
