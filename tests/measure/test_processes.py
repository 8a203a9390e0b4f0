"""The timing driver's process level: fresh worker processes one after another, each sample with its process;
a worker that dies or overruns leaves its process out (counted, never silently), and the report says so."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli

from harness.measure import processes
from harness.measure.mode import Mode
from harness.measure.sampling import SampleWindow
from harness.results import load_run

# a model whose forward pass ends its worker process (os._exit, as a segfault or the OOM killer would) the first
# time any process runs it, or in every process but the last one, or sleeps past the worker's time limit
PLUGIN = """
import os, time
from pathlib import Path
import torch
from torch import nn
from harness import register_model

MARKER = Path(__file__).with_name("died")


class Dies(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if self.how == "once" and not MARKER.exists():
            MARKER.write_text("x")
            os._exit(3)
        if self.how == "sleep":
            time.sleep(30)
        return self.conv(x).mean(dim=(2, 3))


@register_model("NAME", input_size=(3, 16, 16))
def build(*, how: str = "never") -> nn.Module:
    return Dies(how)
"""


def _suite(tmp_path: Path, how: str, processes: int) -> Path:
    name = f"dies_{tmp_path.name[-6:]}".replace("-", "_")
    plugin = tmp_path / "dies.py"
    plugin.write_text(PLUGIN.replace("NAME", name))
    suite = tmp_path / "s.yaml"
    suite.write_text(json.dumps({
        "name": "p", "imports": [str(plugin)], "device": "cpu",
        "models": [{"name": name, "label": "a"}, {"name": name, "label": "b", "options": {"how": how}}],
        "latency": {"warmup": 1, "min_time_s": 0.0, "max_time_s": 1.0, "min_samples": 6,
                    "processes": processes}}))
    return suite


@pytest.mark.slow
def test_a_worker_that_dies_leaves_its_process_out_and_the_report_counts_it(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path, "once", 3), "--out", tmp_path / "r", "--reports",
                             tmp_path / "p", "--no-progress", "--threads", "1")
    assert code == 0, err
    run = load_run(Path(out[0]))
    for record in run.of_kind("latency"):
        runs = record.process_runs
        assert [r.index for r in runs] == [0, 1, 2] and record.processes_planned == 3
        assert runs[0].error.type == "WorkerFailed" and "exited 3" in runs[0].error.message
        assert set(record.processes) == {1, 2}  # the samples of the two processes that lived
    row = run.frame("latency").set_index("label").loc["b"]
    assert row["ratio_base_processes"] == 2 and row["ratio_base_scope"] == "processes"
    text = Path(out[1]).read_text()
    assert "⚠ 2 of 3 processes timed these models" in text and "| 2 of 3 × " in text


@pytest.mark.slow
def test_with_one_process_left_the_interval_is_within_process_only(tmp_path, capsys):
    code, out, err = run_cli(capsys, "run", _suite(tmp_path, "once", 2), "--out", tmp_path / "r", "--reports",
                             tmp_path / "p", "--no-progress", "--threads", "1")
    assert code == 0, err
    row = load_run(Path(out[0])).frame("latency").set_index("label").loc["b"]
    assert row["ratio_base_processes"] == 1 and row["ratio_base_scope"] == "within-process"
    text = Path(out[1]).read_text()
    assert "1 of 2 processes timed these models" in text and "within-process noise only" in text


@pytest.mark.slow
def test_a_worker_past_its_time_limit_is_killed_and_named(tmp_path, monkeypatch):
    from harness.models.plugins import import_plugin

    suite = _suite(tmp_path, "sleep", 1)
    plugin = str(tmp_path / "dies.py")
    import_plugin(plugin)
    name = f"dies_{tmp_path.name[-6:]}".replace("-", "_")
    from harness.models.registry import create_model

    member = processes.MemberRequest(key="b", factory=functools.partial(create_model, name, how="sleep"),
                                     input_size=(3, 16, 16))
    group = processes.GroupRequest(name="g", members=(member,), batch_size=1, device="cpu", mode=Mode(), loops=False,
                                   warmup=1, window=SampleWindow(0.0, 0.1, 1, 10), processes=1)
    monkeypatch.setattr(processes, "WORKER_GRACE_S", 3.0)
    (outcome,) = processes.run_session(processes.SessionRequest(
        groups=(group,), threads=1, setup=functools.partial(import_plugin, plugin), prebuild=False))
    (part,) = outcome.parts
    assert part.error == {"type": "TimeoutExpired", "message": "process 1 ran past its 3 s limit and was killed"}
    assert suite.is_file()


def test_each_process_builds_the_parents_weights_into_its_own_memory(tmp_path):
    """The parent builds each model once and hands its weights over a file: a worker's model is the parent's,
    built without initialisation, in fresh memory (not the file's pages)."""
    from harness.models.registry import create_model

    factory = functools.partial(create_model, "resnext29_16x32d", width=0.25)
    member = processes.MemberRequest(key="m", factory=factory, input_size=(3, 32, 32))
    group = processes.GroupRequest(name="g", members=(member,), batch_size=1, device="cpu", mode=Mode(), loops=False,
                                   warmup=0, window=SampleWindow(0.0, 0.1, 1, 10), processes=1)
    request = processes.SessionRequest(groups=(group,), threads=1, seed=0)
    weights = processes._save_weights(request, tmp_path)
    torch.manual_seed(0)
    parent = factory()
    child = processes._from_weights(factory, weights["m"])
    assert child is not None
    for (name, a), (_, b) in zip(parent.state_dict().items(), child.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert all(not t.is_meta for t in child.parameters())


@pytest.mark.parametrize("value", ["0", "-1", "abc", "10**9", str(10 ** 9), "", "2.0"])
def test_parse_processes_refuses_what_is_not_a_count(value):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="--processes"):
        processes.parse_processes(value)
    assert processes.parse_processes("6") == 6


@pytest.mark.parametrize(("n", "k"), [(2, 6), (4, 4), (4, 8), (3, 6)])
def test_the_build_order_is_balanced_over_the_processes(n, k):
    """Where a model lands in memory depends on what was built before it: over K processes every model is built in
    every position equally often (a fixed-seed shuffle built one copy of an A/A pair first in 4 of 6 processes in
    every run, which read as a +0.3% bias)."""
    keys = [f"m{i}" for i in range(n)]
    for offset in (0, 5):
        orders = [processes.build_order(keys, index, offset) for index in range(k)]
        assert all(sorted(order) == keys for order in orders)
        for position in range(n):
            counts = {key: sum(order[position] == key for order in orders) for key in keys}
            assert len(set(counts.values())) == 1, (position, counts)


def test_the_terminal_says_contention_when_any_group_of_a_process_was_contended():
    """Each timing group of a process (latency, then throughput) reads its own load: a process is contended when any
    of its groups was, whichever group's records come last (the line was lost when the last group was quiet)."""
    from harness.runner import contention_line

    def run(index: int, contended: bool, other: float) -> dict:
        return {"index": index, "contended": contended, "load": {"other_cores": other}}

    latency = [{"process_runs": [run(0, True, 1.6), run(1, False, 0.1)]}]
    throughput = [{"process_runs": [run(0, False, 0.2), run(1, False, 0.0)]}]
    line = contention_line({"latency:g": (latency, 1.0), "throughput:g": (throughput, 1.0)})
    assert line is not None and line.startswith("⚠ timed under contention: in 1 of 2 processes other processes kept "
                                                "up to 1.60 of the cores busy")
    assert contention_line({"throughput:g": (throughput, 1.0)}) is None
