"""Latency / throughput tasks through the CLI on a tiny plugin model (CPU, small windows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import plugin_model_name, run_cli

from harness.results import load_run

FAST = {"warmup": 1, "min_time_s": 0.05, "max_time_s": 0.5, "min_samples": 4}


def _run_suite(tmp_path: Path, capsys, suite: dict) -> tuple[int, Path, Path]:
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(suite))
    code, out, _ = run_cli(capsys, "run", path, "--out", tmp_path / "r", "--reports", tmp_path / "p", "--no-progress")
    return code, Path(out[0]), Path(out[1])


def _cycles_per_process(record: dict) -> bool:
    """Each process's samples are its cycles 0, 1, 2 … in order."""
    for p in set(record.processes):
        mine = [c for c, q in zip(record.cycles, record.processes, strict=True) if q == p]
        if mine != list(range(len(mine))):
            return False
    return True


@pytest.mark.slow
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
    assert all(r.status == "ok" for r in run.records), [r.get("error") for r in run.records]
    lat = run.of_kind("latency")
    assert len(lat) == 2 * 2 * 2  # models × batch sizes × rounds
    for r in lat:
        # at least one cycle is always timed; how many more depends on the machine's speed (max_time_s)
        assert len(r.samples_ms) >= 1 and all(x > 0 for x in r.samples_ms)
        assert _cycles_per_process(r) and r.group_size == 3  # two models + reference
        # timed in two fresh worker processes (the tests' default), each sample with its process
        assert r.processes_planned == 2 and [p.index for p in r.process_runs] == [0, 1]
        assert set(r.processes) == {0, 1} and all(p.load.wall_s > 0 for p in r.process_runs)
        assert len(r.warmup_ms) == 1 and r.timer == "perf_counter_ns" and r.threads >= 1
        assert r.dtype == "fp32" and r.channels_last is False and r.device == "cpu"
        assert r.iter_peak_mem_bytes > 0 and r.mem_method == "torch_profiler+rss"  # a real CPU measurement
    assert len(run.of_kind("reference")) == 2 * 2  # the reference workload in every round and batch size
    # the models and the reference of one round and batch size were timed together: one pairing, same cycles
    for group in {(r.batch_size, r.round) for r in lat}:
        members = [r for r in lat + run.of_kind("reference") if (r.batch_size, r.round) == group]
        assert len({r.pairing for r in members}) == 1 and len({tuple(r.cycles) for r in members}) == 1
        assert len({tuple(r.processes) for r in members}) == 1
        assert len({tuple(p.pairing for p in r.process_runs) for r in members}) == 1
        assert all(r.reference_samples_ms == members[-1].samples_ms for r in members[:-1])
    assert run.typed_manifest.threads.threads == lat[0].threads
    thr = run.of_kind("throughput")
    assert {r.batch_size for r in thr} == {4}
    for r in thr:
        assert r.images % 4 == 0 and r.samples_per_s == r.images / sum(r.loop_samples_s)
    assert len(run.of_kind("train_throughput")) == 2
    assert run.of_kind("peak")[0].peak_gmacs_per_s > 0
    text = report.read_text()
    for heading in ("## Latency", "### batch 1 · fp32 · cpu", "## Throughput (inference)",
                    "## Throughput (training step)", "Device peak (matmul)", "## Memory"):
        assert heading in text
    assert (report.parent / f"{run_dir.name}_timing.png").is_file()


@pytest.mark.slow
def test_a_mode_the_device_cannot_run_is_skipped_with_its_reason_and_the_suite_continues(tmp_path, plugin_file,
                                                                                          capsys):
    name = plugin_model_name(plugin_file)
    suite = {"name": "t", "imports": [str(plugin_file)], "models": [name], "complexity": {},
             "latency": {**FAST, "modes": ["fp32", "fp16"]}}
    code, run_dir, report = _run_suite(tmp_path, capsys, suite)
    assert code == 0
    run = load_run(run_dir)
    by_mode = {r.dtype: r for r in run.records if r.kind == "latency"}
    assert by_mode["fp32"].status == "ok" and len(by_mode["fp32"].samples_ms) >= 4
    assert by_mode["fp16"].status == "skipped"
    assert by_mode["fp16"].reason == "fp16 autocast is not supported on CPU; use dtype bf16 or fp32"
    text = report.read_text()
    assert "## SK's cost by execution mode" in text and "fp16 autocast is not supported on CPU" in text


def test_an_unknown_mode_or_compile_mode_is_one_line_and_exit_2(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    for section, expected in ((
            {"latency": {**FAST, "modes": ["fp32", "fastest"]}},
            "key 'latency.modes.1': mode 'fastest': unknown part 'fastest'; parts: fp32, bf16"), (
            {"throughput": {**FAST, "compile": "no-such-mode"}},
            "unknown torch.compile mode 'no-such-mode'; use one of default")):
        path = tmp_path / "s.yaml"
        path.write_text(json.dumps({"name": "t", "imports": [str(plugin_file)], "models": [name], **section}))
        code, out, err = run_cli(capsys, "run", path, "--out", tmp_path / "r", "--no-progress")
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "r").exists()  # nothing was created


UNTRACEABLE_PLUGIN = """
import torch
from torch import nn
from harness import register_model


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if torch.compiler.is_compiling():
            raise NotImplementedError("this model refuses to be traced")
        return self.conv(x)


@register_model(input_size=(3, 16, 16))
def untraceable_NAME() -> nn.Module:
    return Untraceable()
"""


@pytest.mark.slow
def test_a_model_dynamo_cannot_compile_is_an_error_of_that_mode_alone(tmp_path, capsys):
    plugin = tmp_path / "untraceable.py"
    name = "untraceable_" + tmp_path.name[-8:].replace("-", "_")
    plugin.write_text(UNTRACEABLE_PLUGIN.replace("untraceable_NAME", name))
    suite = {"name": "t", "imports": [str(plugin)], "models": [name],
             "latency": {**FAST, "modes": ["fp32", "channels_last", "compile"], "processes": 1}}
    code, run_dir, report = _run_suite(tmp_path, capsys, suite)
    assert code == 0
    records = {r.task_id.split(":")[4]: r for r in load_run(run_dir).records}
    assert records["fp32"].status == records["fp32+channels_last"].status == "ok"
    failed = records["fp32+compile-default"]
    assert failed.status == "error" and failed.compile == "default"
    assert failed.error.message.startswith("torch.compile(mode='default') compiled no graph of the model: "
                                           "dynamo gave up and ran it eagerly")
    assert "this model refuses to be traced" in failed.error.message


FAILING_PLUGIN = """
import torch
from torch import nn
from harness import register_model


class Breaks(nn.Module):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.calls = after, 0
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        self.calls += 1
        if self.after and self.calls > self.after:
            raise RuntimeError("kernel exploded\\nwith a second line")
        return self.conv(x).mean(dim=(2, 3))


@register_model(input_size=(3, 16, 16))
def breaks_NAME(*, after: int = 0) -> nn.Module:
    return Breaks(after)
"""


@pytest.mark.slow
def test_a_model_that_raises_mid_timing_is_an_error_record_and_the_group_is_still_measured(tmp_path, capsys):
    plugin = tmp_path / "breaks.py"
    name = f"breaks_{tmp_path.name[-6:]}".replace("-", "_")
    plugin.write_text(FAILING_PLUGIN.replace("breaks_NAME", name))
    suite = {"name": "t", "imports": [str(plugin)], "models": [
        {"name": name, "label": "a"}, {"name": name, "label": "bad", "options": {"after": 4}},
        {"name": name, "label": "c"}],
        "latency": {"warmup": 1, "min_time_s": 0.001, "max_time_s": 5.0, "min_samples": 12}}
    code, run_dir, report = _run_suite(tmp_path, capsys, suite)
    assert code == 0
    by_label = {r.label: r for r in load_run(run_dir).records}
    bad = by_label["bad"]
    assert bad.status == "error" and bad.error.message == "kernel exploded with a second line"
    cycles = by_label["a"].window.cycles
    assert cycles >= 12  # min_samples cycles over the two processes, more while min_time_s is not yet reached
    for label in ("a", "c"):  # every cycle of each process, also those after "bad" failed in it
        assert by_label[label].status == "ok" and len(by_label[label].cycles) == cycles
        assert _cycles_per_process(by_label[label])
    row = next(line for line in report.read_text().splitlines() if line.startswith("| c |"))
    assert "÷ a" in report.read_text() and "bad" not in row  # ratios to the failed model are absent, not wrong


@pytest.mark.slow
def test_threads_are_chosen_recorded_and_validated(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "t", "imports": [str(plugin_file)], "models": [name],
                                "latency": {**FAST, "batch_sizes": [1]}}))
    for bad, why in (("two", "expected 'auto' or a whole number"), ("0", "must be between 1 and"),
                     ("100000", "must be between 1 and")):
        code, out, err = run_cli(capsys, "run", path, "--threads", bad, "--out", tmp_path / "r")
        assert code == 2 and out == [] and len(err.strip().splitlines()) == 1 and why in err, err
    assert not (tmp_path / "r").exists()  # refused before anything was created
    code, out, err = run_cli(capsys, "run", path, "--threads", "1", "--out", tmp_path / "r", "--reports",
                             tmp_path / "p", "--no-progress")
    assert code == 0 and "threads: 1 thread (--threads" in err
    run = load_run(Path(out[0]))
    assert run.manifest["threads"]["threads"] == 1 and run.manifest["threads"]["chosen_by"] == "--threads"
    assert run.of_kind("latency")[0].threads == 1


def test_wait_quiet_refuses_a_busy_machine_before_creating_anything(tmp_path, plugin_file, capsys, monkeypatch):
    from harness.measure import load

    busy = load.Load(wall_s=1.0, other_cores=1.0, own_cores=0.0, loadavg_1m=2.0, involuntary_switches=0, cores=2)
    monkeypatch.setattr(load, "probe", lambda seconds=1.0: busy)
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "t", "imports": [str(plugin_file)], "models": [plugin_model_name(plugin_file)],
                                "latency": FAST}))
    code, out, err = run_cli(capsys, "run", path, "--wait-quiet", "0", "--out", tmp_path / "r")
    assert code == 2 and out == []
    assert err.strip().splitlines() == [
        "error: --wait-quiet 0: the machine stayed busy (other processes kept 1.00 of 2 cores busy, load average "
        "2.00, 0 involuntary context switches in 1 s); stop the other work, raise the wait, or run without "
        "--wait-quiet"]
    assert not (tmp_path / "r").exists()


def test_processes_are_validated_before_anything_is_written(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "t", "imports": [str(plugin_file)], "models": [name],
                                "latency": {**FAST, "batch_sizes": [1]}}))
    for bad, why in (("0", "must be between 1 and 64"), ("-1", "must be between 1 and 64"),
                     ("abc", "expected a whole number of worker processes"), ("10**9", "expected a whole number"),
                     (str(10 ** 9), "must be between 1 and 64"), ("2.5", "expected a whole number")):
        code, out, err = run_cli(capsys, "run", path, f"--processes={bad}", "--out", tmp_path / "r")
        assert code == 2 and out == [] and len(err.strip().splitlines()) == 1 and why in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # spawns a timing worker process (the marker's rule); about 2.5 s
def test_one_process_says_its_interval_covers_within_process_noise_only(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = {"name": "t", "imports": [str(plugin_file)],
             "models": [name, {"name": name, "label": "deep", "options": {"repeat": 3}}],
             "latency": {**FAST, "batch_sizes": [1], "min_samples": 6}}
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(suite))
    code, out, err = run_cli(capsys, "run", path, "--processes", "1", "--out", tmp_path / "r", "--reports",
                             tmp_path / "p", "--no-progress")
    assert code == 0, err
    run = load_run(Path(out[0]))
    assert {r.processes_planned for r in run.of_kind("latency")} == {1}
    row = run.frame("latency").set_index("label").loc["deep"]
    assert row["ratio_base_scope"] == "within-process" and row["ratio_base_processes"] == 1
    assert "within-process noise only" in Path(out[1]).read_text()
