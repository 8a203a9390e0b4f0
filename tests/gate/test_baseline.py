"""Baseline files: freeze from a run dir, load the three accepted sources, refuse bad input clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ResultsError
from harness.gate.baseline import freeze_baseline, write_thresholds
from harness.gate.compare import compare
from harness.gate.samples import PYTEST_BENCHMARK_KIND
from harness.gate.sources import BASELINE_SCHEMA, load_benchmarks
from harness.gate.verdicts import Verdict
from harness.results.summaries import KEY_FIELDS, BenchmarkKey

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


def write_run(path: Path, *, seed: int = 0, rounds: int = 3, n: int = 20, interleaved: float | None = None,
              reference_tasks: bool = True) -> Path:
    """A run dir with two models and the reference workload interleaved in rounds (A B ref A B ref ...).

    ``interleaved``: also give every latency record ``reference_samples_ms`` (the reference timed alternately
    with the model) reading this many ms; the reference tasks read 2 ms.
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


def test_run_dir_groups_rounds_and_attaches_same_round_reference(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1")
    bset = load_benchmarks(run)
    assert sorted(k.label for k in bset.benchmarks) == ["senet50", "sknet50"]
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    sk = next(s for k, s in bset.benchmarks.items() if k.label == "sknet50")
    expected = [r["samples_ms"] for r in records if r["task_id"] == "latency-sknet50-bs1"]
    refs = [r["samples_ms"] for r in records if r["kind"] == "reference"]
    assert [list(r) for r in sk.rounds] == expected
    assert [list(r) for r in sk.reference_rounds] == refs
    assert sk.threads == 16
    assert bset.environment["torch"] == "2.4.1"


def test_reference_of_the_same_device_is_preferred(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1", rounds=1)
    cpu_ref = _record("reference-cpu", "harness:reference", "reference", 0, [50.0] * 5, device="cpu")
    with (run / "records.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(cpu_ref) + "\n")
    sk = next(s for k, s in load_benchmarks(run).benchmarks.items() if k.label == "sknet50")
    assert 50.0 not in sk.reference_samples_ms


def test_freeze_roundtrip_keeps_samples_rounds_and_reference(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1")
    out = freeze_baseline(run, tmp_path / "baselines" / "main.json")
    doc = json.loads(out.read_text())
    assert (doc["format"], doc["schema"], doc["suite"]) == ("harness-baseline", BASELINE_SCHEMA, "sknet_vs_senet")
    assert doc["source_run"]["run_id"] == "run1" and doc["environment"] == ENVIRONMENT
    entry = doc["benchmarks"][0]
    assert set(entry["key"]) == set(KEY_FIELDS) and entry["threshold_pct"] is None
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
        (lambda d: d["benchmarks"][0].update(threshold_pct=-1), r"threshold_pct: expected a finite positive number"),
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


def test_write_thresholds_updates_matching_entries_atomically(tmp_path: Path, caplog) -> None:
    out = freeze_baseline(write_run(tmp_path / "run1"), tmp_path / "b.json")
    keys = sorted(load_benchmarks(out).benchmarks, key=BenchmarkKey.sort_key)
    stranger = BenchmarkKey.from_fields({"model": "resnext50", "label": "resnext50", "kind": "latency"})
    write_thresholds(out, {keys[0]: 3.5, stranger: 9.0})
    reloaded = load_benchmarks(out).benchmarks
    assert reloaded[keys[0]].threshold_pct == 3.5
    assert reloaded[keys[1]].threshold_pct is None
    assert "resnext50" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["b.json"]


# --- the yardstick: the reference interleaved with the model, or timed in a task of its own --------------


def test_interleaved_reference_is_the_yardstick_and_survives_freezing(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run1", interleaved=3.0)
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    sk = next(s for k, s in load_benchmarks(run).benchmarks.items() if k.label == "sknet50")
    mine = [r["reference_samples_ms"] for r in records if r["task_id"] == "latency-sknet50-bs1"]
    tasks = [r["samples_ms"] for r in records if r["kind"] == "reference"]
    assert sk.yardstick == "interleaved" and [list(r) for r in sk.reference_rounds] == mine
    assert [list(r) for r in sk.round_reference_rounds] == tasks
    out = freeze_baseline(run, tmp_path / "b.json")
    entry = json.loads(out.read_text())["benchmarks"][0]
    assert entry["yardstick"] == "interleaved" and len(entry["round_reference_rounds"]) == 3
    assert load_benchmarks(out).benchmarks == load_benchmarks(run).benchmarks


@pytest.mark.parametrize("old_side", ["baseline", "candidate"])
def test_yardsticks_of_two_kinds_are_never_divided_into_each_other(tmp_path: Path, old_side: str) -> None:
    # The same code timed the old way (reference in its own task: 2 ms) and the new way (interleaved: 1 ms,
    # a different reading). Dividing one side by 2 ms and the other by 1 ms would call unchanged code 2x slower.
    old = freeze_baseline(write_run(tmp_path / "old", seed=0), tmp_path / "old.json")
    new = write_run(tmp_path / "new", seed=1, interleaved=1.0)
    base, cand = (old, new) if old_side == "baseline" else (new, old)
    report = compare(load_benchmarks(base), load_benchmarks(cand), force=True)
    for row in report.rows:
        assert row.verdict is Verdict.UNCHANGED, row
        assert 0.95 < row.normalised_ratio < 1.05
        assert row.note == "reference timed differently on the two sides: normalised by the rounds' reference tasks"


def test_interleaved_side_without_reference_tasks_against_an_old_baseline_is_compared_raw(tmp_path: Path) -> None:
    old = freeze_baseline(write_run(tmp_path / "old", seed=0), tmp_path / "old.json")
    new = write_run(tmp_path / "new", seed=1, interleaved=1.0, reference_tasks=False)
    report = compare(load_benchmarks(old), load_benchmarks(new), force=True)
    for row in report.rows:
        assert row.verdict is Verdict.UNCHANGED and row.normalised_ratio is None
        assert row.note == "raw (no reference samples on both sides)"


def test_a_baseline_with_an_unknown_yardstick_is_refused(tmp_path: Path) -> None:
    out = freeze_baseline(write_run(tmp_path / "run1", interleaved=1.0), tmp_path / "b.json")
    doc = json.loads(out.read_text())
    doc["benchmarks"][0]["yardstick"] = "sideways"
    out.write_text(json.dumps(doc))
    expected = r"benchmarks\[0\]\.yardstick: expected 'round' or 'interleaved', got 'sideways'"
    with pytest.raises(ResultsError, match=expected):
        load_benchmarks(out)
