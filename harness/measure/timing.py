"""Latency, throughput and train-step timing of one model on one device.

The protocol (DESIGN.md, convention 5) is code here: the model is in ``eval()`` under
``torch.inference_mode()`` for inference; warmup iterations are timed but returned apart; CPU iterations
are timed with ``time.perf_counter_ns()``, CUDA iterations with one event pair each, synchronising only
before and after a sampling loop so the timer never serialises the GPU queue; an OOM is an error, the
batch size is never changed. Python's cycle collector is paused inside sampling loops, as ``timeit`` does.

Sampling is adaptive in the spirit of ``torch.utils.benchmark.Timer.blocked_autorange``: keep going until
both a minimum time and a minimum sample count are reached, stop early at a maximum time or count. Unlike
``blocked_autorange`` each sample is one iteration (not the mean of a block), because one forward pass of a
CNN is far above timer resolution and per-iteration samples keep the tail visible.

``prepare`` returns a ``Prepared`` benchmark so a runner can interleave models in rounds (A B C A B C) and
spread slow drifts (thermal, clock boost, noisy neighbours) evenly over them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError, MeasurementError

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
TIMER_CPU = "perf_counter_ns"
TIMER_CUDA = "cuda_event"
_SEED = 0
# Throughput loops aim at min_time_s / min_samples each, so the minimum loop count fits in min_time_s.
_MAX_ITERS_PER_LOOP = 10_000


@dataclass(frozen=True)
class Mode:
    """How the model runs: autocast dtype, memory format and torch.compile mode (None = eager)."""

    dtype: str = "fp32"
    channels_last: bool = False
    compile: str | None = None


@dataclass(frozen=True)
class SampleWindow:
    """When a sampling loop stops: once both minimums are met, or at either maximum."""

    min_time_s: float
    max_time_s: float
    min_samples: int
    max_samples: int


@dataclass(frozen=True)
class TimingConfig:
    """Warmup count and the adaptive sampling window of one measurement."""

    warmup: int = 3
    min_time_s: float = 1.0
    max_time_s: float = 10.0
    min_samples: int = 10
    max_samples: int = 10_000

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_samples < 1 or self.max_samples < self.min_samples:
            raise ConfigError(f"invalid timing config {self}: need warmup >= 0 and 1 <= min_samples <= max_samples")
        if self.min_time_s < 0 or self.max_time_s <= 0 or self.max_time_s < self.min_time_s:
            raise ConfigError(f"invalid timing config {self}: need 0 <= min_time_s <= max_time_s, max_time_s > 0")

    def window(self) -> SampleWindow:
        return SampleWindow(self.min_time_s, self.max_time_s, self.min_samples, self.max_samples)

    def split(self, rounds: int) -> SampleWindow:
        """The window of one of ``rounds`` interleaved rounds, so all rounds together match ``window()``."""
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {rounds}")
        return SampleWindow(
            min_time_s=self.min_time_s / rounds,
            max_time_s=self.max_time_s / rounds,
            min_samples=math.ceil(self.min_samples / rounds),
            max_samples=math.ceil(self.max_samples / rounds),
        )


def check_mode(mode: Mode, device: torch.device | str) -> None:
    """Raise ``MeasurementError`` if ``mode`` cannot run on ``device``."""
    dev = torch.device(device)
    if mode.dtype not in DTYPES:
        raise MeasurementError(f"unknown dtype {mode.dtype!r}; use one of {', '.join(DTYPES)}")
    if mode.compile is not None and mode.compile not in COMPILE_MODES:
        raise MeasurementError(f"unknown torch.compile mode {mode.compile!r}; use one of {', '.join(COMPILE_MODES)}")
    if dev.type == "cpu":
        if mode.dtype == "fp16":
            raise MeasurementError("fp16 autocast is not supported on CPU; use dtype bf16 or fp32")
        return
    if dev.type != "cuda":
        raise MeasurementError(f"unsupported device {str(dev)!r}; use 'cpu' or 'cuda[:N]'")
    if not torch.cuda.is_available():
        raise MeasurementError(f"device {str(dev)!r} requested but CUDA is not available on this machine")
    if mode.dtype == "bf16" and not torch.cuda.is_bf16_supported():
        raise MeasurementError(f"bf16 is not supported on {torch.cuda.get_device_name(dev)}; use fp16 or fp32")


# ---------------------------------------------------------------------------------------------- results


def _base_record(result: LatencyResult) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "wall_s": result.wall_s,
        "batch_size": result.batch_size,
        "device": result.device,
        "dtype": result.mode.dtype,
        "channels_last": result.mode.channels_last,
        "compile": result.mode.compile,
        "samples_ms": list(result.samples_ms),
        "warmup_ms": list(result.warmup_ms),
        "threads": result.threads,
        "peak_mem_bytes": result.peak_mem_bytes,
        "timer": result.timer,
        "round": result.round,
        "cudnn_benchmark": result.cudnn_benchmark,
        "tf32": result.tf32,
    }


@dataclass(frozen=True, kw_only=True)
class LatencyResult:
    """Per-iteration times of one model; ``samples_ms`` and ``warmup_ms`` are kept apart and raw."""

    samples_ms: tuple[float, ...]
    warmup_ms: tuple[float, ...]
    batch_size: int
    device: str
    mode: Mode
    threads: int
    peak_mem_bytes: int
    timer: str
    wall_s: float
    cudnn_benchmark: bool
    tf32: bool
    round: int = 0
    train: bool = False

    @property
    def kind(self) -> str:
        return "latency"

    def to_record(self) -> dict[str, Any]:
        """The kind-specific fields of a ``latency`` record (docs/CONTRACTS.md)."""
        return _base_record(self)


@dataclass(frozen=True, kw_only=True)
class ThroughputResult(LatencyResult):
    """Whole-loop timings; ``samples_per_s`` is ``images / sum(loop_samples_s)``, never from latency.

    ``samples_ms`` holds each loop's mean iteration time, so throughput records read like latency ones.
    """

    loop_samples_s: tuple[float, ...]
    images: int
    iters_per_loop: int

    @property
    def kind(self) -> str:
        return "train_throughput" if self.train else "throughput"

    @property
    def samples_per_s(self) -> float:
        total_s = sum(self.loop_samples_s)
        return self.images / total_s if total_s > 0 else 0.0

    def to_record(self) -> dict[str, Any]:
        """The kind-specific fields of a ``throughput`` / ``train_throughput`` record."""
        record = _base_record(self)
        record["samples_per_s"] = self.samples_per_s
        record["loop_samples_s"] = list(self.loop_samples_s)
        record["images"] = self.images
        return record


# ---------------------------------------------------------------------------------------- backend flags


def current_backend_flags() -> dict[str, bool]:
    """The cuDNN / TF32 switches that change kernel choice, for the record."""
    tf32_matmul = bool(torch.backends.cuda.matmul.allow_tf32)
    tf32_cudnn = bool(torch.backends.cudnn.allow_tf32)
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        # torch's default is mixed (cuDNN on, matmul off), so the single flag is true only when both are.
        "tf32": tf32_matmul and tf32_cudnn,
        "tf32_matmul": tf32_matmul,
        "tf32_cudnn": tf32_cudnn,
    }


@contextlib.contextmanager
def backend_flags(*, cudnn_benchmark: bool, tf32: bool) -> Iterator[None]:
    """Set cudnn.benchmark and both TF32 switches for the ``with`` block, then restore them."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
        ) = saved


# ------------------------------------------------------------------------------------- sampling loops


def _window_done(window: SampleWindow, count: int, elapsed_s: float) -> bool:
    if count >= window.max_samples or elapsed_s >= window.max_time_s:
        return True
    return count >= window.min_samples and elapsed_s >= window.min_time_s


def _repeat_until(window: SampleWindow, once: Callable[[], None]) -> None:
    """Call ``once`` until ``window`` is satisfied (host wall clock)."""
    count = 0
    start_ns = time.perf_counter_ns()
    while True:
        once()
        count += 1
        if _window_done(window, count, (time.perf_counter_ns() - start_ns) / 1e9):
            return


def _peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _oom_error(batch_size: int, device: torch.device) -> MeasurementError:
    return MeasurementError(f"out of memory at batch size {batch_size} on {device}; lower the batch size in the suite")


def _compile_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = []
    with contextlib.suppress(ImportError, AttributeError):
        from torch._dynamo.exc import TorchDynamoException

        types.append(TorchDynamoException)
    with contextlib.suppress(ImportError, AttributeError):
        from torch._inductor.exc import InductorError

        types.append(InductorError)
    return tuple(types)


# ------------------------------------------------------------------------------------------- Prepared


class Prepared:
    """One model ready to be timed: on its device, in its mode, with a fixed input (and labels).

    Build it with ``prepare``. ``warmup`` and ``sample`` return per-iteration milliseconds; ``latency`` and
    ``throughput`` wrap a sampling window into a result with memory, flags and wall time.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inputs: torch.Tensor,
        device: torch.device,
        mode: Mode,
        train: bool,
    ) -> None:
        self.model = model
        self.inputs = inputs
        self.device = device
        self.mode = mode
        self.train = train
        self.batch_size = int(inputs.shape[0])
        self.timer = TIMER_CUDA if device.type == "cuda" else TIMER_CPU
        self._labels: torch.Tensor | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._scaler: torch.amp.GradScaler | None = None
        self._last_warmup_ms: tuple[float, ...] = ()
        self._rss_baseline = 0
        if train:
            self._optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            # fp16 training needs loss scaling to be realistic; bf16 has fp32's range and does not.
            if mode.dtype == "fp16":
                self._scaler = torch.amp.GradScaler(device.type)

    # -- one iteration -----------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.mode.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.mode.dtype])

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """Inference mode, autocast and error translation around a whole loop (not per iteration)."""
        with contextlib.ExitStack() as stack:
            # Events and syncs go to the current device's stream, so make ours current (cuda:1 etc.).
            if self.device.type == "cuda":
                stack.enter_context(torch.cuda.device(self.device))
            # As timeit and torch's Timer do, keep Python's cycle collector from pausing inside a sample.
            stack.enter_context(_gc_paused())
            # A train step autocasts its forward only (backward under autocast is discouraged by torch).
            if not self.train:
                stack.enter_context(torch.inference_mode())
                stack.enter_context(self._autocast())
            with self._translating_errors():
                yield

    @contextlib.contextmanager
    def _translating_errors(self) -> Iterator[None]:
        try:
            yield
        except torch.OutOfMemoryError as err:
            raise _oom_error(self.batch_size, self.device) from err
        except _compile_error_types() as err:
            if self.mode.compile is None:
                raise
            raise MeasurementError(
                f"torch.compile(mode={self.mode.compile!r}) failed on {self.device}: {type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}"
            ) from err

    def step(self) -> None:
        """One iteration: a forward pass, or a full SGD train step. Call inside ``_running``."""
        if not self.train:
            self.model(self.inputs)
            return
        with self._autocast():
            logits = self.model(self.inputs)
            loss = nn.functional.cross_entropy(logits.float(), self._labels_for(logits))
        self._optimizer.zero_grad(set_to_none=True)
        if self._scaler is None:
            loss.backward()
            self._optimizer.step()
            return
        self._scaler.scale(loss).backward()
        self._scaler.step(self._optimizer)
        self._scaler.update()

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

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _sample_cpu(self, window: SampleWindow) -> list[float]:
        samples_ms: list[float] = []

        def once() -> None:
            start = time.perf_counter_ns()
            self.step()
            samples_ms.append((time.perf_counter_ns() - start) / 1e6)

        _repeat_until(window, once)
        return samples_ms

    def _sample_cuda(self, window: SampleWindow) -> list[float]:
        pairs: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

        def once() -> None:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            self.step()
            end.record()
            pairs.append((start, end))

        self._sync()
        # The stopping rule reads the host clock, which runs ahead of the GPU by at most the launch
        # queue; the samples themselves are GPU times, read after the final sync.
        _repeat_until(window, once)
        self._sync()
        return [start.elapsed_time(end) for start, end in pairs]

    def sample(self, window: TimingConfig | SampleWindow) -> list[float]:
        """Time iterations until ``window`` is satisfied; milliseconds per iteration."""
        if isinstance(window, TimingConfig):
            window = window.window()
        with self._running():
            if self.device.type == "cuda":
                return self._sample_cuda(window)
            return self._sample_cpu(window)

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
            self._sync()
            start = time.perf_counter_ns()
            for _ in range(iters_per_loop):
                self.step()
            self._sync()
            loop_s.append((time.perf_counter_ns() - start) / 1e9)

        with self._running():
            _repeat_until(window, once)
        return loop_s

    # -- peak memory ------------------------------------------------------------------------------

    def reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._rss_baseline = _peak_rss_bytes()

    def peak_memory_bytes(self) -> int:
        """CUDA: peak allocated since the reset. CPU: growth of the process's peak RSS since the reset,
        which is 0 when the measurement stayed below an earlier high-water mark."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return max(0, _peak_rss_bytes() - self._rss_baseline)

    # -- results ------------------------------------------------------------------------------------

    def _result_fields(self, *, warmup_ms: tuple[float, ...], wall_s: float, round_index: int) -> dict[str, Any]:
        flags = current_backend_flags()
        return {
            "warmup_ms": warmup_ms,
            "batch_size": self.batch_size,
            "device": str(self.device),
            "mode": self.mode,
            "threads": torch.get_num_threads(),
            "peak_mem_bytes": self.peak_memory_bytes(),
            "timer": self.timer,
            "wall_s": wall_s,
            "cudnn_benchmark": flags["cudnn_benchmark"],
            "tf32": flags["tf32"],
            "round": round_index,
            "train": self.train,
        }

    def latency(
        self, window: TimingConfig | SampleWindow, *, round_index: int = 0, warmup_ms: tuple[float, ...] = ()
    ) -> LatencyResult:
        """Sample per-iteration latency over ``window``; ``warmup_ms`` is stored alongside, not mixed in."""
        start = time.perf_counter()
        self.reset_peak_memory()
        samples_ms = self.sample(window)
        fields = self._result_fields(
            warmup_ms=tuple(warmup_ms), wall_s=time.perf_counter() - start, round_index=round_index
        )
        return LatencyResult(samples_ms=tuple(samples_ms), **fields)

    def throughput(
        self,
        window: TimingConfig | SampleWindow,
        *,
        iters_per_loop: int | None = None,
        round_index: int = 0,
        warmup_ms: tuple[float, ...] = (),
    ) -> ThroughputResult:
        """Time whole loops over ``window`` (its sample counts count loops)."""
        if isinstance(window, TimingConfig):
            window = window.window()
        if iters_per_loop is None:
            iters_per_loop = self._auto_iters_per_loop(window)
        start = time.perf_counter()
        self.reset_peak_memory()
        loop_s = self.loops(window, iters_per_loop=iters_per_loop)
        fields = self._result_fields(
            warmup_ms=tuple(warmup_ms), wall_s=time.perf_counter() - start, round_index=round_index
        )
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


# --------------------------------------------------------------------------------------------- prepare


def _fixed_input(shape: tuple[int, ...], *, device: torch.device, channels_last: bool) -> torch.Tensor:
    # Generated on the CPU so the same seed gives the same tensor whatever the device.
    generator = torch.Generator().manual_seed(_SEED)
    inputs = torch.randn(shape, generator=generator).to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def prepare(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    device: torch.device | str,
    mode: Mode,
    train: bool = False,
) -> Prepared:
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
        raise _oom_error(batch_size, dev) from err
    model.train(train)
    if mode.compile is not None:
        # Compilation is lazy: failures surface in the first (warmup) iteration, where they are translated.
        model = torch.compile(model, mode=mode.compile)
    return Prepared(model, inputs=inputs, device=dev, mode=mode, train=train)


# ------------------------------------------------------------------------------------------- one-shot


def measure_latency(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    device: torch.device | str,
    mode: Mode = Mode(),
    config: TimingConfig = TimingConfig(),
) -> LatencyResult:
    """Warm up, then sample inference latency of ``model`` (one round, no interleaving)."""
    start = time.perf_counter()
    prepared = prepare(model, input_shape=input_shape, batch_size=batch_size, device=device, mode=mode)
    warmup_ms = prepared.warmup(config.warmup)
    result = prepared.latency(config, warmup_ms=tuple(warmup_ms))
    return replace(result, wall_s=time.perf_counter() - start)


def measure_throughput(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int],
    batch_size: int,
    device: torch.device | str,
    mode: Mode = Mode(),
    config: TimingConfig = TimingConfig(),
    train: bool = False,
) -> ThroughputResult:
    """Warm up, then time whole loops of inference (or SGD train steps with ``train=True``)."""
    start = time.perf_counter()
    prepared = prepare(model, input_shape=input_shape, batch_size=batch_size, device=device, mode=mode, train=train)
    warmup_ms = prepared.warmup(config.warmup)
    result = prepared.throughput(config, warmup_ms=tuple(warmup_ms))
    return replace(result, wall_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------------------- calibration


def calibrate_peak_gmacs(
    device: torch.device | str, *, dtype: str = "fp32", size: int | None = None, min_time_s: float = 0.5
) -> float:
    """Achieved GMAC/s of an ``size``x``size`` matmul in ``dtype`` (MACs = size**3), the utilisation
    denominator. It follows the current TF32 flags, so calibrate under the same ``backend_flags``."""
    dev = torch.device(device)
    check_mode(Mode(dtype=dtype), dev)
    # 512 on CPU keeps a bf16 run (emulated on CPUs without bf16 units) near one second in total.
    n = size or (8192 if dev.type == "cuda" else 512)
    generator = torch.Generator().manual_seed(_SEED)
    a = torch.randn((n, n), generator=generator).to(device=dev, dtype=DTYPES[dtype])
    b = torch.randn((n, n), generator=generator).to(device=dev, dtype=DTYPES[dtype])
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        torch.mm(a, b)  # first call picks kernels and allocates; not timed
        sync()
        calls = 0
        start = time.perf_counter()
        while calls == 0 or time.perf_counter() - start < min_time_s:
            torch.mm(a, b)
            calls += 1
            # On CUDA the host must wait for the queue, or elapsed time would count only launches.
            sync()
        elapsed_s = time.perf_counter() - start
    gmacs = calls * n**3 / elapsed_s / 1e9
    log.debug("calibrated %s %s: %.1f GMAC/s (n=%d, %d calls)", dev, dtype, gmacs, n, calls)
    return gmacs
