"""Timing protocol on a tiny CPU model (fast), plus the CUDA event path where a GPU exists."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness.environment import backend_flags, current_backend_flags
from harness.errors import ConfigError, MeasurementError
from harness.measure.device import ModeUnsupported, check_mode
from harness.measure.mode import Mode
from harness.measure.peak import measure_peak_gmacs
from harness.measure.results import LatencyResult, ThroughputResult
from harness.measure.sampling import SampleWindow, TimingConfig
from harness.measure.timer import (
    PreparedModel,
    compare_latency,
    group_window,
    measure_group,
    measure_latency,
    measure_throughput,
    rotation,
    time_group,
)
from harness.measure.timer import prepare_benchmark as prepare
from harness.results.records import declared_fields

SHAPE = (3, 16, 16)
# Short windows keep every test well under a second on two cores.
FAST = TimingConfig(warmup=2, min_time_s=0.05, max_time_s=2.0, min_samples=5, max_samples=200)

# Fields from docs/CONTRACTS.md, spelled out here so a change to either side fails this test.
# what a measurement writes; the task's fields (kind, device, batch size, round, wall time) are the runner's
LATENCY_FIELDS = {
    "dtype", "channels_last", "compile", "samples_ms", "warmup_ms", "threads", "peak_mem_bytes",
    "iter_peak_mem_bytes", "mem_method", "timer", "cudnn_benchmark", "tf32", "cycles", "pairing", "group_size", "load",
}  # fmt: skip
THROUGHPUT_FIELDS = LATENCY_FIELDS | {"samples_per_s", "loop_samples_s", "images"}


def tiny_net(classes: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    )


class Exploding(nn.Module):
    """Raises a chosen exception from forward, to test error translation without real OOMs."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


# ------------------------------------------------------------------------------------------- modes


def test_fp16_on_cpu_is_a_measurement_error() -> None:
    with pytest.raises(MeasurementError, match="fp16 autocast is not supported on CPU; use dtype bf16"):
        check_mode(Mode(dtype="fp16"), "cpu")
    with pytest.raises(MeasurementError, match="fp16"):
        measure_latency(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(dtype="fp16"))


def test_an_unknown_dtype_is_refused_by_the_mode() -> None:
    with pytest.raises(ValidationError, match="Input should be 'fp32', 'bf16' or 'fp16'"):
        Mode(dtype="int8")


def test_an_unknown_compile_mode_is_refused_when_the_mode_is_made() -> None:
    with pytest.raises(ValidationError, match="unknown torch.compile mode 'fastest'; use one of default"):
        Mode(compile="fastest")


def test_bf16_on_a_cpu_that_only_emulates_it_is_unsupported_with_the_reason(monkeypatch) -> None:
    from harness.measure import device

    monkeypatch.setattr(device, "native_bf16_cpu", lambda: False)
    with pytest.raises(ModeUnsupported, match="bf16 is only emulated on this CPU") as info:
        check_mode(Mode(dtype="bf16"), "cpu")
    assert "\n" not in str(info.value)
    check_mode(Mode(), "cpu")  # fp32 is always timed


def test_compile_without_a_cpp_compiler_is_unsupported_in_one_line(monkeypatch) -> None:
    from harness.measure import device

    monkeypatch.setattr(device, "cpp_compiler", lambda: None)
    with pytest.raises(ModeUnsupported, match="torch.compile on the CPU needs a C\\+\\+ compiler") as info:
        check_mode(Mode(compile="default"), "cpu")
    assert "\n" not in str(info.value)


def test_a_group_may_time_models_in_several_modes_each_in_its_own_autocast() -> None:
    seen: list[torch.dtype] = []

    class Records(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            seen.append(y.dtype)
            return y

    fp32 = prepare(Records(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    bf16 = prepare(Records(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(dtype="bf16"))
    cl = prepare(Records(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(channels_last=True))
    group = time_group([fp32, bf16, cl], SampleWindow(0.0, 10.0, 6, 6))
    assert [len(m.samples_ms) for m in group.members] == [6, 6, 6]
    assert all(m.error is None for m in group.members)
    # 6 cycles of 3 models: a third of the convolutions ran in bf16, the rest in fp32, whatever the order
    assert seen.count(torch.bfloat16) == 6 and seen.count(torch.float32) == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_without_cuda_is_a_measurement_error() -> None:
    with pytest.raises(MeasurementError, match="CUDA is not available"):
        check_mode(Mode(), "cuda")


def test_timing_config_validates_and_splits_into_rounds() -> None:
    with pytest.raises(ValidationError, match="min_samples"):
        TimingConfig(min_samples=0)
    with pytest.raises(ValidationError, match=r"max_time_s \(1.0\) must be ≥ min_time_s \(5.0\)"):
        TimingConfig(min_time_s=5.0, max_time_s=1.0)
    with pytest.raises(ValidationError, match=r"min_samples \(20\) must be ≤ max_samples \(10"):
        TimingConfig(min_samples=20, max_samples=10)
    window = TimingConfig(min_time_s=2.0, max_time_s=10.0, min_samples=10, max_samples=100).split(3)
    assert window == SampleWindow(min_time_s=2.0 / 3, max_time_s=10.0 / 3, min_samples=4, max_samples=34)


# ----------------------------------------------------------------------------------------- latency


def test_latency_samples_are_positive_and_warmup_kept_apart() -> None:
    result = measure_latency(tiny_net(), input_shape=SHAPE, batch_size=2, device="cpu", config=FAST)
    assert isinstance(result, LatencyResult)
    assert len(result.samples_ms) >= FAST.min_samples
    assert all(sample > 0 for sample in result.samples_ms)
    assert len(result.warmup_ms) == FAST.warmup
    assert result.timer == "perf_counter_ns"
    assert result.threads == torch.get_num_threads()
    # the profiled extra iteration holds at least the conv's output: batch 2 x 8 channels x 16 x 16 fp32
    assert result.iter_peak_mem_bytes >= 2 * 8 * 16 * 16 * 4 and result.mem_method == "torch_profiler+rss"
    assert result.peak_mem_bytes > result.iter_peak_mem_bytes  # the whole process's RSS
    assert result.wall_s >= sum(result.samples_ms) / 1e3


def test_sampling_stops_at_max_time() -> None:
    prepared = prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    window = SampleWindow(min_time_s=0.0, max_time_s=0.2, min_samples=1_000_000, max_samples=1_000_000)
    start = time.perf_counter()
    samples = prepared.sample(window)
    elapsed = time.perf_counter() - start
    # Stops after the first iteration that crosses max_time; allow for a slow iteration on a busy box.
    assert elapsed < 0.2 + 0.5
    assert 0 < len(samples) < 1_000_000


def test_sampling_stops_at_max_samples_before_min_time() -> None:
    prepared = prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    samples = prepared.sample(SampleWindow(min_time_s=60.0, max_time_s=120.0, min_samples=4, max_samples=7))
    assert len(samples) == 7


def test_inference_runs_in_eval_and_inference_mode() -> None:
    seen: dict[str, bool] = {}

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen["training"] = self.training
            seen["inference"] = torch.is_inference_mode_enabled()
            return x.mean(dim=(2, 3))

    prepared = prepare(Probe().train(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    prepared.warmup(1)
    assert seen == {"training": False, "inference": True}


def test_group_results_carry_round_cycles_and_pairing() -> None:
    models = [prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode()) for _ in range(2)]
    warmups = [p.warmup(1) for p in models]
    window = SampleWindow(min_time_s=0.0, max_time_s=10.0, min_samples=7, max_samples=7)
    group = time_group(models, window)
    records = [p.result(t, group, warmup_ms=tuple(w), round_index=3).to_record()
               for p, t, w in zip(models, group.members, warmups, strict=True)]
    assert group.cycles == 7
    for rec in records:
        assert set(rec) == LATENCY_FIELDS
        assert len(rec["warmup_ms"]) == 1
        assert rec["cycles"] == list(range(7)) and len(rec["samples_ms"]) == 7
        assert rec["pairing"] == group.pairing and rec["group_size"] == 2
        assert rec["load"]["cores"] >= 1 and rec["load"]["other_cores"] >= 0.0


# -------------------------------------------------------------------------------------- throughput


def test_throughput_counts_whole_loops() -> None:
    result = measure_throughput(tiny_net(), input_shape=SHAPE, batch_size=3, device="cpu", config=FAST)
    assert isinstance(result, ThroughputResult) and result.kind == "throughput"
    loops = len(result.loop_samples_s)
    assert loops >= FAST.min_samples
    assert result.images == loops * result.iters_per_loop * 3
    assert result.samples_per_s == pytest.approx(result.images / sum(result.loop_samples_s))
    assert len(result.samples_ms) == loops


def test_train_step_updates_parameters() -> None:
    model = tiny_net()
    before = [p.detach().clone() for p in model.parameters()]
    config = TimingConfig(warmup=1, min_time_s=0.0, max_time_s=2.0, min_samples=2, max_samples=2)
    result = measure_throughput(model, input_shape=SHAPE, batch_size=4, device="cpu", config=config, train=True)
    assert result.kind == "train_throughput" and result.train
    assert model.training
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True)]
    # The conv bias feeds a BatchNorm, so its gradient is exactly zero; every other tensor must move.
    assert changed == [True, False, True, True, True, True]


def test_bf16_autocast_runs_on_cpu() -> None:
    result = measure_latency(
        tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(dtype="bf16"), config=FAST
    )
    assert result.to_record()["dtype"] == "bf16"


# ----------------------------------------------------------------------------------------- records


def test_latency_record_fields_match_the_contract() -> None:
    mode = Mode(channels_last=True)
    result = measure_latency(tiny_net(), input_shape=SHAPE, batch_size=2, device="cpu", mode=mode, config=FAST)
    record = result.to_record()
    assert set(record) == LATENCY_FIELDS and LATENCY_FIELDS <= set(declared_fields("latency"))
    assert result.kind == "latency"
    assert record["channels_last"] is True
    assert record["compile"] is None
    assert (record["dtype"], result.device, result.batch_size) == ("fp32", "cpu", 2)
    assert record["cudnn_benchmark"] == current_backend_flags()["cudnn_benchmark"]
    json.dumps(record)


def test_channels_last_input_is_channels_last() -> None:
    prepared = prepare(tiny_net(), input_shape=SHAPE, batch_size=2, device="cpu", mode=Mode(channels_last=True))
    assert prepared.inputs.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize(("train", "kind"), [(False, "throughput"), (True, "train_throughput")])
def test_throughput_record_fields_match_the_contract(train: bool, kind: str) -> None:
    result = measure_throughput(tiny_net(), input_shape=SHAPE, batch_size=2, device="cpu", config=FAST, train=train)
    record = result.to_record()
    assert set(record) == THROUGHPUT_FIELDS and THROUGHPUT_FIELDS <= set(declared_fields(kind))
    assert result.kind == kind
    assert record["images"] == result.images
    json.dumps(record)


# ------------------------------------------------------------------------------------------ errors


def test_oom_becomes_a_measurement_error_without_shrinking_the_batch() -> None:
    prepared = prepare(
        Exploding(torch.OutOfMemoryError("CUDA out of memory")),
        input_shape=SHAPE,
        batch_size=64,
        device="cpu",
        mode=Mode(),
    )
    with pytest.raises(MeasurementError, match="out of memory at batch size 64 on cpu; lower the batch size"):
        prepared.warmup(1)
    assert prepared.batch_size == 64 and prepared.inputs.shape[0] == 64


def test_compile_failure_names_the_compile_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch._dynamo.exc import TorchDynamoException

    # Stand in for a real backend failure: compiling for real takes tens of seconds on CPU.
    monkeypatch.setattr(torch, "compile",
                        lambda model, mode=None, dynamic=None: Exploding(TorchDynamoException("boom")))
    prepared = prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(compile="max-autotune"))
    with pytest.raises(MeasurementError, match=r"torch.compile\(mode='max-autotune'\) failed on cpu"):
        prepared.warmup(1)


def test_eager_model_errors_are_not_relabelled() -> None:
    prepared = prepare(Exploding(ValueError("bad shape")), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    with pytest.raises(ValueError, match="bad shape"):
        prepared.warmup(1)


# ------------------------------------------------------------------------------- flags and peak


def test_backend_flags_are_set_and_restored() -> None:
    before = current_backend_flags()
    with backend_flags(cudnn_benchmark=not before["cudnn_benchmark"], tf32=True):
        inside = current_backend_flags()
        assert inside["cudnn_benchmark"] is not before["cudnn_benchmark"]
        assert inside["tf32"] and inside["tf32_matmul"] and inside["tf32_cudnn"]
    assert current_backend_flags() == before


def test_backend_flags_restore_after_an_exception() -> None:
    before = current_backend_flags()
    with pytest.raises(RuntimeError), backend_flags(cudnn_benchmark=True, tf32=False):
        raise RuntimeError("inside")
    assert current_backend_flags() == before


def test_measure_peak_gmacs_on_cpu_is_positive_and_quick() -> None:
    start = time.perf_counter()
    gmacs = measure_peak_gmacs("cpu", size=128, min_time_s=0.05)
    assert gmacs > 0
    assert time.perf_counter() - start < 2.0
    with pytest.raises(MeasurementError, match="fp16"):
        measure_peak_gmacs("cpu", dtype="fp16")


@pytest.mark.slow  # a fresh interpreter importing torch takes ~5 s on two cores
def test_measure_package_does_not_import_runner_layers() -> None:
    code = (
        "import sys, harness.measure.timer, harness.measure.stats, harness.environment; "
        "bad = [m for m in ('harness.config', 'harness.plan', 'harness.runner', 'harness.results') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stdout + completed.stderr


# ----------------------------------------------------------------------------------------- compile


@pytest.mark.slow
def test_compiled_model_is_timed_and_recorded() -> None:
    config = TimingConfig(warmup=1, min_time_s=0.0, max_time_s=5.0, min_samples=3, max_samples=3)
    mode = Mode(compile="default")
    result = measure_latency(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=mode, config=config)
    assert result.to_record()["compile"] == "default"
    # Compilation happens in the first warmup iteration, which is why warmup is kept apart.
    assert result.warmup_ms[0] > max(result.samples_ms)


# -------------------------------------------------------------------------------------------- CUDA


class FakeEvent:
    """Host-clock stand-in for torch.cuda.Event, to run the event bookkeeping without a GPU."""

    synced = False

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.at_ns: int | None = None

    def record(self) -> None:
        self.at_ns = time.perf_counter_ns()

    def elapsed_time(self, end: FakeEvent) -> float:
        # Reading an event before the closing synchronize is the bug this fake exists to catch.
        assert FakeEvent.synced, "elapsed_time read before the final synchronize"
        return (end.at_ns - self.at_ns) / 1e6


def test_cuda_event_bookkeeping_with_fake_events(monkeypatch: pytest.MonkeyPatch) -> None:
    syncs: list[int] = []

    def synchronize(device: object = None) -> None:
        syncs.append(1)
        FakeEvent.synced = True

    def step_hook(module: nn.Module, args: object) -> None:
        FakeEvent.synced = False  # any iteration after a sync makes earlier reads premature again

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    model = tiny_net().eval()
    model.register_forward_pre_hook(step_hook)
    inputs = torch.randn(2, *SHAPE)
    prepared = PreparedModel(model, inputs=inputs, device=torch.device("cuda"), mode=Mode(), train=False)
    assert prepared.timer == "cuda_event"
    samples = prepared.sample(SampleWindow(min_time_s=0.0, max_time_s=5.0, min_samples=6, max_samples=6))
    assert len(samples) == 6 and all(sample > 0 for sample in samples)
    assert len(syncs) == 2  # once before and once after the loop, never per iteration
    syncs.clear()
    FakeEvent.synced = False
    group = time_group([prepared, prepared], SampleWindow(0.0, 5.0, 3, 3), iters_per_loop=[4, 4])
    assert all(len(m.loop_samples_s) == 3 for m in group.members)
    assert len(syncs) == 3 + 1  # once per cycle (the cycle's steps ran at one moment), once before reading


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_event_path() -> None:
    result = measure_latency(tiny_net(), input_shape=SHAPE, batch_size=8, device="cuda", config=FAST)
    record = result.to_record()
    assert record["timer"] == "cuda_event"
    assert len(record["samples_ms"]) >= FAST.min_samples
    assert all(sample > 0 for sample in record["samples_ms"])
    assert record["peak_mem_bytes"] > 0
    throughput = measure_throughput(
        tiny_net(), input_shape=SHAPE, batch_size=8, device="cuda", mode=Mode(dtype="fp16"), config=FAST, train=True
    )
    assert throughput.samples_per_s > 0 and throughput.timer == "cuda_event"


# --- the engine: models timed together, interleaved, the order rotating -----------------------------------


class Tagged(nn.Module):
    def __init__(self, tag: str, order: list[str], *, fail_at: int | None = None) -> None:
        super().__init__()
        self.tag, self.order, self.fail_at = tag, order, fail_at
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        self.order.append(self.tag)
        if self.fail_at is not None and self.order.count(self.tag) > self.fail_at:
            raise RuntimeError(f"{self.tag} broke")
        return self.conv(x)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_rotation_is_a_balanced_latin_square(n: int) -> None:
    rows = rotation(n)
    assert all(sorted(row) == list(range(n)) for row in rows)
    # every model in every position equally often
    for pos in range(n):
        counts = [sum(row[pos] == m for row in rows) for m in range(n)]
        assert len(set(counts)) == 1
    # every model directly after every other one equally often (carry-over balanced)
    follows = [(row[i], row[i + 1]) for row in rows for i in range(n - 1)]
    pairs = {(a, b) for a in range(n) for b in range(n) if a != b}
    assert {follows.count(p) for p in pairs} <= {1 if n % 2 == 0 else 2}


def test_group_interleaves_one_iteration_of_each_per_cycle_in_rotating_order() -> None:
    order: list[str] = []
    benches = [prepare(Tagged(t, order), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode()) for t in "abc"]
    order.clear()
    group = time_group(benches, SampleWindow(min_time_s=0.0, max_time_s=10.0, min_samples=6, max_samples=6))
    cycles = [order[i:i + 3] for i in range(0, 18, 3)]
    assert cycles == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["c", "b", "a"], ["a", "c", "b"],
                      ["b", "a", "c"]]
    assert [m.cycles for m in group.members] == [tuple(range(6))] * 3
    assert all(len(m.samples_ms) == 6 and min(m.samples_ms) > 0 for m in group.members)


def test_a_model_that_raises_mid_timing_fails_alone() -> None:
    order: list[str] = []
    benches = [prepare(Tagged("ok", order), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode()),
               prepare(Tagged("bad", order, fail_at=3), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())]
    group = time_group(benches, SampleWindow(min_time_s=0.0, max_time_s=10.0, min_samples=8, max_samples=8))
    good, bad = group.members
    assert isinstance(bad.error, RuntimeError) and "bad broke" in str(bad.error)
    assert bad.samples_ms == () and bad.cycles == ()  # its samples are dropped, not half-kept
    assert good.error is None and good.cycles == tuple(range(8))  # the rest of the group is still measured


def test_models_timed_together_must_match_batch_and_kind() -> None:
    a = prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode())
    window = SampleWindow(0.0, 1.0, 1, 1)
    with pytest.raises(MeasurementError, match="must share device, batch size and train/inference.*batch 2"):
        time_group([a, prepare(tiny_net(), input_shape=SHAPE, batch_size=2, device="cpu", mode=Mode())], window)
    with pytest.raises(MeasurementError, match="train"):
        time_group([a, prepare(tiny_net(), input_shape=SHAPE, batch_size=1, device="cpu", mode=Mode(),
                               train=True)], window)
    with pytest.raises(MeasurementError, match="at least one model"):
        time_group([], window)


def test_a_comparison_needs_two_models() -> None:
    with pytest.raises(ConfigError, match="a comparison needs at least two models, got 1"):
        compare_latency({"only": tiny_net()}, input_shape=SHAPE, config=FAST)


def test_group_window_gives_each_model_its_own_time() -> None:
    window = group_window(SampleWindow(1.0, 2.0, 10, 100), 4)
    assert (window.min_time_s, window.max_time_s, window.min_samples, window.max_samples) == (4.0, 8.0, 10, 100)


def test_throughput_loops_of_a_group_are_paired_by_cycle() -> None:
    results = measure_group({"a": tiny_net(), "b": tiny_net()}, input_shape=SHAPE, batch_size=2, device="cpu",
                            config=FAST, loops=True)
    a, b = results["a"], results["b"]
    assert isinstance(a, ThroughputResult) and a.pairing == b.pairing
    assert a.cycles == b.cycles and len(a.loop_samples_s) == len(a.cycles)
    assert a.images == len(a.loop_samples_s) * a.iters_per_loop * 2


def test_an_error_at_a_cycles_cuda_sync_fails_that_cycles_members_and_frees_them(monkeypatch) -> None:
    """An asynchronous CUDA error surfaces at the cycle's sync, outside any member's step: it is the error of the
    members of that cycle (which stop), the group still returns, and a failed member's frames are released and the
    CUDA cache emptied (an OOM's activations live in its traceback's frames)."""
    calls = {"sync": 0, "empty_cache": 0}

    def synchronize(device: object = None) -> None:
        calls["sync"] += 1
        FakeEvent.synced = True
        if calls["sync"] == 3:  # the third cycle's sync
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def empty_cache() -> None:
        calls["empty_cache"] += 1

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    benches = [PreparedModel(tiny_net().eval(), inputs=torch.randn(1, *SHAPE), device=torch.device("cuda"),
                             mode=Mode(), train=False) for _ in range(2)]
    group = time_group(benches, SampleWindow(0.0, 5.0, 4, 4))
    assert group.cycles == 3  # every member stopped after the failed cycle: the loop ends there
    for member in group.members:
        assert isinstance(member.error, RuntimeError) and "illegal memory access" in str(member.error)
        assert member.error.__traceback__ is None and member.samples_ms == ()
    assert calls["empty_cache"] >= 1


def test_cuda_memory_is_one_iteration_of_the_model_after_a_reset(monkeypatch) -> None:
    """CUDA peak memory: sync, reset the allocator's peak, note what is allocated, run one iteration, sync, read
    the peak (never the process's high-water mark since it started)."""
    from harness.measure.memory import METHOD_CUDA, PeakMemory

    order: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: order.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: order.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: order.append("allocated") or 1000)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: order.append("peak") or 1600)
    use = PeakMemory(torch.device("cuda")).measure(lambda: order.append("step"))
    assert order == ["sync", "reset", "allocated", "step", "sync", "peak"]
    assert (use.peak_bytes, use.iteration_peak_bytes, use.method) == (1600, 600, METHOD_CUDA)


@pytest.mark.parametrize(("capability", "native"), [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_counts_as_native_from_ampere_on_the_device_in_use(monkeypatch, capability, native) -> None:
    """V100 (7.0) and T4 (7.5) emulate bf16 (torch.cuda.is_bf16_supported() says yes there); the check asks the
    device being timed, not the current one."""
    from harness.measure.device import native_bf16

    asked: list[int] = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: asked.append(index) or capability)
    assert native_bf16(torch.device("cuda:1")) is native and asked == [1]
