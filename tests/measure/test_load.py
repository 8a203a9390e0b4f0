"""The thread choice and the quiet-machine wait, from the load a probe reads (the probe is faked: what a real
machine reads depends on what else runs, which a test must not)."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.measure import load


def _reading(other_cores: float, cores: int = 4) -> load.Load:
    return load.Load(wall_s=1.0, other_cores=other_cores, own_cores=0.0, loadavg_1m=other_cores,
                     involuntary_switches=0, cores=cores)


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine whose other processes keep ``machine.others`` cores busy; records each probe's length."""
    class Machine:
        others = 0.0
        probes: list[float] = []

    def probe(seconds=None):
        Machine.probes.append(load.PROBE_S if seconds is None else seconds)
        return _reading(Machine.others)

    monkeypatch.setattr(load, "usable_cores", lambda: 4)
    monkeypatch.setattr(load, "probe", probe)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    Machine.probes = []
    return Machine


@pytest.mark.parametrize(("others", "threads"), [(0.0, 4), (0.24, 4), (0.3, 3), (1.0, 3), (1.26, 2), (3.9, 1),
                                                 (7.0, 1)])
def test_auto_leaves_the_cores_other_processes_use(machine, others, threads):
    machine.others = others
    choice = load.choose_threads(None)
    assert (choice.threads, choice.chosen_by, choice.cores, choice.other_cores) == (threads, "auto", 4, others)
    assert machine.probes == [load.PROBE_S]
    assert choice.describe() == (f"{threads} thread{'s' * (threads != 1)}: 4 cores, other processes kept "
                                 f"{others:.2f} busy (fixed with --threads N)")


def test_a_fixed_count_or_omp_num_threads_wins_without_probing(machine, monkeypatch):
    machine.others = 3.0
    assert load.choose_threads(2).threads == 2 and load.choose_threads(2).chosen_by == "--threads"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert (load.choose_threads(None).threads, load.choose_threads(None).chosen_by) == (3, "OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "0")  # not a count: auto
    assert load.choose_threads(None).chosen_by == "auto"
    assert machine.probes == [load.PROBE_S]


@pytest.mark.parametrize("value", ["100000", "17"])
def test_an_omp_num_threads_past_the_machine_is_one_line_not_an_abort(machine, monkeypatch, value):
    """OMP_NUM_THREADS=100000 oversubscribed 2 cores 50,000 times over (and can abort OpenMP): the same bound as
    --threads, said in one line before anything runs."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(ConfigError, match=rf"^OMP_NUM_THREADS={value}: must be between 1 and 16 on this machine "
                                          r"\(4 cores\); lower it, unset it, or pass --threads N"):
        load.choose_threads(None)
    assert load.choose_threads(2).threads == 2  # --threads wins over the environment


@pytest.mark.parametrize(("value", "expected"), [("auto", None), ("1", 1), ("16", 16)])
def test_parse_threads(machine, value, expected):
    assert load.parse_threads(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("two", "--threads 'two': expected 'auto' or a whole number"),
    ("0", "--threads '0': must be between 1 and 16 on this machine (4 cores)"),
    ("17", "--threads '17': must be between 1 and 16")])
def test_bad_thread_counts_are_one_line(machine, value, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load.parse_threads(value)


def test_wait_for_quiet_returns_once_the_machine_is_quiet_and_refuses_after_the_bound(machine, monkeypatch):
    readings = iter([1.0, 0.6, 0.1])
    monkeypatch.setattr(load, "probe", lambda seconds=None: _reading(next(readings)))
    assert load.wait_for_quiet(60).other_cores == 0.1
    monkeypatch.setattr(load, "probe", lambda seconds=None: _reading(1.0))
    with pytest.raises(ConfigError, match=r"--wait-quiet 0: the machine stayed busy \(other processes kept 1.00 of 4"):
        load.wait_for_quiet(0)
