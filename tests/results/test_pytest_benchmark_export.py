"""A run's timed benchmarks as pytest-benchmark JSON (``export --format pytest-benchmark``): pytest-benchmark's own
document shape and statistics, read back by the regression gate; and the pytest-benchmark forward benchmarks
(``benchmarks/test_forward.py``) writing JSON the gate reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_records import MANIFEST, latency
from helpers import run_cli, write_run

from harness.gate.sets import load_benchmarks
from harness.gate.verdict import compare, environment_fingerprint
from harness.results import load_run
from harness.results.pytest_benchmark import to_pytest_benchmark
from harness.results.records import TIMED_KINDS, TimedRecord
from harness.results.summaries import BenchmarkKey

pytest_benchmark = pytest.importorskip("pytest_benchmark")
from pytest_benchmark import plugin as pb_plugin  # noqa: E402
from pytest_benchmark.stats import Metadata, Stats  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "results" / "sknet_vs_senet" / "20261204T012035Z-1dcd"  # committed: 4 latency + 4 throughput
MULTI_ROUND_RUN = ROOT / "results" / "ci_latency" / "20261204T012938Z-cae9"  # committed: 10 rounds per benchmark


def _timed_ok_keys(run_dir: Path) -> set[BenchmarkKey]:
    return {BenchmarkKey.of(r) for r in load_run(run_dir).records
            if isinstance(r, TimedRecord) and r.kind in TIMED_KINDS and r.samples_ms}


def _pytest_benchmark_shape(monkeypatch) -> tuple[set[str], set[str], set[str], set[str]]:
    """Top-level, per-benchmark, stats and machine_info keys as pytest-benchmark itself writes them."""
    monkeypatch.setattr(pb_plugin, "get_cpu_info", dict)  # py-cpuinfo takes a second; its keys are not ours
    fixture = SimpleNamespace(name="n", fullname="f", group=None, param=None, params=None, extra_info={},
                              cprofile_stats=None, has_error=False)
    meta = Metadata(fixture, iterations=1, options={})
    meta.stats.update(1.0)
    top = pb_plugin.pytest_benchmark_generate_json(config=None, benchmarks=[meta], include_data=True,
                                                   machine_info={}, commit_info={})
    entry = top["benchmarks"][0]
    return set(top), set(entry), set(entry["stats"]), set(pb_plugin.pytest_benchmark_generate_machine_info())


def test_the_export_is_a_pytest_benchmark_document(monkeypatch):
    top, entry_keys, stats_keys, machine_keys = _pytest_benchmark_shape(monkeypatch)
    doc = to_pytest_benchmark(RUN)
    assert set(doc) == top and doc["version"] == pytest_benchmark.__version__
    assert doc["datetime"] == "2026-12-04T01:20:35+00:00"  # the run's creation time: exports of a run are equal
    assert doc["commit_info"] == {"id": "fe13d56b8076c578b0b6eb456c1e905b6c2c2176", "time": None,
                                  "author_time": None, "dirty": False, "project": "harness", "branch": "(unknown)"}
    assert machine_keys <= set(doc["machine_info"])
    assert doc["machine_info"]["cpu"]["brand_raw"] == "Intel(R) Xeon(R) Processor"
    assert doc["machine_info"]["torch"] == "2.14.1+cu130" and doc["machine_info"]["node"] == "vm"
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # strict JSON, as pytest-benchmark writes
    assert [(b["extra_info"]["kind"], b["params"]["label"]) for b in doc["benchmarks"]][:5] == [
        ("latency", "resnext50"), ("latency", "senet50"), ("latency", "sknet50"),
        ("latency", "timm:skresnext50_32x4d"), ("throughput", "resnext50")]
    for bench in doc["benchmarks"]:
        assert set(bench) == entry_keys and set(bench["stats"]) == stats_keys
        assert set(bench["options"]) == {"disable_gc", "timer", "min_rounds", "max_time", "min_time", "warmup"}
        info = bench["extra_info"]
        assert {"batch_size", "device", "dtype", "channels_last", "compile", "threads"} <= set(info)
        assert (info["device"], info["dtype"], info["threads"]) == ("cpu", "fp32", 1)
        assert bench["fullname"] == f"sknet_vs_senet::{info['kind']}::{info['label']}[{bench['param']}]"
        assert bench["param"] == f"bs{info['batch_size']}-cpu-fp32"


def test_stats_are_pytest_benchmarks_own_of_the_pooled_samples_in_seconds():
    for run_dir in (RUN, MULTI_ROUND_RUN):
        records = load_run(run_dir).records
        for bench in to_pytest_benchmark(run_dir)["benchmarks"]:
            info, stats = bench["extra_info"], bench["stats"]
            rounds = [r for r in records if isinstance(r, TimedRecord) and r.kind == info["kind"]
                      and r.label == info["label"] and r.batch_size == info["batch_size"]]
            samples = np.array([x for r in rounds for x in r.samples_ms])
            assert info["rounds"] == len(rounds) and stats["rounds"] == samples.size
            assert stats["data"] == pytest.approx(list(samples / 1e3), rel=1e-12)
            assert stats["median"] == pytest.approx(np.median(samples) / 1e3, rel=1e-12)
            assert stats["mean"] == pytest.approx(samples.mean() / 1e3, rel=1e-12)
            assert (stats["min"], stats["max"]) == pytest.approx((samples.min() / 1e3, samples.max() / 1e3))
            assert stats["ops"] == pytest.approx(1e3 / samples.mean())
            reference = Stats()
            for x in stats["data"]:
                reference.update(x)
            assert {k: stats[k] for k in Stats.fields} == reference.as_dict()
            assert stats["iterations"] == 1  # latency: one pass per sample; these throughput loops: one batch


def test_the_gate_reads_the_export_and_two_exports_of_a_run_agree(tmp_path):
    for run_dir in (RUN, MULTI_ROUND_RUN):
        paths = []
        for name in ("a.json", "b.json"):
            paths.append(tmp_path / name)
            paths[-1].write_text(json.dumps(to_pytest_benchmark(run_dir), indent=4))
        base, cand = load_benchmarks(paths[0]), load_benchmarks(paths[1])
        assert base.origin == "pytest-benchmark"
        assert len(base.benchmarks) == len(_timed_ok_keys(run_dir))
        assert all(s.has_raw and s.threads == 1 for s in base.benchmarks.values())
        # the export keeps what makes environments comparable: the same fingerprint as the run dir's
        assert environment_fingerprint(base) == environment_fingerprint(load_benchmarks(run_dir))
        report = compare(base, cand)
        assert report.exit_code == 0 and report.counts() == {"unchanged": len(base.benchmarks)}


def test_rounds_pool_and_failed_tasks_are_left_out(tmp_path, caplog):
    failed = {**latency("b", "resnext50", [5.0]), "task_id": "latency:b:r0", "status": "error",
              "error": {"type": "RuntimeError", "message": "out of memory"}}
    failed.pop("samples_ms")
    run_dir = write_run(tmp_path / "s" / "r1", [latency("a", "sknet50", [10.0, 11.0], 0),
                                                 latency("a", "sknet50", [12.0, 13.0, 9.0], 1), failed], MANIFEST)
    doc = to_pytest_benchmark(run_dir)
    (bench,) = doc["benchmarks"]
    assert bench["stats"]["data"] == pytest.approx([0.010, 0.011, 0.012, 0.013, 0.009])
    assert bench["stats"]["median"] == pytest.approx(0.011) and bench["extra_info"]["rounds"] == 2
    assert doc["machine_info"]["torch"] == "2.9.0"  # from the environment's packages when torch is not top-level
    assert "latency:b:r0" in caplog.text and "out of memory" in caplog.text


def test_export_cli_writes_the_document_to_a_file_or_stdout(capsys, tmp_path):
    out_file = tmp_path / "out" / "bench.json"
    code, out, err = run_cli(capsys, "export", RUN, "--format", "pytest-benchmark", "-o", out_file)
    assert code == 0 and out == [str(out_file)] and "8 benchmarks" in err
    assert json.loads(out_file.read_text()) == json.loads(json.dumps(to_pytest_benchmark(RUN)))
    assert len(load_benchmarks(out_file).benchmarks) == 8
    code, out, err = run_cli(capsys, "export", RUN, "--format", "pytest-benchmark", "--kind", "throughput")
    doc = json.loads("\n".join(out))
    assert code == 0 and "4 benchmarks" in err
    assert {b["extra_info"]["kind"] for b in doc["benchmarks"]} == {"throughput"}


@pytest.mark.parametrize("argv, message", [
    (["--kind", "complexity"], "exports timed kinds only"),
    ([MULTI_ROUND_RUN], "exports one run dir"),
    (["--by-round"], "exports one run dir, rounds pooled"),
])
def test_export_cli_refuses_what_pytest_benchmark_cannot_hold_in_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "export", RUN, *argv, "--format", "pytest-benchmark")
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1 and message in err


def test_export_without_pytest_benchmark_is_a_one_line_hint(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytest_benchmark", None)
    monkeypatch.setitem(sys.modules, "pytest_benchmark.stats", None)
    code, _, err = run_cli(capsys, "export", RUN, "--format", "pytest-benchmark")
    assert code == 2 and "pip install" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # times a model in a pytest subprocess
def test_forward_benchmarks_write_pytest_benchmark_json_the_gate_reads(tmp_path):
    out = tmp_path / "forward.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_forward.py", "--benchmark-only", "--benchmark-json", str(out),
         "--models", "sknet50", "--side", "32", "--threads", "1", "--benchmark-min-rounds=5",
         "--benchmark-max-time=0.1", "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(out.read_text())
    (bench,) = doc["benchmarks"]
    assert bench["fullname"] == "benchmarks/test_forward.py::test_forward[sknet50-32px-bs1]"
    assert bench["extra_info"] == {"model": "sknet50", "batch_size": 1, "device": "cpu", "dtype": "fp32",
                                   "channels_last": False, "compile": None, "threads": 1, "input_size": [3, 32, 32]}
    assert bench["options"]["warmup"] == 1 and bench["options"]["disable_gc"] is True
    assert bench["stats"]["rounds"] >= 5  # the gate judges from 5 samples per side (verdict.MIN_SAMPLES)
    assert doc["machine_info"]["torch_threads"] == 1 and "torch" in doc["machine_info"]
    bset = load_benchmarks(out)
    ((key, samples),) = bset.benchmarks.items()
    assert (key.batch_size, key.device, key.dtype, key.channels_last, key.compile) == (1, "cpu", "fp32", False, None)
    assert samples.has_raw and samples.n == bench["stats"]["rounds"] and samples.threads == 1
    assert compare(bset, load_benchmarks(out)).exit_code == 0
