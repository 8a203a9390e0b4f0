"""How busy the machine is while we time, and how many threads fit the cores that are free.

A timing on a shared machine is only as good as what else ran beside it. While a comparison is timed,
``LoadMonitor`` reads what the operating system counts anyway (psutil): the CPU time every process took,
less our own, per second of wall time (the cores other processes kept busy), the 1-minute load average,
and this process's involuntary context switches (how often the scheduler took a core away from us). The
numbers go into every timing record, and the report prints them beside a figure measured on a busy machine.

Threads: with more intra-op threads than free cores, a model waits for a descheduled thread at every
parallel region and slows 3x or more, and by a different factor for each model. ``choose_threads`` picks
the number of cores left free by other processes (at least one), unless the user fixed it.
Imports no torch.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from harness.errors import ConfigError

# A comparison is flagged "busy" when other processes kept this much of a core busy on average while it was timed
# (a quiet 2-core VM reads 0.01-0.05; one CPU-bound neighbour reads about 1.0).
BUSY_CORES = 0.25
# How long ``choose_threads`` and ``wait_for_quiet`` watch the machine before each decision.
PROBE_S = 1.0
# ``--threads`` may not exceed this many times the machine's cores (a typo, not a choice).
MAX_THREADS_PER_CORE = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the logical core count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return psutil.cpu_count(logical=True) or 1


def _busy_s(times: Any) -> float:
    """CPU seconds spent not idle (idle and iowait are waiting, steal is another VM's)."""
    idle = times.idle + getattr(times, "iowait", 0.0) + getattr(times, "steal", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


@dataclass(frozen=True, kw_only=True)
class Load:
    """What the machine did while something was timed (one reading per comparison)."""

    wall_s: float
    other_cores: float  # CPU time of other processes ÷ wall time: the cores they kept busy on average
    own_cores: float  # this process's CPU time ÷ wall time
    loadavg_1m: float
    involuntary_switches: int
    cores: int

    @property
    def busy(self) -> bool:
        return self.other_cores >= BUSY_CORES

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, value: dict[str, Any]) -> Load:
        return cls(**{k: value[k] for k in cls.__dataclass_fields__})

    def describe(self) -> str:
        return (f"other processes kept {self.other_cores:.2f} of {self.cores} cores busy, load average "
                f"{self.loadavg_1m:.2f}, {self.involuntary_switches} involuntary context switches "
                f"in {self.wall_s:.0f} s")


class LoadMonitor:
    """``with LoadMonitor() as m: ...`` then ``m.load``: the machine's load over the ``with`` block."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.load: Load | None = None

    def __enter__(self) -> LoadMonitor:
        self._start = time.perf_counter()
        self._system = _busy_s(psutil.cpu_times())
        self._own = self._own_cpu_s()
        self._switches = self._process.num_ctx_switches().involuntary
        return self

    def __exit__(self, *exc: object) -> None:
        self.load = self.read()

    def _own_cpu_s(self) -> float:
        # ours and our finished children's (a benchmark that runs the harness in subprocesses is not "other")
        times = self._process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system

    def read(self) -> Load:
        """The load since ``__enter__`` (callable while still inside the block)."""
        wall = max(time.perf_counter() - self._start, 1e-9)
        own = self._own_cpu_s() - self._own
        system = _busy_s(psutil.cpu_times()) - self._system
        return Load(wall_s=wall, other_cores=max(0.0, (system - own) / wall), own_cores=own / wall,
                    loadavg_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan,
                    involuntary_switches=self._process.num_ctx_switches().involuntary - self._switches,
                    cores=usable_cores())


def probe(seconds: float | None = None) -> Load:
    """The machine's load over the next ``seconds`` (``PROBE_S``, read at call time, when None) while this
    process sleeps."""
    with LoadMonitor() as monitor:
        time.sleep(PROBE_S if seconds is None else seconds)
    assert monitor.load is not None
    return monitor.load


@dataclass(frozen=True, kw_only=True)
class ThreadChoice:
    """torch's intra-op thread count for a run, and why."""

    threads: int
    chosen_by: str  # "auto", "--threads" or "OMP_NUM_THREADS"
    cores: int
    other_cores: float | None  # what other processes used when the choice was made (auto only)

    def describe(self) -> str:
        if self.chosen_by == "auto":
            return (f"{self.threads} thread{'s' * (self.threads != 1)}: {self.cores} cores, other processes kept "
                    f"{self.other_cores:.2f} busy (fixed with --threads N)")
        return f"{self.threads} thread{'s' * (self.threads != 1)} ({self.chosen_by}; {self.cores} cores)"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def parse_threads(value: str) -> int | None:
    """``--threads``: ``auto`` (None) or a positive integer no larger than a few times the core count."""
    if value == "auto":
        return None
    try:
        threads = int(value)
    except ValueError:
        raise ConfigError(f"--threads {value!r}: expected 'auto' or a whole number of threads, e.g. --threads 1") \
            from None
    limit = MAX_THREADS_PER_CORE * usable_cores()
    if not 1 <= threads <= limit:
        raise ConfigError(f"--threads {value!r}: must be between 1 and {limit} on this machine "
                          f"({usable_cores()} cores), or 'auto'")
    return threads


def choose_threads(requested: int | None, *, probe_s: float | None = None) -> ThreadChoice:
    """``requested``, else ``OMP_NUM_THREADS`` when the user set it, else the cores other processes leave free."""
    cores = usable_cores()
    if requested is not None:
        return ThreadChoice(threads=requested, chosen_by="--threads", cores=cores, other_cores=None)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        limit = MAX_THREADS_PER_CORE * cores
        if int(env) > limit:
            raise ConfigError(f"OMP_NUM_THREADS={env}: must be between 1 and {limit} on this machine ({cores} cores); "
                              "lower it, unset it, or pass --threads N")
        return ThreadChoice(threads=int(env), chosen_by="OMP_NUM_THREADS", cores=cores, other_cores=None)
    others = probe(probe_s).other_cores
    # A neighbour at 0.6 of a core still takes that core often enough to stall a thread placed on it.
    free = max(1, min(cores, cores - math.ceil(others - BUSY_CORES)))
    return ThreadChoice(threads=free, chosen_by="auto", cores=cores, other_cores=others)


def wait_for_quiet(max_wait_s: float, *, probe_s: float | None = None) -> Load:
    """Watch the machine until other processes use less than ``BUSY_CORES``; ``ConfigError`` after ``max_wait_s``."""
    deadline = time.monotonic() + max_wait_s
    while True:
        load = probe(probe_s)
        if not load.busy:
            return load
        if time.monotonic() >= deadline:
            raise ConfigError(f"--wait-quiet {max_wait_s:g}: the machine stayed busy ({load.describe()}); "
                              "stop the other work, raise the wait, or run without --wait-quiet")
