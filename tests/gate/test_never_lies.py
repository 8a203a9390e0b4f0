"""The gate never lies: input that would turn into "unchanged" is refused (exit 2), crashes are exit 2, and
sharded runs are normalised by the reference workload of their own process."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import plugin_model_name, run_cli

from harness.errors import ConfigError, ResultsError
from harness.gate.sets import BenchmarkSet, BenchSamples, freeze_baseline, load_benchmarks
from harness.gate.verdict import compare
from harness.results import load_run
from harness.results.summaries import BenchmarkKey


def _baseline_file(tmp_path: Path, entry_update: dict | None = None, samples: list[float] | None = None) -> Path:
    key = {"model": "m", "label": "m", "options": {}, "batch_size": 1, "device": "cpu", "dtype": "fp32",
           "channels_last": False, "compile": None, "kind": "latency"}
    rounds = [samples if samples is not None else [1.0, 1.1, 1.2, 1.0, 1.1]]
    entry = {"key": key, "rounds": rounds, "reference_rounds": [[]], "threads": 1}
    entry.update(entry_update or {})
    path = tmp_path / "b.json"
    # json.dumps writes NaN / Infinity literals, which json.loads (and so a baseline reader) accepts
    path.write_text(json.dumps({"format": "harness-baseline", "schema": 1, "environment": {}, "benchmarks": [entry]}))
    return path


@pytest.mark.parametrize("samples", [[0.0] * 5, [1.0, 0.0, 1.0, 1.0, 1.0], [1.0, math.nan, 1.0, 1.0, 1.0],
                                     [1.0, math.inf, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0, 1.0]])
def test_zero_or_non_finite_samples_are_refused(tmp_path, samples):
    with pytest.raises(ResultsError, match=r"timing samples must be finite and positive"):
        load_benchmarks(_baseline_file(tmp_path, samples=samples))


@pytest.mark.parametrize("threshold", [math.inf, math.nan, -1.0, 0.0])
def test_a_bad_threshold_argument_is_refused(threshold):
    key = BenchmarkKey.from_fields({"model": "m", "label": "m", "kind": "latency"})
    bset = BenchmarkSet(benchmarks={key: BenchSamples(rounds=((1.0, 1.1, 1.2, 1.0, 1.1),))})
    with pytest.raises(ConfigError, match=r"give a percentage in \(0, 100\]"):
        compare(bset, bset, threshold_pct=threshold)


@pytest.mark.parametrize(("flag", "value"), [("--threshold", "inf"), ("--threshold", "nan"), ("--alpha", "nan"),
                                             ("--alpha", "1.5")])
def test_bad_threshold_or_alpha_flags_are_exit_2(tmp_path, capsys, flag, value):
    path = _baseline_file(tmp_path)
    code, out, err = run_cli(capsys, "gate", "check", path, "--baseline", path, flag, value)
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1


def test_a_crash_inside_check_is_exit_2_not_1(tmp_path, capsys, monkeypatch):
    import harness.gate.verdict as gate_compare

    def crash(*args, **kwargs):
        raise FloatingPointError("a numerical bug")

    monkeypatch.setattr(gate_compare, "compare", crash)
    path = _baseline_file(tmp_path)
    code, out, err = run_cli(capsys, "gate", "check", path, "--baseline", path)
    assert code == 2 and out == []
    assert err.strip().splitlines() == [
        "error: internal error in `gate`: FloatingPointError: a numerical bug (rerun with -v for the traceback; "
        "please report it)"]


@pytest.mark.slow
def test_each_shard_is_normalised_by_its_own_reference(tmp_path, plugin_file, capsys):
    name = plugin_model_name(plugin_file)
    suite = tmp_path / "s.yaml"
    suite.write_text(json.dumps({
        "name": "sharded", "imports": [str(plugin_file)], "device": "cpu",
        "models": [{"name": name, "label": "a"}, {"name": name, "label": "b", "options": {"channels": 12}}],
        "latency": {"batch_sizes": [1], "warmup": 1, "min_time_s": 0.04, "max_time_s": 0.4, "min_samples": 6,
                    "rounds": 2, "reference": True}}))
    shards = []
    for shard in ("1/2", "2/2"):
        code, out, err = run_cli(capsys, "run", suite, "--shard", shard, "--out", tmp_path / "r", "--reports",
                                 tmp_path / "p", "--no-progress")
        assert code == 0, err
        shards.append(Path(out[0]))
    code, out, err = run_cli(capsys, "merge", *shards, "--out", tmp_path / "m", "--reports", tmp_path / "p")
    assert code == 0, err
    merged = load_run(Path(out[0]))
    refs = merged.of_kind("reference")
    # a timing group (both models and the reference, one round) is measured whole in one shard, and every round
    # of the same models in the same shard: a benchmark's pooled samples never mix machines
    assert sorted((r.shard.index, r.round) for r in refs) == [(0, 0), (0, 1)]
    assert sorted((r.label, r.shard.index, r.round) for r in merged.of_kind("latency")) == [
        ("a", 0, 0), ("a", 0, 1), ("b", 0, 0), ("b", 0, 1)]
    by_shard = {(r.shard.index, r.round): r.samples_ms for r in refs}
    # each latency record carries the reference timed alternately with it, in its own process: that is its yardstick
    own = {(r.label, r.round): r.reference_samples_ms for r in merged.of_kind("latency")}
    bset = load_benchmarks(Path(out[0]))
    for key, samples in bset.benchmarks.items():
        assert [list(r) for r in samples.reference_rounds] == [own[(key.label, rnd)] for rnd in (0, 1)]
    assert all(by_shard[(0, rnd)] for rnd in (0, 1))
    # the merged run freezes into a baseline that a shard-less check can use
    baseline = freeze_baseline(Path(out[0]), tmp_path / "b.json")
    assert len(json.loads(baseline.read_text())["benchmarks"]) == 2
