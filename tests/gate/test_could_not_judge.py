"""The gate never passes what it could not measure: a benchmark missing, failed or under-sampled on either side, an
empty side, a suite with nothing to time for the device and a checkout with no code of its own are exit 2
("could not judge"), never a pass; the same-job gate's workers keep third-party modules that live inside a
checkout (a ``.venv/``), and its default ``--out`` works from any folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fake_records import MANIFEST, latency
from helpers import run_cli, write_run

from harness.errors import ConfigError
from harness.gate import ab

SAMPLES = [1.0, 1.1, 1.2, 1.0, 1.1, 1.05, 1.0, 1.15]


def _failed(label: str, message: str = "builder raised\nTraceback (most recent call last):\n  boom") -> dict:
    rec = latency(label, "sknet50", SAMPLES)
    for field in ("samples_ms", "warmup_ms", "peak_mem_bytes", "iter_peak_mem_bytes", "mem_method", "threads"):
        rec.pop(field)
    return {**rec, "status": "error", "error": {"type": "RuntimeError", "message": message}}


def _run(root: Path, name: str, records: list[dict]) -> Path:
    return write_run(root / "s" / name, records, {**MANIFEST, "run_id": name, "suite_name": "s"})


def _check(capsys, cand: Path, base: Path) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "gate", "check", cand, "--baseline", base)
    assert err == "", err
    return code, "\n".join(out)


def test_a_candidate_whose_every_task_failed_could_not_be_judged(tmp_path, capsys):
    base = _run(tmp_path, "base", [latency("a", "sknet50", SAMPLES), latency("b", "sknet50", SAMPLES)])
    cand = _run(tmp_path, "cand", [_failed("a"), _failed("b")])
    code, text = _check(capsys, cand, base)
    assert code == 2
    assert text.splitlines()[-1] == (
        "Result: COULD NOT JUDGE (2 missing; a (cpu fp32, batch 1): missing, baseline only; b (cpu fp32, batch 1): "
        "missing, baseline only; candidate: latency task 'latency:a:r0' (a, batch 1) failed: RuntimeError: builder "
        "raised Traceback (most recent call last): boom and 1 more)")


def test_a_benchmark_failed_on_both_sides_could_not_be_judged(tmp_path, capsys):
    ok = latency("a", "sknet50", SAMPLES)
    base = _run(tmp_path, "base", [ok, _failed("b")])
    cand = _run(tmp_path, "cand", [ok, _failed("b")])
    code, text = _check(capsys, cand, base)
    assert code == 2
    assert text.splitlines()[-1] == (
        "Result: COULD NOT JUDGE (1 unchanged; baseline: latency task 'latency:b:r0' (b, batch 1) failed: "
        "RuntimeError: builder raised Traceback (most recent call last): boom; candidate: latency task "
        "'latency:b:r0' (b, batch 1) failed: RuntimeError: builder raised Traceback (most recent call last): boom)")


@pytest.mark.parametrize("base_records", [[], [_failed("a")]], ids=["empty", "all-failed"])
def test_an_empty_candidate_could_not_be_judged(tmp_path, capsys, base_records):
    base = _run(tmp_path, "base", base_records)
    cand = _run(tmp_path, "cand", [])
    code, text = _check(capsys, cand, base)
    assert code == 2 and text.splitlines()[-1].startswith(
        "Result: COULD NOT JUDGE (no benchmark was measured on either side")


def test_a_round_that_failed_is_not_hidden_by_the_rounds_that_did_not(tmp_path, capsys):
    base = _run(tmp_path, "base", [latency("a", "sknet50", SAMPLES, rnd=0), latency("a", "sknet50", SAMPLES, rnd=1)])
    failed = {**_failed("a"), "round": 1, "task_id": "latency:a:r1"}
    cand = _run(tmp_path, "cand", [latency("a", "sknet50", SAMPLES, rnd=0), failed])
    code, text = _check(capsys, cand, base)
    assert code == 2 and "candidate: latency task 'latency:a:r1'" in text.splitlines()[-1]


def test_json_says_why_it_could_not_judge(tmp_path, capsys):
    base = _run(tmp_path, "base", [latency("a", "sknet50", SAMPLES)])
    cand = _run(tmp_path, "cand", [])
    code, out, _ = run_cli(capsys, "gate", "check", cand, "--baseline", base, "--format", "json")
    doc = json.loads("\n".join(out))
    assert code == 2 and doc["exit_code"] == 2 and doc["could_not_judge"] == [
        "a (cpu fp32, batch 1): missing, baseline only"]


# --- the same-job gate's sides ------------------------------------------------------------------------------


def _suite(root: Path, **latency_section) -> Path:
    path = root / "suite.yaml"
    path.write_text(json.dumps({"name": "g", "imports": ["my_model.py"], "device": "cpu", "models": ["resnext50"],
                                "latency": {"batch_sizes": [1], **latency_section}}))
    return path


def test_a_checkout_with_no_code_of_its_own_is_refused(tmp_path, capsys):
    base, head = tmp_path / "base", tmp_path / "head"
    base.mkdir()
    head.mkdir()
    (base / "my_model.py").write_text("")
    code, out, err = run_cli(capsys, "gate", "ab", base, head, "--suite", _suite(tmp_path), "--out", tmp_path / "r")
    assert code == 2 and out == []
    assert err.strip() == (
        f"error: gate ab: the head checkout '{head}' has no harness/ package and none of the suite's plugins "
        "(my_model.py); it would be measured with the installed harness: pass a checkout of the code under test "
        "(did `git worktree add` fail?)")
    assert not (tmp_path / "r").exists()


def test_own_code_finds_a_harness_package_or_a_plugin(tmp_path):
    (tmp_path / "harness").mkdir()
    assert ab.own_code(tmp_path, []) == []
    (tmp_path / "harness" / "__init__.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "models.py").write_text("")
    assert ab.own_code(tmp_path, ["pkg.models", "/abs/x.py", "nothere.py"]) == ["harness/", "pkg.models"]


def test_a_suite_with_no_batch_size_for_the_device_is_refused_in_process(tmp_path):
    suite = _suite(tmp_path, batch_sizes={"cuda": [8]})
    with pytest.raises(ConfigError, match=r"suite.yaml: the latency section has no batch size \(or no model\) for "
                                          r"--device cpu; nothing would be timed"):
        ab.worker_spec(base=tmp_path, head=tmp_path, suite_path=suite, device="cpu")


def test_the_default_out_works_from_any_folder(tmp_path, monkeypatch):
    """The workers' files go under the out folder: a relative --out resolves here, once, before they start."""
    from harness.measure import processes

    checkout = tmp_path / "repo"
    (checkout / "harness").mkdir(parents=True)
    (checkout / "harness" / "__init__.py").write_text("")
    suite = _suite(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    seen = []

    def fake_session(request, *, workdir, on_process=None):
        seen.append(Path(workdir))
        member = processes.MemberPart(samples_ms=(1.0,), cycles=(0,))
        return [processes.GroupOutcome(g, tuple(processes.ProcessPart(index=k, members=(member, member), threads=1)
                                                for k in range(g.processes))) for g in request.groups]

    monkeypatch.setattr(processes, "run_session", fake_session)
    monkeypatch.setattr(ab, "input_sizes", lambda spec: [(3, 8, 8)] * len(spec["benchmarks"]))
    files = ab.run_inprocess(base=checkout, head=checkout, suite=suite, pairs=2, out=Path("results/same_job/x"))
    assert all(p.is_absolute() and p.is_relative_to(elsewhere / "results") for p in seen)
    assert [f.name for f in files] == ["pair1.json", "pair2.json"] and all(f.is_absolute() for f in files)


def test_the_worker_drops_only_the_checkouts_own_modules(tmp_path, monkeypatch):
    checkout = tmp_path / "repo"
    site = checkout / ".venv" / "lib" / "python3.12" / "site-packages"
    (site / "somepkg").mkdir(parents=True)
    (site / "somepkg" / "__init__.py").write_text("X = 1\n")
    (checkout / "ownpkg").mkdir()
    (checkout / "ownpkg" / "__init__.py").write_text("")
    (checkout / "ownmod.py").write_text("")
    (checkout / "ownns").mkdir()  # a namespace package: no __init__.py, no __file__
    (checkout / "ownns" / "part.py").write_text("")
    for folder in (site, checkout):
        monkeypatch.syspath_prepend(str(folder))
    for name in ("somepkg", "ownpkg", "ownmod", "ownns", "ownns.part"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        __import__(name)
    try:
        dropped = ab._drop_modules(checkout, keep=set())
        assert "somepkg" in sys.modules and "somepkg" not in dropped  # third-party: kept
        assert {"ownpkg", "ownmod", "ownns", "ownns.part"} <= set(dropped) and "ownmod" not in sys.modules
        assert "harness" in dropped and "torch" in sys.modules
    finally:
        sys.modules.update(dropped)
        for name in ("somepkg", "ownpkg", "ownmod", "ownns", "ownns.part"):
            sys.modules.pop(name, None)


# --- neighbours: other sources that can be empty or unmeasured -------------------------------------------------


def test_a_task_that_failed_when_the_baseline_was_frozen_is_never_judged(tmp_path, capsys):
    run = _run(tmp_path, "r", [latency("a", "sknet50", SAMPLES), _failed("b")])
    code, out, err = run_cli(capsys, "gate", "baseline", run, "-o", tmp_path / "b.json")
    assert code == 0 and "not frozen, latency task 'latency:b:r0' (b, batch 1) failed" in err
    cand = _run(tmp_path, "c", [latency("a", "sknet50", SAMPLES), latency("b", "sknet50", SAMPLES)])
    code, text = _check(capsys, cand, tmp_path / "b.json")
    assert code == 2 and text.splitlines()[-1] == (
        "Result: COULD NOT JUDGE (1 unchanged, 1 missing; b (cpu fp32, batch 1): missing, candidate only)")


def test_an_empty_baseline_file_or_pytest_benchmark_could_not_be_judged(tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"format": "harness-baseline", "schema": 1, "environment": {}, "benchmarks": []}))
    pytest_json = tmp_path / "pb.json"
    pytest_json.write_text(json.dumps({"machine_info": {}, "benchmarks": []}))
    for cand, base in ((empty, empty), (pytest_json, pytest_json)):
        code, text = _check(capsys, cand, base)
        assert code == 2 and text.splitlines()[-1] == (
            "Result: COULD NOT JUDGE (no benchmark was measured on either side)")


@pytest.mark.parametrize("median", [float("nan"), float("inf"), 0.0, -1.0, True])
def test_a_pytest_benchmark_median_that_is_no_time_is_refused(tmp_path, capsys, median):
    path = tmp_path / "pb.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": [
        {"fullname": "t", "name": "t", "stats": {"median": median, "rounds": 5}}]}))
    code, out, err = run_cli(capsys, "gate", "check", path, "--baseline", path)
    assert code == 2 and out == []
    assert err.startswith(f"error: {path}: benchmarks[0].stats: needs a finite positive 'median'")


@pytest.mark.parametrize("pairs", ["1000000000", "-1"])
def test_the_number_of_runs_per_side_is_bounded(tmp_path, capsys, pairs):
    argv = ["--pairs", pairs]
    message = f"error: --pairs {pairs}: gate ab needs 2 to 100 worker processes (default 3)"
    checkout = tmp_path / "repo"
    (checkout / "harness").mkdir(parents=True)
    (checkout / "harness" / "__init__.py").write_text("")
    code, out, err = run_cli(capsys, "gate", "ab", checkout, checkout, "--suite", _suite(tmp_path), *argv)
    assert code == 2 and out == [] and err.strip() == message


def test_calibration_was_removed_in_one_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "check", "--calibrate", _suite(tmp_path), "--repeats", "3", "--baseline",
                             tmp_path / "b.json")
    assert code == 2 and out == [] and err.strip() == (
        "error: check --calibrate was removed: the gate has one threshold per command (gate ab 2%, gate check 5%; "
        "--threshold to change it), see docs/gate.md")


def test_the_old_spellings_still_work_with_one_line_of_deprecation(tmp_path, capsys):
    run = _run(tmp_path, "r", [latency("a", "sknet50", SAMPLES)])
    code, out, err = run_cli(capsys, "baseline", run, "-o", tmp_path / "b.json")
    assert code == 0 and err == ("note: `baseline RUN_DIR -o FILE` is deprecated; use `python -m harness gate "
                                 "baseline RUN_DIR -o FILE` (docs/gate.md)\n")
    code, out, err = run_cli(capsys, "check", run, "--baseline", tmp_path / "b.json")
    assert code == 0 and any(line.startswith("Result: PASS") for line in out) and err == (
        "note: `check CANDIDATE --baseline FILE` is deprecated; use `python -m harness gate check CANDIDATE "
        "--baseline FILE` (docs/gate.md)\n")
    code, out, err = run_cli(capsys, "check", "--in-process", run)
    assert code == 2 and err.strip() == ("error: --in-process is a way of measuring --ab BASE HEAD; use `gate ab BASE "
                                         "HEAD --suite SUITE`")
