"""The same-job gate (``check --ab BASE HEAD --suite S``): both checkouts measured here, alternating."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import run_cli

from harness.errors import ConfigError
from harness.gate.ab import pool, schedule
from harness.gate.samples import BenchmarkSet, BenchSamples
from harness.results.summaries import BenchmarkKey

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
    key = BenchmarkKey.from_fields({"model": "m", "label": "m", "kind": "latency"})
    with_ref = BenchmarkSet(benchmarks={key: BenchSamples(rounds=((1.0,), (2.0,)), reference_rounds=((9.0,), (8.0,)))})
    without = BenchmarkSet(benchmarks={key: BenchSamples(rounds=((3.0,),))})
    pooled = pool([with_ref, without], source="base").benchmarks[key]
    assert pooled.rounds == ((1.0,), (2.0,), (3.0,)) and pooled.reference_rounds == ((9.0,), (8.0,), ())


def test_bad_inputs_are_one_line(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    for args, fragment in (
        (["--ab", base, tmp_path / "nowhere", "--suite", _suite(tmp_path)], "the head checkout"),
        (["--ab", base, base, "--suite", tmp_path / "none.yaml"], "--suite"),
        (["--ab", base, base, "--suite", _suite(tmp_path), "--pairs", "1"], "needs 2 to 100 runs per side"),
        (["--ab", base, base], "--ab needs --suite"),
    ):
        code, out, err = run_cli(capsys, "check", *args)
        assert code == 2 and out == [] and fragment in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ConfigError):
        from harness.gate.ab import check_inputs

        check_inputs(base, base, _suite(tmp_path), 0)


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
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


# --- in one process: both checkouts' models built side by side, timed alternately ------------------------


def test_each_side_builds_its_own_checkouts_model_and_leaves_no_module_behind(tmp_path):
    import sys

    import harness
    from harness.gate.inprocess import _build_side, worker_spec

    base, head = _checkout(tmp_path, "base", 1.0), _checkout(tmp_path, "head", 1.5)
    # a helper module of the user's repository, imported by the plugin: each side must get its own
    for folder, layers in ((base, 10), (head, 15)):
        (folder / "my_helpers.py").write_text(f"LAYERS = {layers}\n")
        (folder / "my_model.py").write_text((folder / "my_model.py").read_text() + "\nimport my_helpers  # noqa\n")
    spec = worker_spec(base=base, head=head, suite_path=_suite(tmp_path), device="cpu")
    before = dict(sys.modules)
    built = {side: _build_side(side, spec) for side in ("base", "head")}
    convs = {side: sum(1 for m in built[side][0][0].modules() if m.__class__.__name__ == "Conv2d")
             for side in built}
    assert convs == {"base": 1 + 10, "head": 1 + 15}  # stem + depth × cost
    assert built["base"][0][1] == (3, 32, 32)  # the input size the plugin registered
    assert sys.modules["harness"] is harness and "my_helpers" not in sys.modules
    assert not [name for name in sys.modules if name.startswith("_harness_ab_")]
    assert {k: v for k, v in sys.modules.items() if k.startswith("harness")} == \
        {k: v for k, v in before.items() if k.startswith("harness")}


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
def test_in_process_gate_fails_a_slower_head_and_passes_an_unchanged_one(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    verdicts = {}
    for cost in (1.0, 1.5):
        head = _checkout(tmp_path, f"head{cost}", cost)
        code, out, err = run_cli(capsys, "check", "--ab", base, head, "--suite", _suite(tmp_path), "--pairs", "2",
                                 "--in-process", "--out", tmp_path / "results", "--format", "json",
                                 "--no-progress")
        doc = json.loads("\n".join(out))
        verdicts[cost] = (code, doc["rows"][0]["verdict"], doc["rows"][0]["normalised_ratio"])
        assert re.match(r"same job, in one process: 2 processes each timed base \(.*\) and head", doc["notes"][0])
    assert verdicts[1.5][:2] == (1, "regression") and verdicts[1.5][2] > 1.3, verdicts  # 15 conv layers against 10
    assert verdicts[1.0][0] == 0 and 0.93 < verdicts[1.0][2] < 1.07, verdicts
    # every worker's samples are kept beside the spec they measured
    job = sorted((tmp_path / "results" / "same_job").iterdir())[0]
    assert sorted(p.name for p in job.iterdir()) == ["pair1.json", "pair2.json", "spec.json"]


def test_in_process_needs_ab(tmp_path, capsys):
    code, out, err = run_cli(capsys, "check", "--in-process", "--suite", _suite(tmp_path))
    assert code == 2 and out == []
    assert err.strip() == "error: --in-process is a way of measuring --ab BASE HEAD; add --ab and --suite"


def test_in_process_refuses_a_suite_without_latency_and_names_a_failing_worker(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    no_latency = tmp_path / "complexity.yaml"
    no_latency.write_text(json.dumps({"name": "c", "imports": ["my_model.py"], "models": ["gate_convnet"],
                                      "complexity": {}}))
    code, out, err = run_cli(capsys, "check", "--ab", base, base, "--suite", no_latency, "--in-process",
                             "--out", tmp_path / "r")
    assert code == 2 and out == []
    assert "the in-process gate times the suite's latency section, and it has none" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "my_model.py").write_text("raise RuntimeError('head plugin is broken')\n")
    code, out, err = run_cli(capsys, "check", "--ab", base, broken, "--suite", _suite(tmp_path), "--in-process",
                             "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1
    assert "--ab --in-process: worker 1 failed (exit 1)" in err and "head plugin is broken" in err
