"""The same-job gate (``check --ab BASE HEAD --suite S``): both checkouts measured here, alternating."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import run_cli

from harness.errors import ConfigError
from harness.gate.ab import pool, schedule
from harness.gate.samples import BenchKey, BenchmarkSet, BenchSamples

PLUGIN = Path(__file__).resolve().parents[2] / "benchmarks" / "gate_plugin.py"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """The runs are subprocesses: one intra-op thread for them, as the CI workflow sets (two threads on a busy
    2-core machine stall at every parallel region)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


def _checkout(root: Path, name: str, cost: float) -> Path:
    """A stand-in for a checkout of a user's repository whose plugin model costs ``cost``."""
    folder = root / name
    folder.mkdir()
    source = PLUGIN.read_text()
    assert "DEFAULT_COST = 1.0\n" in source
    (folder / "my_model.py").write_text(source.replace("DEFAULT_COST = 1.0\n", f"DEFAULT_COST = {cost}\n"))
    return folder


def _suite(root: Path) -> Path:
    path = root / "gate.yaml"
    path.write_text(json.dumps({
        "name": "ab_gate", "imports": ["my_model.py"], "device": "cpu",  # relative: each checkout's own file
        "models": [{"name": "gate_convnet", "label": "gate", "options": {"channels": 16, "depth": 10}}],
        "latency": {"batch_sizes": [1], "warmup": 2, "min_time_s": 0.6, "max_time_s": 2.4, "min_samples": 32,
                    "rounds": 4, "reference": True}}))
    return path


def test_schedule_alternates_abba():
    assert schedule(3) == ["base", "head", "head", "base", "base", "head"]


def test_pool_concatenates_rounds_and_keeps_references_aligned():
    key = BenchKey.from_fields({"model": "m", "label": "m", "kind": "latency"})
    with_ref = BenchmarkSet(benchmarks={key: BenchSamples(rounds=((1.0,), (2.0,)), reference_rounds=((9.0,), (8.0,)))})
    without = BenchmarkSet(benchmarks={key: BenchSamples(rounds=((3.0,),))})
    pooled = pool([with_ref, without], source="base").benchmarks[key]
    assert pooled.rounds == ((1.0,), (2.0,), (3.0,)) and pooled.reference_rounds == ((9.0,), (8.0,), ())


def test_bad_inputs_are_one_line(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    for args, fragment in (
        (["--ab", base, tmp_path / "nowhere", "--suite", _suite(tmp_path)], "the head checkout"),
        (["--ab", base, base, "--suite", tmp_path / "none.yaml"], "--suite"),
        (["--ab", base, base, "--suite", _suite(tmp_path), "--pairs", "1"], "at least 2 runs per side"),
        (["--ab", base, base], "--ab needs --suite"),
    ):
        code, out, err = run_cli(capsys, "check", *args)
        assert code == 2 and out == [] and fragment in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ConfigError):
        from harness.gate.ab import check_inputs

        check_inputs(base, base, _suite(tmp_path), 0)


def test_a_slower_head_fails_the_gate_and_the_report_says_how_it_was_measured(tmp_path, capsys):
    base, head = _checkout(tmp_path, "base", 1.0), _checkout(tmp_path, "head", 1.5)
    code, out, err = run_cli(capsys, "check", "--ab", base, head, "--suite", _suite(tmp_path), "--pairs", "2",
                             "--threshold", "20", "--out", tmp_path / "results", "--format", "md", "--no-progress",
                             "--output", tmp_path / "gate.md")
    text = "\n".join(out)
    assert code == 1, text + err
    assert "**Result: FAIL (1 regression)**" in text
    assert re.search(r"same job: 2 runs of base \(.*base\) and 2 of head \(.*head\), alternating B H H B", text)
    assert "noise check (base runs 1, 3, … against 2, 4, …): largest change" in text
    row = next(line for line in text.splitlines() if line.startswith("| gate |"))
    assert float(row.split("|")[7]) > 1.2  # norm. ratio: 15 conv layers against 10
    assert (tmp_path / "gate.md").read_text().strip() == text.strip()
    assert len(list((tmp_path / "results" / "same_job").glob("*/base/ab_gate/*/records.jsonl"))) == 2


@pytest.mark.slow
def test_an_unchanged_head_passes(tmp_path, capsys):
    base, head = _checkout(tmp_path, "base", 1.0), _checkout(tmp_path, "head", 1.0)
    code, out, err = run_cli(capsys, "check", "--ab", base, head, "--suite", _suite(tmp_path), "--pairs", "2",
                             "--threshold", "20", "--out", tmp_path / "results", "--format", "json", "--no-progress")
    doc = json.loads("\n".join(out))
    assert code == 0 and doc["exit_code"] == 0, doc
    assert doc["rows"][0]["verdict"] != "regression" and len(doc["notes"]) == 2
