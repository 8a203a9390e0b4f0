"""Latency / throughput tasks through the CLI on a tiny plugin model (CPU, small windows)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import plugin_model_name, run_cli

from harness.results import load_run

FAST = {"warmup": 1, "min_time_s": 0.05, "max_time_s": 0.5, "min_samples": 4}


def _run_suite(tmp_path: Path, capsys, suite: dict) -> tuple[int, Path, Path]:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(suite))
    code, out, _ = run_cli(capsys, "run", path, "--out", tmp_path / "r", "--reports", tmp_path / "p", "--no-progress")
    return code, Path(out[0]), Path(out[1])


def test_latency_throughput_and_train_step_records_and_report(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = {"name": "t", "imports": [str(plugin_file)], "models": [name, {"name": name, "label": "deep",
                                                                          "options": {"repeat": 3}}],
             "complexity": {},
             "latency": {**FAST, "batch_sizes": [1, 2], "rounds": 2, "reference": True},
             "throughput": {**FAST, "batch_sizes": {"cpu": [4], "cuda": [64]}, "train_step": True}}
    code, run_dir, report = _run_suite(tmp_path, capsys, suite)
    assert code == 0
    run = load_run(run_dir)
    assert all(r["status"] == "ok" for r in run.records), [r.get("error") for r in run.records]
    lat = run.of_kind("latency")
    assert len(lat) == 2 * 2 * 2  # models × batch sizes × rounds
    for r in lat:
        assert len(r["samples_ms"]) >= 2 and all(x > 0 for x in r["samples_ms"])  # min_samples 4 over 2 rounds
        assert len(r["warmup_ms"]) == 1 and r["timer"] == "perf_counter_ns" and r["threads"] >= 1
        assert r["dtype"] == "fp32" and r["channels_last"] is False and r["device"] == "cpu"
        assert r["iter_peak_mem_bytes"] > 0 and r["mem_method"] == "torch_profiler+rss"  # a real CPU measurement
    assert len(run.of_kind("reference")) == 2 * 2  # the reference workload in every round and batch size
    thr = run.of_kind("throughput")
    assert {r["batch_size"] for r in thr} == {4}
    for r in thr:
        assert r["images"] % 4 == 0 and r["samples_per_s"] == r["images"] / sum(r["loop_samples_s"])
    assert len(run.of_kind("train_throughput")) == 2
    assert run.of_kind("peak")[0]["peak_gmacs_per_s"] > 0
    text = report.read_text()
    for heading in ("## Latency", "### batch 1 · fp32 · cpu", "## Throughput (inference)",
                    "## Throughput (training step)", "Device peak (matmul)", "## Memory"):
        assert heading in text
    assert (report.parent / f"{run_dir.name}_timing.png").is_file()


def test_invalid_modes_become_error_records_and_the_suite_continues(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = {"name": "t", "imports": [str(plugin_file)], "models": [name], "complexity": {},
             "latency": {**FAST, "dtype": "fp16"},
             "throughput": {**FAST, "batch_sizes": [2], "compile": "no-such-mode"}}
    code, run_dir, report = _run_suite(tmp_path, capsys, suite)
    assert code == 0
    run = load_run(run_dir)
    by_kind = {r["kind"]: r for r in run.records}
    assert by_kind["complexity"]["status"] == "ok"
    assert by_kind["latency"]["status"] == "error"
    assert by_kind["latency"]["error"]["message"] == "fp16 autocast is not supported on CPU; use dtype bf16 or fp32"
    assert by_kind["throughput"]["status"] == "error"
    assert "unknown torch.compile mode 'no-such-mode'" in by_kind["throughput"]["error"]["message"]
    assert "MeasurementError" in report.read_text()
