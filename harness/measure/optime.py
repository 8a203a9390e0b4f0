"""Where a model's time goes: time per operator kind from ``torch.profiler``, several models profiled paired.

MACs say SKNet-50 costs ResNeXt-50 about +5% ([P] Table 2); its measured time costs far more. This module
attributes the measured time to operator kinds — grouped, depthwise, dilated, 1×1 and dense convolutions, batch
norm, activations, pooling, the attention's pooling / fc / softmax, element-wise ops, memory ops, the
interpreter between ops — so the difference between two networks can be read kind by kind.

Protocol (``profile_op_time``): the models' ``PreparedModel``s (same batch, device and mode; inference) are warmed
up outside the profiler, then timed without the profiler for a few cycles (the overhead yardstick), then
profiled in ONE profiler session, iteration by iteration, interleaved model by model with the order rotating
every cycle (A B C, B C A, C A B …), so a change of the machine's speed lands on every model alike. Each
model-iteration runs inside a ``record_function`` range that names the model.

Attribution: forward pre/post hooks open and close a ``record_function`` range around every convolution
(named by the conv's kind, read from its groups, dilation, kernel and input) and every attention module
(SE, SK). Each profiler event's SELF time goes to one kind, decided by the outermost aten op above it (the op
the model called: ``aten::conv2d``'s internal ``aten::empty`` is conv time), the innermost conv range, and
whether an attention range encloses it. Self times telescope, so the kinds of one iteration add up to that
iteration's profiled time. On CUDA the kernels' device time is attributed the same way (through the CPU op that
launched them); the host time is kept beside it.

The profiler slows every op by a few microseconds (and the hooks add a little per module), so profiled times
are longer than unprofiled ones, most for many small ops (batch 1, the attention's tiny fcs); the result keeps
the unprofiled times so a reader sees by how much.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function, schedule

from harness.errors import MeasurementError
from harness.measure.device import synchronize
from harness.measure.memory import kineto_chatter_to_debug_log
from harness.measure.opkinds import ATTENTION_MODULES, OP_KINDS, SLOW_CONV, conv_kind, is_wrapper, kind_of
from harness.measure.sampling import SampleWindow
from harness.measure.timer import PreparedModel, rotation, time_group

log = logging.getLogger(__name__)

MODEL_RANGE = "optime.model::"
CONV_RANGE = "optime.conv::"
ATTENTION_RANGE = "optime.attention::"

_PROFILER_WARMUP = 1
# The hooks' ranges: torch's C++ fast path (what torch.compile's regions use) costs about 2 µs a range here,
# ``record_function`` about 20 µs (it dispatches two ops); fewer µs per range = less overhead in `python`.
_RANGE = getattr(torch._C._profiler, "_RecordFunctionFast", record_function)
TIMER_CPU = "profiler_cpu_self_time"
TIMER_CUDA = "profiler_cuda_device_time"

CAVEAT = ("torch.profiler adds a few microseconds to every op and the attribution hooks a little to every conv "
          "and attention module, so profiled times exceed unprofiled ones, most for networks of many small ops; "
          "compare kinds across models profiled together, and read absolute ms against `unprofiled_ms`")


def _conv_of(module: nn.Module) -> nn.modules.conv._ConvNd | None:
    """The conv a module runs: itself, or the first child of a conv → norm → act sequence (ours fold the BN
    into one functional conv at inference, bypassing the child's forward, so the range must be on the parent)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return module
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[0], nn.modules.conv._ConvNd):
        return module[0]
    return None


@contextlib.contextmanager
def attribution_hooks(model: nn.Module) -> Iterator[None]:
    """Ranges around every conv (named by kind) and attention module of ``model``, while inside."""
    handles = []

    def ranged(module: nn.Module, name_of: Any) -> None:
        opened: list[Any] = []

        def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
            rf = _RANGE(name_of(args))
            rf.__enter__()
            opened.append(rf)

        def post(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            if opened:
                opened.pop().__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    for module in model.modules():
        conv = _conv_of(module)
        cls = type(module).__name__
        if conv is not None:
            ranged(module, lambda args, c=conv: CONV_RANGE + conv_kind(
                c, args[0] if args and isinstance(args[0], torch.Tensor) else None))
        elif cls in ATTENTION_MODULES:
            ranged(module, lambda args, n=cls: ATTENTION_RANGE + n)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class ModelOpTime:
    """One model's profiled iterations: ms per kind per iteration (cycle order), and the iterations' totals."""

    kinds_ms: dict[str, tuple[float, ...]]  # every kind of OP_KINDS that took time in any model, per iteration
    total_ms: tuple[float, ...]  # per iteration: CPU, the iteration's profiled time; CUDA, its kernels' time
    host_ms: tuple[float, ...]  # per iteration: the iteration's profiled host time (CPU: == total_ms)
    unprofiled_ms: tuple[float, ...]  # per iteration, without profiler or hooks, interleaved likewise
    warmup_ms: tuple[float, ...]
    ops_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # kind → outermost op → mean ms / iteration
    op_calls: dict[str, float] = field(default_factory=dict)  # kind → ops the model called per iteration (mean)

    def median_ms(self, kind: str) -> float:
        return statistics.median(self.kinds_ms.get(kind) or (0.0,))


@dataclass(frozen=True)
class OpTimeResult:
    models: dict[str, ModelOpTime]  # label → result, in the order given
    kinds: tuple[str, ...]  # the kinds that took time, in OP_KINDS order
    iterations: int
    warmup: int
    unprofiled_iterations: int
    timer: str
    device: str
    threads: int
    batch_size: int
    caveat: str = CAVEAT


# ------------------------------------------------------------------------------------------- attribution


def _event_value_us(evt: Any, *, device_time: bool) -> float:
    if device_time:
        return float(sum(k.duration for k in evt.kernels))
    return float(evt.self_cpu_time_total)


def _context(evt: Any) -> tuple[str | None, str | None, str | None, bool, bool, Any]:
    """(model label, outermost op, innermost conv kind, inside attention, inside a slow conv path, the
    model-iteration range). torch.compile's wrappers are looked through (``opkinds.is_wrapper``)."""
    op = conv = label = root = None
    attention = slow = False
    node = evt
    while node is not None:
        name = node.name
        if name.startswith(MODEL_RANGE):
            label, root = name[len(MODEL_RANGE):], node
            break
        if name.startswith(CONV_RANGE):
            conv = conv or name[len(CONV_RANGE):]
        elif name.startswith(ATTENTION_RANGE):
            attention = True
        elif not name.startswith("optime.") and not is_wrapper(name):
            op = name  # climbing: the last op seen is the outermost
            slow = slow or bool(SLOW_CONV.search(name))
        node = node.cpu_parent
    return label, op, conv, attention, slow, root


def _called_by_model(evt: Any) -> bool:
    """Whether ``evt`` is an op the model itself called: its parent, looking through torch.compile's wrappers, is
    one of the harness's ranges."""
    node = evt.cpu_parent
    while node is not None and is_wrapper(node.name) and not node.name.startswith("optime."):
        node = node.cpu_parent
    return node is not None and node.name.startswith("optime.")


def attribute(events: Sequence[Any], *, device_time: bool) -> dict[str, list[dict[str, Any]]]:
    """label → per iteration (in time order): ``{"kinds": {kind: µs}, "ops": {(kind, op): µs}, "calls": {kind:
    number of ops the model called}, "host_us", "start"}`` from the profiler's events (``prof.events()``)."""
    iterations: dict[int, dict[str, Any]] = {}
    labels: dict[int, str] = {}
    for evt in events:
        if evt.device_type != DeviceType.CPU or evt.is_async:
            continue  # device events are counted through the CPU op that launched them (evt.kernels)
        label, op, conv, attention, slow, root = _context(evt)
        if root is None or label is None:  # set together: the event is outside every model's range
            continue
        it = iterations.setdefault(id(root), {"kinds": defaultdict(float), "ops": defaultdict(float),
                                              "calls": defaultdict(int), "host_us": float(root.cpu_time_total),
                                              "start": root.time_range.start})
        labels[id(root)] = label
        kind = kind_of(op, conv=conv, attention=attention, slow_conv=slow)
        if op is not None and evt.name == op and _called_by_model(evt):
            it["calls"][kind] += 1  # an op the model called (not one inside another op): dispatch costs per call
        value = _event_value_us(evt, device_time=device_time)
        if value == 0.0:
            continue
        it["kinds"][kind] += value
        it["ops"][(kind, op or "(between ops)")] += value
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key, it in sorted(iterations.items(), key=lambda item: item[1]["start"]):
        out[labels[key]].append(it)
    return dict(out)


# ------------------------------------------------------------------------------------------- protocol


def _check_group(benches: Mapping[str, PreparedModel]) -> PreparedModel:
    if not benches:
        raise MeasurementError("op-time profiling needs at least one model")
    first = next(iter(benches.values()))
    for label, bench in benches.items():
        if bench.train:
            raise MeasurementError(f"op-time profiling times inference; {label!r} is a train-step benchmark")
        if (bench.device, bench.mode, bench.batch_size) != (first.device, first.mode, first.batch_size):
            raise MeasurementError(f"op-time profiling compares models at the same batch, device and mode; "
                                   f"{label!r} differs from the first model")
    return first


def _cycles(labels: list[str], n: int) -> Iterator[list[str]]:
    """The engine's order of successive cycles (``harness.measure.timer.rotation``), by label."""
    orders = rotation(len(labels))
    for c in range(n):
        yield [labels[i] for i in orders[c % len(orders)]]


def _timed(benches: Mapping[str, PreparedModel], n: int, device: torch.device) -> dict[str, list[float]]:
    """``n`` unprofiled cycles, timed by the one engine (``time_group``)."""
    if n <= 0:
        return {label: [] for label in benches}
    group = time_group(list(benches.values()), SampleWindow(0.0, math.inf, n, n))
    for label, timing in zip(benches, group.members, strict=True):
        if timing.error is not None:
            raise MeasurementError(f"{label}: {timing.error}") from timing.error
    return {label: list(timing.samples_ms) for label, timing in zip(benches, group.members, strict=True)}


def _profiled(benches: Mapping[str, PreparedModel], n: int, device: torch.device) -> Any:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    # The profiler's first cycle runs slow (its buffers and the hooks' first calls): profiled, then discarded.
    plan = schedule(wait=0, warmup=_PROFILER_WARMUP, active=n, repeat=1)
    with contextlib.ExitStack() as stack:
        for bench in benches.values():
            if bench.mode.compile is None:  # a hook in a compiled model is a graph break, and its kernels are fused
                stack.enter_context(attribution_hooks(bench.model))
        # libkineto's "USDT: … profiler_start/stop" lines go to the debug log, not the user's terminal
        stack.enter_context(kineto_chatter_to_debug_log())
        with profile(activities=activities, schedule=plan) as prof:
            for order in _cycles(list(benches), n + _PROFILER_WARMUP):
                for label in order:
                    with record_function(MODEL_RANGE + label):
                        benches[label].step()
                synchronize(device)
                prof.step()
    return prof


def profile_op_time(benches: Mapping[str, PreparedModel], *, iterations: int, warmup: int,
                    unprofiled_iterations: int) -> OpTimeResult:
    """Profile ``benches`` (label → prepared inference benchmark; same batch, device, mode) paired, as the
    module docstring says: ``warmup`` cycles, ``unprofiled_iterations`` timed cycles, ``iterations`` profiled."""
    if iterations < 1:
        raise MeasurementError(f"op-time profiling needs at least 1 iteration, got {iterations}")
    first = _check_group(benches)
    device = first.device
    with first._running():
        warm = _timed(benches, warmup, device)
        plain = _timed(benches, unprofiled_iterations, device)
        prof = _profiled(benches, iterations, device)
    device_time = device.type == "cuda"
    per_model = attribute(prof.events(), device_time=device_time)
    return _result(benches, per_model, warm=warm, unprofiled=plain, iterations=iterations, warmup=warmup,
                   unprofiled_iterations=unprofiled_iterations, device_time=device_time, first=first)


def _result(benches: Mapping[str, PreparedModel], per_model: dict[str, list[dict[str, Any]]], *,
            warm: dict[str, list[float]], unprofiled: dict[str, list[float]], iterations: int, warmup: int,
            unprofiled_iterations: int, device_time: bool, first: PreparedModel) -> OpTimeResult:
    seen = {kind for its in per_model.values() for it in its for kind, us in it["kinds"].items() if us}
    kinds = tuple(k for k in OP_KINDS if k in seen)
    models = {}
    for label in benches:
        its = per_model.get(label, [])
        if len(its) != iterations:
            raise MeasurementError(f"the profiler returned {len(its)} iterations of {label!r}, expected "
                                   f"{iterations}")
        ops: dict[str, dict[str, float]] = defaultdict(dict)
        for kind, op in sorted({key for it in its for key in it["ops"]}):
            ops[kind][op] = sum(it["ops"].get((kind, op), 0.0) for it in its) / 1e3 / len(its)
        models[label] = ModelOpTime(
            kinds_ms={k: tuple(it["kinds"].get(k, 0.0) / 1e3 for it in its) for k in kinds},
            total_ms=tuple((sum(it["kinds"].values()) if device_time else it["host_us"]) / 1e3 for it in its),
            host_ms=tuple(it["host_us"] / 1e3 for it in its),
            unprofiled_ms=tuple(unprofiled[label]), warmup_ms=tuple(warm[label]), ops_ms=dict(ops),
            op_calls={k: sum(it["calls"].get(k, 0) for it in its) / len(its)
                      for k in OP_KINDS if any(it["calls"].get(k) for it in its)})
    return OpTimeResult(models=models, kinds=kinds, iterations=iterations, warmup=warmup,
                        unprofiled_iterations=unprofiled_iterations, timer=TIMER_CUDA if device_time else TIMER_CPU,
                        device=str(first.device), threads=torch.get_num_threads(), batch_size=first.batch_size)
