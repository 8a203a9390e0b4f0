"""Baseline files: freeze from a run dir, load the three accepted sources, refuse bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ResultsError
from harness.gate.sets import BASELINE_SCHEMA, PYTEST_BENCHMARK_KIND, freeze_baseline, load_benchmarks
from harness.gate.verdict import Verdict, compare
from harness.results.summaries import KEY_FIELDS

DATA = Path(__file__).parent / "data"
PYTEST_SAMPLE = DATA / "pytest_benchmark_sample.json"
ENVIRONMENT = {
    "torch": "2.4.1",
    "device": {"name": "cuda:0", "description": "NVIDIA H100 80GB HBM3"},
    "cpu": {"model": "AMD EPYC 7R13 Processor", "torch_threads": 16},
}


def _record(task_id: str, model: str, kind: str, rnd: int, samples: list[float], **extra) -> dict:
    return {
        "schema": 1,
        "task_id": task_id,
        "model": model,
        "label": model,
        "options": {},
        "kind": kind,
        "status": "ok",
        "started_utc": "2025-01-14T09:00:00+00:00",
        "wall_s": 1.0,
        "batch_size": 1,
        "device": "cuda:0",
        "dtype": "float32",
        "channels_last": False,
        "compile": None,
        "samples_ms": samples,
        "warmup_ms": [samples[0]],
        "threads": 16,
        "peak_mem_bytes": 1 << 20,
        "timer": "cuda_event",
        "round": rnd,
        "cudnn_benchmark": False,
        "tf32": False,
        **extra,
    }


def write_run(path: Path, *, seed: int = 0, rounds: int = 3, n: int = 20, interleaved: float | None = 2.0,
              reference_tasks: bool = True) -> Path:
    """A run dir with two models and the reference workload timed in one group per round.

    ``interleaved``: every latency record's ``reference_samples_ms`` (the reference's samples of the same cycles)
    read this many ms (None: the records have none); the reference's own records read 2 ms.
    """
    rng = np.random.default_rng(seed)
    records = []
    for rnd in range(rounds):
        for model, median in (("sknet50", 10.0), ("senet50", 8.0)):
            samples = (median * rng.lognormal(0.0, 0.03, n)).tolist()
            extra = {} if interleaved is None else {
                "reference_samples_ms": (interleaved * rng.lognormal(0.0, 0.01, n)).tolist()}
            records.append(_record(f"latency-{model}-bs1", model, "latency", rnd, samples, **extra))
        ref = (2.0 * rng.lognormal(0.0, 0.01, n)).tolist()
        if reference_tasks:
            records.append(_record("reference-ref", "harness:reference", "reference", rnd, ref))
    records.append(
        {
            "schema": 1,
            "task_id": "complexity-sknet50",
            "model": "sknet50",
            "label": "sknet50",
            "options": {},
            "kind": "complexity",
            "status": "ok",
            "params": 27_500_000,
            "macs": 4_470_000_000,
            "input_size": [3, 224, 224],
        }
    )
    records.append(
        {
            "schema": 1,
            "task_id": "latency-oom",
            "model": "sknet101",
            "label": "sknet101",
            "options": {},
            "kind": "latency",
            "status": "error",
            "error": {"type": "OOM", "message": "x"},
        }
    )
    path.mkdir(parents=True)
    manifest = {
        "schema": 1,
        "run_id": path.name,
        "suite_name": "sknet_vs_senet",
        "created_utc": "2025-01-14T09:00:00Z",
        "argv": ["run"],
        "git": {"commit": "abc123", "dirty": False},
        "environment": ENVIRONMENT,
        "suite": {"name": "sknet_vs_senet"},
        "shard": None,
    }
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_run_dir_groups_rounds_and_attaches_the_reference_of_the_same_cycles(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1", interleaved=3.0)
    bset = load_benchmarks(run)
    assert sorted(k.label for k in bset.benchmarks) == ["senet50", "sknet50"]
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    sk = next(s for k, s in bset.benchmarks.items() if k.label == "sknet50")
    mine = [r for r in records if r["task_id"] == "latency-sknet50-bs1"]
    assert [list(r) for r in sk.rounds] == [r["samples_ms"] for r in mine]
    assert [list(r) for r in sk.reference_rounds] == [r["reference_samples_ms"] for r in mine]
    assert sk.threads == 16
    assert bset.environment["torch"] == "2.4.1"


def test_freeze_roundtrip_keeps_samples_rounds_and_reference(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1")
    out = freeze_baseline(run, tmp_path / "baselines" / "main.json")
    doc = json.loads(out.read_text())
    assert (doc["format"], doc["schema"], doc["suite"]) == ("harness-baseline", BASELINE_SCHEMA, "sknet_vs_senet")
    assert doc["source_run"]["run_id"] == "run1" and doc["environment"] == ENVIRONMENT
    entry = doc["benchmarks"][0]
    assert set(entry["key"]) == set(KEY_FIELDS) and "threshold_pct" not in entry and "yardstick" not in entry
    assert entry["samples_ms"] == [x for r in entry["rounds"] for x in r]
    assert entry["reference_samples_ms"] == [x for r in entry["reference_rounds"] for x in r]
    assert load_benchmarks(out).benchmarks == load_benchmarks(run).benchmarks
    assert sorted(p.name for p in out.parent.iterdir()) == ["main.json"]  # no temp file left behind


def test_freeze_without_latency_records_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1")
    lines = (run / "records.jsonl").read_text().splitlines()
    (run / "records.jsonl").write_text("\n".join(x for x in lines if '"latency"' not in x) + "\n")
    with pytest.raises(ResultsError, match="no ok latency"):
        freeze_baseline(run, tmp_path / "b.json")


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    out = freeze_baseline(write_run(tmp_path / "run1"), tmp_path / "b.json")
    doc = json.loads(out.read_text())
    doc["schema"] = BASELINE_SCHEMA + 1
    out.write_text(json.dumps(doc))
    with pytest.raises(ResultsError) as info:
        load_benchmarks(out)
    message = str(info.value)
    assert str(out) in message
    assert (f"written with baseline schema {BASELINE_SCHEMA + 1}, this harness reads up to {BASELINE_SCHEMA}; "
            "upgrade harness or re-freeze the baseline with this version") in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["benchmarks"][0].update(samples_ms="fast"), r"benchmarks\[0\]\.samples_ms: expected a list"),
        (lambda d: d["benchmarks"][1]["rounds"][0].append(float("nan")), r"benchmarks\[1\]\.rounds\[0\]: timing"),
        (lambda d: d["benchmarks"][0]["key"].pop("dtype"), r"benchmarks\[0\]\.key: missing .*dtype"),
        (lambda d: d.update(schema="1"), r"'schema' must be a positive integer"),
        (lambda d: d.update(benchmarks={}), r"'benchmarks' must be a list"),
    ],
)
def test_malformed_baseline_names_file_and_problem(tmp_path: Path, mutate, expected: str) -> None:
    out = freeze_baseline(write_run(tmp_path / "run1"), tmp_path / "b.json")
    doc = json.loads(out.read_text())
    mutate(doc)
    out.write_text(json.dumps(doc))
    with pytest.raises(ResultsError, match=expected) as info:
        load_benchmarks(out)
    assert str(out) in str(info.value)


def test_unreadable_or_unknown_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ResultsError, match="not readable JSON") as info:
        load_benchmarks(broken)
    assert str(broken) in str(info.value)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ResultsError, match="neither a harness baseline .* nor a pytest-benchmark"):
        load_benchmarks(other)
    with pytest.raises(ResultsError, match="no such file"):
        load_benchmarks(tmp_path / "absent.json")


def test_pytest_benchmark_json_with_raw_data_is_read_in_ms() -> None:
    doc = json.loads(PYTEST_SAMPLE.read_text())
    bset = load_benchmarks(PYTEST_SAMPLE)
    assert bset.origin == "pytest-benchmark"
    assert bset.environment["cpu"]["brand_raw"] == "AMD EPYC 7R13 Processor"
    assert len(bset.benchmarks) == len(doc["benchmarks"])
    for bench in doc["benchmarks"]:
        key = next(k for k in bset.benchmarks if k.model == bench["fullname"])
        samples = bset.benchmarks[key]
        assert (key.kind, key.batch_size, key.device, key.label) == (PYTEST_BENCHMARK_KIND, 1, "cpu", bench["name"])
        assert samples.has_raw and samples.threads == 16
        assert samples.samples_ms == pytest.approx([x * 1e3 for x in bench["stats"]["data"]])
        assert samples.median_ms == pytest.approx(bench["stats"]["median"] * 1e3)


def test_pytest_benchmark_json_without_raw_data_keeps_summary_only(tmp_path: Path) -> None:
    doc = json.loads(PYTEST_SAMPLE.read_text())
    for bench in doc["benchmarks"]:
        del bench["stats"]["data"]
    path = tmp_path / "nodata.json"
    path.write_text(json.dumps(doc))
    samples = next(iter(load_benchmarks(path).benchmarks.values()))
    assert not samples.has_raw
    assert samples.median_ms == pytest.approx(doc["benchmarks"][0]["stats"]["median"] * 1e3)
    assert samples.n == doc["benchmarks"][0]["stats"]["rounds"]


# --- the yardstick: the reference's samples of the same cycles ------------------------------------------


def test_a_run_without_reference_samples_is_compared_raw(tmp_path: Path) -> None:
    base = freeze_baseline(write_run(tmp_path / "old", seed=0, interleaved=None), tmp_path / "old.json")
    new = write_run(tmp_path / "new", seed=1)
    report = compare(load_benchmarks(base), load_benchmarks(new), force=True)
    for row in report.rows:
        assert row.verdict is Verdict.UNCHANGED and row.normalised_ratio is None
        assert row.note == "raw (no reference samples on both sides)"


def test_an_older_baselines_task_reference_is_not_a_yardstick(tmp_path: Path, caplog) -> None:
    # Frozen before the reference was timed in the models' cycles: its reference (a task of its own, 2 ms) reads
    # another value than a reference of the same cycles (1 ms); dividing one side by each would call unchanged
    # code 2x slower, so the older kind is not used at all.
    out = freeze_baseline(write_run(tmp_path / "old", seed=0, interleaved=2.0), tmp_path / "old.json")
    doc = json.loads(out.read_text())
    for entry in doc["benchmarks"]:
        entry.update(yardstick="round", threshold_pct=30.0)
    out.write_text(json.dumps(doc))
    old = load_benchmarks(out)
    assert all(s.reference_rounds == () for s in old.benchmarks.values())
    assert "reference samples of an older kind" in caplog.text
    report = compare(old, load_benchmarks(write_run(tmp_path / "new", seed=1, interleaved=1.0)), force=True)
    assert all(r.verdict is Verdict.UNCHANGED and r.normalised_ratio is None for r in report.rows)
    assert all(r.threshold_pct == 5.0 for r in report.rows)  # a calibrated threshold of an old file is not read
