"""Peak memory: the profiler's allocator accounting against tensor sizes worked out by hand, the RSS sampler
against a transient allocation it must catch, and the CUDA path where a GPU exists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.measure.memory import (
    METHOD_CPU,
    PeakMemory,
    RssSampler,
    profiled_iteration_peak_bytes,
    running_peak,
)

MIB = 1 << 20


def test_running_peak_is_the_largest_prefix_sum():
    assert running_peak([4, 4, -4, 8, -12]) == 12
    assert running_peak([-8, 2]) == 0  # frees of memory held before the window never go below zero
    assert running_peak([]) == 0


def test_profiled_peak_equals_the_output_of_a_1x1_conv():
    model = nn.Sequential(nn.Conv2d(3, 64, 1), nn.ReLU(inplace=True)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        model(x)
        peak = profiled_iteration_peak_bytes(lambda: model(x))
    assert peak == 64 * 64 * 64 * 4  # one fp32 output map; the in-place ReLU allocates nothing


def test_profiled_peak_sees_two_live_tensors_and_not_a_freed_one():
    a_bytes, b_bytes = 3 * MIB, 5 * MIB

    def step() -> None:
        a = torch.empty(a_bytes // 4)
        b = torch.empty(b_bytes // 4)
        del a, b
        torch.empty(MIB // 4)  # allocated after both were freed: below the peak

    assert profiled_iteration_peak_bytes(step) == a_bytes + b_bytes


def test_rss_sampler_catches_a_transient_allocation():
    def touch_and_free() -> None:
        block = torch.ones(256 * MIB // 4)  # written, so the pages are resident
        block.add_(1)
        del block

    with RssSampler(interval_s=0.0005) as before:
        pass
    with RssSampler(interval_s=0.0005) as rss:
        touch_and_free()
    assert rss.samples >= 2
    assert rss.peak_bytes - before.peak_bytes >= 200 * MIB


def test_cpu_peak_memory_is_positive_for_a_model_that_allocates():
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1)).eval()
    x = torch.randn(2, 3, 32, 32)
    memory = PeakMemory(torch.device("cpu"))
    memory.reset()
    with torch.inference_mode():
        use = memory.measure(lambda: model(x))
    out_bytes = 2 * 32 * 32 * 32 * 4
    assert use.method == METHOD_CPU
    assert 2 * out_bytes <= use.iteration_peak_bytes < 4 * out_bytes  # conv1 out + relu out (+ conv2 out)
    assert use.peak_bytes > use.iteration_peak_bytes > 0


def test_profiler_chatter_does_not_reach_stderr(capfd):
    profiled_iteration_peak_bytes(lambda: torch.empty(1024))
    assert "profiler_start" not in capfd.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_is_the_allocator_peak_above_the_start():
    memory = PeakMemory(torch.device("cuda"))
    resident = torch.empty(MIB // 4, device="cuda")
    memory.reset()
    transient = torch.empty(4 * MIB // 4, device="cuda")
    del transient
    use = memory.measure(lambda: None)
    assert use.iteration_peak_bytes == 4 * MIB and use.peak_bytes >= 5 * MIB
    del resident
