"""Latency, throughput and train-step timing on one device, through one engine that times models together.

The protocol is code here: the model is in ``eval()`` under ``torch.inference_mode()`` for inference;
warmup iterations are timed but returned apart; CPU iterations are timed with ``time.perf_counter_ns()``,
CUDA iterations with one event pair each; an OOM is an error, the batch size is never changed.

``prepare_benchmark`` returns a ``PreparedModel`` (a model on its device, in its mode, with a fixed input).
``time_group`` is the one engine: it times several prepared models interleaved, one iteration (or one whole
loop) of each per cycle, the order rotating every cycle (``rotation``), and keeps every sample with its cycle.
Two models are compared from these paired samples, never from separate timings: on a shared machine the speed
moves by 10% and more between seconds, and only samples taken in the same cycle see the same machine
(``harness.measure.stats.paired_ratio``). A plain timing of one model is a group of one.
``measure_group`` / ``compare_latency`` / ``measure_latency`` / ``measure_throughput`` are notebook forms.

One piece: ``PreparedModel`` and the engine are one protocol (inputs, CPU and CUDA clocks, the cycle, the result
they make); splitting them would split that protocol.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import nn

from harness.environment import current_backend_flags
from harness.errors import ConfigError, MeasurementError
from harness.measure.device import TrainStep, autocast, check_mode, oom_error, synchronize, translating_errors
from harness.measure.load import Load, LoadMonitor
from harness.measure.memory import MemoryUse, PeakMemory
from harness.measure.mode import Mode
from harness.measure.results import LatencyResult, ThroughputResult
from harness.measure.sampling import SampleWindow, TimingConfig, gc_paused, repeat_until, window_done

log = logging.getLogger(__name__)

TIMER_CPU = "perf_counter_ns"
TIMER_CUDA = "cuda_event"
_SEED = 0
# Throughput loops aim at min_time_s / min_samples each (per model), so the minimum loop count fits in min_time_s.
_MAX_ITERS_PER_LOOP = 10_000
# A compiled model is warm after this many iterations in a row compiled nothing new: a recompilation (a guard that
# failed) is behind it, and so is CUDA-graph capture (cudagraph trees run a new graph once, record it on the next
# call and replay from the one after), which would otherwise land in the first timed loops.
COMPILE_SETTLE_ITERATIONS = 3
# ... bounded: a model still compiling after this many warm-up iterations is timed anyway, with a warning.
MAX_COMPILE_WARMUP = 50


def _compiled_graphs() -> int:
    """How many graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _compile_counters() -> dict[str, Any]:
    """dynamo's and Inductor's process-wide counters a compiled model's warm-up moves: graphs, graph breaks (with
    their reasons), what dynamo gave up on, and the FX-graph cache's hits."""
    from torch._dynamo.utils import counters

    return {"graphs": _compiled_graphs(), "breaks": dict(counters["graph_break"]),
            "unimplemented": dict(counters["unimplemented"]),
            "hits": int(counters["inductor"]["fxgraph_cache_hit"])}


def _reason(text: str) -> str:
    """dynamo's reason in one line: its first line and, where it has one, the line naming the code it stopped at."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    context = next((line.removeprefix("Developer debug context:").strip() for line in lines
                    if line.startswith("Developer debug context:")), "")
    return "; ".join(part for part in (lines[0] if lines else "", context) if part)[:300]


MAX_BREAK_REASONS = 5  # a compiled model's graph-break reasons kept in its record (the first ones, one line each)


@dataclass(frozen=True, kw_only=True)
class CompileStats:
    """What compiling one model cost in one process, apart from its timed samples.

    ``seconds``: the warm-up iterations that compiled a graph, less a warm iteration's time each (the compilation
    itself, as the host clock saw it); ``graphs`` compiled, ``graph_breaks`` (dynamo splits the model there and runs
    the piece between eagerly) with their first reasons; ``cache_hits`` of Inductor's FX-graph cache (a process after
    the first usually hits: its compile time is then mostly dynamo's tracing)."""

    seconds: float
    graphs: int
    graph_breaks: int
    break_reasons: tuple[str, ...] = ()
    cache_hits: int = 0

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any], seconds: float) -> CompileStats:
        breaks = {k: v - before["breaks"].get(k, 0) for k, v in after["breaks"].items()}
        reasons = tuple(_reason(k) for k, v in breaks.items() if v > 0)[:MAX_BREAK_REASONS]
        return cls(seconds=seconds, graphs=after["graphs"] - before["graphs"],
                   graph_breaks=sum(v for v in breaks.values() if v > 0), break_reasons=reasons,
                   cache_hits=after["hits"] - before["hits"])


class PreparedModel:
    """One model ready to be timed: on its device, in its mode, with a fixed input (and labels).

    Build it with ``prepare_benchmark``. ``warmup`` and ``sample`` return per-iteration milliseconds of this
    model alone; ``time_group`` times it with others, and ``result`` turns its part of a group into a result.
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
        self.memory_probe = PeakMemory(device)
        self._labels: torch.Tensor | None = None
        self._last_warmup_ms: tuple[float, ...] = ()
        self.compile_stats: CompileStats | None = None  # set by ``warmup`` for a compiled model
        self._train_step: TrainStep | None = None
        if train:
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            self._train_step = TrainStep(model, optimizer, device=device, amp_dtype=mode.dtype)

    @contextlib.contextmanager
    def _running(self, *, with_autocast: bool = True) -> Iterator[None]:
        """Inference mode, autocast and error translation around a whole loop (not per iteration);
        ``with_autocast=False``: no autocast (a group of models in several dtypes enters each one's: ``casting``)."""
        with contextlib.ExitStack() as stack:
            # Events and syncs go to the current device's stream, so make ours current (cuda:1 etc.).
            if self.device.type == "cuda":
                stack.enter_context(torch.cuda.device(self.device))
            # As timeit and torch's Timer do, keep Python's cycle collector from pausing inside a sample.
            stack.enter_context(gc_paused())
            if not self.train:
                stack.enter_context(torch.inference_mode())
            if with_autocast:
                stack.enter_context(self.casting())
            stack.enter_context(self.errors())
            yield

    def casting(self) -> contextlib.AbstractContextManager[Any]:
        """This model's autocast (nothing for fp32). A train step autocasts its forward only, inside the step
        (backward under autocast is discouraged by torch)."""
        return contextlib.nullcontext() if self.train else autocast(self.device, self.mode.dtype)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        """An OOM or a compile failure of this model as a one-line ``MeasurementError``."""
        return translating_errors(batch_size=self.batch_size, device=self.device, compile_mode=self.mode.compile)

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

    def _sample_cpu(self, window: SampleWindow) -> list[float]:
        out: list[float] = []

        def once() -> None:
            start = time.perf_counter_ns()
            self.step()
            out.append((time.perf_counter_ns() - start) / 1e6)

        repeat_until(window, once)
        return out

    def _sample_cuda(self, window: SampleWindow) -> list[float]:
        pending: list[tuple[Any, Any]] = []

        def once() -> None:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            self.step()
            end.record()
            pending.append((start, end))

        synchronize(self.device)
        # The stopping rule reads the host clock, which runs ahead of the GPU by at most the launch
        # queue; the samples themselves are GPU times, read after the final sync.
        repeat_until(window, once)
        synchronize(self.device)
        return [start.elapsed_time(end) for start, end in pending]

    def sample(self, window: TimingConfig | SampleWindow) -> list[float]:
        """Time iterations of this model alone until ``window`` is satisfied; milliseconds per iteration.

        For warm-up and one-shot timings. Two models are never compared from two ``sample`` calls: they are
        timed together by ``time_group``.
        """
        if isinstance(window, TimingConfig):
            window = window.window()
        with self._running():
            if self.device.type == "cuda":
                return self._sample_cuda(window)
            return self._sample_cpu(window)

    def warmup(self, n: int) -> list[float]:
        """Run ``n`` timed iterations that are not samples (lazy init, autotuning, compilation).

        A compiled model goes on until ``COMPILE_SETTLE_ITERATIONS`` iterations in a row compiled nothing new (at
        most ``MAX_COMPILE_WARMUP`` in all); how many it took is the length of what this returns (the records'
        ``warmup_ms``)."""
        if n <= 0 and self.mode.compile is None:
            return []
        if self.mode.compile is None:
            warmup_ms = self.sample(SampleWindow(min_time_s=0.0, max_time_s=math.inf, min_samples=n, max_samples=n))
        else:
            warmup_ms = self._compile_warmup(n)
        self._last_warmup_ms = tuple(warmup_ms)
        return warmup_ms

    def _compile_warmup(self, n: int) -> list[float]:
        """At least ``n`` iterations, one at a time, until ``COMPILE_SETTLE_ITERATIONS`` in a row compiled nothing;
        what compiling cost goes to ``compile_stats``."""
        once = SampleWindow(min_time_s=0.0, max_time_s=math.inf, min_samples=1, max_samples=1)
        before = _compile_counters()
        warmup_ms: list[float] = []
        compiled: list[bool] = []
        settled, graphs = 0, before["graphs"]
        while (settled < COMPILE_SETTLE_ITERATIONS or len(warmup_ms) < n) and len(warmup_ms) < MAX_COMPILE_WARMUP:
            warmup_ms += self.sample(once)
            now = _compiled_graphs()
            compiled.append(now != graphs or len(warmup_ms) == 1)  # the first call traces even on a cache hit
            settled = settled + 1 if now == graphs else 0
            graphs = now
        if settled < COMPILE_SETTLE_ITERATIONS:
            log.warning("compile:%s still compiling after %d warm-up iterations (a graph that recompiles on "
                        "every call?); timed anyway", self.mode.compile, len(warmup_ms))
        after = _compile_counters()
        gave_up = [k for k, v in after["unimplemented"].items() if v > before["unimplemented"].get(k, 0)]
        if after["graphs"] == before["graphs"] and gave_up:
            raise MeasurementError(f"torch.compile(mode={self.mode.compile!r}) compiled no graph of the model: dynamo "
                                   f"gave up and ran it eagerly ({_reason(gave_up[0])}); its timing would be eager's")
        warm = sorted(ms for ms, c in zip(warmup_ms, compiled, strict=True) if not c) or sorted(warmup_ms)
        warm_ms = warm[len(warm) // 2]
        seconds = sum(max(0.0, ms - warm_ms) for ms, c in zip(warmup_ms, compiled, strict=True) if c) / 1e3
        self.compile_stats = CompileStats.between(before, after, seconds)
        return warmup_ms

    def auto_iters_per_loop(self, loop_s: float) -> int:
        """Iterations that make one timed loop last about ``loop_s``: the median warm-up iteration after the first
        (the first pays for lazy initialisation and, compiled, for the compilation)."""
        estimate_ms = (self._last_warmup_ms[1:] or self._last_warmup_ms
                       or tuple(self.sample(SampleWindow(0.0, math.inf, 1, 1))))
        iter_s = sorted(estimate_ms)[len(estimate_ms) // 2] / 1e3
        return int(min(_MAX_ITERS_PER_LOOP, max(1, round(loop_s / max(iter_s, 1e-9)))))

    def memory(self) -> MemoryUse:
        """Peak memory of one extra, untimed iteration of this model (``harness.measure.memory``)."""
        with self._running():
            return self.memory_probe.measure(self.step)

    def result(self, timing: MemberTiming, group: GroupTiming, *, warmup_ms: tuple[float, ...] = (),
               round_index: int = 0) -> LatencyResult:
        """This member's samples of ``group`` as a result (with its memory, flags and the group's load)."""
        flags = current_backend_flags()
        memory = self.memory()
        fields: dict[str, Any] = {
            "samples_ms": timing.samples_ms, "cycles": timing.cycles, "warmup_ms": tuple(warmup_ms),
            "batch_size": self.batch_size, "device": str(self.device), "mode": self.mode,
            "threads": torch.get_num_threads(), "peak_mem_bytes": memory.peak_bytes,
            "iter_peak_mem_bytes": memory.iteration_peak_bytes, "mem_method": memory.method,
            "timer": self.timer, "wall_s": group.wall_s, "cudnn_benchmark": flags["cudnn_benchmark"],
            "tf32": flags["tf32"], "round": round_index, "train": self.train, "pairing": group.pairing,
            "group_size": len(group.members), "load": group.load,
        }
        if timing.loop_samples_s:
            return ThroughputResult(loop_samples_s=timing.loop_samples_s, iters_per_loop=timing.iters_per_loop,
                                    images=len(timing.loop_samples_s) * timing.iters_per_loop * self.batch_size,
                                    **fields)
        return LatencyResult(**fields)


# ------------------------------------------------------------------------------------- the timing engine


def rotation(n: int) -> list[tuple[int, ...]]:
    """The orders of successive cycles for ``n`` models: a Williams design (a balanced Latin square).

    Over its rows every model runs in every position equally often and follows every other model equally often
    (once for even ``n``, twice for odd ``n``, which takes the rows and their reverses), so no model always runs
    first, on caches another model warmed, or after the same neighbour. Two models alternate A B, B A.
    """
    if n < 1:
        raise MeasurementError("a timing group needs at least one model")
    first, low, high = [0], 1, n - 1
    for k in range(1, n):
        if k % 2:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    rows = [tuple((x + i) % n for x in first) for i in range(n)]
    return rows + [row[::-1] for row in rows] if n % 2 else rows


@dataclass(frozen=True, kw_only=True)
class MemberTiming:
    """One model's samples in a group: ``cycles[i]`` is the cycle of ``samples_ms[i]``."""

    samples_ms: tuple[float, ...]  # per iteration; for loops the loop's mean iteration time
    cycles: tuple[int, ...]
    loop_samples_s: tuple[float, ...] = ()
    iters_per_loop: int = 1
    error: BaseException | None = None  # what it raised mid-timing (its samples are then dropped)


@dataclass(frozen=True, kw_only=True)
class GroupTiming:
    """Every member's samples from one interleaved session, the machine's load meanwhile, and a pairing token.

    Samples of two members with the same cycle index were taken within one cycle: ratios pair them.
    """

    members: tuple[MemberTiming, ...]
    cycles: int
    wall_s: float
    load: Load
    pairing: str  # unique per session: only samples with the same token (and cycle) are paired


def _check_group(benches: Sequence[PreparedModel]) -> None:
    if not benches:
        raise MeasurementError("a timing group needs at least one model")
    first = benches[0]
    for b in benches[1:]:
        if (b.device, b.batch_size, b.train) != (first.device, first.batch_size, first.train):
            raise MeasurementError(
                "models timed together must share device, batch size and train/inference (their modes may differ): "
                f"got {first.device}/batch {first.batch_size}/{'train' if first.train else 'eval'} "
                f"and {b.device}/batch {b.batch_size}/{'train' if b.train else 'eval'}")


class _Clock:
    """Per-iteration (or per-loop) times: the host clock on CPU, one CUDA event pair each on a GPU."""

    def __init__(self, device: torch.device, *, loops: bool) -> None:
        self.cuda = device.type == "cuda"
        self.device = device
        self.loops = loops
        self.pending: list[list[Any]] = []

    def time(self, member: int, cycle: int, run: Callable[[], None]) -> None:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            self.pending.append([member, cycle, start, end])
        else:
            start_ns = time.perf_counter_ns()
            run()
            self.pending.append([member, cycle, (time.perf_counter_ns() - start_ns) / 1e6])

    def read(self, skip: set[int] | frozenset[int] = frozenset()) -> list[tuple[int, int, float]]:
        """(member, cycle, ms) of every timed step of the members not in ``skip`` (those that failed: a failed
        cycle's events may never have completed); on CUDA after one sync, so no step waited for the host."""
        if not self.cuda:
            return [(m, c, ms) for m, c, ms in self.pending if m not in skip]
        synchronize(self.device)
        return [(m, c, start.elapsed_time(end)) for m, c, start, end in self.pending if m not in skip]


def time_group(benches: Sequence[PreparedModel], window: SampleWindow, *,
               iters_per_loop: Sequence[int] | None = None, first_row: int = 0) -> GroupTiming:
    """Time ``benches`` interleaved, one iteration (or one loop of ``iters_per_loop``) of each per cycle.

    The one timing engine of the harness: latency, throughput, the gate's A/B and the overhead figures all
    come from here. The order of each cycle follows ``rotation``; ``window`` bounds the whole session, its
    sample counts counting cycles. A member that raises is dropped with its samples and its error kept; the
    others go on. On CUDA each step is timed by its own event pair and the host syncs once per cycle, so that
    a cycle's steps ran at the same moment and the stopping rule's host clock is honest. ``first_row`` is the
    row of the rotation the first cycle uses (the timing driver starts each process on another row).
    """
    _check_group(benches)
    orders = rotation(len(benches))
    clock = _Clock(benches[0].device, loops=iters_per_loop is not None)
    errors: dict[int, BaseException] = {}
    cycle = 0
    # models of one mode share the group's autocast; models in several modes each enter their own, every step
    per_model = len({b.mode.dtype for b in benches}) > 1
    with benches[0]._running(with_autocast=not per_model), LoadMonitor() as monitor:
        start_ns = time.perf_counter_ns()
        while len(errors) < len(benches):
            for i in orders[(cycle + first_row) % len(orders)]:
                if i not in errors:
                    _time_step(benches[i], i, cycle, clock, errors, iters_per_loop, own_autocast=per_model)
            if clock.cuda:
                try:
                    synchronize(clock.device)
                except Exception as exc:  # noqa: BLE001 - an asynchronous error of this cycle's members
                    _cycle_failed(exc, orders[(cycle + first_row) % len(orders)], errors, benches[0].device)
            cycle += 1
            if window_done(window, cycle, (time.perf_counter_ns() - start_ns) / 1e9):
                break
        timed = clock.read(skip=set(errors))
    members = []
    for i in range(len(benches)):
        mine = [(c, ms) for m, c, ms in timed if m == i] if i not in errors else []
        n = 1 if iters_per_loop is None else iters_per_loop[i]
        members.append(MemberTiming(
            samples_ms=tuple(ms / n for _, ms in mine), cycles=tuple(c for c, _ in mine),
            loop_samples_s=tuple(ms / 1e3 for _, ms in mine) if iters_per_loop is not None else (),
            iters_per_loop=n, error=errors.get(i)))
    assert monitor.load is not None
    return GroupTiming(members=tuple(members), cycles=cycle, wall_s=monitor.load.wall_s, load=monitor.load,
                       pairing=uuid.uuid4().hex[:12])


def _cycle_failed(exc: BaseException, order: Sequence[int], errors: dict[int, BaseException],
                  device: torch.device) -> None:
    """A CUDA error that surfaced at the cycle's sync: it belongs to the members of that cycle, which stop (a sticky
    error would fail everything after it anyway); the members that had already failed keep their own error."""
    log.warning("timing group: the cycle's sync raised %s: %s; its models stop", type(exc).__name__, exc)
    freed = _freed(exc, device)
    for i in order:
        errors.setdefault(i, freed)


def _time_step(bench: PreparedModel, index: int, cycle: int, clock: _Clock, errors: dict[int, BaseException],
               iters_per_loop: Sequence[int] | None, *, own_autocast: bool = False) -> None:
    if iters_per_loop is None:
        run = bench.step
    else:
        count = iters_per_loop[index]

        def run() -> None:
            for _ in range(count):
                bench.step()
    try:
        with bench.errors(), bench.casting() if own_autocast else contextlib.nullcontext():
            clock.time(index, cycle, run)
    except Exception as exc:  # noqa: BLE001 - a member's failure is its own; the group goes on without it
        log.warning("timing group: model %d raised %s: %s; the others go on", index, type(exc).__name__, exc)
        errors[index] = _freed(exc, bench.device)


def _freed(exc: BaseException, device: torch.device) -> BaseException:
    """``exc`` without the frames its traceback holds (an OOM's activations live in them, under a paused GC),
    collected, and on CUDA the cache given back, so the next members do not run out of memory in turn."""
    traceback.clear_frames(exc.__traceback__)
    exc.__traceback__ = None
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return exc


def _fixed_input(shape: tuple[int, ...], *, device: torch.device, channels_last: bool) -> torch.Tensor:
    # Generated on the CPU so the same seed gives the same tensor whatever the device.
    generator = torch.Generator().manual_seed(_SEED)
    inputs = torch.randn(shape, generator=generator).to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def prepare_benchmark(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                      device: torch.device | str, mode: Mode, train: bool = False) -> PreparedModel:
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
        # dynamic=False: a model compiled again for another batch size (its latency and throughput groups share
        # it) gets a static graph for that size, not the slower dynamic-shape graph of an automatic recompile
        model = cast(nn.Module, torch.compile(model, mode=mode.compile, dynamic=False))  # an OptimizedModule
    return PreparedModel(model, inputs=inputs, device=dev, mode=mode, train=train)


# ------------------------------------------------------------------------------------- notebook forms


def measure_group(models: Mapping[str, nn.Module], *, input_shape: tuple[int, int, int], batch_size: int,
                  device: torch.device | str, mode: Mode = Mode(), config: TimingConfig = TimingConfig(),
                  loops: bool = False, train: bool = False) -> dict[str, LatencyResult]:
    """Prepare, warm up and time ``models`` together (``time_group``); label → result.

    ``config``'s window is per model, as in a suite: the session lasts ``len(models)`` times as long. A model
    that fails is left out of the result and logged. For a comparison, see ``compare_latency``.
    """
    labels = list(models)
    benches = [prepare_benchmark(models[k], input_shape=input_shape, batch_size=batch_size, device=device,
                                 mode=mode, train=train) for k in labels]
    warmups = [tuple(b.warmup(config.warmup)) for b in benches]
    window = group_window(config.window(), len(benches))
    per_loop = [b.auto_iters_per_loop(config.min_time_s / config.min_samples) for b in benches] if loops else None
    group = time_group(benches, window, iters_per_loop=per_loop)
    return {label: b.result(t, group, warmup_ms=w)
            for label, b, t, w in zip(labels, benches, group.members, warmups, strict=True) if t.error is None}


def group_window(per_model: SampleWindow, members: int) -> SampleWindow:
    """A session's window from a per-model one: each model gets the time it would have had alone."""
    return replace(per_model, min_time_s=per_model.min_time_s * members, max_time_s=per_model.max_time_s * members)


def compare_latency(models: Mapping[str, nn.Module], *, input_shape: tuple[int, int, int], batch_size: int = 1,
                    device: torch.device | str = "cpu", mode: Mode = Mode(),
                    config: TimingConfig = TimingConfig()) -> dict[str, LatencyResult]:
    """Latency of two or more models timed together, for ``harness.measure.stats.paired_ratio``."""
    if len(models) < 2:
        raise ConfigError(f"a comparison needs at least two models, got {len(models)} ({', '.join(models) or 'none'})")
    return measure_group(models, input_shape=input_shape, batch_size=batch_size, device=device, mode=mode,
                         config=config)


def measure_latency(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                    device: torch.device | str, mode: Mode = Mode(),
                    config: TimingConfig = TimingConfig()) -> LatencyResult:
    """Warm up, then sample inference latency of ``model`` alone (a group of one)."""
    results = measure_group({"model": model}, input_shape=input_shape, batch_size=batch_size, device=device,
                            mode=mode, config=config)
    return _only(results)


def measure_throughput(model: nn.Module, *, input_shape: tuple[int, int, int], batch_size: int,
                       device: torch.device | str, mode: Mode = Mode(), config: TimingConfig = TimingConfig(),
                       train: bool = False) -> ThroughputResult:
    """Warm up, then time whole loops of inference (or SGD train steps with ``train=True``)."""
    results = measure_group({"model": model}, input_shape=input_shape, batch_size=batch_size, device=device,
                            mode=mode, config=config, loops=True, train=train)
    return _only(results)


def _only(results: dict[str, Any]) -> Any:
    if not results:
        raise MeasurementError("the model raised while it was timed (see the log)")
    return results["model"]
