"""Latency, throughput and train-step timing of one model on one device.

The protocol is code here: the model is in ``eval()`` under ``torch.inference_mode()`` for inference;
warmup iterations are timed but returned apart; CPU iterations are timed with ``time.perf_counter_ns()``,
CUDA iterations with one event pair each, synchronising only before and after a sampling loop so the timer
never serialises the GPU queue; an OOM is an error, the batch size is never changed.

``prepare_benchmark`` returns a ``Benchmark`` (a model on its device, in its mode, with a fixed input) so a
runner can interleave models in rounds (A B C A B C) and spread slow drifts (thermal, clock boost, noisy
neighbours) evenly over them. ``measure_latency`` / ``measure_throughput`` are the one-shot forms.

One piece: ``Benchmark`` is one protocol (its input, its CPU and CUDA loops, alone or interleaved with a
reference, and the result they make); splitting the loops from the result would split that protocol.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from harness.environment import current_backend_flags
from harness.errors import MeasurementError
from harness.measure.device import TrainStep, autocast, check_mode, oom_error, synchronize, translating_errors
from harness.measure.memory import MemoryUse, PeakMemory
from harness.measure.mode import Mode
from harness.measure.results import LatencyResult, ThroughputResult
from harness.measure.sampling import SampleWindow, TimingConfig, gc_paused, repeat_until

TIMER_CPU = "perf_counter_ns"
TIMER_CUDA = "cuda_event"
_SEED = 0
# Throughput loops aim at min_time_s / min_samples each, so the minimum loop count fits in min_time_s.
_MAX_ITERS_PER_LOOP = 10_000


class Benchmark:
    """One model ready to be timed: on its device, in its mode, with a fixed input (and labels).

    Build it with ``prepare_benchmark``. ``warmup`` and ``sample`` return per-iteration milliseconds;
    ``latency`` and ``throughput`` wrap a sampling window into a result with memory, flags and wall time.
    """

    def __init__(self, model: nn.Module, *, inputs: torch.Tensor, device: torch.device, mode: Mode,
                 train: bool) -> None:
        self.model = model
        self.inputs = inputs
        self.device = device
        self.mode = mode
        self.train = train
        self.batch_size = int(inputs.shape[0])
        self.timer = TIMER_CUDA if device.type == "cuda" else TIMER_CPU
        self.memory = PeakMemory(device)
        self._labels: torch.Tensor | None = None
        self._last_warmup_ms: tuple[float, ...] = ()
        self._train_step: TrainStep | None = None
        if train:
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            self._train_step = TrainStep(model, optimizer, device=device, amp_dtype=mode.dtype)

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """Inference mode, autocast and error translation around a whole loop (not per iteration)."""
        with contextlib.ExitStack() as stack:
            # Events and syncs go to the current device's stream, so make ours current (cuda:1 etc.).
            if self.device.type == "cuda":
                stack.enter_context(torch.cuda.device(self.device))
            # As timeit and torch's Timer do, keep Python's cycle collector from pausing inside a sample.
            stack.enter_context(gc_paused())
            # A train step autocasts its forward only (backward under autocast is discouraged by torch).
            if not self.train:
                stack.enter_context(torch.inference_mode())
                stack.enter_context(autocast(self.device, self.mode.dtype))
            stack.enter_context(translating_errors(batch_size=self.batch_size, device=self.device,
                                                   compile_mode=self.mode.compile))
            yield

    def step(self) -> None:
        """One iteration: a forward pass, or a full SGD train step. Call inside ``_running``."""
        if self._train_step is None:
            self.model(self.inputs)
        else:
            self._train_step(self.inputs, self._labels_for)

    def _labels_for(self, logits: torch.Tensor) -> torch.Tensor:
        # Labels are built on first use because the class count is only known from the output.
        if self._labels is None:
            if logits.ndim != 2:
                raise MeasurementError(
                    f"train-step timing needs (batch, classes) logits, got shape {tuple(logits.shape)}"
                )
            generator = torch.Generator().manual_seed(_SEED + 1)
            labels = torch.randint(0, logits.shape[1], (logits.shape[0],), generator=generator)
            self._labels = labels.to(self.device)
        return self._labels

    # -- timed loops --------------------------------------------------------------------------------

    def _steps(self, reference: Benchmark | None) -> list[tuple[Callable[[], None], list]]:
        """What one iteration times: this model's step, and with a reference, the reference's step too.

        With a reference the two alternate A B, B A, A B … (each pair reversed, so neither always runs on
        caches the other warmed), and the window counts this model's samples.
        """
        return [(self.step, [])] + ([] if reference is None else [(reference.step, [])])

    def _sample_cpu(self, window: SampleWindow, reference: Benchmark | None = None) -> tuple[list, list]:
        steps = self._steps(reference)

        def once() -> None:
            for step, out in steps if len(steps[0][1]) % 2 == 0 else steps[::-1]:
                start = time.perf_counter_ns()
                step()
                out.append((time.perf_counter_ns() - start) / 1e6)

        repeat_until(window, once)
        return steps[0][1], steps[1][1] if reference is not None else []

    def _sample_cuda(self, window: SampleWindow, reference: Benchmark | None = None) -> tuple[list, list]:
        steps = self._steps(reference)

        def once() -> None:
            for step, out in steps if len(steps[0][1]) % 2 == 0 else steps[::-1]:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                end.record()
                out.append((start, end))

        synchronize(self.device)
        # The stopping rule reads the host clock, which runs ahead of the GPU by at most the launch
        # queue; the samples themselves are GPU times, read after the final sync.
        repeat_until(window, once)
        synchronize(self.device)
        times = [[start.elapsed_time(end) for start, end in out] for _, out in steps]
        return times[0], times[1] if reference is not None else []

    def sample(self, window: TimingConfig | SampleWindow) -> list[float]:
        """Time iterations until ``window`` is satisfied; milliseconds per iteration."""
        return self.sample_with(window)[0]

    def sample_with(self, window: TimingConfig | SampleWindow,
                    reference: Benchmark | None = None) -> tuple[list[float], list[float]]:
        """``sample``, with ``reference``'s iterations interleaved one for one: (ours, the reference's) ms.

        The reference must be an inference benchmark on the same device, in the same mode: it runs inside
        this benchmark's inference mode and autocast.
        """
        if isinstance(window, TimingConfig):
            window = window.window()
        if reference is not None and (reference.train or reference.device != self.device
                                      or reference.mode != self.mode):
            raise MeasurementError("an interleaved reference must be an inference benchmark on the same device "
                                   "and in the same mode as the model it is timed with")
        with self._running():
            if self.device.type == "cuda":
                return self._sample_cuda(window, reference)
            return self._sample_cpu(window, reference)

    def warmup(self, n: int) -> list[float]:
        """Run ``n`` timed iterations that are not samples (lazy init, autotuning, compilation)."""
        if n <= 0:
            return []
        warmup_ms = self.sample(SampleWindow(min_time_s=0.0, max_time_s=math.inf, min_samples=n, max_samples=n))
        self._last_warmup_ms = tuple(warmup_ms)
        return warmup_ms

    def loops(self, window: SampleWindow, *, iters_per_loop: int) -> list[float]:
        """Time whole loops of ``iters_per_loop`` iterations, syncing only at loop ends; seconds per loop."""
        loop_s: list[float] = []

        def once() -> None:
            synchronize(self.device)
            start = time.perf_counter_ns()
            for _ in range(iters_per_loop):
                self.step()
            synchronize(self.device)
            loop_s.append((time.perf_counter_ns() - start) / 1e9)

        with self._running():
            repeat_until(window, once)
        return loop_s

    # -- results ------------------------------------------------------------------------------------

    def _memory(self) -> MemoryUse:
        """Peak memory of the loop just timed (CUDA), or of one extra untimed iteration (CPU; see ``memory``)."""
        with self._running():
            return self.memory.measure(self.step)

    def _result_fields(self, *, warmup_ms: tuple[float, ...], wall_s: float, round_index: int,
                       memory: MemoryUse) -> dict[str, Any]:
        flags = current_backend_flags()
        return {
            "warmup_ms": warmup_ms,
            "batch_size": self.batch_size,
            "device": str(self.device),
            "mode": self.mode,
            "threads": torch.get_num_threads(),
            "peak_mem_bytes": memory.peak_bytes,
            "iter_peak_mem_bytes": memory.iteration_peak_bytes,
            "mem_method": memory.method,
            "timer": self.timer,
            "wall_s": wall_s,
            "cudnn_benchmark": flags["cudnn_benchmark"],
            "tf32": flags["tf32"],
            "round": round_index,
            "train": self.train,
        }

    def latency(self, window: TimingConfig | SampleWindow, *, round_index: int = 0,
                warmup_ms: tuple[float, ...] = (), reference: Benchmark | None = None) -> LatencyResult:
        """Sample per-iteration latency over ``window``; ``warmup_ms`` is stored alongside, not mixed in.

        With ``reference`` (the fixed reference workload) its iterations alternate with ours and are kept in
        ``reference_samples_ms``: a yardstick measured at the same moments as the model, which the gate
        divides by. The machine's speed changes by about 10% from one second to the next on a shared VM;
        a reference timed in a round of its own sees another second, one interleaved sees the same.
        """
        start = time.perf_counter()
        self.memory.reset()
        samples_ms, reference_ms = self.sample_with(window, reference)
        wall_s = time.perf_counter() - start
        fields = self._result_fields(warmup_ms=tuple(warmup_ms), wall_s=wall_s, round_index=round_index,
                                     memory=self._memory())
        return LatencyResult(samples_ms=tuple(samples_ms), reference_samples_ms=tuple(reference_ms), **fields)

    def throughput(self, window: TimingConfig | SampleWindow, *, iters_per_loop: int | None = None,
                   round_index: int = 0, warmup_ms: tuple[float, ...] = ()) -> ThroughputResult:
        """Time whole loops over ``window`` (its sample counts count loops)."""
        if isinstance(window, TimingConfig):
            window = window.window()
        if iters_per_loop is None:
            iters_per_loop = self._auto_iters_per_loop(window)
        start = time.perf_counter()
        self.memory.reset()
        loop_s = self.loops(window, iters_per_loop=iters_per_loop)
        wall_s = time.perf_counter() - start
        fields = self._result_fields(warmup_ms=tuple(warmup_ms), wall_s=wall_s, round_index=round_index,
                                     memory=self._memory())
        return ThroughputResult(
            samples_ms=tuple(s * 1e3 / iters_per_loop for s in loop_s),
            loop_samples_s=tuple(loop_s),
            images=len(loop_s) * iters_per_loop * self.batch_size,
            iters_per_loop=iters_per_loop,
            **fields,
        )

    def _auto_iters_per_loop(self, window: SampleWindow) -> int:
        """Enough iterations per loop that min_samples loops take about min_time_s."""
        estimate_ms = self._last_warmup_ms or tuple(self.sample(SampleWindow(0.0, math.inf, 1, 1)))
        iter_s = sorted(estimate_ms)[len(estimate_ms) // 2] / 1e3
        target_s = window.min_time_s / window.min_samples
        return int(min(_MAX_ITERS_PER_LOOP, max(1, round(target_s / max(iter_s, 1e-9)))))


def _fixed_input(shape: tuple[int, ...], *, device: torch.device, channels_last: bool) -> torch.Tensor:
    # Generated on the CPU so the same seed gives the same tensor whatever the device.
    generator = torch.Generator().manual_seed(_SEED)
    inputs = torch.randn(shape, generator=generator).to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def prepare_benchmark(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                      device: torch.device | str, mode: Mode, train: bool = False) -> Benchmark:
    """Move ``model`` to ``device`` in ``mode`` and build its fixed input; ``train`` times SGD steps."""
    dev = torch.device(device)
    check_mode(mode, dev)
    if batch_size < 1:
        raise MeasurementError(f"batch size must be >= 1, got {batch_size}")
    try:
        model = model.to(dev)
        if mode.channels_last:
            model = model.to(memory_format=torch.channels_last)
        inputs = _fixed_input((batch_size, *input_shape), device=dev, channels_last=mode.channels_last)
    except torch.OutOfMemoryError as err:
        raise oom_error(batch_size, dev) from err
    model.train(train)
    if mode.compile is not None:
        # Compilation is lazy: failures surface in the first (warmup) iteration, where they are translated.
        model = torch.compile(model, mode=mode.compile)
    return Benchmark(model, inputs=inputs, device=dev, mode=mode, train=train)


def measure_latency(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                    device: torch.device | str, mode: Mode = Mode(),
                    config: TimingConfig = TimingConfig()) -> LatencyResult:
    """Warm up, then sample inference latency of ``model`` (one round, no interleaving)."""
    start = time.perf_counter()
    bench = prepare_benchmark(model, input_shape=input_shape, batch_size=batch_size, device=device, mode=mode)
    warmup_ms = bench.warmup(config.warmup)
    result = bench.latency(config, warmup_ms=tuple(warmup_ms))
    return replace(result, wall_s=time.perf_counter() - start)


def measure_throughput(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                       device: torch.device | str, mode: Mode = Mode(), config: TimingConfig = TimingConfig(),
                       train: bool = False) -> ThroughputResult:
    """Warm up, then time whole loops of inference (or SGD train steps with ``train=True``)."""
    start = time.perf_counter()
    bench = prepare_benchmark(model, input_shape=input_shape, batch_size=batch_size, device=device, mode=mode,
                              train=train)
    warmup_ms = bench.warmup(config.warmup)
    result = bench.throughput(config, warmup_ms=tuple(warmup_ms))
    return replace(result, wall_s=time.perf_counter() - start)
