"""Warm-up of compiled models: until nothing new compiles (recompilations, CUDA-graph capture behind it), and loops
sized from warm iterations, not from the compiling one. The compiler is faked (a counter of compiled graphs), so
these run in milliseconds without a C++ toolchain."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from harness.measure import timer
from harness.measure.mode import Mode
from harness.measure.timer import PreparedModel


class Recompiling(nn.Module):
    """A model whose first ``compiles`` calls each 'compile' a new graph."""

    def __init__(self, compiles: int) -> None:
        super().__init__()
        self.compiles = compiles
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * 2


def _prepared(model: nn.Module, compile_mode: str | None, monkeypatch) -> PreparedModel:
    monkeypatch.setattr(timer, "_compiled_graphs", lambda: min(model.calls, model.compiles))
    return PreparedModel(model, inputs=torch.ones(1, 3), device=torch.device("cpu"), mode=Mode(compile=compile_mode),
                         train=False)


def test_a_compiled_model_warms_up_until_three_iterations_compile_nothing_new(monkeypatch):
    model = Recompiling(compiles=3)
    bench = _prepared(model, "reduce-overhead", monkeypatch)
    warm = bench.warmup(1)
    # call 1 compiles, calls 2 and 3 recompile, calls 4-6 compile nothing: warm after 6
    assert len(warm) == 6 == model.calls


def test_an_eager_model_warms_up_exactly_as_asked(monkeypatch):
    model = Recompiling(compiles=3)
    bench = _prepared(model, None, monkeypatch)
    assert len(bench.warmup(2)) == 2 == model.calls


def test_a_model_that_never_settles_stops_at_the_bound_and_says_so(monkeypatch, caplog):
    model = Recompiling(compiles=10 ** 6)
    bench = _prepared(model, "default", monkeypatch)
    with caplog.at_level(logging.WARNING, logger="harness.measure.timer"):
        warm = bench.warmup(1)
    assert len(warm) == timer.MAX_COMPILE_WARMUP
    assert "still compiling after" in caplog.text


@pytest.mark.parametrize(("warm_ms", "iters"), [((1000.0, 10.0, 10.0, 10.0), 100), ((10.0,), 100)])
def test_loops_are_sized_from_warm_iterations_not_the_compiling_one(monkeypatch, warm_ms, iters):
    bench = _prepared(Recompiling(compiles=0), "default", monkeypatch)
    bench._last_warmup_ms = warm_ms
    assert bench.auto_iters_per_loop(1.0) == iters


def test_compile_on_the_cpu_without_a_cpp_compiler_is_one_line(monkeypatch):
    """Inductor builds CPU kernels with a C++ compiler; without one the first iteration fails deep in a build
    step. Said up front instead, per model × mode, with the fix."""
    from harness.errors import MeasurementError
    from harness.measure import device

    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(MeasurementError, match=r"^torch.compile on the CPU needs a C\+\+ compiler \(Inductor builds "
                                               r"its kernels with one\); none of g\+\+ found: install one "
                                               r"\(e.g. apt install g\+\+\) or set CXX, or time this mode on CUDA$"):
        device.check_mode(Mode(compile="default"), "cpu")
    device.check_mode(Mode(), "cpu")  # eager needs none


def test_compile_on_the_cpu_finds_the_compiler_named_by_cxx(monkeypatch):
    from harness.measure import device

    monkeypatch.setattr(device.shutil, "which", lambda name: "/opt/bin/clang++" if name == "clang++" else None)
    monkeypatch.setenv("CXX", "clang++")
    device.check_mode(Mode(compile="default"), "cpu")


class Slow(nn.Module):
    """A model whose first ``compiles`` calls take ``compile_s`` longer (the 'compilation'), then 5 ms each."""

    def __init__(self, compiles: int, compile_s: float) -> None:
        super().__init__()
        self.compiles, self.compile_s, self.calls = compiles, compile_s, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        self.calls += 1
        time.sleep(0.005 + (self.compile_s if self.calls <= self.compiles else 0.0))
        return x * 2


def test_compile_time_is_the_compiling_iterations_less_a_warm_one_and_graph_breaks_are_counted(monkeypatch):
    from torch._dynamo.utils import counters

    model = Slow(compiles=2, compile_s=0.2)
    bench = _prepared(model, "default", monkeypatch)
    before = dict(counters["graph_break"])
    monkeypatch.setitem(counters, "graph_break", type(counters["graph_break"])(before))
    real = timer._compile_counters

    def with_a_break() -> dict:  # the warm-up met one graph break, as dynamo would count it
        if model.calls:
            counters["graph_break"]["Data pointer comparison"] += 1
        return real()

    monkeypatch.setattr(timer, "_compile_counters", with_a_break)
    bench.warmup(1)
    stats = bench.compile_stats
    assert stats is not None and stats.graphs == 2
    # two compiling calls of 0.2 s beyond a warm 5 ms one: a sleep never ends early, and on a busy machine it may end
    # late by scheduling delays (tens of ms), never by the seconds a wrong accounting would add
    assert 0.38 <= stats.seconds <= 1.0
    assert stats.graph_breaks == 1 and stats.break_reasons == ("Data pointer comparison",)


def test_an_eager_model_has_no_compile_stats(monkeypatch):
    bench = _prepared(Recompiling(compiles=0), None, monkeypatch)
    bench.warmup(2)
    assert bench.compile_stats is None
