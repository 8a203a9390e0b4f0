"""The same-job gate (``gate ab BASE HEAD --suite S``): both checkouts' models built in one process and timed
cycle by cycle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import run_cli

from harness.errors import ConfigError

PLUGIN = Path(__file__).resolve().parents[2] / "benchmarks" / "gate_plugin.py"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """The workers are subprocesses: one intra-op thread for them, as the CI workflow sets (two threads on a busy
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


def test_bad_inputs_are_one_line(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    for args, fragment in (
        ([base, tmp_path / "nowhere", "--suite", _suite(tmp_path)], "the head checkout"),
        ([base, base, "--suite", tmp_path / "none.yaml"], "--suite"),
        ([base, base, "--suite", _suite(tmp_path), "--pairs", "1"], "needs 2 to 100 worker processes"),
        ([base, base], "gate ab needs --suite"),
    ):
        code, out, err = run_cli(capsys, "gate", "ab", *args)
        assert code == 2 and out == [] and fragment in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ConfigError):
        from harness.gate.ab import check_inputs

        check_inputs(base, base, _suite(tmp_path), 0)


def test_the_device_may_name_a_gpu_and_a_suite_of_several_modes_is_refused(tmp_path, capsys):
    from harness.gate.ab import worker_spec

    base = _checkout(tmp_path, "base", 1.0)
    for device in ("cuda:x", "auto", "gpu"):
        with pytest.raises(SystemExit) as stopped:
            run_cli(capsys, "gate", "ab", base, base, "--suite", _suite(tmp_path), "--device", device)
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and f"--device {device!r}: write cpu, cuda or cuda:N" in err, err
    doc = json.loads(_suite(tmp_path).read_text())
    assert worker_spec(base=base, head=base, suite_path=_suite(tmp_path), device="cuda:1")["device"] == "cuda:1"
    doc["latency"]["modes"] = ["fp32", "compile"]
    (tmp_path / "modes.yaml").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"gate ab times one mode, and the latency section lists modes \(fp32, "
                                          r"fp32, compile:default\)"):
        worker_spec(base=base, head=base, suite_path=tmp_path / "modes.yaml", device="cpu")


def test_each_side_builds_its_own_checkouts_model_and_leaves_no_module_behind(tmp_path):
    import sys

    import harness
    from harness.gate.ab import _build_side, worker_spec

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
def test_gate_ab_fails_a_slower_head_and_passes_an_unchanged_one(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    verdicts = {}
    for cost in (1.0, 1.5):
        head = _checkout(tmp_path, f"head{cost}", cost)
        args = ["gate", "ab", base, head, "--suite", _suite(tmp_path), "--pairs", "2", "--out", tmp_path / "results",
                "--format", "json", "--no-progress", "--output", tmp_path / f"gate{cost}.json"]
        code, out, err = run_cli(capsys, *args)
        doc = json.loads("\n".join(out))
        if code == 2 and any("under contention" in line for line in doc.get("could_not_judge", [])):
            # a busy machine is refused by design (tests/gate/test_judges_only_what_it_can.py); the verdict is
            # this test's subject
            code, out, err = run_cli(capsys, *args, "--force")
            doc = json.loads("\n".join(out))
        verdicts[cost] = (code, doc["rows"][0]["verdict"], doc["rows"][0]["normalised_ratio"])
        assert re.match(r"same job, in one process: 2 processes each timed base \(.*\) and head", doc["notes"][0])
        assert doc["notes"][1].startswith("noise check (base runs 1, 3, … against 2, 4, …): largest change")
        assert json.loads((tmp_path / f"gate{cost}.json").read_text()) == doc
    assert verdicts[1.5][:2] == (1, "regression") and verdicts[1.5][2] > 1.3, verdicts  # 15 conv layers against 10
    assert verdicts[1.0][0] == 0 and 0.93 < verdicts[1.0][2] < 1.07, verdicts
    # every worker's samples are kept beside the spec they measured
    job = sorted((tmp_path / "results" / "same_job").iterdir())[0]
    assert sorted(p.name for p in job.iterdir()) == ["pair1.json", "pair2.json", "spec.json"]


def test_the_old_check_ab_spelling_runs_gate_ab_after_one_line(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    code, out, err = run_cli(capsys, "check", "--ab", base, base, "--suite", tmp_path / "none.yaml")
    assert code == 2 and out == [] and err.splitlines() == [
        "note: `check --ab BASE HEAD` is deprecated; use `python -m harness gate ab BASE HEAD --suite SUITE (always "
        "in one process)` (docs/gate.md)", f"error: --suite '{tmp_path / 'none.yaml'}' not found; pass the suite "
        "both sides run, e.g. suites/ci_latency.yaml"]


def test_gate_ab_refuses_a_suite_without_latency_and_names_a_failing_worker(tmp_path, capsys):
    base = _checkout(tmp_path, "base", 1.0)
    no_latency = tmp_path / "complexity.yaml"
    no_latency.write_text(json.dumps({"name": "c", "imports": ["my_model.py"], "models": ["gate_convnet"],
                                      "complexity": {}}))
    code, out, err = run_cli(capsys, "gate", "ab", base, base, "--suite", no_latency, "--out", tmp_path / "r")
    assert code == 2 and out == []
    assert "gate ab times the suite's latency section, and it has none" in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "my_model.py").write_text("raise RuntimeError('head plugin is broken')\n")
    code, out, err = run_cli(capsys, "gate", "ab", base, broken, "--suite", _suite(tmp_path), "--out", tmp_path / "r",
                             "--no-progress")
    assert code == 2 and out == [] and len(err.strip().splitlines()) == 1
    assert "gate ab: the head checkout cannot build its models: RuntimeError: head plugin is broken" in err


@pytest.mark.slow
def test_the_workers_time_every_benchmark_of_the_suite_with_its_backend_flags(tmp_path):
    """A suite of several models (the CI suite has three): each worker process of the timing driver warms and
    times each pair in turn, every round, with the section's cudnn.benchmark / TF32 settings."""
    from harness.gate.ab import load_pairs, run_inprocess, session_request, worker_spec

    base, head = _checkout(tmp_path, "base", 1.0), _checkout(tmp_path, "head", 1.0)
    suite = tmp_path / "two.yaml"
    suite.write_text(json.dumps({
        "name": "two", "imports": ["my_model.py"], "device": "cpu",
        "models": [{"name": "gate_convnet", "label": f"g{depth}", "options": {"channels": 4, "depth": depth}}
                   for depth in (1, 2)],
        "latency": {"batch_sizes": [1], "warmup": 1, "min_time_s": 0.0, "max_time_s": 0.2, "min_samples": 3,
                    "rounds": 2}}))
    spec = worker_spec(base=base, head=head, suite_path=suite, device="cpu")
    request = session_request(spec, 2)
    assert not request.prebuild and {(g.cudnn_benchmark, g.tf32) for g in request.groups} == {(True, False)}
    assert [tuple(m.key for m in g.members) for g in request.groups] == [("head:0", "base:0"), ("base:0", "head:0"),
                                                                         ("head:1", "base:1"), ("base:1", "head:1")]
    files = run_inprocess(base=base, head=head, suite=suite, pairs=2, out=tmp_path / "out")
    for f in files:
        result = json.loads(f.read_text())
        assert [r["benchmark"]["label"] for r in result["results"]] == ["g1", "g2"]
        for r in result["results"]:
            assert {side: len(rounds) for side, rounds in r["rounds"].items()} == {"base": 2, "head": 2}
            assert all(len(samples) >= 1 for rounds in r["rounds"].values() for samples in rounds)
    base_set, head_set, _, _ = load_pairs(files)
    assert len(base_set.benchmarks) == len(head_set.benchmarks) == 2
