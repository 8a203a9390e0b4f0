"""The one timing driver: timing groups measured in K fresh worker processes, one after another.

Why processes: a process is one sample of memory layout. Where weights and buffers land, the allocator's state
and the address-space layout last a whole process and move a ratio of two networks by a few percent, which the
cycles of one process cannot see (measured here: SENet-50 ÷ ResNeXt-50 ranged 1.022–1.069 over ten one-process
runs whose own intervals were about ±1%). pyperf spawns 20 worker processes for this reason; Kalibera & Jones
("Rigorous benchmarking in reasonable time", ISMM 2013) make the process a level of the experiment's design, and
an interval's degrees of freedom come from the processes (``harness.measure.stats.process_ratio``).

How: ``run_session`` writes the request (picklable: groups of members, each member a picklable model factory)
to a file and runs ``python -m harness.measure.processes REQUEST INDEX OUT`` K times, one process at a time
(never two at once: they would share the cores they time on). Each worker is a fresh interpreter (spawned, not
forked), with the parent's environment and thread count; it builds every distinct model once (in an order
balanced over the processes, so no model is always placed first), then times each group with the paired engine
(``harness.measure.timer.time_group``): prepare, warm up, size the loops from warm samples, time ``window`` per
model, and writes every sample with its cycle, plus the machine's load meanwhile. A worker that crashes, is
killed or overruns its time leaves its process out: the others are kept, and the outcome says which process
failed and why.

The CUDA path is the same: workers run one after another on the one GPU, each its own CUDA context.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, one_line
from harness.measure.load import Load
from harness.measure.mode import Mode
from harness.measure.sampling import SampleWindow

log = logging.getLogger(__name__)

# pyperf's default is 20 worker processes (40 with --rigorous); what this harness uses by default is measured on
# the default suite (benchmarks/calibration.py, docs/measurement.md) and set by the suite's timing sections.
MAX_PROCESSES = 64
# The default of a suite's timing sections: chosen from the measured costs and variances of the default suite
# (docs/measurement.md, "K and m by measurement").
DEFAULT_PROCESSES = 6
# A worker gets this long beyond its groups' max_time_s to start, build and warm up, before it is killed.
WORKER_GRACE_S = 600.0
# Other processes must leave at least this many cores less than the harness's threads free before a process is
# called contended (oversubscribed); below it the load reading's own noise decides.
CONTENTION_TOLERANCE = 0.25


def parse_processes(value: str | int) -> int:
    """``--processes``: a whole number of worker processes, 1 to ``MAX_PROCESSES``."""
    try:
        count = int(value)
        if isinstance(value, str) and value.strip() != str(count):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--processes {value!r}: expected a whole number of worker processes, e.g. "
                          "--processes 6") from None
    if not 1 <= count <= MAX_PROCESSES:
        raise ConfigError(f"--processes {value!r}: must be between 1 and {MAX_PROCESSES} (each is a fresh process "
                          "that builds and warms up the models; 1 times in one process, and its intervals then "
                          "cover within-process noise only)")
    return count


def contended(load: Load, threads: int) -> bool:
    """Whether other processes left fewer free cores than the harness's threads (the machine was oversubscribed)."""
    return load.cores - load.other_cores < threads - CONTENTION_TOLERANCE


# ------------------------------------------------------------------------------------------------- the request


@dataclass(frozen=True, kw_only=True)
class MemberRequest:
    """One model of a group: ``factory()`` builds it (picklable: a module-level function or a partial of one);
    models with the same ``key`` are built once per process and shared by the groups that time them."""

    key: str
    factory: Callable[[], Any]
    input_size: tuple[int, int, int]
    train: bool = False
    mode: Mode | None = None  # how this member runs (None: the group's mode); a group may time models in several


@dataclass(frozen=True, kw_only=True)
class GroupRequest:
    """Models timed together (one iteration, or one loop, of each per cycle), and how (``mode``: of every member
    that does not name its own)."""

    name: str
    members: tuple[MemberRequest, ...]
    batch_size: int
    device: str
    mode: Mode
    loops: bool
    warmup: int
    window: SampleWindow  # per model, per process
    processes: int
    cudnn_benchmark: bool = False
    tf32: bool = False
    memory: bool = True  # measure each member's memory (in the first process that times it)


@dataclass(frozen=True, kw_only=True)
class SessionRequest:
    """Everything the workers time; ``setup`` runs first in each worker (plugin imports), ``seed`` seeds them."""

    groups: tuple[GroupRequest, ...]
    threads: int
    seed: int = 0
    setup: Callable[[], None] | None = None
    weights: dict[str, str] = field(default_factory=dict)  # member key → state-dict file the parent wrote
    prebuild: bool = True  # build each model once in the parent and hand its weights to the workers
    order_offset: int | None = None  # the build orders' first row (None: drawn per session)

    @property
    def processes(self) -> int:
        return max((g.processes for g in self.groups), default=0)


# ------------------------------------------------------------------------------------------------- the outcome


@dataclass(frozen=True, kw_only=True)
class MemberPart:
    """One member's samples from one process (``cycles[i]`` is the cycle of ``samples_ms[i]``)."""

    samples_ms: tuple[float, ...] = ()
    cycles: tuple[int, ...] = ()
    loop_samples_s: tuple[float, ...] = ()
    iters_per_loop: int = 1
    warmup_ms: tuple[float, ...] = ()
    memory: dict[str, Any] | None = None  # MemoryUse fields
    compile: dict[str, Any] | None = None  # CompileStats fields (a compiled member)
    error: dict[str, str] | None = None  # {"type", "message"}


@dataclass(frozen=True, kw_only=True)
class ProcessPart:
    """One process's timing of one group: its members' samples, or why the process gave none."""

    index: int
    members: tuple[MemberPart, ...] = ()
    cycles: int = 0
    wall_s: float = 0.0
    load: Load | None = None
    pairing: str | None = None
    threads: int = 0
    flags: dict[str, bool] = field(default_factory=dict)
    error: dict[str, str] | None = None  # the process failed (crashed, killed, timed out) before it timed this

    @property
    def contended(self) -> bool:
        return self.load is not None and contended(self.load, self.threads)


@dataclass(frozen=True)
class GroupOutcome:
    """Every process's part of one group, in process order (a failed process has ``error`` and no members)."""

    request: GroupRequest
    parts: tuple[ProcessPart, ...]

    @property
    def timed(self) -> tuple[ProcessPart, ...]:
        return tuple(p for p in self.parts if p.error is None)


# ------------------------------------------------------------------------------------------------- the parent


Notify = Callable[[int, int], None]


def run_session(request: SessionRequest, *, workdir: Path | None = None,
                on_process: Notify | None = None) -> list[GroupOutcome]:
    """Time ``request``'s groups in ``request.processes`` worker processes, one after another; an outcome per group.

    A group asks for its own number of processes (process ``k`` times the groups that want more than ``k``).
    """
    total = request.processes
    parts: list[list[ProcessPart]] = [[] for _ in request.groups]
    with tempfile.TemporaryDirectory(prefix="harness-timing-", dir=workdir) as tmp:
        request_file = Path(tmp) / "request.pkl"
        weights = _save_weights(request, Path(tmp)) if request.prebuild else {}
        offset = request.order_offset if request.order_offset is not None else random.SystemRandom().randrange(10**6)
        request_file.write_bytes(pickle.dumps(replace(request, weights=weights, order_offset=offset)))
        for k in range(total):
            if on_process is not None:
                on_process(k + 1, total)
            wanted = [i for i, g in enumerate(request.groups) if g.processes > k]
            for i, part in zip(wanted, _run_worker(request, request_file, k, wanted, Path(tmp)), strict=True):
                parts[i].append(part)
    return [GroupOutcome(g, tuple(p)) for g, p in zip(request.groups, parts, strict=True)]


def _members(request: SessionRequest) -> dict[str, Callable[[], Any]]:
    factories: dict[str, Callable[[], Any]] = {}
    for group in request.groups:
        for member in group.members:
            factories.setdefault(member.key, member.factory)
    return factories


def _save_weights(request: SessionRequest, folder: Path) -> dict[str, str]:
    """Build each model once here and keep its weights in a file: a worker then builds the module on the meta
    device (no initialisation) and loads them, seconds faster per process than initialising it again. A model
    that cannot be built here is left to the workers (each then records its error)."""
    import torch

    if request.setup is not None:
        request.setup()
    out: dict[str, str] = {}
    for i, (key, factory) in enumerate(_members(request).items()):
        torch.manual_seed(request.seed)
        try:
            model = factory()
            path = folder / f"weights{i}.pt"
            torch.save(model.state_dict(), path)
        except Exception as exc:  # noqa: BLE001 - the workers build it themselves and record what it raises
            log.debug("timing: %s not pre-built (%s: %s)", key, type(exc).__name__, exc)
            continue
        out[key] = str(path)
        del model
    return out


def _timeout_s(request: SessionRequest, wanted: Sequence[int]) -> float:
    return WORKER_GRACE_S + sum(request.groups[i].window.max_time_s * len(request.groups[i].members) for i in wanted)


def _worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # the worker sets torch's threads itself; these keep OpenMP / MKL from starting more than it uses
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _run_worker(request: SessionRequest, request_file: Path, index: int, wanted: list[int],
                tmp: Path) -> list[ProcessPart]:
    out = tmp / f"process{index}.pkl"
    command = [sys.executable, "-m", "harness.measure.processes", str(request_file), str(index), str(out)]
    timeout = _timeout_s(request, wanted)
    start = time.monotonic()
    with subprocess.Popen(command, env=_worker_env(request.threads), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _failed(wanted, index, "TimeoutExpired", f"process {index + 1} ran past its {timeout:.0f} s "
                           "limit and was killed")
        except BaseException:
            _kill(proc)  # Ctrl-C or SIGTERM in the parent: never leave a worker timing on the machine
            raise
    if proc.returncode != 0 or not out.is_file():
        tail = [line for line in (stderr or "").strip().splitlines() if line.strip()]
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited {proc.returncode}"
        said = f": {one_line(tail[-1])[:300]}" if tail else ""
        log.warning("timing process %d %s after %.0f s%s", index + 1, how, time.monotonic() - start, said)
        return _failed(wanted, index, "WorkerFailed", f"process {index + 1} {how}{said}")
    parts: list[ProcessPart] = pickle.loads(out.read_bytes())
    return parts


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _failed(wanted: list[int], index: int, kind: str, message: str) -> list[ProcessPart]:
    return [ProcessPart(index=index, error={"type": kind, "message": message}) for _ in wanted]


# ------------------------------------------------------------------------------------------------- the worker


def _from_weights(factory: Callable[[], Any], path: str) -> Any:
    """The model built on the meta device with the parent's weights loaded into fresh memory of this process; None
    where that does not give a whole model (a builder that computes on its tensors, state outside the state dict)."""
    import torch

    try:
        with torch.device("meta"):
            model = factory()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, assign=True, strict=True)
    except Exception as exc:  # noqa: BLE001 - fall back to building it afresh
        log.debug("timing: building on the meta device failed (%s: %s); building afresh", type(exc).__name__, exc)
        return None
    tensors = [*model.parameters(), *model.buffers()]
    return None if any(t.is_meta for t in tensors) else model


def build_order(keys: list[str], index: int, offset: int) -> list[str]:
    """The order process ``index`` builds ``keys`` in: row ``index + offset`` of a Williams design, so over the
    processes every model is built in every position equally often (as far as their number allows), and the
    leftover imbalance moves from session to session with ``offset``. Measured: with an order shuffled per
    process by a fixed seed, copy b of an A/A pair was built first in 4 of 6 processes in every run, and b ÷ a read
    +0.3% on average over ten runs (benchmarks/calibration.py)."""
    from harness.measure.timer import rotation

    rows = rotation(len(keys)) if keys else [()]
    return [keys[i] for i in rows[(index + offset) % len(rows)]]


def _build(request: SessionRequest, wanted: list[GroupRequest], index: int) -> dict[str, Any]:
    """Each distinct model once, in a build order balanced over the processes (``build_order``: where a model
    lands in memory depends on what was built before it); a model that cannot be built maps to its exception."""
    import torch

    factories = {k: f for k, f in _members(request).items() if any(m.key == k for g in wanted for m in g.members)}
    keys = build_order(sorted(factories), index, request.order_offset or 0)
    built: dict[str, Any] = {}
    for key in keys:
        torch.manual_seed(request.seed)
        try:
            model = _from_weights(factories[key], request.weights[key]) if key in request.weights else None
            built[key] = model if model is not None else factories[key]()
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a model that cannot be built fails alone
            built[key] = exc
    return built


def _error(exc: BaseException) -> dict[str, str]:
    message = f"the model called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else str(exc)
    return {"type": type(exc).__name__, "message": one_line(message or type(exc).__name__)}


def time_group_once(group: GroupRequest, built: dict[str, Any], *, index: int) -> ProcessPart:
    """One process's timing of ``group``: prepare each member, warm it up, size loops from warm samples, time the
    members together for the group's window, then each member's memory (first process only)."""
    import torch

    from harness.environment import backend_flags, current_backend_flags
    from harness.measure.timer import group_window, prepare_benchmark, time_group

    members: list[MemberPart | None] = [None] * len(group.members)
    ready = []
    with backend_flags(cudnn_benchmark=group.cudnn_benchmark, tf32=group.tf32):
        for i, member in enumerate(group.members):
            model = built[member.key]
            if isinstance(model, BaseException):
                members[i] = MemberPart(error=_error(model))
                continue
            try:
                bench = prepare_benchmark(model, input_shape=member.input_size, batch_size=group.batch_size,
                                          device=group.device, mode=member.mode or group.mode, train=member.train)
                warm = tuple(bench.warmup(group.warmup))
            except KeyboardInterrupt:
                raise
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - this member fails alone
                members[i] = MemberPart(error=_error(exc))
                continue
            ready.append((i, bench, warm))
        if not ready:
            return ProcessPart(index=index, members=tuple(m or MemberPart() for m in members),
                               threads=torch.get_num_threads(), flags=current_backend_flags())
        benches = [b for _, b, _ in ready]
        window = group.window
        iters = [b.auto_iters_per_loop(window.min_time_s / window.min_samples) for b in benches] \
            if group.loops else None
        # the Williams design's first row differs per process, so no model always starts a process's cycles
        timing = time_group(benches, group_window(window, len(benches)), iters_per_loop=iters, first_row=index)
        flags = current_backend_flags()
        for (i, bench, warm), part in zip(ready, timing.members, strict=True):
            if part.error is not None:
                members[i] = MemberPart(error=_error(part.error))
                continue
            memory = asdict(bench.memory()) if group.memory and index == 0 else None
            members[i] = MemberPart(samples_ms=part.samples_ms, cycles=part.cycles,
                                    loop_samples_s=part.loop_samples_s, iters_per_loop=part.iters_per_loop,
                                    warmup_ms=warm, memory=memory,
                                    compile=asdict(bench.compile_stats) if bench.compile_stats else None)
    return ProcessPart(index=index, members=tuple(m or MemberPart() for m in members), cycles=timing.cycles,
                       wall_s=timing.wall_s, load=timing.load, pairing=timing.pairing,
                       threads=torch.get_num_threads(), flags=flags)


def worker(request: SessionRequest, index: int) -> list[ProcessPart]:
    """What process ``index`` does: set threads and seeds, run ``setup``, build, time each group it is asked for."""
    import torch

    torch.set_num_threads(request.threads)
    if request.setup is not None:
        request.setup()
    wanted = [g for g in request.groups if g.processes > index]
    random.seed(request.seed)
    torch.manual_seed(request.seed)
    built = _build(request, wanted, index)
    return [time_group_once(g, built, index=index) for g in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    request_file, index, out = argv if argv is not None else sys.argv[1:]
    request: SessionRequest = pickle.loads(Path(request_file).read_bytes())
    parts = worker(request, int(index))
    tmp = Path(out).with_suffix(f".{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_bytes(pickle.dumps(parts))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # run the module's own copy (not __main__'s), so what the worker pickles names harness.measure.processes
    from harness.measure.processes import main as worker_main

    sys.exit(worker_main())
